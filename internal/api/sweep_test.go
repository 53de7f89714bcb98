package api_test

import (
	"context"
	"testing"
	"time"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/authgatetest"
	"github.com/authgate/authgate/internal/clock"
	"github.com/authgate/authgate/sandbox"
	"github.com/authgate/authgate/server"
)

// TestHealthSweepFindsRevocation: an idle credential revoked at the
// provider is found by the health sweep within its interval: it becomes
// reauth_required with the reason, and credential.reauth_required is
// delivered once.
func TestHealthSweepFindsRevocation(t *testing.T) {
	t.Parallel()
	env := authgatetest.Start(t, authgatetest.Options{Configure: func(c *server.Config) {
		c.HealthSweepInterval = 2 * time.Second
		c.JobPollInterval = 50 * time.Millisecond
	}})
	ctx := context.Background()
	rc := &receiver{clock: clock.Real{}, hit: make(chan struct{}, 100)}
	hs := newReceiverServer(t, rc)
	ep, err := env.Client.CreateWebhook(ctx, authgate.WebhookEndpointCreateRequest{URL: hs})
	if err != nil {
		t.Fatal(err)
	}
	sec := []byte(ep.Secret)
	rc.secret.Store(&sec)
	cred := env.Connect(t, authgatetest.ConnectParams{UserID: "ivy", Provider: "google", Actions: []string{"drive.files.list"}, Choice: sandbox.Choice{Account: "ivy@acme.example"}})
	if err := env.Server.Sandbox.InjectFault(sandbox.Fault{Provider: "google", Fault: "revoke", Account: "ivy@acme.example"}); err != nil {
		t.Fatal(err)
	}
	rc.waitFor(t, func() bool { return len(rc.events) >= 1 })
	got, err := env.Client.Credential(ctx, cred.ID)
	if err != nil || got.Status != authgate.CredentialStatusReauthRequired || got.StatusReason != authgate.StatusReasonInvalidGrant {
		t.Fatalf("after the sweep %s (%s) %v", got.Status, got.StatusReason, err)
	}
	// A few more sweep periods: the credential is not active, so nothing
	// is checked or announced again.
	deadline := time.Now().Add(3 * time.Second)
	rc.waitFor(t, func() bool { return time.Now().After(deadline) })
	if ts := rc.types(); len(ts) != 1 || ts[0] != authgate.WebhookEventCredentialReauthRequired || len(rc.bad) != 0 {
		t.Fatalf("received %v (bad %v); want credential.reauth_required once", ts, rc.bad)
	}
}

// TestHealthCheckCost: one health check of each kind of credential, run
// synchronously (the sweep job's body), and the provider calls it made.
// A healthy Google credential costs one userinfo call and no refresh; one
// whose access token died at Google (but not the grant) is refreshed once
// and stays active; one revoked at Google is refreshed once, answered
// invalid_grant, and is reauth_required (invalid_grant); a credential of a
// provider that rotates refresh tokens is checked by one refresh; a Notion
// token with no refresh token that Notion refuses is reauth_required
// (revoked: Notion tokens do not expire, so it was revoked).
func TestHealthCheckCost(t *testing.T) {
	t.Parallel()
	env := authgatetest.Start(t, authgatetest.Options{})
	ctx := context.Background()
	sb := env.Server.Sandbox
	connect := func(user, provider, account string, actions ...string) authgate.Credential {
		return env.Connect(t, authgatetest.ConnectParams{UserID: user, Provider: provider, Actions: actions, Choice: sandbox.Choice{Account: account}})
	}
	type cost struct{ api, refreshes int64 }
	check := func(c authgate.Credential) cost {
		t.Helper()
		sb.ResetCounters()
		if err := env.Server.HealthCheck(ctx, c.TenantID, c.ID); err != nil {
			t.Fatalf("health check of %s: %v", c.Provider, err)
		}
		st := sb.Counters()[c.Provider]
		return cost{st.APIRequests, st.Refreshes}
	}
	status := func(c authgate.Credential) (authgate.CredentialStatus, authgate.StatusReason) {
		t.Helper()
		got, err := env.Client.Credential(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		return got.Status, got.StatusReason
	}

	healthy := connect("hal", "google", "hal@acme.example", "drive.files.list")
	if got := check(healthy); got != (cost{api: 1}) {
		t.Fatalf("healthy google: %+v provider calls; want one userinfo call and no refresh", got)
	}
	if st, _ := status(healthy); st != authgate.CredentialStatusActive {
		t.Fatalf("healthy google is %s", st)
	}

	expired := connect("eve", "google", "eve@acme.example", "drive.files.list")
	if err := sb.InjectFault(sandbox.Fault{Provider: "google", Fault: "expire_access_tokens", Account: "eve@acme.example"}); err != nil {
		t.Fatal(err)
	}
	if got := check(expired); got != (cost{api: 1, refreshes: 1}) {
		t.Fatalf("google with a dead access token: %+v; want userinfo refused, then one refresh", got)
	}
	if st, _ := status(expired); st != authgate.CredentialStatusActive {
		t.Fatalf("google whose access token died at the provider is %s; the grant is alive", st)
	}

	revoked := connect("rex", "google", "rex@acme.example", "drive.files.list")
	if err := sb.InjectFault(sandbox.Fault{Provider: "google", Fault: "revoke", Account: "rex@acme.example"}); err != nil {
		t.Fatal(err)
	}
	if got := check(revoked); got != (cost{api: 1, refreshes: 1}) {
		t.Fatalf("revoked google: %+v; want userinfo refused, then one refresh", got)
	}
	if st, why := status(revoked); st != authgate.CredentialStatusReauthRequired || why != authgate.StatusReasonInvalidGrant {
		t.Fatalf("revoked google is %s (%s)", st, why)
	}

	rot := connect("ola", "oidc", "ola@acme.example")
	if got := check(rot); got != (cost{refreshes: 1}) {
		t.Fatalf("rotating oidc: %+v; want exactly one refresh", got)
	}
	if st, _ := status(rot); st != authgate.CredentialStatusActive {
		t.Fatalf("rotating oidc is %s", st)
	}

	// A Notion credential holding only an access token (imported), refused.
	n := connect("nia", "notion", "nia@acme.example", "notion.read")
	tok, err := env.Client.Token(ctx, n.ID, authgate.TokenRequest{})
	if err != nil {
		t.Fatal(err)
	}
	bare, err := env.Client.ImportCredential(ctx, authgate.ImportCredentialRequest{UserID: "nia-bare", Provider: "notion", WorkspaceID: n.WorkspaceID,
		Subject: n.Account.Subject, Scopes: n.GrantedScopes, AccessToken: tok.AccessToken})
	if err != nil {
		t.Fatal(err)
	}
	if got := check(bare); got != (cost{api: 1}) {
		t.Fatalf("healthy notion without a refresh token: %+v; want one users/me call", got)
	}
	if err := sb.InjectFault(sandbox.Fault{Provider: "notion", Fault: "revoke", Account: "nia@acme.example"}); err != nil {
		t.Fatal(err)
	}
	if got := check(bare); got != (cost{api: 1}) {
		t.Fatalf("revoked notion without a refresh token: %+v; want one users/me call", got)
	}
	if st, why := status(bare); st != authgate.CredentialStatusReauthRequired || why != authgate.StatusReasonRevoked {
		t.Fatalf("revoked notion without a refresh token is %s (%s); want reauth_required (revoked)", st, why)
	}
	// A second check of a credential that is no longer active calls nothing.
	if got := check(bare); got != (cost{}) {
		t.Fatalf("checking a reauth_required credential made calls: %+v", got)
	}
}
