package diagnose_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/authgatetest"
	"github.com/authgate/authgate/internal/diagnose"
)

// TestRunDemoResumes: with Revoke, the demo run blocks at preflight, the
// user reconnects on the sandbox's consent page and the server resumes it
// to the end; no consent preset is left on the server.
func TestRunDemoResumes(t *testing.T) {
	t.Parallel()
	env := authgatetest.Start(t, authgatetest.Options{})
	var out bytes.Buffer
	run, err := diagnose.RunDemo(context.Background(), diagnose.Demo{Client: env.Client, Sandbox: env.Server.Sandbox, Out: &out, Revoke: true})
	if err != nil || run.State != authgate.RunStateSucceeded || !strings.Contains(out.String(), "blocked_on_auth") {
		t.Fatalf("demo: %v, run %s\n%s", err, run.State, out.String())
	}
	if left := env.Server.Sandbox.Consents(); len(left) != 0 {
		t.Fatalf("consent presets left: %+v", left)
	}
}

// TestRunDemoCheckRefusesUnknownProvider: democheck checks google and
// notion only, and says so before touching anything.
func TestRunDemoCheckRefusesUnknownProvider(t *testing.T) {
	t.Parallel()
	_, err := diagnose.RunDemoCheck(context.Background(), diagnose.DemoCheckOptions{ServerURL: "http://127.0.0.1:1", APIKey: "ag_x", Providers: []string{"slack"}}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "google and notion") {
		t.Fatalf("err %v", err)
	}
}
