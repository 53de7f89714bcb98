package api_test

import (
	"context"
	"testing"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/authgatetest"
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
}
