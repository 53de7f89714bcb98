package main

import (
	"strings"
	"testing"
)

// TestDemoAndRuns: `authgate demo --revoke` needs no setup, blocks at
// preflight and finishes by itself after the reconnect; `runs list` and `runs show` read runs
// through a server.
func TestDemoAndRuns(t *testing.T) {
	t.Parallel()
	out, err := run(t, "demo", "--revoke")
	if err != nil || !strings.Contains(out, "is blocked_on_auth (google: reauth_required)") || !strings.Contains(out, "state succeeded") ||
		!strings.Contains(out, "slack_post   completed attempts 1") || !strings.Contains(out, "resumed") {
		t.Fatalf("demo: %v\n%s", err, out)
	}
	if strings.Contains(out, "ya29.") {
		t.Fatal("a token was printed")
	}
}
