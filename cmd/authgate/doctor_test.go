package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"

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
