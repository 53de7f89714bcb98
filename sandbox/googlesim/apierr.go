package googlesim

import (
	"net/http"
	"slices"
	"strconv"

	"github.com/authgate/authgate/sandbox/fault"
	"github.com/authgate/authgate/sandbox/oauthcore"
)

// Google APIs answer errors in two envelopes (reference §2.4). Field order is
// kept as captured: legacy bodies start with "errors", new ones with "code".

type legacyItem struct {
	Domain       string `json:"domain"`
	Reason       string `json:"reason"`
	Message      string `json:"message"`
	LocationType string `json:"locationType,omitempty"`
	Location     string `json:"location,omitempty"`
}

type legacyBody struct {
	Errors  []legacyItem `json:"errors"`
	Code    int          `json:"code"`
	Message string       `json:"message"`
}

type modernItem struct {
	Message      string `json:"message"`
	Domain       string `json:"domain"`
	Reason       string `json:"reason"`
	Location     string `json:"location,omitempty"`
	LocationType string `json:"locationType,omitempty"`
}

type errorInfo struct {
	Type     string            `json:"@type"`
	Reason   string            `json:"reason"`
	Domain   string            `json:"domain"`
	Metadata map[string]string `json:"metadata"`
}

type modernBody struct {
	Code    int          `json:"code"`
	Message string       `json:"message"`
	Errors  []modernItem `json:"errors,omitempty"`
	Status  string       `json:"status,omitempty"`
	Details []errorInfo  `json:"details,omitempty"`
}

type envelope[T any] struct {
	Error T `json:"error"`
}

func legacyError(code int, domain, reason, message string) envelope[legacyBody] {
	return envelope[legacyBody]{Error: legacyBody{Errors: []legacyItem{{Domain: domain, Reason: reason, Message: message}}, Code: code, Message: message}}
}

func legacyParamError(code int, reason, message, param string) envelope[legacyBody] {
	return envelope[legacyBody]{Error: legacyBody{Errors: []legacyItem{{Domain: "global", Reason: reason, Message: message, LocationType: "parameter", Location: param}}, Code: code, Message: message}}
}

// invalidCredentials is the observed Drive 401 for an expired or unknown token.
var invalidCredentials = envelope[modernBody]{Error: modernBody{
	Code:    401,
	Message: "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
	Errors:  []modernItem{{Message: "Invalid Credentials", Domain: "global", Reason: "authError", Location: "Authorization", LocationType: "header"}},
	Status:  "UNAUTHENTICATED",
}}

func credentialsMissing(m apiMethod) envelope[modernBody] {
	return envelope[modernBody]{Error: modernBody{
		Code:    401,
		Message: "Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
		Errors:  []modernItem{{Message: "Login Required.", Domain: "global", Reason: "required", Location: "Authorization", LocationType: "header"}},
		Status:  "UNAUTHENTICATED",
		Details: []errorInfo{{Type: "type.googleapis.com/google.rpc.ErrorInfo", Reason: "CREDENTIALS_MISSING", Domain: "googleapis.com", Metadata: map[string]string{"method": m.ID, "service": m.Service}}},
	}}
}

func insufficientScopes(m apiMethod) envelope[modernBody] {
	return envelope[modernBody]{Error: modernBody{
		Code:    403,
		Message: "Request had insufficient authentication scopes.",
		Errors:  []modernItem{{Message: "Insufficient Permission", Domain: "global", Reason: "insufficientPermissions"}},
		Status:  "PERMISSION_DENIED",
		Details: []errorInfo{{Type: "type.googleapis.com/google.rpc.ErrorInfo", Reason: "ACCESS_TOKEN_SCOPE_INSUFFICIENT", Domain: "googleapis.com", Metadata: map[string]string{"method": m.ID, "service": m.Service}}},
	}}
}

// rpcError is the generic googleapis v1 shape the Docs API uses (inferred
// for Docs: no Docs-specific capture exists, reference §2.5).
func rpcError(code int, status, message string) envelope[modernBody] {
	return envelope[modernBody]{Error: modernBody{Code: code, Message: message, Status: status}}
}

