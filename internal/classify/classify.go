// Package classify maps a provider's error response — provider, operation,
// HTTP status, headers and body — to exactly one authgate.Class, the policy
// that goes with it and one sentence for the end user saying the fix. Parse
// turns a response into one typed *ProviderError (the only parser of
// provider error bodies); Classify reads only that. Bodies are parsed, never
// compared as strings, and descriptions are consulted only where Google's own codes are
// ambiguous (Invalid JWT, PKCE, Code was already redeemed). Unknown providers
// get the RFC 6749 / 6750 rules. It must never see or return a token.
package classify

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/authgate/authgate"
)

// Operation is what was being attempted (authgate.ProviderOperation).
type Operation = authgate.ProviderOperation

const (
	OpAuthorize    = authgate.ProviderOpAuthorize
	OpCodeExchange = authgate.ProviderOpCodeExchange
	OpRefresh      = authgate.ProviderOpRefresh
	OpAPI          = authgate.ProviderOpAPI
	OpRevoke       = authgate.ProviderOpRevoke
)

// The parsed error lives in the root package (the public connectors return
// it and must not import internal/); these names keep classify's vocabulary.
type (
	// Input is one provider response as it came off the wire.
	Input = authgate.ProviderResponse
	// ProviderError is one failed provider response, parsed once.
	ProviderError = authgate.ProviderError
	// ErrorInfo is google.rpc.ErrorInfo.
	ErrorInfo = authgate.GoogleErrorInfo
)

// MaxBody caps the copy of a body a ProviderError keeps.
const MaxBody = authgate.MaxProviderErrorBody

// Parse is the one parser of provider responses (authgate.ParseProviderError).
func Parse(in Input) *ProviderError { return authgate.ParseProviderError(in) }

