package e2e

import (
	"strings"
	"testing"
)

// TestBenchCommand: `authgate bench` at tiny sizes prints every row of its
// table (the figures themselves are for people; CI runs a bigger pass).
func TestBenchCommand(t *testing.T) {
	t.Parallel()
	out, stderr, code := cli(t, t.TempDir(), "bench", "--requests", "200", "--credentials", "200", "--concurrency", "4", "--tail-concurrency", "8")
	if code != 0 {
		t.Fatalf("authgate bench: exit %d\n%s", code, stderr)
	}
	for _, want := range []string{"trivial handler c4", "token route c8", "token/trivial throughput at c4", "Refresher.Token (fresh)", "oauth2.ReuseTokenSource", "200 credentials", "many/one throughput"} {
		if !strings.Contains(out, want) {
			t.Errorf("bench output lacks %q:\n%s", want, out)
		}
	}
}
