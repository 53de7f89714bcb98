// Package classify maps a provider's error response — provider, operation,
// HTTP status, headers and body — to exactly one authgate.Class, the policy
// that goes with it and one sentence for the end user. Rules follow
// shared/reference/providers.md §8: bodies are parsed, never compared as
// strings, and descriptions are consulted only where Google's own codes are
// ambiguous (Invalid JWT, PKCE, Code was already redeemed). Unknown providers
// get the RFC 6749 / 6750 rules. It must never see or return a token.
package classify

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/authgate/authgate"
)

// Operation is what was being attempted.
type Operation string

const (
	OpAuthorize    Operation = "authorize"
	OpCodeExchange Operation = "code_exchange"
	OpRefresh      Operation = "refresh"
	OpAPI          Operation = "api"
)

// Valid reports whether op is known.
func (op Operation) Valid() bool {
	switch op {
	case OpAuthorize, OpCodeExchange, OpRefresh, OpAPI:
		return true
	}
	return false
}

// Policy is what to do about a class.
type Policy string

const (
	// PolicyRetry: try again after RetryAfter (or backoff); nothing changes.
	PolicyRetry Policy = "retry"
	// PolicyRefreshThenRetry: an API rejected the access token; refresh once
	// and retry; only a failed refresh changes the credential's state.
	PolicyRefreshThenRetry Policy = "refresh_then_retry"
	// PolicyBlock: stop and ask the user (reconnect, grant, share, admin).
	PolicyBlock Policy = "block"
	// PolicyFail: a bug or misconfiguration on our side; retrying cannot help.
	PolicyFail Policy = "fail"
)

// Input is one failed provider response.
type Input struct {
	Provider  string
	Operation Operation
	Status    int
	Header    http.Header
	Body      []byte
	// Now resolves a Retry-After given as an HTTP date (zero: the wall clock).
	Now time.Time
}

// Result is the classification.
type Result struct {
	Class         authgate.Class `json:"class"`
	Policy        Policy         `json:"policy"`
	Message       string         `json:"message"`
	RetryAfter    time.Duration  `json:"-"`
	MissingScopes []string       `json:"missing_scopes,omitempty"`
	// ErrorCode is the provider's own error code or reason, for logs.
	ErrorCode string `json:"error_code,omitempty"`
}

// Classify returns exactly one class for a provider error.
func Classify(in Input) Result {
	var r Result
	switch in.Provider {
	case "google":
		r = google(in)
	case "notion":
		r = notion(in)
	case "slack":
		r = slack(in)
	default:
		r = generic(in)
	}
	if r.Class == "" {
		r = byStatus(in)
	}
	now := in.Now
	if now.IsZero() {
		now = time.Now() // only for a Retry-After given as an HTTP date
	}
	if ra, ok := retryAfter(in.Header, now); ok && (r.Class == authgate.ClassRateLimited || r.Class == authgate.ClassTransient) {
		r.RetryAfter = ra
	}
	r.Policy = policyFor(r.Class, in.Operation)
	r.Message = message(r.Class, in.Provider, r.MissingScopes)
	return r
}

func policyFor(c authgate.Class, op Operation) Policy {
	switch c {
	case authgate.ClassRateLimited, authgate.ClassTransient:
		return PolicyRetry
	case authgate.ClassReauthRequired:
		if op == OpAPI {
			return PolicyRefreshThenRetry
		}
		return PolicyBlock
	case authgate.ClassInsufficientScope, authgate.ClassAdminPolicy, authgate.ClassNotSharedOrNotFound:
		return PolicyBlock
	}
	return PolicyFail
}

func result(c authgate.Class, code string) Result { return Result{Class: c, ErrorCode: code} }

// byStatus is the last resort when the body says nothing useful.
func byStatus(in Input) Result {
	switch {
	case in.Status == http.StatusTooManyRequests:
		return result(authgate.ClassRateLimited, "")
	case in.Status >= 500:
		return result(authgate.ClassTransient, "")
	case in.Status == http.StatusUnauthorized:
		return result(authgate.ClassReauthRequired, "")
	case in.Status == http.StatusForbidden:
		return result(authgate.ClassInsufficientScope, "")
	case in.Status == http.StatusNotFound:
		return result(authgate.ClassNotSharedOrNotFound, "")
	}
	return result(authgate.ClassInvalidRequest, "")
}

