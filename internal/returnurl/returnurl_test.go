package returnurl_test

import (
	"testing"

	"github.com/authgate/authgate/internal/returnurl"
)

func TestCheck(t *testing.T) {
	t.Parallel()
	rules, err := returnurl.ParseRules([]string{"https://app.example.com", "https://docs.example.com/cb"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		url string
		ok  bool
	}{
		{"https://app.example.com/done", true},
		{"https://APP.example.com:443/x?y=1", true},
		{"https://app.example.com", true},
		{"https://app.example.com.evil.example/steal", false},
		{"https://app.example.com@evil.example/", false},
		{"https://app.example.comevil.example/x", false},
		{"http://app.example.com/done", false},
		{"https://app.example.com:8443/done", false},
		{"https://docs.example.com/cb", true},
		{"https://docs.example.com/cb/x", true},
		{"https://docs.example.com/cbx", false},
		{"https://docs.example.com/cb/../admin", false},
		{"https://docs.example.com/cb/%2e%2e/evil/steal", false},
		{"https://docs.example.com/cb/.%2E/evil", false},
		{"https://docs.example.com/cb/%2E%2E", false},
		{"https://docs.example.com/cb/%2e/x", false},
		{"https://docs.example.com/cb/x%2f..%2fadmin", false},
		{"https://docs.example.com/cb/a.b/..c", true},
		{"https://docs.example.com/", false},
		{"javascript:alert(1)", false},
		{"//evil.example/", false},
		{"https://app.example.com/#frag", false},
		{"http://127.0.0.1:3000/done", true},
		{"http://localhost/done", true},
		{"http://user@127.0.0.1/", false},
	} {
		if err := returnurl.Check(tc.url, rules); (err == nil) != tc.ok {
			t.Errorf("Check(%q) = %v, want ok=%v", tc.url, err, tc.ok)
		}
	}
}

func TestParseRuleRefusesBadEntries(t *testing.T) {
	t.Parallel()
	for _, raw := range []string{"app.example.com", "https://", "https://u:p@app.example.com", "ftp://app.example.com", "https://app.example.com/?q=1", ""} {
		if _, err := returnurl.ParseRule(raw); err == nil {
			t.Errorf("ParseRule(%q) accepted", raw)
		}
	}
}