// apiError writes a Google API error body. Google pretty-prints unless the
// request asked for prettyPrint=false; indent picks the style for that case.
func (s *Sim) apiError(w http.ResponseWriter, status int, body any, indent string) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=UTF-8")
	h.Set("Vary", "Origin, X-Origin")
	h.Set("Server", "ESF")
	oauthcore.SetDate(w, s.providerNow())
	oauthcore.WriteJSON(w, status, body, indent)
}

func (s *Sim) apiRateLimited(w http.ResponseWriter, r *http.Request, d fault.Decision) {
	if d.RateStatus == http.StatusForbidden {
		s.apiError(w, http.StatusForbidden, legacyError(403, "usageLimits", "userRateLimitExceeded", "User Rate Limit Exceeded"), legacyIndent(r))
		return
	}
	w.Header().Set("Retry-After", strconv.Itoa(d.RetryAfter))
	s.apiError(w, http.StatusTooManyRequests, legacyError(429, "usageLimits", "rateLimitExceeded", "Rate Limit Exceeded"), legacyIndent(r))
}

// legacyIndent is how Drive's older front end prints legacy-only error
// bodies: one space, or compact when the client asked for prettyPrint=false.
func legacyIndent(r *http.Request) string {
	if r.URL.Query().Get("prettyPrint") == "false" {
		return ""
	}
	return " "
}

// apiMethod is one API method: its RPC name (for ErrorInfo) and the scopes
// it accepts (any one suffices; reference §2.1).
type apiMethod struct {
	ID, Service string
	Scopes      []string
	Docs        bool
}

// caller is an authenticated API caller.
type caller struct {
	oauthcore.Access
	Account *Account
	indent  string
	docsAPI bool // called through the Docs API
}

func (c *caller) has(scopes ...string) bool {
	for _, sc := range scopes {
		if slices.Contains(c.Scopes, sc) {
			return true
		}
	}
	return false
}

// authorize checks token, faults, admin policy and scopes for an API call.
// It reports false after answering the request itself.
func (s *Sim) apiAuth(w http.ResponseWriter, r *http.Request, m apiMethod) (*caller, bool) {
	s.core.CountAPI()
	indent := "  "
	if r.URL.Query().Get("prettyPrint") == "false" {
		indent = ""
	}
	tok := oauthcore.BearerToken(r)
	if tok == "" {
		tok = r.URL.Query().Get("access_token")
	}
	if tok == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="https://accounts.google.com/"`)
		s.apiError(w, http.StatusUnauthorized, credentialsMissing(m), indent)
		return nil, false
	}
	a, err := s.core.LookupAccess(tok)
	if err != nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="https://accounts.google.com/", error="invalid_token"`)
		s.apiError(w, http.StatusUnauthorized, invalidCredentials, indent)
		return nil, false
	}
	acct := s.accountBySub(a.AccountID)
	if s.requestFaults(w, r, acct.Email, fault.TargetAPI) {
		return nil, false
	}
	if s.faults.AdminBlocked(Provider, acct.Email, acct.Domain) {
		s.apiError(w, http.StatusForbidden, legacyError(403, "global", "domainPolicy", "The domain administrators have disabled Drive apps."), legacyIndent(r))
		return nil, false
	}
	c := &caller{Access: a, Account: acct, indent: indent, docsAPI: m.Docs}
	if !c.has(m.Scopes...) {
		s.apiError(w, http.StatusForbidden, insufficientScopes(m), indent)
		return nil, false
	}
	return c, true
}

// writeOK writes a successful API response.
func (s *Sim) writeOK(w http.ResponseWriter, c *caller, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=UTF-8")
	h.Set("Vary", "Origin, X-Origin")
	h.Set("Server", "ESF")
	oauthcore.SetDate(w, s.providerNow())
	oauthcore.WriteJSON(w, status, v, c.indent)
}
