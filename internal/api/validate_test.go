package api_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/authgatetest"
	"github.com/authgate/authgate/sandbox"
)

// TestValidationNamesTheField: a null body on every route that takes one,
// run targets of the wrong shape and over-long ids are each a 400 problem
// whose errors[] names the field, and nothing is stored.
func TestValidationNamesTheField(t *testing.T) {
	t.Parallel()
	env := authgatetest.Start(t, authgatetest.Options{})
	cred := env.Connect(t, authgatetest.ConnectParams{UserID: "vera", Provider: "google", Actions: []string{"drive.files.list"}, Choice: sandbox.Choice{Account: "vera@acme.example"}})
	run, err := env.Client.CreateRun(context.Background(), authgate.RunCreateRequest{Workflow: "w", UserID: "vera", Actions: []string{"drive.files.list"},
		Bindings: map[string]authgate.CredentialID{"google": cred.ID}})
	if err != nil {
		t.Fatal(err)
	}
	c, r := "/v1/credentials/"+string(cred.ID), "/v1/runs/"+string(run.ID)
	long := strings.Repeat("w", 257)
	runBody := func(extra string) string {
		return `{"workflow":"w","user_id":"vera","bindings":{"google":"` + string(cred.ID) + `"},"actions":["drive.files.list"]` + extra + `}`
	}
	cases := []struct {
		name, path, body, field string
	}{
		{"null api key", "/v1/api-keys", `null`, "body"},
		{"null run", "/v1/runs", ` null `, "body"},
		{"null import", "/v1/credentials/import", `null`, "body"},
		{"null connect session", "/v1/connect-sessions", `null`, "body"},
		{"null classify", "/v1/classify", `null`, "body"},
		{"null webhook", "/v1/webhooks", `null`, "body"},
		{"null token", c + "/token", `null`, "body"},
		{"null verify", c + "/verify", `null`, "body"},
		{"null diagnose", c + "/diagnose", `null`, "body"},
		{"null finish", r + "/finish", `null`, "body"},
		{"null step", r + "/steps", `null`, "body"},
		{"null complete", r + "/steps/k/complete", `null`, "body"},
		{"null fail", r + "/steps/k/fail", `null`, "body"},
		{"number body", "/v1/runs", `42`, "body"},
		{"targets string", "/v1/runs", runBody(`,"targets":"folder-1"`), "targets"},
		{"targets array", "/v1/runs", runBody(`,"targets":["folder-1"]`), "targets"},
		{"targets number field", "/v1/runs", runBody(`,"targets":{"drive_folder":42}`), "targets.drive_folder"},
		{"targets unknown field", "/v1/runs", runBody(`,"targets":{"folder":"f"}`), "targets.folder"},
		{"workflow too long", "/v1/runs", strings.Replace(runBody(""), `"workflow":"w"`, `"workflow":"`+long+`"`, 1), "workflow"},
		{"user_id of 256 bytes", "/v1/connect-sessions", `{"user_id":"` + long[:256] + `","provider":"google","actions":["drive.files.list"]}`, "user_id"},
		{"expected_account of 256 bytes", "/v1/connect-sessions", `{"user_id":"u","provider":"google","actions":["drive.files.list"],"expected_account":"` + long[:256] + `"}`, "expected_account"},
		{"import user_id too long", "/v1/credentials/import", `{"user_id":"` + long + `","provider":"google","subject":"s","access_token":"t"}`, "user_id"},
		{"user_id too long", "/v1/connect-sessions", `{"user_id":"` + long + `","provider":"google","actions":["drive.files.list"]}`, "user_id"},
		{"api key name too long", "/v1/api-keys", `{"name":"` + long + `"}`, "name"},
		{"idempotency key too long", r + "/steps", `{"key":"k","actions":[],"idempotency_key":"` + long + `"}`, "idempotency_key"},
		{"binding key too long", "/v1/runs", `{"workflow":"w","user_id":"vera","bindings":{"` + long + `":"` + string(cred.ID) + `"}}`, "bindings"},
		{"action too long", "/v1/runs", `{"workflow":"w","user_id":"vera","actions":["` + long + `"]}`, "actions[0]"},
		{"wrong type", "/v1/runs", `{"workflow":7}`, "workflow"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := do(t, "POST", env.URL+tc.path, env.AdminKey, "application/json", strings.NewReader(tc.body))
			p := problem(t, resp, 400, authgate.ClassInvalidRequest)
			if len(p.Errors) != 1 || p.Errors[0].Field != tc.field || !strings.Contains(p.Detail, tc.field) {
				t.Fatalf("problem %s; want errors[0].field %q named in the detail", resp.body, tc.field)
			}
		})
	}
	keys, err := env.Client.APIKeys(context.Background())
	if err != nil || len(keys) != 1 {
		t.Fatalf("a refused body created an API key: %d keys, %v", len(keys), err)
	}
	runs, err := env.Client.Runs(context.Background(), authgate.RunFilter{})
	if err != nil || len(runs.Runs) != 1 { // the one created before the refusals
		b, _ := json.Marshal(runs)
		t.Fatalf("a refused body created a run: %s, %v", b, err)
	}
	// null targets are no targets.
	if resp := do(t, "POST", env.URL+"/v1/runs", env.AdminKey, "application/json", strings.NewReader(runBody(`,"targets":null`))); resp.status != 201 || strings.Contains(string(resp.body), `"targets":null`) {
		t.Fatalf("null targets: %d %s", resp.status, resp.body)
	}
	// A well-formed targets object is accepted.
	resp := do(t, "POST", env.URL+"/v1/runs", env.AdminKey, "application/json", strings.NewReader(runBody(`,"targets":{"drive_folder":"f-1"}`)))
	if resp.status != 201 {
		t.Fatalf("valid targets: %d %s", resp.status, resp.body)
	}
}
