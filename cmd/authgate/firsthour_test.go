package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/authgate/authgate/authgatetest"
	"github.com/authgate/authgate/sandbox"
)

// TestOneSetOfServerNames: serve's next steps export AUTHGATE_URL and
// AUTHGATE_API_KEY, and every server command reads them (AUTHGATE_KEY, the
// old name, still works).
func TestOneSetOfServerNames(t *testing.T) {
	var out bytes.Buffer
	nextSteps(&out, "http://127.0.0.1:8080", "ag_test", true)
	if !strings.Contains(out.String(), "export AUTHGATE_API_KEY=ag_test") || !strings.Contains(out.String(), "Bearer $AUTHGATE_API_KEY") || strings.Contains(out.String(), "AUTHGATE_KEY=") {
		t.Fatalf("next steps:\n%s", out.String())
	}
	env := authgatetest.Start(t, authgatetest.Options{})
	cred := env.Connect(t, authgatetest.ConnectParams{UserID: "nia", Provider: "google", Actions: []string{"drive.files.list"}, Choice: sandbox.Choice{Account: "nia@acme.example"}})
	t.Setenv("AUTHGATE_URL", env.URL)
	for _, name := range []string{"AUTHGATE_API_KEY", "AUTHGATE_KEY"} {
		t.Setenv("AUTHGATE_API_KEY", "")
		t.Setenv("AUTHGATE_KEY", "")
		t.Setenv(name, env.AdminKey)
		for _, args := range [][]string{{"runs", "list"}, {"creds", "verify", string(cred.ID)}, {"doctor", "--credential", string(cred.ID)}} {
			if o, err := run(t, args...); err != nil {
				t.Errorf("%s=… authgate %s: %v\n%s", name, strings.Join(args, " "), err, o)
			}
		}
	}
	t.Setenv("AUTHGATE_API_KEY", "")
	t.Setenv("AUTHGATE_KEY", "")
	if _, err := run(t, "runs", "list"); err == nil || !strings.Contains(err.Error(), "AUTHGATE_API_KEY") {
		t.Fatalf("runs list without a key: %v", err)
	}
}

// TestTyposFailWithASuggestion: an unknown provider, credential status or
// run state is an error naming the likely value, never an empty answer
// with exit 0.
func TestTyposFailWithASuggestion(t *testing.T) {
	t.Setenv("AUTHGATE_URL", "")
	t.Setenv("AUTHGATE_API_KEY", "")
	t.Setenv("AUTHGATE_KEY", "")
	env := authgatetest.Start(t, authgatetest.Options{})
	env.Connect(t, authgatetest.ConnectParams{UserID: "olga", Provider: "google", Actions: []string{"drive.files.list"}, Choice: sandbox.Choice{Account: "olga@acme.example"}})
	db := []string{"--db", "sqlite:" + env.DBPath, "--key-file", env.KeyFile}
	server := []string{"--server", env.URL, "--api-key", env.AdminKey}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{append([]string{"creds", "list", "--provider", "gogle"}, db...), `unknown provider "gogle"; did you mean google?`},
		{append([]string{"creds", "list", "--status", "activ"}, db...), `did you mean active?`},
		{append([]string{"creds", "list", "--provider", "zzzzzz"}, db...), `unknown provider "zzzzzz" (known: google, notion, oidc, slack)`},
		{append([]string{"runs", "list", "--state", "blocked"}, server...), `did you mean`},
		{append([]string{"runs", "list", "--state", "runing"}, server...), `did you mean running?`},
		{append([]string{"doctor", "--user", "olga", "--provider", "gogle"}, db...), `did you mean google?`},
	} {
		out, err := run(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("authgate %s: %v (want %q)\n%s", strings.Join(tc.args, " "), err, tc.want, out)
		}
	}
	var ee *exitError
	if _, err := run(t, append([]string{"doctor", "--user", "olga", "--provider", "gogle"}, db...)...); !errors.As(err, &ee) || ee.code != 2 {
		t.Errorf("doctor with a typo: %v; want exit 2", err)
	}
	// The right names still work.
	if out, err := run(t, append([]string{"creds", "list", "--provider", "google", "--status", "active"}, db...)...); err != nil || !strings.Contains(out, "olga") {
		t.Fatalf("creds list: %v\n%s", err, out)
	}
}
