package e2e

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestBenchCommand: `authgate bench` at tiny sizes starts its servers as
// processes of their own, prints every row of its table, and the token
// server it measures (default settings) does not log a line per token
// served. The figures themselves are for people; CI runs a bigger pass.
func TestBenchCommand(t *testing.T) {
	t.Parallel()
	out, stderr, code := cli(t, t.TempDir(), "bench", "--duration", "150ms", "--rounds", "1", "--concurrency", "1,4", "--credentials", "200")
	if code != 0 {
		t.Fatalf("authgate bench: exit %d\n%s", code, stderr)
	}
	for _, want := range []string{"vs a trivial net/http handler of the same shape", "authgate serve settings: the defaults", "SQLite        1 ", "SQLite        4 ",
		"µs/req", "SQLite              200", "PostgreSQL not measured", "targets ("} {
		if !strings.Contains(out, want) {
			t.Errorf("bench output lacks %q:\n%s", want, out)
		}
	}
	m := regexp.MustCompile(`SQLite server log while measured: (\d+) lines, \d+ bytes for (\d+) token requests`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no server log line in:\n%s", out)
	}
	lines, _ := strconv.Atoi(m[1])
	requests, _ := strconv.Atoi(m[2])
	if requests < 100 || lines*10 > requests {
		t.Errorf("the server logged %d lines for %d token requests; want far fewer lines than requests", lines, requests)
	}
}