type oauthErr struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
	Subtype     string `json:"error_subtype"`
}

func parseOAuth(b []byte) (oauthErr, bool) {
	var e oauthErr
	if json.Unmarshal(b, &e) != nil || e.Error == "" {
		return e, false
	}
	return e, true
}

// oauthCode classifies an RFC 6749 error code from a token endpoint.
func oauthCode(code string, op Operation) authgate.Class {
	switch code {
	case "invalid_grant":
		if op == OpCodeExchange {
			return authgate.ClassInvalidRequest
		}
		return authgate.ClassReauthRequired
	case "invalid_client", "unauthorized_client", "invalid_scope", "unsupported_grant_type", "redirect_uri_mismatch":
		return authgate.ClassClientMisconfigured
	case "access_denied", "consent_required", "login_required", "interaction_required":
		return authgate.ClassReauthRequired
	case "temporarily_unavailable", "server_error":
		return authgate.ClassTransient
	case "invalid_request", "unsupported_response_type", "invalid_state":
		return authgate.ClassInvalidRequest
	case "insufficient_scope":
		return authgate.ClassInsufficientScope
	case "invalid_token":
		return authgate.ClassReauthRequired
	}
	return ""
}

func google(in Input) Result {
	if in.Operation != OpAPI {
		e, ok := parseOAuth(in.Body)
		if !ok {
			return Result{}
		}
		d := e.Description
		switch {
		case e.Error == "invalid_grant" && strings.HasPrefix(d, "Invalid JWT"):
			return result(authgate.ClassClientMisconfigured, e.Error) // clock or key trouble, not a revoked credential
		case e.Error == "invalid_grant" && (strings.Contains(d, "code verifier") || strings.Contains(d, "verifier is not needed")):
			return result(authgate.ClassClientMisconfigured, e.Error)
		case e.Error == "invalid_grant" && d == "Code was already redeemed.":
			return result(authgate.ClassInvalidRequest, e.Error)
		case e.Error == "invalid_grant" && e.Subtype == "invalid_rapt":
			return result(authgate.ClassReauthRequired, "invalid_rapt")
		case e.Error == "invalid_grant" && in.Operation == OpCodeExchange:
			return result(authgate.ClassInvalidRequest, e.Error)
		case e.Error == "invalid_grant":
			return result(authgate.ClassReauthRequired, e.Error)
		case e.Error == "admin_policy_enforced" || e.Error == "policy_enforced":
			return result(authgate.ClassAdminPolicy, e.Error)
		case e.Error == "org_internal" || e.Error == "deleted_client" || e.Error == "disallowed_useragent":
			return result(authgate.ClassClientMisconfigured, e.Error)
		case e.Error == "rate_limit_exceeded":
			return result(authgate.ClassRateLimited, e.Error)
		}
		if c := oauthCode(e.Error, in.Operation); c != "" {
			return result(c, e.Error)
		}
		return Result{}
	}
	var body struct {
		Error struct {
			Code    int    `json:"code"`
			Status  string `json:"status"`
			Message string `json:"message"`
			Errors  []struct {
				Reason string `json:"reason"`
			} `json:"errors"`
			Details []struct {
				Type   string `json:"@type"`
				Reason string `json:"reason"`
			} `json:"details"`
		} `json:"error"`
	}
	if json.Unmarshal(in.Body, &body) != nil {
		return Result{}
	}
	var reasons []string
	for _, e := range body.Error.Errors {
		reasons = append(reasons, e.Reason)
	}
	for _, d := range body.Error.Details {
		reasons = append(reasons, d.Reason)
	}
	has := func(rs ...string) bool {
		return slices.ContainsFunc(rs, func(r string) bool { return slices.Contains(reasons, r) })
	}
	status := in.Status
	if status == 0 {
		status = body.Error.Code
	}
	switch {
	case has("CREDENTIALS_MISSING"):
		return result(authgate.ClassInvalidRequest, "CREDENTIALS_MISSING") // we sent no token: our bug
	case status == 401:
		return result(authgate.ClassReauthRequired, firstOr(reasons, "authError"))
	case has("insufficientPermissions", "ACCESS_TOKEN_SCOPE_INSUFFICIENT"):
		return result(authgate.ClassInsufficientScope, "insufficientPermissions")
	case has("domainPolicy"):
		return result(authgate.ClassAdminPolicy, "domainPolicy")
	case has("rateLimitExceeded", "userRateLimitExceeded", "dailyLimitExceeded", "RATE_LIMIT_EXCEEDED", "sharingRateLimitExceeded") || body.Error.Status == "RESOURCE_EXHAUSTED":
		return result(authgate.ClassRateLimited, firstOr(reasons, "RESOURCE_EXHAUSTED"))
	case has("storageQuotaExceeded"):
		return result(authgate.ClassInvalidRequest, "storageQuotaExceeded")
	case has("appNotAuthorizedToFile", "insufficientFilePermissions", "notFound") || status == 404 || body.Error.Status == "PERMISSION_DENIED":
		return result(authgate.ClassNotSharedOrNotFound, firstOr(reasons, body.Error.Status))
	case status >= 500:
		return result(authgate.ClassTransient, firstOr(reasons, "backendError"))
	}
	return Result{}
}

