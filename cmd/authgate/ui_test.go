package main

import (
	"strings"
	"testing"

	"github.com/authgate/authgate/authgatetest"
)

// TestUILoginLink: the command prints a console link of the server it
// asks; a wrong key is a one-line error; without a server it says what to set.
// Not parallel: it clears AUTHGATE_URL.
func TestUILoginLink(t *testing.T) {
	env := authgatetest.Start(t, authgatetest.Options{})
	out, err := run(t, "ui", "login-link", "--server", env.URL, "--api-key", env.AdminKey)
	if err != nil || !strings.HasPrefix(out, env.URL+"/ui/login/agl_") {
		t.Fatalf("ui login-link: %v\n%s", err, out)
	}
	if _, err := run(t, "ui", "login-link", "--server", env.URL, "--api-key", "ag_wrong"); err == nil || strings.Contains(err.Error(), "\n") {
		t.Fatalf("a wrong key = %v; want a one-line error", err)
	}
	t.Setenv("AUTHGATE_URL", "")
	t.Setenv("AUTHGATE_API_KEY", "")
	t.Setenv("AUTHGATE_KEY", "")
	if _, err := run(t, "ui", "login-link"); err == nil || !strings.Contains(err.Error(), "AUTHGATE_URL") {
		t.Fatalf("without a server = %v; want it to name AUTHGATE_URL", err)
	}
}
