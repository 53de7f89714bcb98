package sandbox_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/authgate/authgate/sandbox"
)

// refreshForm is a Google refresh request.
func refreshForm(cfg *oauth2.Config, rt string) url.Values {
	return url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {cfg.ClientID}, "client_secret": {cfg.ClientSecret}}
}

// TestGoogleFaults: each fault produces the response real Google sends.
func TestGoogleFaults(t *testing.T) {
	t.Parallel()
	const acct = "kim@acme.example"
	setup := func(t *testing.T) (*env, *oauth2.Config, *oauth2.Token) {
		e := start(t, sandbox.Options{})
		cfg, tok := googleTokens(t, e, acct, []string{"openid", "email", scopeDriveFile, scopeDocs})
		return e, cfg, tok
	}
	tokenURL := func(e *env) string { return e.url + "/sandbox/google/token" }
	files := func(e *env) string { return e.url + "/sandbox/google/drive/v3/files?prettyPrint=false" }
	invalidCreds := `{"error":{"code":401,"message":"Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.","errors":[{"message":"Invalid Credentials","domain":"global","reason":"authError","location":"Authorization","locationType":"header"}],"status":"UNAUTHENTICATED"}}`

	t.Run("revoke", func(t *testing.T) {
		t.Parallel()
		e, cfg, tok := setup(t)
		mustFault(t, e, sandbox.Fault{Provider: "google", Fault: "revoke", Account: acct})
		tokenError(t, form(t, tokenURL(e), nil, refreshForm(cfg, tok.RefreshToken)), 400, "invalid_grant", "Token has been expired or revoked.")
		if r := send(t, "GET", files(e), bearer(tok.AccessToken), ""); r.status != 401 || r.body != invalidCreds {
			t.Fatalf("API after revoke: %d %s", r.status, r.body)
		}
	})
	t.Run("expire_access_tokens", func(t *testing.T) {
		t.Parallel()
		e, cfg, tok := setup(t)
		mustFault(t, e, sandbox.Fault{Provider: "google", Fault: "expire_access_tokens", Account: acct})
		r := send(t, "GET", files(e), bearer(tok.AccessToken), "")
		if r.status != 401 || r.body != invalidCreds || !strings.Contains(r.header.Get("WWW-Authenticate"), `error="invalid_token"`) {
			t.Fatalf("API with expired token: %d %s", r.status, r.body)
		}
		// The refresh token still works: expiry is not revocation.
		if r := form(t, tokenURL(e), nil, refreshForm(cfg, tok.RefreshToken)); r.status != 200 {
			t.Fatalf("refresh after expiry %d %s", r.status, r.body)
		}
	})
	t.Run("expiry by the clock", func(t *testing.T) {
		t.Parallel()
		e, _, tok := setup(t)
		e.clock.Advance(3598 * time.Second)
		if r := send(t, "GET", files(e), bearer(tok.AccessToken), ""); r.status != 200 {
			t.Fatalf("1 s before expiry: %d", r.status)
		}
		e.clock.Advance(time.Second)
		if r := send(t, "GET", files(e), bearer(tok.AccessToken), ""); r.status != 401 {
			t.Fatalf("at expiry: %d", r.status)
		}
	})
	t.Run("drop_scope", func(t *testing.T) {
		t.Parallel()
		e, cfg, tok := setup(t)
		mustFault(t, e, sandbox.Fault{Provider: "google", Fault: "drop_scope", Account: acct, Scope: scopeDocs})
		r := send(t, "POST", e.url+"/sandbox/google/v1/documents?prettyPrint=false", bearer(tok.AccessToken), `{"title":"x"}`)
		// drive.file still allows documents.create; documents.get of a doc the
		// app did not create now fails.
		if r.status != 200 {
			t.Fatalf("create with drive.file left: %d %s", r.status, r.body)
		}
		r = form(t, tokenURL(e), nil, refreshForm(cfg, tok.RefreshToken))
		if r.status != 200 || strings.Contains(r.json(t)["scope"].(string), "documents") {
			t.Fatalf("refresh after drop_scope: %d %s", r.status, r.body)
		}
		mustFault(t, e, sandbox.Fault{Provider: "google", Fault: "drop_scope", Account: acct, Scope: scopeDriveFile})
		r = send(t, "GET", files(e), bearer(tok.AccessToken), "")
		if r.status != 403 || !strings.Contains(r.body, "ACCESS_TOKEN_SCOPE_INSUFFICIENT") || !strings.Contains(r.body, `"reason":"insufficientPermissions"`) {
			t.Fatalf("list after dropping drive.file: %d %s", r.status, r.body)
		}
	})
	t.Run("admin_policy", func(t *testing.T) {
		t.Parallel()
		e, cfg, tok := setup(t)
		mustFault(t, e, sandbox.Fault{Provider: "google", Fault: "admin_policy", Domain: "acme.example"})
		r := send(t, "GET", files(e), bearer(tok.AccessToken), "")
		if r.status != 403 || r.body != `{"error":{"errors":[{"domain":"global","reason":"domainPolicy","message":"The domain administrators have disabled Drive apps."}],"code":403,"message":"The domain administrators have disabled Drive apps."}}` {
			t.Fatalf("API under admin policy: %d %s", r.status, r.body)
		}
		tokenError(t, form(t, tokenURL(e), nil, refreshForm(cfg, tok.RefreshToken)), 400, "admin_policy_enforced", "Access to your account data is restricted by policies within your organization.")
		_, err := sandbox.CompleteConsent(context.Background(), nil, cfg.AuthCodeURL("state-adm"), sandbox.Choice{Account: acct})
		var ce *sandbox.ConsentError
		if !errors.As(err, &ce) || ce.Status != 400 || ce.Page != "Error 400: admin_policy_enforced" {
			t.Fatalf("consent under admin policy: %v", err)
		}
		// Consumer accounts are unaffected.
		if _, tok := googleTokens(t, e, "lee@gmail.com", []string{scopeDriveFile}); tok.AccessToken == "" {
			t.Fatal("gmail account blocked")
		}
	})
	t.Run("unshare", func(t *testing.T) {
		t.Parallel()
		e, _, tok := setup(t)
		r := send(t, "POST", files(e), bearer(tok.AccessToken), `{"name":"Shared doc","mimeType":"application/vnd.google-apps.document"}`)
		id := r.json(t)["id"].(string)
		mustFault(t, e, sandbox.Fault{Provider: "google", Fault: "unshare", Resource: id})
		r = send(t, "GET", e.url+"/sandbox/google/drive/v3/files/"+id+"?prettyPrint=false", bearer(tok.AccessToken), "")
		if r.status != 404 || !strings.Contains(r.body, `"message":"File not found: `+id+`."`) {
			t.Fatalf("unshared file: %d %s", r.status, r.body)
		}
	})
	t.Run("invalid_grant_next", func(t *testing.T) {
		t.Parallel()
		e, cfg, tok := setup(t)
		mustFault(t, e, sandbox.Fault{Provider: "google", Fault: "invalid_grant_next", Account: acct, Count: 2})
		for range 2 {
			tokenError(t, form(t, tokenURL(e), nil, refreshForm(cfg, tok.RefreshToken)), 400, "invalid_grant", "Token has been expired or revoked.")
		}
		if r := form(t, tokenURL(e), nil, refreshForm(cfg, tok.RefreshToken)); r.status != 200 {
			t.Fatalf("third refresh %d %s", r.status, r.body)
		}
		if got := e.counters(t, "google").Refreshes; got != 3 {
			t.Fatalf("refreshes counted %d; want 3", got)
		}
	})
	t.Run("rate_limit", func(t *testing.T) {
		t.Parallel()
		e, cfg, tok := setup(t)
		mustFault(t, e, sandbox.Fault{Provider: "google", Fault: "rate_limit", Count: 2, RetryAfterSeconds: 7, Target: "api"})
		for range 2 {
			r := send(t, "GET", files(e), bearer(tok.AccessToken), "")
			if r.status != 429 || r.header.Get("Retry-After") != "7" || r.body != `{"error":{"errors":[{"domain":"usageLimits","reason":"rateLimitExceeded","message":"Rate Limit Exceeded"}],"code":429,"message":"Rate Limit Exceeded"}}` {
				t.Fatalf("rate limited API: %d %v %s", r.status, r.header, r.body)
			}
		}
		if r := send(t, "GET", files(e), bearer(tok.AccessToken), ""); r.status != 200 {
			t.Fatalf("after the burst: %d", r.status)
		}
		// Target api leaves the token endpoint alone; 403 is Google's other form.
		if r := form(t, tokenURL(e), nil, refreshForm(cfg, tok.RefreshToken)); r.status != 200 {
			t.Fatalf("token endpoint hit by an api-only fault: %d", r.status)
		}
		mustFault(t, e, sandbox.Fault{Provider: "google", Fault: "rate_limit", Status: 403, Target: "api"})
		if r := send(t, "GET", files(e), bearer(tok.AccessToken), ""); r.status != 403 || !strings.Contains(r.body, `"reason":"userRateLimitExceeded"`) {
			t.Fatalf("403 rate limit: %d %s", r.status, r.body)
		}
		mustFault(t, e, sandbox.Fault{Provider: "google", Fault: "rate_limit", Target: "token", RetryAfterSeconds: 3})
		if r := form(t, tokenURL(e), nil, refreshForm(cfg, tok.RefreshToken)); r.status != 429 || r.header.Get("Retry-After") != "3" {
			t.Fatalf("token endpoint rate limit: %d %v", r.status, r.header)
		}
	})
	t.Run("server_error", func(t *testing.T) {
		t.Parallel()
		e, cfg, tok := setup(t)
		mustFault(t, e, sandbox.Fault{Provider: "google", Fault: "server_error", Count: 1, Target: "api"})
		if r := send(t, "GET", files(e), bearer(tok.AccessToken), ""); r.status != 503 || !strings.Contains(r.body, `"reason":"backendError"`) {
			t.Fatalf("API 503: %d %s", r.status, r.body)
		}
		mustFault(t, e, sandbox.Fault{Provider: "google", Fault: "server_error", Status: 500, Target: "token"})
		r := form(t, tokenURL(e), nil, refreshForm(cfg, tok.RefreshToken))
		if r.status != 500 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") || !strings.Contains(r.body, "Error 500 (Server Error)") {
			t.Fatalf("token endpoint 500: %d %s", r.status, r.body)
		}
		if r := form(t, tokenURL(e), nil, refreshForm(cfg, tok.RefreshToken)); r.status != 200 {
			t.Fatalf("after the 500: %d", r.status)
		}
	})
	t.Run("latency", func(t *testing.T) {
		t.Parallel()
		e, _, tok := setup(t)
		mustFault(t, e, sandbox.Fault{Provider: "google", Fault: "latency", LatencyMS: 150, Count: 1})
		start := time.Now()
		if r := send(t, "GET", files(e), bearer(tok.AccessToken), ""); r.status != 200 {
			t.Fatalf("with latency: %d", r.status)
		}
		if d := time.Since(start); d < 150*time.Millisecond {
			t.Fatalf("request took %v; the fault adds 150ms", d)
		}
		if len(e.sb.Faults()) != 0 {
			t.Fatalf("a one-shot latency fault is still armed: %+v", e.sb.Faults())
		}
	})
	t.Run("clock_offset", func(t *testing.T) {
		t.Parallel()
		e, cfg, tok := setup(t)
		mustFault(t, e, sandbox.Fault{Provider: "google", Fault: "clock_offset", OffsetSeconds: 600})
		r := form(t, tokenURL(e), nil, refreshForm(cfg, tok.RefreshToken))
		date, err := http.ParseTime(r.header.Get("Date"))
		if err != nil || !date.Equal(e.clock.Now().Add(10*time.Minute).Truncate(time.Second)) {
			t.Fatalf("Date %q; want the sandbox clock + 10 min (%v)", r.header.Get("Date"), e.clock.Now().Add(10*time.Minute))
		}
		q := e.authorize(t, cfg.AuthCodeURL("state-skew"), sandbox.Choice{Account: acct})
		fresh, err := cfg.Exchange(context.Background(), q.Get("code"))
		if err != nil {
			t.Fatal(err)
		}
		if iat := jwtClaims(t, fresh.Extra("id_token").(string))["iat"].(float64); int64(iat) != e.clock.Now().Add(10*time.Minute).Unix() {
			t.Fatalf("id_token iat %v; want offset by 10 min", iat)
		}
	})
}

func TestFaultValidation(t *testing.T) {
	t.Parallel()
	e := start(t, sandbox.Options{})
	for _, f := range []sandbox.Fault{
		{Provider: "myspace", Fault: "revoke"},
		{Provider: "google", Fault: "explode"},
		{Provider: "google", Fault: "drop_scope"},
		{Provider: "google", Fault: "unshare"},
		{Provider: "google", Fault: "server_error", Status: 404},
		{Provider: "google", Fault: "latency"},
		{Provider: "google", Fault: "clock_offset"},
		{Provider: "google", Fault: "rate_limit", Target: "everything"},
		{Provider: "google", Fault: "unshare", Resource: "no-such-file"},
	} {
		if err := e.sb.InjectFault(f); err == nil {
			t.Errorf("InjectFault(%+v) accepted", f)
		}
	}
	if len(e.sb.Faults()) != 0 {
		t.Fatalf("refused faults were armed: %+v", e.sb.Faults())
	}
}