func firstOr(s []string, def string) string {
	if len(s) > 0 && s[0] != "" {
		return s[0]
	}
	return def
}

func notion(in Input) Result {
	var e struct {
		Object string `json:"object"`
		Code   string `json:"code"`
	}
	if json.Unmarshal(in.Body, &e) != nil || e.Code == "" {
		if oe, ok := parseOAuth(in.Body); ok {
			e.Code = oe.Error
		} else {
			return Result{}
		}
	}
	switch e.Code {
	case "unauthorized":
		return result(authgate.ClassReauthRequired, e.Code)
	case "restricted_resource":
		return result(authgate.ClassInsufficientScope, e.Code)
	case "object_not_found":
		return result(authgate.ClassNotSharedOrNotFound, e.Code)
	case "rate_limited", "service_overload":
		return result(authgate.ClassRateLimited, e.Code)
	case "conflict_error", "internal_server_error", "service_unavailable", "database_connection_unavailable", "bad_gateway", "gateway_timeout":
		return result(authgate.ClassTransient, e.Code)
	case "validation_error", "invalid_json", "invalid_request", "invalid_request_url", "missing_version":
		return result(authgate.ClassInvalidRequest, e.Code)
	case "invalid_grant":
		if in.Operation == OpRefresh {
			return result(authgate.ClassReauthRequired, e.Code)
		}
		return result(authgate.ClassInvalidRequest, e.Code)
	case "invalid_client":
		return result(authgate.ClassClientMisconfigured, e.Code)
	}
	return Result{}
}

func slack(in Input) Result {
	var e struct {
		OK       *bool  `json:"ok"`
		Error    string `json:"error"`
		Needed   string `json:"needed"`
		Provided string `json:"provided"`
	}
	if json.Unmarshal(in.Body, &e) != nil || e.Error == "" {
		return Result{}
	}
	switch e.Error {
	case "invalid_auth", "token_revoked", "account_inactive", "token_expired", "invalid_refresh_token":
		return result(authgate.ClassReauthRequired, e.Error)
	case "missing_scope":
		r := result(authgate.ClassInsufficientScope, e.Error)
		r.MissingScopes = splitList(e.Needed)
		return r
	case "not_authed", "invalid_code", "invalid_arguments", "no_text", "invalid_grant_type":
		return result(authgate.ClassInvalidRequest, e.Error)
	case "ekm_access_denied", "org_login_required", "no_permission":
		return result(authgate.ClassAdminPolicy, e.Error)
	case "channel_not_found", "not_in_channel":
		return result(authgate.ClassNotSharedOrNotFound, e.Error)
	case "ratelimited", "rate_limited":
		return result(authgate.ClassRateLimited, e.Error)
	case "invalid_client_id", "bad_client_secret", "bad_redirect_uri", "oauth_authorization_url_mismatch":
		return result(authgate.ClassClientMisconfigured, e.Error)
	case "fatal_error", "internal_error", "service_unavailable", "request_timeout":
		return result(authgate.ClassTransient, e.Error)
	}
	return Result{}
}