// FromCallback parses the error parameters of an authorization response; nil
// when the callback carries no error.
func FromCallback(provider string, q url.Values) *ProviderError {
	return authgate.ProviderErrorFromCallback(provider, q)
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

// Result is the classification.
type Result struct {
	Class         authgate.Class
	Policy        Policy
	Message       string
	RetryAfter    time.Duration
	MissingScopes []string
	// ErrorCode is the provider's own error code or reason, for logs.
	ErrorCode string
}

// Classify returns exactly one class for a parsed provider error. It reads
// nothing but e. Weak evidence — a bare status, an HTML page from a proxy —
// never yields a class that changes a credential's state.
func Classify(e *ProviderError) Result {
	var r Result
	switch e.Provider {
	case "google":
		r = google(e)
	case "notion":
		r = notion(e)
	case "slack":
		r = slack(e)
	}
	if r.Class == "" {
		r = generic(e)
	}
	if r.Class == "" {
		r = byStatus(e)
	}
	// A 429 is the provider asking us to slow down, whatever words the body
	// uses (temporarily_unavailable, server_error): rate_limited, with its
	// Retry-After.
	if e.Status == http.StatusTooManyRequests && r.Class == authgate.ClassTransient {
		r.Class = authgate.ClassRateLimited
	}
	if e.HasRetryAfter && (r.Class == authgate.ClassRateLimited || r.Class == authgate.ClassTransient) {
		r.RetryAfter = e.RetryAfter
	}
	r.Policy = policyFor(r.Class, e.Operation)
	r.Message = message(r, e)
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

func tokenEndpoint(op Operation) bool { return op == OpCodeExchange || op == OpRefresh }

// byStatus is the last resort when the body says nothing we recognise. It
// is where weak evidence lands, so it never answers reauth_required for a
// token endpoint nor insufficient_scope for a page.
func byStatus(e *ProviderError) Result {
	switch {
	case e.Status == 0:
		return result(authgate.ClassTransient, "")
	case e.Status == http.StatusTooManyRequests:
		return result(authgate.ClassRateLimited, "")
	case e.Status >= 500:
		return result(authgate.ClassTransient, "")
	case e.HTML && (e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden || e.Status == http.StatusProxyAuthRequired):
		// A web page where an API answer belongs: a proxy, WAF or captive
		// portal stood in the way. Nothing is known about the credential.
		return result(authgate.ClassTransient, "")
	case e.Status == http.StatusUnauthorized && tokenEndpoint(e.Operation):
		// RFC 6749 §5.2: 401 at the token endpoint means the client failed
		// to authenticate — our client id or secret, not the user's grant.
		return result(authgate.ClassClientMisconfigured, "")
	case e.Status == http.StatusForbidden && tokenEndpoint(e.Operation):
		// No OAuth error body: not the authorization server's verdict.
		return result(authgate.ClassTransient, "")
	case e.Status == http.StatusUnauthorized:
		// An API refused the access token: refresh once and retry; only a
		// failed refresh changes the credential's state.
		return result(authgate.ClassReauthRequired, "")
	case e.Status == http.StatusForbidden:
		// A bare 403 names no missing scope; reconnecting is not a known fix.
		return result(authgate.ClassTransient, "")
	case e.Status == http.StatusNotFound:
		return result(authgate.ClassNotSharedOrNotFound, "")
	}
	return result(authgate.ClassInvalidRequest, "")
}

// oauthCode classifies an RFC 6749 error code (token endpoint §5.2 or
// authorization response §4.1.2.1).
func oauthCode(code string, op Operation) authgate.Class {
	switch code {
	case "invalid_grant":
		if op == OpCodeExchange {
			return authgate.ClassInvalidRequest
		}
		return authgate.ClassReauthRequired
	case "invalid_client", "unauthorized_client", "invalid_scope", "unsupported_grant_type", "redirect_uri_mismatch", "unsupported_response_type":
		return authgate.ClassClientMisconfigured
	case "access_denied":
		if op == OpAuthorize {
			// The user declined at the consent screen: they did not grant
			// what the app asks for. Nothing about a stored credential.
			return authgate.ClassInsufficientScope
		}
		return authgate.ClassReauthRequired
	case "consent_required", "login_required", "interaction_required", "account_selection_required":
		if op == OpAuthorize {
			return authgate.ClassInsufficientScope
		}
		return authgate.ClassReauthRequired
	case "temporarily_unavailable", "server_error":
		return authgate.ClassTransient
	case "invalid_request", "invalid_state":
		return authgate.ClassInvalidRequest
	case "insufficient_scope":
		return authgate.ClassInsufficientScope
	case "invalid_token":
		return authgate.ClassReauthRequired
	}
	return ""
}

// testingModeDenial is Google's access_denied for an app in Testing whose
// user is not on the test-user list ("… has not completed the Google
// verification process … can only be accessed by developer-approved testers").
func testingModeDenial(d string) bool {
	d = strings.ToLower(d)
	return strings.Contains(d, "verification process") || strings.Contains(d, "developer-approved testers") || strings.Contains(d, "being tested")
}

func google(e *ProviderError) Result {
	if e.Operation != OpAPI {
		if e.OAuthError == "" {
			return Result{}
		}
		d := e.OAuthDescription
		switch {
		case e.OAuthError == "invalid_grant" && strings.HasPrefix(d, "Invalid JWT"):
			return result(authgate.ClassClientMisconfigured, e.OAuthError) // clock or key trouble, not a revoked credential
		case e.OAuthError == "invalid_grant" && (strings.Contains(d, "code verifier") || strings.Contains(d, "verifier is not needed")):
			return result(authgate.ClassClientMisconfigured, e.OAuthError)
		case e.OAuthError == "invalid_grant" && d == "Code was already redeemed.":
			return result(authgate.ClassInvalidRequest, e.OAuthError)
		case e.OAuthError == "invalid_grant" && e.OAuthSubtype == "invalid_rapt":
			return result(authgate.ClassReauthRequired, "invalid_rapt")
		case e.OAuthError == "admin_policy_enforced" || e.OAuthError == "policy_enforced":
			return result(authgate.ClassAdminPolicy, e.OAuthError)
		case e.OAuthError == "org_internal" || e.OAuthError == "deleted_client" || e.OAuthError == "disallowed_useragent" || e.OAuthError == "access_not_configured":
			return result(authgate.ClassClientMisconfigured, e.OAuthError)
		case e.OAuthError == "access_denied" && testingModeDenial(d):
			return result(authgate.ClassClientMisconfigured, "unverified_app_testing")
		case e.OAuthError == "rate_limit_exceeded":
			return result(authgate.ClassRateLimited, e.OAuthError)
		}
		return Result{} // RFC 6749 rules (generic)
	}
	reasons := e.Reasons()
	has := func(rs ...string) bool {
		return slices.ContainsFunc(rs, func(r string) bool { return slices.Contains(reasons, r) })
	}
	first := func(want ...string) string {
		for _, r := range reasons {
			if slices.Contains(want, r) {
				return r
			}
		}
		return firstOr(reasons, e.GoogleStatus)
	}
	status := e.Status
	switch {
	case len(reasons) == 0 && e.GoogleStatus == "":
		return Result{} // not a Google API envelope (a proxy, a page): by status
	case has("CREDENTIALS_MISSING"):
		return result(authgate.ClassInvalidRequest, "CREDENTIALS_MISSING") // we sent no token: our bug
	case has("SERVICE_DISABLED", "accessNotConfigured", "API_KEY_INVALID", "USER_PROJECT_DENIED", "CONSUMER_INVALID", "projectNotLinked"):
		// The API is switched off (or the key is wrong) in the developer's
		// Cloud project: no user can fix it by sharing or reconnecting.
		return result(authgate.ClassClientMisconfigured, first("SERVICE_DISABLED", "accessNotConfigured", "API_KEY_INVALID", "USER_PROJECT_DENIED", "CONSUMER_INVALID", "projectNotLinked"))
	case status == 401:
		return result(authgate.ClassReauthRequired, firstOr(reasons, "authError"))
	case has("insufficientPermissions", "ACCESS_TOKEN_SCOPE_INSUFFICIENT"):
		return result(authgate.ClassInsufficientScope, "insufficientPermissions")
	case has("domainPolicy"):
		return result(authgate.ClassAdminPolicy, "domainPolicy")
	case has("rateLimitExceeded", "userRateLimitExceeded", "dailyLimitExceeded", "RATE_LIMIT_EXCEEDED", "sharingRateLimitExceeded", "RESOURCE_QUOTA_EXCEEDED", "quotaExceeded") || e.GoogleStatus == "RESOURCE_EXHAUSTED":
		return result(authgate.ClassRateLimited, first("rateLimitExceeded", "userRateLimitExceeded", "dailyLimitExceeded", "RATE_LIMIT_EXCEEDED", "sharingRateLimitExceeded", "RESOURCE_QUOTA_EXCEEDED", "quotaExceeded"))
	case has("storageQuotaExceeded"):
		return result(authgate.ClassInvalidRequest, "storageQuotaExceeded")
	case has("appNotAuthorizedToFile", "insufficientFilePermissions", "teamDriveMembershipRequired", "notFound", "cannotShareTeamDriveTopFolderWithAnyoneOrDomains"):
		return result(authgate.ClassNotSharedOrNotFound, first("appNotAuthorizedToFile", "insufficientFilePermissions", "teamDriveMembershipRequired", "notFound"))
	case status == 404 || e.GoogleStatus == "NOT_FOUND" || e.GoogleStatus == "PERMISSION_DENIED":
		return result(authgate.ClassNotSharedOrNotFound, firstOr(reasons, e.GoogleStatus))
	case status >= 500:
		return result(authgate.ClassTransient, firstOr(reasons, "backendError"))
	case has("badRequest", "invalid", "required", "invalidParameter", "parseError") || status == 400:
		return result(authgate.ClassInvalidRequest, firstOr(reasons, e.GoogleStatus))
	}
	return Result{}
}

func firstOr(s []string, def string) string {
	if len(s) > 0 && s[0] != "" {
		return s[0]
	}
	return def
}

func notion(e *ProviderError) Result {
	code := e.NotionCode
	if code == "" {
		code = e.OAuthError
	}
	switch code {
	case "":
		return Result{}
	case "unauthorized":
		return result(authgate.ClassReauthRequired, code)
	case "restricted_resource":
		return result(authgate.ClassInsufficientScope, code)
	case "object_not_found":
		return result(authgate.ClassNotSharedOrNotFound, code)
	case "rate_limited", "service_overload":
		return result(authgate.ClassRateLimited, code)
	case "conflict_error", "internal_server_error", "service_unavailable", "database_connection_unavailable", "bad_gateway", "gateway_timeout":
		return result(authgate.ClassTransient, code)
	case "validation_error", "invalid_json", "invalid_request", "invalid_request_url", "missing_version":
		return result(authgate.ClassInvalidRequest, code)
	case "invalid_grant":
		if e.Operation == OpRefresh {
			return result(authgate.ClassReauthRequired, code)
		}
		return result(authgate.ClassInvalidRequest, code)
	case "invalid_client":
		return result(authgate.ClassClientMisconfigured, code)
	}
	return Result{}
}

func slack(e *ProviderError) Result {
	switch e.SlackError {
	case "":
		return Result{}
	case "invalid_auth", "token_revoked", "account_inactive", "token_expired", "invalid_refresh_token":
		return result(authgate.ClassReauthRequired, e.SlackError)
	case "missing_scope":
		r := result(authgate.ClassInsufficientScope, e.SlackError)
		r.MissingScopes = splitList(e.SlackNeeded)
		return r
	case "not_authed", "invalid_code", "invalid_arguments", "no_text", "invalid_grant_type":
		return result(authgate.ClassInvalidRequest, e.SlackError)
	case "ekm_access_denied", "org_login_required", "no_permission":
		return result(authgate.ClassAdminPolicy, e.SlackError)
	case "channel_not_found", "not_in_channel":
		return result(authgate.ClassNotSharedOrNotFound, e.SlackError)
	case "ratelimited", "rate_limited":
		return result(authgate.ClassRateLimited, e.SlackError)
	case "invalid_client_id", "bad_client_secret", "bad_redirect_uri", "oauth_authorization_url_mismatch":
		return result(authgate.ClassClientMisconfigured, e.SlackError)
	case "fatal_error", "internal_error", "service_unavailable", "request_timeout":
		return result(authgate.ClassTransient, e.SlackError)
	}
	return Result{}
}

// generic is RFC 6749 and RFC 6750, for every provider.
func generic(e *ProviderError) Result {
	if e.Operation == OpAPI {
		switch e.BearerError {
		case "invalid_token":
			return result(authgate.ClassReauthRequired, "invalid_token")
		case "insufficient_scope":
			r := result(authgate.ClassInsufficientScope, "insufficient_scope")
			r.MissingScopes = strings.Fields(e.BearerScope)
			return r
		case "invalid_request":
			return result(authgate.ClassInvalidRequest, "invalid_request")
		}
	}
	if e.OAuthError == "" {
		return Result{}
	}
	// Hydra's "multiple concurrent requests" refresh error: another
	// refresher probably won; re-read and retry.
	if e.OAuthError == "invalid_request" && e.Operation == OpRefresh && strings.Contains(e.OAuthDescription, "concurrent") {
		return result(authgate.ClassTransient, e.OAuthError)
	}
	if c := oauthCode(e.OAuthError, e.Operation); c != "" {
		r := result(c, e.OAuthError)
		if c == authgate.ClassInsufficientScope && e.Operation == OpAPI {
			r.MissingScopes = strings.Fields(e.OAuthScope)
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

// MaxRetryAfter caps a provider's Retry-After.
const MaxRetryAfter = authgate.MaxProviderRetryAfter

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

// message is the sentence shown to the end user: the fix in words. Codes
// whose fix differs from their class's usual one get their own sentence.
func message(r Result, e *ProviderError) string {
	p := display(e.Provider)
	switch r.ErrorCode {
	case "access_denied", "consent_required", "interaction_required", "login_required", "account_selection_required":
		if e.Operation == OpAuthorize {
			return fmt.Sprintf("Access to %s was not granted (you chose Cancel or declined). Nothing was connected; to connect, ask the app for a new link (each link works once) and allow access.", p)
		}
	case "admin_policy_enforced", "policy_enforced":
		return fmt.Sprintf("Your %s Workspace administrator must allow this app (or the permissions it asks for) before you can connect it. Ask your admin to trust the app.", p)
	case "org_internal":
		return fmt.Sprintf("This app is limited to users of its own %s organization. Sign in with an account of that organization, or ask the app's developer to open it to outside users.", p)
	case "unverified_app_testing":
		return fmt.Sprintf("This app is still in testing at %s and your account is not one of its test users. The app's developer must add you as a test user or publish the app.", p)
	case "disallowed_useragent":
		return fmt.Sprintf("%s does not allow signing in inside an embedded browser. Open the connect link in your regular browser (Chrome, Safari, Firefox, Edge).", p)
	case "redirect_uri_mismatch", "invalid_client", "deleted_client", "unauthorized_client", "invalid_scope", "bad_redirect_uri", "invalid_client_id", "bad_client_secret":
		return fmt.Sprintf("The app's client configuration at %s is wrong (%s). The app's developer must fix it; reconnecting will not help.", p, r.ErrorCode)
	case "SERVICE_DISABLED", "accessNotConfigured", "USER_PROJECT_DENIED", "API_KEY_INVALID", "CONSUMER_INVALID", "projectNotLinked":
		return fmt.Sprintf("The API this needs is not enabled in the app's %s project. The app's developer must enable it; sharing or reconnecting will not help.", p)
	case "appNotAuthorizedToFile":
		return fmt.Sprintf("The app can only reach %s files you created or opened with it. Open or pick this file in the app, then try again.", p)
	case "insufficientFilePermissions":
		return fmt.Sprintf("Your %s account can see this file but not change it. Ask the file's owner for edit access.", p)
	case "teamDriveMembershipRequired":
		return fmt.Sprintf("This needs membership of the %s shared drive that holds the file. Ask a manager of that shared drive to add you.", p)
	case "storageQuotaExceeded":
		return fmt.Sprintf("Your %s storage is full. Free up space or buy more, then try again.", p)
	case "dailyLimitExceeded":
		return fmt.Sprintf("The app has used its daily %s quota. This will be retried later.", p)
	}
	if r.Class == authgate.ClassClientMisconfigured && r.ErrorCode == "" && e.Status == http.StatusUnauthorized {
		return fmt.Sprintf("%s refused the app's client credentials (HTTP 401 without an OAuth error). Check the client id and secret; the connection itself was not changed.", p)
	}
	return classMessage(r.Class, p, r.MissingScopes)
}

// classMessage is the usual sentence for a class.
func classMessage(c authgate.Class, p string, missing []string) string {
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
