package api_test

import (
	"context"
	"errors"
	"testing"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/authgatetest"
	"github.com/authgate/authgate/internal/diagnose"
	"github.com/authgate/authgate/sandbox"
)

// TestClassifyAuthorizeStep: POST /v1/classify with operation authorize
// reads a callback query or the text of the provider's error page, with or
// without a status; other operations still need one.
func TestClassifyAuthorizeStep(t *testing.T) {
	t.Parallel()
	env := authgatetest.Start(t, authgatetest.Options{})
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		req  authgate.ClassifyRequest
		want authgate.Class
		code string
	}{
		{"declined", authgate.ClassifyRequest{Provider: "google", Operation: "authorize", Body: "error=access_denied&error_description=The+user+declined&state=s"}, authgate.ClassInsufficientScope, "access_denied"},
		{"admin policy page", authgate.ClassifyRequest{Provider: "google", Operation: "authorize", Body: "Access blocked: Acme's request is blocked by your organization's policy\nError 400: admin_policy_enforced"}, authgate.ClassAdminPolicy, "admin_policy_enforced"},
		{"org internal page", authgate.ClassifyRequest{Provider: "google", Operation: "authorize", Status: 403, Body: "Error 403: org_internal"}, authgate.ClassClientMisconfigured, "org_internal"},
		{"unverified app page", authgate.ClassifyRequest{Provider: "google", Operation: "authorize", Body: "Access blocked: acme.example has not completed the Google verification process\nError 403: access_denied"}, authgate.ClassClientMisconfigured, "unverified_app_testing"},
		{"invalid scope page", authgate.ClassifyRequest{Provider: "google", Operation: "authorize", Body: "Error 400: invalid_scope\nSome requested scopes were invalid."}, authgate.ClassClientMisconfigured, "invalid_scope"},
		{"slack callback", authgate.ClassifyRequest{Provider: "slack", Operation: "authorize", Body: "https://app.example/cb?error=access_denied&state=s"}, authgate.ClassInsufficientScope, "access_denied"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := env.Client.Classify(ctx, tc.req)
			if err != nil || got.Class != tc.want || got.ErrorCode != tc.code || got.Message == "" {
				t.Fatalf("got %+v, %v; want %s (%s)", got, err, tc.want, tc.code)
			}
		})
	}
	if _, err := env.Client.Classify(ctx, authgate.ClassifyRequest{Provider: "google", Operation: "refresh", Body: "{}"}); err == nil {
		t.Fatal("a refresh without a status was classified")
	}
	// The sandbox's own admin-policy page, as a user (or a browser
	// automation) would copy it, classifies the same.
	if err := env.Server.Sandbox.InjectFault(sandbox.Fault{Provider: "google", Fault: "admin_policy", Domain: "globex.example"}); err != nil {
		t.Fatal(err)
	}
	cs, err := env.Client.CreateConnectSession(ctx, authgate.ConnectSessionRequest{UserID: "gus", Provider: "google", Actions: []string{"drive.files.list"}})
	if err != nil {
		t.Fatal(err)
	}
	var page *sandbox.ConsentError
	if err := diagnose.SandboxSignIn(ctx, cs.ConnectURL, "gus@globex.example"); !errors.As(err, &page) {
		t.Fatalf("sign-in under an admin policy: %v", err)
	}
	got, err := env.Client.Classify(ctx, authgate.ClassifyRequest{Provider: "google", Operation: "authorize", Status: page.Status, Body: page.Page})
	if err != nil || got.Class != authgate.ClassAdminPolicy {
		t.Fatalf("the sandbox's page %q classified %+v, %v", page.Page, got, err)
	}
}