var challengeParam = regexp.MustCompile(`(\w+)="([^"]*)"`)

func generic(in Input) Result {
	if in.Operation == OpAPI {
		if h := in.Header.Get("WWW-Authenticate"); h != "" {
			params := map[string]string{}
			for _, m := range challengeParam.FindAllStringSubmatch(h, -1) {
				params[m[1]] = m[2]
			}
			switch params["error"] {
			case "invalid_token":
				return result(authgate.ClassReauthRequired, "invalid_token")
			case "insufficient_scope":
				r := result(authgate.ClassInsufficientScope, "insufficient_scope")
				r.MissingScopes = strings.Fields(params["scope"])
				return r
			case "invalid_request":
				return result(authgate.ClassInvalidRequest, "invalid_request")
			}
		}
	}
	e, ok := parseOAuth(in.Body)
	if !ok {
		return Result{}
	}
	// Hydra's "multiple concurrent requests" refresh error: another
	// refresher probably won; re-read and retry.
	if e.Error == "invalid_request" && in.Operation == OpRefresh && strings.Contains(e.Description, "concurrent") {
		return result(authgate.ClassTransient, e.Error)
	}
	if c := oauthCode(e.Error, in.Operation); c != "" {
		r := result(c, e.Error)
		if c == authgate.ClassInsufficientScope {
			var s struct {
				Scope string `json:"scope"`
			}
			_ = json.Unmarshal(in.Body, &s)
			r.MissingScopes = strings.Fields(s.Scope)
		}
		return r
	}
	return Result{}
}

func splitList(s string) []string {
	var out []string
	for _, x := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' }) {
		out = append(out, x)
	}
	return out
}

// retryAfter reads Retry-After as seconds or an HTTP date.
func retryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
		return time.Duration(min(n, int64(MaxRetryAfter/time.Second))) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return min(max(t.Sub(now), 0), MaxRetryAfter), true
	}
	return 0, false
}

// MaxRetryAfter caps a provider's Retry-After: a far-future date or a huge
// number must not overflow the arithmetic downstream (it once surfaced as
// retry_after: -9223372035), and no provider means "come back next year".
const MaxRetryAfter = 24 * time.Hour

var displayNames = map[string]string{"google": "Google", "notion": "Notion", "slack": "Slack"}

func display(provider string) string {
	if d, ok := displayNames[provider]; ok {
		return d
	}
	if provider == "" {
		return "the provider"
	}
	return provider
}

// message is the sentence shown to the end user for a class.
func message(c authgate.Class, provider string, missing []string) string {
	p := display(provider)
	switch c {
	case authgate.ClassReauthRequired:
		return fmt.Sprintf("The connection to %s is no longer valid. Reconnect %s to continue.", p, p)
	case authgate.ClassInsufficientScope:
		if len(missing) > 0 {
			return fmt.Sprintf("%s did not grant a permission this needs (%s). Reconnect %s and allow it.", p, strings.Join(missing, ", "), p)
		}
		return fmt.Sprintf("%s did not grant a permission this needs. Reconnect %s and allow every requested permission.", p, p)
	case authgate.ClassAdminPolicy:
		return fmt.Sprintf("Your organization's administrator blocks this app or permission in %s. Ask your admin to allow it.", p)
	case authgate.ClassNotSharedOrNotFound:
		return fmt.Sprintf("%s says the item does not exist or is not shared with this app. Share it with the app, or check the link.", p)
	case authgate.ClassRateLimited:
		return fmt.Sprintf("%s is limiting how fast we can call it. This will be retried automatically.", p)
	case authgate.ClassTransient:
		return fmt.Sprintf("%s had a temporary problem. This will be retried automatically.", p)
	case authgate.ClassClientMisconfigured:
		return fmt.Sprintf("The app's %s connection is misconfigured. Contact the app's support; reconnecting will not help.", p)
	}
	return fmt.Sprintf("The request to %s was not valid. Contact the app's support if this persists.", p)
}
