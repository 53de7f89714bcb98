package classify_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/authgate/authgate/internal/classify"
)

// FuzzParseAuthorize: whatever text a worker pastes, ParseAuthorize
// answers a failed authorize error with valid UTF-8 codes and a bounded
// description, and Classify gives it exactly one class; it never panics.
func FuzzParseAuthorize(f *testing.F) {
	for _, seed := range []string{
		"error=access_denied&state=s", "https://app.example/cb?error=invalid_scope#x", "?error=", "{\"error\":\"org_internal\"}",
		"Error 400: admin_policy_enforced", "<html><b>Error 403:</b> org_internal</html>", "Error 400: Invalid scope",
		"Access blocked: é has not completed the Google verification process", "<script>Error 500: x</script>", "", "\xff\xfe",
		strings.Repeat("has not completed the google verification process ", 50),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		e := classify.ParseAuthorize("google", 0, nil, body)
		if e == nil || e.Operation != classify.OpAuthorize || !e.Failed() {
			t.Fatalf("ParseAuthorize(%q) = %+v", body, e)
		}
		if utf8.ValidString(body) && (!utf8.ValidString(e.OAuthError) || !utf8.ValidString(e.OAuthDescription)) {
			t.Fatalf("invalid UTF-8 from %q: %q %q", body, e.OAuthError, e.OAuthDescription)
		}
		if len(e.OAuthDescription) > 400 {
			t.Fatalf("description of %d bytes", len(e.OAuthDescription))
		}
		if r := classify.Classify(e); r.Class == "" || r.Message == "" {
			t.Fatalf("no class for %q: %+v", body, r)
		}
	})
}
