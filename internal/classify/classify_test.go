package classify_test

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/internal/classify"
)

func TestClassify(t *testing.T) {
	t.Parallel()
	h := func(kv ...string) http.Header {
		out := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			out.Set(kv[i], kv[i+1])
		}
		return out
	}
	for _, tc := range []struct {
		name     string
		provider string
		op       classify.Operation
		status   int
		header   http.Header
		body     string
		class    authgate.Class
		policy   classify.Policy
		missing  []string
		retry    time.Duration
	}{
		// Google token endpoint (reference §1.9).
		{"google revoked", "google", "refresh", 400, nil, "{\n  \"error\": \"invalid_grant\",\n  \"error_description\": \"Token has been expired or revoked.\"\n}", authgate.ClassReauthRequired, classify.PolicyBlock, nil, 0},
		{"google forgotten", "google", "refresh", 400, nil, `{"error": "invalid_grant", "error_description": "Bad Request"}`, authgate.ClassReauthRequired, classify.PolicyBlock, nil, 0},
		{"google rapt", "google", "refresh", 400, nil, `{"error":"invalid_grant","error_description":"reauth related error (invalid_rapt)","error_uri":"https://support.google.com/a/answer/9368756","error_subtype":"invalid_rapt"}`, authgate.ClassReauthRequired, classify.PolicyBlock, nil, 0},
		{"google invalid JWT", "google", "refresh", 400, nil, `{"error":"invalid_grant","error_description":"Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim."}`, authgate.ClassClientMisconfigured, classify.PolicyFail, nil, 0},
		{"google pkce missing", "google", "code_exchange", 400, nil, `{"error":"invalid_grant","error_description":"Missing code verifier."}`, authgate.ClassClientMisconfigured, classify.PolicyFail, nil, 0},
		{"google pkce not needed", "google", "code_exchange", 400, nil, `{"error":"invalid_grant","error_description":"code_verifier or verifier is not needed"}`, authgate.ClassClientMisconfigured, classify.PolicyFail, nil, 0},
		{"google code reused", "google", "code_exchange", 400, nil, `{"error":"invalid_grant","error_description":"Code was already redeemed."}`, authgate.ClassInvalidRequest, classify.PolicyFail, nil, 0},
		{"google client not found", "google", "refresh", 401, nil, "{\n  \"error\": \"invalid_client\",\n  \"error_description\": \"The OAuth client was not found.\"\n}", authgate.ClassClientMisconfigured, classify.PolicyFail, nil, 0},
		{"google wrong client", "google", "refresh", 401, nil, `{"error":"unauthorized_client","error_description":"Unauthorized"}`, authgate.ClassClientMisconfigured, classify.PolicyFail, nil, 0},
		{"google redirect mismatch", "google", "code_exchange", 400, nil, `{"error":"redirect_uri_mismatch","error_description":"Bad Request"}`, authgate.ClassClientMisconfigured, classify.PolicyFail, nil, 0},
		{"google admin policy", "google", "refresh", 400, nil, `{"error":"admin_policy_enforced","error_description":"x"}`, authgate.ClassAdminPolicy, classify.PolicyBlock, nil, 0},
		{"google org internal", "google", "authorize", 403, nil, `{"error":"org_internal"}`, authgate.ClassClientMisconfigured, classify.PolicyFail, nil, 0},
		{"google access denied", "google", "authorize", 400, nil, `{"error":"access_denied"}`, authgate.ClassReauthRequired, classify.PolicyBlock, nil, 0},
		// Google APIs (reference §2.4, §2.5).
		{"drive 401", "google", "api", 401, nil, `{"error":{"code":401,"message":"Request had invalid authentication credentials.","errors":[{"message":"Invalid Credentials","domain":"global","reason":"authError","location":"Authorization","locationType":"header"}],"status":"UNAUTHENTICATED"}}`, authgate.ClassReauthRequired, classify.PolicyRefreshThenRetry, nil, 0},
		{"drive credentials missing", "google", "api", 401, nil, `{"error":{"code":401,"message":"x","errors":[{"message":"Login Required.","domain":"global","reason":"required"}],"status":"UNAUTHENTICATED","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"CREDENTIALS_MISSING","domain":"googleapis.com"}]}}`, authgate.ClassInvalidRequest, classify.PolicyFail, nil, 0},
		{"drive legacy scopes", "google", "api", 403, nil, "{\n \"error\": {\n  \"errors\": [\n   {\n    \"domain\": \"global\",\n    \"reason\": \"insufficientPermissions\",\n    \"message\": \"Insufficient Permission: Request had insufficient authentication scopes.\"\n   }\n  ],\n  \"code\": 403,\n  \"message\": \"Insufficient Permission: Request had insufficient authentication scopes.\"\n }\n}", authgate.ClassInsufficientScope, classify.PolicyBlock, nil, 0},
		{"drive errorinfo scopes", "google", "api", 403, nil, `{"error":{"code":403,"message":"Request had insufficient authentication scopes.","status":"PERMISSION_DENIED","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"ACCESS_TOKEN_SCOPE_INSUFFICIENT","domain":"googleapis.com"}]}}`, authgate.ClassInsufficientScope, classify.PolicyBlock, nil, 0},
		{"drive domain policy", "google", "api", 403, nil, `{"error":{"errors":[{"domain":"global","reason":"domainPolicy","message":"The domain administrators have disabled Drive apps."}],"code":403,"message":"The domain administrators have disabled Drive apps."}}`, authgate.ClassAdminPolicy, classify.PolicyBlock, nil, 0},
		{"drive not authorized to file", "google", "api", 403, nil, `{"error":{"errors":[{"domain":"global","reason":"appNotAuthorizedToFile","message":"The user has not granted the app 581863864696 write access to the file 1x."}],"code":403,"message":"x"}}`, authgate.ClassNotSharedOrNotFound, classify.PolicyBlock, nil, 0},
		{"drive 404", "google", "api", 404, nil, `{"error":{"errors":[{"domain":"global","reason":"notFound","message":"File not found: .","locationType":"parameter","location":"fileId"}],"code":404,"message":"File not found: ."}}`, authgate.ClassNotSharedOrNotFound, classify.PolicyBlock, nil, 0},
		{"drive 403 user rate", "google", "api", 403, nil, `{"error":{"errors":[{"domain":"usageLimits","reason":"userRateLimitExceeded","message":"User rate limit exceeded."}],"code":403,"message":"User rate limit exceeded."}}`, authgate.ClassRateLimited, classify.PolicyRetry, nil, 0},
		{"drive 429", "google", "api", 429, h("Retry-After", "7"), `{"error":{"errors":[{"domain":"usageLimits","reason":"rateLimitExceeded","message":"Rate Limit Exceeded"}],"code":429,"message":"Rate Limit Exceeded"}}`, authgate.ClassRateLimited, classify.PolicyRetry, nil, 7 * time.Second},
		{"docs quota", "google", "api", 429, nil, `{"error":{"code":429,"message":"Quota exceeded for quota metric","status":"RESOURCE_EXHAUSTED"}}`, authgate.ClassRateLimited, classify.PolicyRetry, nil, 0},
		{"drive storage quota", "google", "api", 403, nil, `{"error":{"errors":[{"domain":"global","reason":"storageQuotaExceeded","message":"The user's Drive storage quota has been exceeded."}],"code":403,"message":"x"}}`, authgate.ClassInvalidRequest, classify.PolicyFail, nil, 0},
		{"docs permission denied", "google", "api", 403, nil, `{"error":{"code":403,"message":"The caller does not have permission","status":"PERMISSION_DENIED"}}`, authgate.ClassNotSharedOrNotFound, classify.PolicyBlock, nil, 0},
		{"drive 503", "google", "api", 503, nil, `{"error":{"errors":[{"domain":"global","reason":"backendError","message":"Backend Error"}],"code":503,"message":"Backend Error"}}`, authgate.ClassTransient, classify.PolicyRetry, nil, 0},
		{"google html 500", "google", "refresh", 500, nil, `<!DOCTYPE html><title>Error 500 (Server Error)!!1</title>`, authgate.ClassTransient, classify.PolicyRetry, nil, 0},
		// Notion (reference §3.6).
		{"notion 401", "notion", "api", 401, nil, `{"object":"error","status":401,"code":"unauthorized","message":"API token is invalid.","request_id":"292c30e5-d974-4616-9f41-43fa3fd9879b"}`, authgate.ClassReauthRequired, classify.PolicyRefreshThenRetry, nil, 0},
		{"notion restricted", "notion", "api", 403, nil, `{"object":"error","status":403,"code":"restricted_resource","message":"API token does not have access to this resource."}`, authgate.ClassInsufficientScope, classify.PolicyBlock, nil, 0},
		{"notion not shared", "notion", "api", 404, nil, `{"object":"error","status":404,"code":"object_not_found","message":"Could not find page with ID: 6cdccfe8-d30c-4efd-a442-b7801c5cc8bb. Make sure the relevant pages and databases are shared with your integration.","request_id":"500aced7-2cac-471f-aae8-e5e15ef76a5f"}`, authgate.ClassNotSharedOrNotFound, classify.PolicyBlock, nil, 0},
		{"notion rate", "notion", "api", 429, h("Retry-After", "3"), `{"object":"error","status":429,"code":"rate_limited","message":"You have been rate limited. Please try again in a few minutes."}`, authgate.ClassRateLimited, classify.PolicyRetry, nil, 3 * time.Second},
		{"notion conflict", "notion", "api", 409, nil, `{"object":"error","status":409,"code":"conflict_error","message":"Conflict occurred while saving. Please try again."}`, authgate.ClassTransient, classify.PolicyRetry, nil, 0},
		{"notion missing version", "notion", "api", 400, nil, `{"object":"error","status":400,"code":"missing_version","message":"x"}`, authgate.ClassInvalidRequest, classify.PolicyFail, nil, 0},
		{"notion refresh invalid_grant", "notion", "refresh", 400, nil, `{"object":"error","status":400,"code":"invalid_grant","message":"Invalid refresh token."}`, authgate.ClassReauthRequired, classify.PolicyBlock, nil, 0},
		{"notion code invalid_grant", "notion", "code_exchange", 400, nil, `{"object":"error","status":400,"code":"invalid_grant","message":"Invalid code: this code has been revoked."}`, authgate.ClassInvalidRequest, classify.PolicyFail, nil, 0},
		{"notion 503", "notion", "api", 503, nil, `{"object":"error","status":503,"code":"service_unavailable","message":"Notion is unavailable, please try again later."}`, authgate.ClassTransient, classify.PolicyRetry, nil, 0},
		// Slack (reference §4.4).
		{"slack missing scope", "slack", "api", 200, nil, `{"ok":false,"error":"missing_scope","needed":"chat:write:bot","provided":"identify,bot,incoming-webhook,channels:read,channels:write,chat:write","warning":"missing_charset","response_metadata":{"warnings":["missing_charset"]}}`, authgate.ClassInsufficientScope, classify.PolicyBlock, []string{"chat:write:bot"}, 0},
		{"slack invalid auth", "slack", "api", 200, nil, `{"ok":false,"error":"invalid_auth"}`, authgate.ClassReauthRequired, classify.PolicyRefreshThenRetry, nil, 0},
		{"slack revoked", "slack", "api", 200, nil, `{"ok":false,"error":"token_revoked"}`, authgate.ClassReauthRequired, classify.PolicyRefreshThenRetry, nil, 0},
		{"slack refresh", "slack", "refresh", 200, nil, `{"ok":false,"error":"invalid_refresh_token"}`, authgate.ClassReauthRequired, classify.PolicyBlock, nil, 0},
		{"slack not authed", "slack", "api", 200, nil, `{"ok":false,"error":"not_authed"}`, authgate.ClassInvalidRequest, classify.PolicyFail, nil, 0},
		{"slack ekm", "slack", "api", 200, nil, `{"ok":false,"error":"ekm_access_denied"}`, authgate.ClassAdminPolicy, classify.PolicyBlock, nil, 0},
		{"slack channel", "slack", "api", 200, nil, `{"ok":false,"error":"not_in_channel"}`, authgate.ClassNotSharedOrNotFound, classify.PolicyBlock, nil, 0},
		{"slack ratelimited", "slack", "api", 429, h("retry-after", "1"), `{"ok":false,"error":"ratelimited"}`, authgate.ClassRateLimited, classify.PolicyRetry, nil, time.Second},
		{"slack bad secret", "slack", "code_exchange", 200, nil, `{"ok":false,"error":"bad_client_secret"}`, authgate.ClassClientMisconfigured, classify.PolicyFail, nil, 0},
		{"slack invalid code", "slack", "code_exchange", 200, nil, `{"ok":false,"error":"invalid_code"}`, authgate.ClassInvalidRequest, classify.PolicyFail, nil, 0},
		// Generic RFC 6749 / 6750 / Hydra (reference §5, §6).
		{"rfc6750 invalid token", "acme", "api", 401, h("WWW-Authenticate", `Bearer realm="example", error="invalid_token", error_description="The access token expired"`), ``, authgate.ClassReauthRequired, classify.PolicyRefreshThenRetry, nil, 0},
		{"rfc6750 scope", "acme", "api", 403, h("WWW-Authenticate", `Bearer realm="example", error="insufficient_scope", scope="profile email"`), ``, authgate.ClassInsufficientScope, classify.PolicyBlock, []string{"profile", "email"}, 0},
		{"hydra reuse", "oidc", "refresh", 400, nil, `{"error":"invalid_grant","error_description":"The provided authorization grant ... The refresh token was already used."}`, authgate.ClassReauthRequired, classify.PolicyBlock, nil, 0},
		{"hydra concurrent", "oidc", "refresh", 400, nil, `{"error":"invalid_request","error_description":"Failed to refresh token because of multiple concurrent requests using the same token. Please retry the request."}`, authgate.ClassTransient, classify.PolicyRetry, nil, 0},
		{"entra expired", "entra", "refresh", 400, nil, `{"error":"invalid_grant","error_description":"AADSTS700082: The refresh token has expired due to inactivity.","error_codes":[700082]}`, authgate.ClassReauthRequired, classify.PolicyBlock, nil, 0},
		{"rfc invalid_client", "acme", "refresh", 401, nil, `{"error":"invalid_client"}`, authgate.ClassClientMisconfigured, classify.PolicyFail, nil, 0},
		{"unparseable 502", "acme", "api", 502, nil, `<html>bad gateway</html>`, authgate.ClassTransient, classify.PolicyRetry, nil, 0},
		{"retry-after date", "acme", "api", 503, h("Retry-After", "Wed, 25 Nov 2026 12:00:30 GMT"), ``, authgate.ClassTransient, classify.PolicyRetry, nil, 30 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			header := tc.header
			if header == nil {
				header = http.Header{}
			}
			r := classify.Classify(classify.Input{Provider: tc.provider, Operation: tc.op, Status: tc.status, Header: header, Body: []byte(tc.body),
				Now: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)})
			if r.Class != tc.class || r.Policy != tc.policy || !slices.Equal(r.MissingScopes, tc.missing) || r.RetryAfter != tc.retry {
				t.Fatalf("got %+v; want class %s policy %s missing %v retry %v", r, tc.class, tc.policy, tc.missing, tc.retry)
			}
			if r.Message == "" {
				t.Fatal("no end-user message")
			}
		})
	}
}
