package api_test

import (
	"context"
	"strings"
	"testing"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/authgatetest"
	"github.com/authgate/authgate/sandbox"
)

// TestNotionStepTokenHasNoZeroExpiry: Notion tokens never expire, so a
// step's Notion token carries no expires_at at all, never year 1.
func TestNotionStepTokenHasNoZeroExpiry(t *testing.T) {
	t.Parallel()
	env := authgatetest.Start(t, authgatetest.Options{})
	n := env.Connect(t, authgatetest.ConnectParams{UserID: "nils", Provider: "notion", Actions: []string{"notion.read"}, Choice: sandbox.Choice{Account: "nils@acme.example"}})
	g := env.Connect(t, authgatetest.ConnectParams{UserID: "nils", Provider: "google", Actions: []string{"drive.files.list"}, Choice: sandbox.Choice{Account: "nils@acme.example"}})
	run, err := env.Client.CreateRun(context.Background(), authgate.RunCreateRequest{Workflow: "w", UserID: "nils", Actions: []string{"notion.read", "drive.files.list"},
		Bindings: map[string]authgate.CredentialID{"notion": n.ID, "google": g.ID}})
	if err != nil {
		t.Fatal(err)
	}
	r := do(t, "POST", env.URL+"/v1/runs/"+string(run.ID)+"/steps", env.AdminKey, "application/json",
		strings.NewReader(`{"key":"read","actions":["notion.read","drive.files.list"],"idempotency_key":"read-1"}`))
	if r.status != 200 || strings.Contains(string(r.body), "0001-01-01") {
		t.Fatalf("step gate %d %s", r.status, r.body)
	}
	gate, err := env.Client.GateStep(context.Background(), run.ID, authgate.StepGateRequest{Key: "read", Actions: []string{"notion.read", "drive.files.list"}, IdempotencyKey: "read-1"})
	if err != nil || gate.Tokens["notion"].ExpiresAt != nil || gate.Tokens["google"].ExpiresAt == nil || gate.Tokens["notion"].AccessToken == "" {
		t.Fatalf("tokens %+v, %v: want notion without expires_at, google with one", gate.Tokens, err)
	}
}
