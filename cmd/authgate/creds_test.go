package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/authgate/authgate/authgatetest"
	"github.com/authgate/authgate/sandbox"
)

func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	root := newRootCmd()
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

// TestCredsVerifyAndShow: `creds verify` prints each check and the verdict
// through a running server; `creds show` then shows the connector state
// (verified) apart from the app session, which authgate does not track.
func TestCredsVerifyAndShow(t *testing.T) {
	t.Parallel()
	env := authgatetest.Start(t, authgatetest.Options{})
	cred := env.Connect(t, authgatetest.ConnectParams{Provider: "google", Actions: []string{"drive.files.list"}, Choice: sandbox.Choice{Account: "cli@acme.example"}})
	out, err := run(t, "creds", "verify", string(cred.ID), "--server", env.URL, "--api-key", env.AdminKey)
	if err != nil || !strings.Contains(out, "drive.list") || !strings.Contains(out, "verdict:   pass") || !strings.Contains(out, "matches stored: true") {
		t.Fatalf("creds verify: %v\n%s", err, out)
	}
	if strings.Contains(out, "ya29.") {
		t.Fatal("a token was printed")
	}
	out, err = run(t, "--db", "sqlite:"+env.DBPath, "--key-file", env.KeyFile, "creds", "show", string(cred.ID))
	if err != nil || !strings.Contains(out, "authorized, verified at") || !strings.Contains(out, "app session") {
		t.Fatalf("creds show: %v\n%s", err, out)
	}
	// A failing verdict exits non-zero after printing the checks.
	if err := env.Server.Sandbox.InjectFault(sandbox.Fault{Provider: "google", Fault: "revoke", Account: "cli@acme.example"}); err != nil {
		t.Fatal(err)
	}
	out, err = run(t, "creds", "verify", string(cred.ID), "--server", env.URL, "--api-key", env.AdminKey)
	if err == nil || !strings.Contains(out, "reauth_required") || !strings.Contains(out, "reconnect: ") {
		t.Fatalf("creds verify of a revoked grant: %v\n%s", err, out)
	}
}
