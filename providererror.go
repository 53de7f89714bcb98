package authgate

import (
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// ProviderOperation is what was being attempted when a provider answered.
type ProviderOperation string

const (
	ProviderOpAuthorize    ProviderOperation = "authorize"
	ProviderOpCodeExchange ProviderOperation = "code_exchange"
	ProviderOpRefresh      ProviderOperation = "refresh"
	ProviderOpAPI          ProviderOperation = "api"
	ProviderOpRevoke       ProviderOperation = "revoke"
)

// Valid reports whether op is known.
func (op ProviderOperation) Valid() bool {
	switch op {
	case ProviderOpAuthorize, ProviderOpCodeExchange, ProviderOpRefresh, ProviderOpAPI, ProviderOpRevoke:
		return true
	}
	return false
}

// MaxProviderRetryAfter caps a provider's Retry-After: a far-future date or a
// huge number must not overflow the arithmetic downstream (it once surfaced
// as retry_after: -9223372035), and no provider means "come back next year".
const MaxProviderRetryAfter = 24 * time.Hour

// ProviderResponse is one provider response as it came off the wire: what
// ParseProviderError reads.
type ProviderResponse struct {
	Provider  string
	Operation ProviderOperation
	// Status is the HTTP status; 0 means no response arrived.
	Status int
	Header http.Header
	Body   []byte
	// Now resolves a Retry-After given as an HTTP date (zero: the wall clock).
	Now time.Time
}

// MaxProviderErrorBody caps the copy of a body a ProviderError keeps.
const MaxProviderErrorBody = 8 << 10

// ProviderError is one failed provider response, parsed once, in the spirit
// of oauth2.RetrieveError: every shape the providers answer in (RFC 6749
// token errors, RFC 6750 challenges, Google's two API envelopes, Notion's
// envelope, Slack's HTTP-200 {"ok":false}) lands in one set of fields. The
// broker, the refresher and the connectors make it with ParseProviderError;
// internal/classify reads nothing else. It lives in the root package because
// the public connectors return it and must not import internal/.
//
// Error() names the provider, operation, status and codes — never the body,
// which could echo a token.
type ProviderError struct {
	Provider  string
	Operation ProviderOperation
	Status    int // 0: no response (see Cause)
	// RetryAfter is the provider's Retry-After, when it sent one.
	RetryAfter    time.Duration
	HasRetryAfter bool
	// HTML is a body that is a web page: a proxy, WAF or captive portal
	// answered, not the provider's API. It is weak evidence.
	HTML bool

	// RFC 6749 §4.1.2.1 / §5.2 (also Google's token endpoint and callbacks).
	OAuthError       string
	OAuthDescription string
	OAuthSubtype     string // Google's error_subtype (invalid_rapt)
	OAuthScope       string
	// RFC 6750 WWW-Authenticate: Bearer error="…", scope="…".
	BearerError string
	BearerScope string

	// Google APIs: the legacy errors[].reason list, google.rpc.Status and
	// ErrorInfo details.
	GoogleReasons   []string
	GoogleStatus    string
	GoogleErrorInfo []GoogleErrorInfo

	// Notion's {"object":"error","code":…}.
	NotionCode string

	// Slack's {"ok":false,"error":…,"needed":…,"provided":…}.
	SlackError    string
	SlackNeeded   string
	SlackProvided string

	// Message is the provider's human-readable message (capped).
	Message   string
	RequestID string
	// Body is a capped copy of what came back, for diagnostics only.
	Body []byte
	// Cause is the transport error when no response arrived.
	Cause error
}

// GoogleErrorInfo is google.rpc.ErrorInfo.
type GoogleErrorInfo struct {
	Reason   string
	Domain   string
	Metadata map[string]string
}

// Error summarises the failure without the body.
func (e *ProviderError) Error() string {
	if e.Status == 0 && e.Cause != nil {
		return fmt.Sprintf("%s %s: no response: %v", e.Provider, e.Operation, e.Cause)
	}
	s := fmt.Sprintf("%s %s: HTTP %d", e.Provider, e.Operation, e.Status)
	if c := e.Code(); c != "" {
		s += " " + c
	}
	if e.RequestID != "" {
		s += " (request " + e.RequestID + ")"
	}
	return s
}

// Unwrap returns the transport error, if any.
func (e *ProviderError) Unwrap() error { return e.Cause }

// Code is the most specific code the provider gave: Slack's error, Notion's
// code, the OAuth error, the Bearer challenge's error, then the first Google
// reason. At an API the Bearer challenge comes before the body's OAuth-style
// error: RFC 6750 makes the challenge the resource server's verdict on the
// token, and Google's userinfo pairs error="invalid_token" with a body
// saying "invalid_request", which would label a revoked token a bad request.
func (e *ProviderError) Code() string {
	order := []string{e.SlackError, e.NotionCode, e.OAuthError, e.BearerError}
	if e.Operation == ProviderOpAPI {
		order[2], order[3] = e.BearerError, e.OAuthError
	}
	for _, c := range order {
		if c != "" {
			return c
		}
	}
	for _, r := range e.Reasons() {
		if r != "" {
			return r
		}
	}
	return e.GoogleStatus
}

// Description is what the event log keeps: the provider's description or
// message, at most 300 bytes, never the body itself.
func (e *ProviderError) Description() string {
	d := e.OAuthDescription
	if d == "" {
		d = e.Message
	}
	if d == "" && e.Status == 0 && e.Cause != nil {
		d = "no response: " + e.Cause.Error()
	}
	return capString(d, 300)
}

// Failed reports whether the response is an error even if its status says
// success: Slack answers failures with HTTP 200 and "ok": false, and a token
// endpoint may answer 200 with an OAuth error body.
func (e *ProviderError) Failed() bool {
	return e.Status == 0 || e.Status >= 400 || e.SlackError != "" || e.OAuthError != ""
}

// Reasons lists Google's legacy reasons, then ErrorInfo reasons.
func (e *ProviderError) Reasons() []string {
	out := append([]string(nil), e.GoogleReasons...)
	for _, d := range e.GoogleErrorInfo {
		out = append(out, d.Reason)
	}
	return out
}

// ParseProviderError is the one parser of provider responses: the classifier
// (internal/classify), the broker, the refresher and the connectors all call
// it, so every shape lands in the same fields once.
func ParseProviderError(in ProviderResponse) *ProviderError {
	e := &ProviderError{Provider: in.Provider, Operation: in.Operation, Status: in.Status}
	h := in.Header
	if h == nil {
		h = http.Header{}
	}
	now := in.Now
	if now.IsZero() {
		now = time.Now() // only for a Retry-After given as an HTTP date
	}
	e.RetryAfter, e.HasRetryAfter = retryAfter(h, now)
	e.RequestID = requestID(h)
	body := in.Body
	if len(body) > MaxProviderErrorBody {
		body = body[:MaxProviderErrorBody]
	}
	e.Body = append([]byte(nil), body...)
	e.HTML = isHTML(h, in.Body)
	if ch := h.Get("WWW-Authenticate"); ch != "" {
		params := map[string]string{}
		for _, m := range challengeParam.FindAllStringSubmatch(ch, -1) {
			params[strings.ToLower(m[1])] = m[2]
		}
		e.BearerError, e.BearerScope = params["error"], params["scope"]
		if e.OAuthDescription == "" {
			e.OAuthDescription = capString(params["error_description"], 300)
		}
	}
	if e.HTML {
		return e
	}
	var raw struct {
		// "error" is a string in RFC 6749 and Slack bodies and an object in
		// Google API bodies.
		Error       json.RawMessage `json:"error"`
		Description string          `json:"error_description"`
		Subtype     string          `json:"error_subtype"`
		Scope       string          `json:"scope"`
		OK          *bool           `json:"ok"`
		Needed      string          `json:"needed"`
		Provided    string          `json:"provided"`
		Object      string          `json:"object"`
		Code        json.RawMessage `json:"code"`
		Message     string          `json:"message"`
		RequestID   string          `json:"request_id"`
	}
	if json.Unmarshal(in.Body, &raw) != nil {
		return e
	}
	var code string
	if json.Unmarshal(raw.Error, &code) == nil && code != "" {
		if raw.OK != nil && !*raw.OK {
			e.SlackError, e.SlackNeeded, e.SlackProvided = code, raw.Needed, raw.Provided
		} else {
			e.OAuthError, e.OAuthDescription, e.OAuthSubtype, e.OAuthScope = code, capString(raw.Description, 300), raw.Subtype, raw.Scope
		}
	} else if len(raw.Error) > 0 && raw.Error[0] == '{' {
		e.parseGoogle(raw.Error)
	}
	if raw.Object == "error" {
		_ = json.Unmarshal(raw.Code, &e.NotionCode)
		if e.RequestID == "" {
			e.RequestID = raw.RequestID
		}
	}
	if e.Message == "" {
		e.Message = capString(raw.Message, 300)
	}
	return e
}

func (e *ProviderError) parseGoogle(b json.RawMessage) {
	var g struct {
		Code    int    `json:"code"`
		Status  string `json:"status"`
		Message string `json:"message"`
		Errors  []struct {
			Reason string `json:"reason"`
		} `json:"errors"`
		Details []struct {
			Type     string            `json:"@type"`
			Reason   string            `json:"reason"`
			Domain   string            `json:"domain"`
			Metadata map[string]string `json:"metadata"`
		} `json:"details"`
	}
	if json.Unmarshal(b, &g) != nil {
		return
	}
	if e.Status == 0 {
		e.Status = g.Code
	}
	e.GoogleStatus, e.Message = g.Status, capString(g.Message, 300)
	for _, r := range g.Errors {
		e.GoogleReasons = append(e.GoogleReasons, r.Reason)
	}
	for _, d := range g.Details {
		if strings.HasSuffix(d.Type, "google.rpc.ErrorInfo") {
			e.GoogleErrorInfo = append(e.GoogleErrorInfo, GoogleErrorInfo{Reason: d.Reason, Domain: d.Domain, Metadata: d.Metadata})
		}
	}
}

// ProviderErrorFromCallback parses the error parameters of an authorization response
// (RFC 6749 §4.1.2.1): error, error_description, error_uri, and Google's
// error_subtype. It returns nil when the callback carries no error.
func ProviderErrorFromCallback(provider string, q url.Values) *ProviderError {
	code := q.Get("error")
	if code == "" {
		return nil
	}
	return &ProviderError{Provider: provider, Operation: ProviderOpAuthorize, OAuthError: capString(code, 100),
		OAuthDescription: capString(q.Get("error_description"), 300), OAuthSubtype: capString(q.Get("error_subtype"), 100)}
}

var challengeParam = regexp.MustCompile(`(\w+)="([^"]*)"`)

var requestIDHeaders = []string{"X-Request-Id", "X-Notion-Request-Id", "X-Slack-Req-Id", "X-Goog-Request-Id", "Request-Id"}

func requestID(h http.Header) string {
	for _, k := range requestIDHeaders {
		if v := h.Get(k); v != "" {
			return capString(v, 100)
		}
	}
	return ""
}

func isHTML(h http.Header, body []byte) bool {
	if mt, _, err := mime.ParseMediaType(h.Get("Content-Type")); err == nil && (mt == "text/html" || mt == "application/xhtml+xml") {
		return true
	}
	b := strings.ToLower(strings.TrimSpace(string(body[:min(len(body), 64)])))
	return strings.HasPrefix(b, "<!doctype html") || strings.HasPrefix(b, "<html")
}

// retryAfter reads Retry-After as seconds or an HTTP date.
func retryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
		return time.Duration(min(n, int64(MaxProviderRetryAfter/time.Second))) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return min(max(t.Sub(now), 0), MaxProviderRetryAfter), true
	}
	return 0, false
}

func capString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + "…"
}
