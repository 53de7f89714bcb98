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
