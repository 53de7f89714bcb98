package api_test

import (
	"testing"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/authgatetest"
	"github.com/authgate/authgate/sandbox"
)

// googleScopeDenied is Google's 403 for a token missing a scope.
const googleScopeDenied = `{"error":{"code":403,"message":"Request had insufficient authentication scopes.","errors":[{"reason":"insufficientPermissions"}],"status":"PERMISSION_DENIED","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"ACCESS_TOKEN_SCOPE_INSUFFICIENT","domain":"googleapis.com"}]}}`

// TestStaleFailureReport reproduces the stale report: a step's fail for a
// token from before a reconnect must not demote the reconnected credential
// (the report names a token that is no longer the stored one), while the
// same report about the current token does.
func TestStaleFailureReport(t *testing.T) {
	t.Parallel()
	f := startRuns(t, sandbox.Choice{Account: "sam@acme.example"})
	c := f.env.Client
	r := f.create(t)
	if r.State != authgate.RunStateRunning {
		t.Fatalf("run %s", r.State)
	}
	g, err := c.GateStep(f.ctx, r.ID, authgate.StepGateRequest{Key: "doc", IdempotencyKey: "run-doc"})
	if err != nil {
		t.Fatal(err)
	}
	before := g.Step.CredentialFingerprints["google"]
	if before == "" {
		t.Fatalf("gate recorded no fingerprint: %+v", g.Step)
	}

	// The user reconnects (same account): new tokens, credential active.
	f.env.Connect(t, authgatetest.ConnectParams{UserID: "u", Provider: "google", CredentialID: f.google.ID, Choice: sandbox.Choice{Account: "sam@acme.example"}})
	cred, err := c.Credential(f.ctx, f.google.ID)
	if err != nil || cred.Status != authgate.CredentialStatusActive || cred.AccessTokenFingerprint == before {
		t.Fatalf("after reconnect %+v %v", cred, err)
	}

	// A late report about the pre-reconnect token, both ways of naming it:
	// explicitly and by the step's record.
	for _, req := range []authgate.StepFailRequest{
		{Binding: "google", Status: 403, Body: googleScopeDenied, TokenFingerprint: before},
		{Binding: "google", Status: 403, Body: googleScopeDenied},
	} {
		fr, err := c.FailStep(f.ctx, r.ID, "doc", req)
		if err != nil || fr.Outcome != authgate.StepFailRetry || fr.RunState != authgate.RunStateRunning {
			t.Fatalf("stale report %+v: %+v %v", req, fr, err)
		}
		got, _ := c.Credential(f.ctx, f.google.ID)
		if got.Status != authgate.CredentialStatusActive || got.Version != cred.Version {
			t.Fatalf("a stale report changed the reconnected credential: %s (%s) v%d→v%d", got.Status, got.StatusReason, cred.Version, got.Version)
		}
	}
	if got, _ := c.Run(f.ctx, r.ID); got.State != authgate.RunStateRunning {
		t.Fatalf("run %s after stale reports", got.State)
	}

	// The same report about the current token is believed: the credential
	// needs the user and the run blocks.
	g, err = c.GateStep(f.ctx, r.ID, authgate.StepGateRequest{Key: "doc", IdempotencyKey: "run-doc"})
	if err != nil {
		t.Fatal(err)
	}
	fr, err := c.FailStep(f.ctx, r.ID, "doc", authgate.StepFailRequest{Binding: "google", Status: 403, Body: googleScopeDenied})
	if err != nil || fr.Outcome != authgate.StepFailBlocked || fr.RunState != authgate.RunStateBlockedOnAuth {
		t.Fatalf("current report %+v %v", fr, err)
	}
	if got, _ := c.Credential(f.ctx, f.google.ID); got.Status != authgate.CredentialStatusReauthRequired || got.StatusReason != authgate.StatusReasonScopeRemoved {
		t.Fatalf("current report left %s (%s)", got.Status, got.StatusReason)
	}
}
