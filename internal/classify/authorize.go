package classify

import (
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
)

// ParseAuthorize reads what a worker saw when the authorization step
// failed, in whichever of three shapes it has it:
//
//   - the callback's query, or the whole callback URL
//     ("error=access_denied&error_description=…"): RFC 6749 §4.1.2.1;
//   - a JSON body ({"error":"…"}), as Parse reads it;
//   - the text (or HTML) of the provider's own error page, which the user
//     sees instead of a redirect: Google's "Error 400: admin_policy_enforced",
//     "Error 403: org_internal", "Access blocked: … has not completed the
//     Google verification process".
//
// status is what the worker saw (0 when it does not know). The result is
// always a failed *ProviderError with Operation OpAuthorize.
func ParseAuthorize(provider string, status int, header http.Header, body string) *ProviderError {
	s := strings.TrimSpace(body)
	if q, ok := callbackQuery(s); ok {
		if e := FromCallback(provider, q); e != nil {
			e.Status = status
			return e
		}
	}
	if strings.HasPrefix(s, "{") {
		return Parse(Input{Provider: provider, Operation: OpAuthorize, Status: status, Header: header, Body: []byte(body)})
	}
	if e := fromErrorPage(provider, status, s); e != nil {
		return e
	}
	// Nothing we recognise: the RFC rules on the bare status.
	return Parse(Input{Provider: provider, Operation: OpAuthorize, Status: status, Header: header, Body: []byte(body)})
}

// callbackQuery reads s as a callback URL or query string carrying error=.
func callbackQuery(s string) (url.Values, bool) {
	if s == "" || strings.ContainsAny(s, " \t\r\n<") {
		return nil, false
	}
	raw := s
	if u, err := url.Parse(s); err == nil && (u.Scheme != "" || strings.HasPrefix(s, "/")) {
		// A fragment carries the error in the implicit flow; prefer the query.
		raw = u.RawQuery
		if !strings.Contains(raw, "error=") {
			raw = u.Fragment
		}
	}
	raw = strings.TrimPrefix(raw, "?")
	q, err := url.ParseQuery(raw)
	if err != nil || q.Get("error") == "" {
		return nil, false
	}
	return q, true
}

var (
	tagPattern = regexp.MustCompile(`(?s)<(script|style)\b.*?</(script|style)>|<[^>]*>`)
	// Google's error pages: "Error 400: admin_policy_enforced". Older pages
	// and some locales write the code in words ("Error 400: Invalid scope").
	pageCode = regexp.MustCompile(`(?i)\berror\s+([1-5][0-9]{2})\s*:\s*([a-z][a-z_]*(?: [a-z]+){0,3})`)
)

// testingPhrases are what Google's page says for an app in Testing (or not
// yet verified) when the account is not one of its test users; the page's
// code is access_denied.
var testingPhrases = []string{"has not completed the google verification process", "developer-approved testers", "is being tested", "hasn't verified this app", "has not verified this app"}

// fromErrorPage reads a provider's authorization error page; nil when the
// text names no error we know.
func fromErrorPage(provider string, status int, s string) *ProviderError {
	text := s
	if strings.Contains(text, "<") {
		text = html.UnescapeString(tagPattern.ReplaceAllString(text, " "))
	}
	text = strings.Join(strings.Fields(text), " ")
	lower := strings.ToLower(text)
	e := &ProviderError{Provider: provider, Operation: OpAuthorize, Status: status}
	if m := pageCode.FindStringSubmatch(text); m != nil {
		code := strings.ToLower(m[2])
		// "Error 400: invalid_scope Some requested scopes…": the code is
		// the first word when it has underscores, else the words joined.
		if f := strings.Fields(code); strings.Contains(f[0], "_") {
			code = f[0]
		} else {
			code = knownCode(f)
		}
		if code != "" {
			e.OAuthError = code
			if e.Status == 0 {
				e.Status = atoi3(m[1])
			}
		}
	}
	for _, p := range testingPhrases {
		if i := strings.Index(lower, p); i >= 0 {
			if e.OAuthError == "" {
				e.OAuthError = "access_denied"
			}
			// lower and text have the same length for the ASCII phrases we
			// look for only when the page is ASCII: clamp, then drop any
			// rune cut in half.
			e.OAuthDescription = strings.ToValidUTF8(text[min(len(text), max(0, i-120)):min(len(text), i+len(p)+120)], "")
			break
		}
	}
	if e.OAuthError == "" {
		return nil
	}
	if e.OAuthDescription == "" {
		e.OAuthDescription = strings.ToValidUTF8(text[:min(len(text), 300)], "")
	}
	return e
}

// knownCode turns a code written in words ("Invalid scope") into the
// OAuth code, only for codes classify knows; "" otherwise.
func knownCode(words []string) string {
	for n := len(words); n > 0; n-- {
		c := strings.Join(words[:n], "_")
		switch c {
		case "invalid_scope", "invalid_request", "invalid_client", "access_denied", "admin_policy_enforced", "org_internal",
			"redirect_uri_mismatch", "disallowed_useragent", "deleted_client", "unauthorized_client", "access_not_configured", "policy_enforced":
			return c
		}
	}
	return ""
}

func atoi3(s string) int {
	n := 0
	for _, r := range s {
		n = n*10 + int(r-'0')
	}
	return n
}
