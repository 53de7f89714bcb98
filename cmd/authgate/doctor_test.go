package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/authgatetest"
	"github.com/authgate/authgate/sandbox"
)

// TestDoctorCommand: through a running server, healthy exits 0 with a
// pasteable report; a dropped scope exits 1 naming missing_scope; no
// credential named exits 2.
func TestDoctorCommand(t *testing.T) {
	env := authgatetest.Start(t, authgatetest.Options{})
	t.Setenv("AUTHGATE_URL", env.URL)
	t.Setenv("AUTHGATE_API_KEY", env.AdminKey)
	c := env.Connect(t, authgatetest.ConnectParams{Provider: "google", Actions: []string{"drive.files.list", "docs.documents.create"}, Choice: sandbox.Choice{Account: "doc@acme.example"}})
	run := func(args ...string) (string, error) {
		var out bytes.Buffer
		cmd := newRootCmd()
		cmd.SetOut(&out)
		cmd.SetArgs(append([]string{"doctor"}, args...))
		err := cmd.Execute()
		return out.String(), err
	}
	out, err := run("--credential", string(c.ID))
	if err != nil || !strings.Contains(out, "VERDICT healthy") || !strings.Contains(out, "✓") {
		t.Fatalf("healthy: %v\n%s", err, out)
	}
	t.Logf("\n%s", out)
	if err := env.Server.Sandbox.InjectFault(sandbox.Fault{Provider: "google", Fault: "drop_scope", Account: "doc@acme.example", Scope: "https://www.googleapis.com/auth/drive.file"}); err != nil {
		t.Fatal(err)
	}
	out, err = run("--user", "user-1", "--provider", "google", "--json")
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != 1 || !strings.Contains(out, `"cause": "missing_scope"`) {
		t.Fatalf("missing scope: %v\n%s", err, out)
	}
	if _, err = run(); !errors.As(err, &ee) || ee.code != 2 {
		t.Fatalf("no credential: %v", err)
	}
}

// TestDoctorRun: `doctor --run ID` through a running server reads the run,
// takes the credential its blocked binding used (not the other binding) and
// diagnoses it; a run id that does not exist exits 2.
func TestDoctorRun(t *testing.T) {
	t.Parallel()
	env := authgatetest.Start(t, authgatetest.Options{})
	ctx := context.Background()
	g := env.Connect(t, authgatetest.ConnectParams{UserID: "rita", Provider: "google", Actions: []string{"drive.files.list"}, Choice: sandbox.Choice{Account: "rita@acme.example"}})
	n := env.Connect(t, authgatetest.ConnectParams{UserID: "rita", Provider: "notion", Actions: []string{"notion.read"}, Choice: sandbox.Choice{Account: "rita@acme.example"}})
	if err := env.Server.Sandbox.InjectFault(sandbox.Fault{Provider: "google", Fault: "revoke", Account: "rita@acme.example"}); err != nil {
		t.Fatal(err)
	}
	r, err := env.Client.CreateRun(ctx, authgate.RunCreateRequest{Workflow: "w", UserID: "rita", Actions: []string{"drive.files.list", "notion.read"},
		Bindings: map[string]authgate.CredentialID{"google": g.ID, "notion": n.ID}})
	if err != nil {
		t.Fatal(err)
	}
	if r.State != authgate.RunStateBlockedOnAuth || r.Blocked == nil || r.Blocked.Binding != "google" {
		t.Fatalf("run not blocked on google: %+v", r)
	}
	out, err := runWith(t, env, "doctor", "--run", string(r.ID), "--json")
	var ee *exitError
	var d authgate.Diagnosis
	if jerr := json.Unmarshal([]byte(out), &d); jerr != nil || !errors.As(err, &ee) || ee.code != 1 {
		t.Fatalf("doctor --run: %v %v\n%s", err, jerr, out)
	}
	if d.Credential.ID != g.ID || d.Verdict.Cause != "revoked" {
		t.Fatalf("doctor --run diagnosed %s (%s), want %s (revoked)", d.Credential.ID, d.Verdict.Cause, g.ID)
	}
	if _, err := runWith(t, env, "doctor", "--run", "run_doesnotexist0000000"); !errors.As(err, &ee) || ee.code != 2 {
		t.Fatalf("unknown run: %v", err)
	}
}

// runWith runs the CLI against env's server (flags, not the environment, so
// tests stay parallel).
func runWith(t *testing.T, env *authgatetest.Env, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	cmd := newRootCmd()
	cmd.SetOut(&out)
	cmd.SetErr(io.Discard)
	cmd.SetArgs(append(args, "--server", env.URL, "--api-key", env.AdminKey))
	err := cmd.Execute()
	return out.String(), err
}
