package sandbox_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"golang.org/x/oauth2"

	"github.com/authgate/authgate/sandbox"
	"github.com/authgate/authgate/sandbox/oauthcore"
)

func adminCall(t *testing.T, e *env, method, path, body string) response {
	t.Helper()
	h := map[string]string{}
	if body != "" {
		h["Content-Type"] = "application/json"
	}
	return send(t, method, e.url+"/sandbox/admin"+path, h, body)
}

// TestAdminAPI drives the control API the way a user's CI script does.
func TestAdminAPI(t *testing.T) {
	t.Parallel()
	e := start(t, sandbox.Options{})
	r := adminCall(t, e, "GET", "/providers", "")
	if r.status != 200 || !strings.Contains(r.body, `"name": "google"`) || !strings.Contains(r.body, e.url+"/sandbox/oidc/oauth2/token") {
		t.Fatalf("providers %d %s", r.status, r.body)
	}
	r = adminCall(t, e, "GET", "/clients", "")
	if n := strings.Count(r.body, `"client_id"`); r.status != 200 || n != 4 {
		t.Fatalf("default clients: %d, %d listed", r.status, n)
	}
	// Register a client: exact redirect matching.
	r = adminCall(t, e, "POST", "/clients", `{"provider":"oidc","redirect_uris":["https://app.example/cb"]}`)
	if r.status != 201 {
		t.Fatalf("register %d %s", r.status, r.body)
	}
	cl := r.json(t)
	id, secret := cl["client_id"].(string), cl["client_secret"].(string)
	// Consent preset: the authorization endpoint answers at once.
	if r := adminCall(t, e, "POST", "/consent", `{"provider":"oidc","account":"uma@example.com","granted_scopes":["openid","offline_access"],"access_token_ttl_seconds":60}`); r.status != 200 {
		t.Fatalf("consent %d %s", r.status, r.body)
	}
	cfg := &oauth2.Config{ClientID: id, ClientSecret: secret, RedirectURL: "https://app.example/cb", Scopes: []string{"openid", "offline_access", "profile"},
		Endpoint: oauth2.Endpoint{AuthURL: e.url + "/sandbox/oidc/oauth2/auth", TokenURL: e.url + "/sandbox/oidc/oauth2/token", AuthStyle: oauth2.AuthStyleInHeader}}
	loc, err := sandbox.CompleteConsent(context.Background(), nil, cfg.AuthCodeURL("state-admin"), sandbox.Choice{})
	if err != nil || !strings.HasPrefix(loc.String(), "https://app.example/cb?") {
		t.Fatalf("preset consent redirect %v %v", loc, err)
	}
	tok, err := cfg.Exchange(context.Background(), loc.Query().Get("code"))
	if err != nil || tok.Extra("scope") != "offline_access openid" || tok.Extra("expires_in") != float64(59) {
		t.Fatalf("preset grant %v %+v", err, tok)
	}
	// A redirect URI not registered exactly is refused on the provider's page.
	bad := strings.Replace(cfg.AuthCodeURL("state-admin"), url.QueryEscape("https://app.example/cb"), url.QueryEscape("https://app.example/cb/"), 1)
	if _, err := sandbox.CompleteConsent(context.Background(), nil, bad, sandbox.Choice{}); err == nil {
		t.Fatal("a trailing slash matched the registered redirect URI")
	}
	if r := adminCall(t, e, "POST", "/consent", `{"provider":"oidc","deny":true}`); r.status != 200 {
		t.Fatalf("deny preset %d", r.status)
	}
	loc, _ = sandbox.CompleteConsent(context.Background(), nil, cfg.AuthCodeURL("state-admin"), sandbox.Choice{})
	if loc.Query().Get("error") != "access_denied" || loc.Query().Get("state") != "state-admin" {
		t.Fatalf("denied: %v", loc)
	}
	if r := adminCall(t, e, "DELETE", "/consent?provider=oidc", ""); r.status != 204 {
		t.Fatalf("clear consent %d", r.status)
	}
	// Faults: inject, list, clear.
	if r := adminCall(t, e, "POST", "/faults", `{"provider":"google","fault":"rate_limit","count":3,"retry_after_seconds":5}`); r.status != 201 {
		t.Fatalf("fault %d %s", r.status, r.body)
	}
	if r := adminCall(t, e, "GET", "/faults", ""); !strings.Contains(r.body, `"remaining": 3`) {
		t.Fatalf("faults %s", r.body)
	}
	if r := adminCall(t, e, "DELETE", "/faults", ""); r.status != 204 || len(e.sb.Faults()) != 0 {
		t.Fatalf("clear faults %d %v", r.status, e.sb.Faults())
	}
	// Counters.
	c := adminCall(t, e, "GET", "/counters", "").json(t)
	oidc := c["oidc"].(map[string]any)
	if oidc["code_exchanges"] != float64(1) || oidc["token_requests"] != float64(1) {
		t.Fatalf("counters %v", c)
	}
	for _, k := range []string{"token_requests", "code_exchanges", "refreshes", "reuse_detected", "api_requests", "refreshes_by_token"} {
		if _, ok := c["google"].(map[string]any)[k]; !ok {
			t.Errorf("counters lack %s", k)
		}
	}
	if r := adminCall(t, e, "DELETE", "/counters", ""); r.status != 204 || e.counters(t, "oidc").CodeExchanges != 0 {
		t.Fatal("counters not reset")
	}
	// Bad input: a problem document, nothing changed.
	for _, tc := range []struct{ method, path, body, detail string }{
		{"POST", "/faults", `{"provider":"google","fault":"meteor"}`, "unknown fault"},
		{"POST", "/faults", `{"provider":"google","fault":"revoke","colour":"red"}`, "unknown field"},
		{"POST", "/clients", `{"provider":"google"}`, "redirect_uris"},
		{"POST", "/clients", `{"provider":"yahoo","redirect_uris":["x"]}`, "unknown provider"},
		{"POST", "/consent", `{"provider":"google"}`, "account is required"},
		{"POST", "/consent", `not json`, "JSON"},
		{"GET", "/nothing", ``, "no admin route"},
	} {
		r := adminCall(t, e, tc.method, tc.path, tc.body)
		if r.status < 400 || r.header.Get("Content-Type") != "application/problem+json" || !strings.Contains(r.body, tc.detail) {
			t.Errorf("%s %s %s: %d %s", tc.method, tc.path, tc.body, r.status, r.body)
		}
	}
}

// TestConcurrentRefreshes hammers one Google grant from many goroutines:
// every refresh succeeds and is counted exactly once.
func TestConcurrentRefreshes(t *testing.T) {
	t.Parallel()
	e := start(t, sandbox.Options{})
	cfg, tok := googleTokens(t, e, "vic@acme.example", []string{"openid", scopeDriveFile})
	const n = 200
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := refreshWith(cfg, tok); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if c := e.counters(t, "google"); c.Refreshes != n || c.RefreshesByToken[fingerprint(tok.RefreshToken)] != n {
		t.Fatalf("counters %+v", c)
	}
}

// BenchmarkGoogleRefresh measures the CPU cost of one refresh through the
// full handler (form parsing, client auth, token minting, JSON), without a
// network in the way.
func BenchmarkGoogleRefresh(b *testing.B) {
	sb := sandbox.New(sandbox.Options{})
	h := sb.Handler()
	srv := httptest.NewServer(h)
	defer srv.Close()
	c, _ := sb.DefaultClient("google")
	if err := sb.SetConsent("google", sandbox.Consent{Account: "bench@acme.example"}); err != nil {
		b.Fatal(err)
	}
	cfg := &oauth2.Config{ClientID: c.ClientID, ClientSecret: c.ClientSecret, RedirectURL: redirectURL, Scopes: []string{"openid"},
		Endpoint: oauth2.Endpoint{AuthURL: srv.URL + "/sandbox/google/o/oauth2/v2/auth", TokenURL: srv.URL + "/sandbox/google/token", AuthStyle: oauth2.AuthStyleInParams}}
	loc, err := sandbox.CompleteConsent(context.Background(), nil, cfg.AuthCodeURL("state-bench", oauth2.AccessTypeOffline), sandbox.Choice{})
	if err != nil {
		b.Fatal(err)
	}
	tok, err := cfg.Exchange(context.Background(), loc.Query().Get("code"))
	if err != nil {
		b.Fatal(err)
	}
	body := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}, "client_id": {c.ClientID}, "client_secret": {c.ClientSecret}}.Encode()
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest("POST", "/sandbox/google/token", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("refresh %d %s", rec.Code, rec.Body)
		}
	}
}

func TestAdminRefusesWebPages(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(sandbox.New(sandbox.Options{}).Handler())
	t.Cleanup(srv.Close)
	send := func(method, path, contentType, body string, hdr map[string]string) int {
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		for k, v := range hdr {
			if k == "Host" {
				req.Host = v
			} else {
				req.Header.Set(k, v)
			}
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	fault := `{"provider":"google","fault":"revoke"}`
	for _, tc := range []struct {
		name, method, path, ct string
		hdr                    map[string]string
		want                   int
	}{
		{"text/plain POST (no preflight)", "POST", "/sandbox/admin/faults", "text/plain", nil, 415},
		{"form POST", "POST", "/sandbox/admin/faults", "application/x-www-form-urlencoded", nil, 415},
		{"foreign Origin", "POST", "/sandbox/admin/faults", "application/json", map[string]string{"Origin": "https://evil.example"}, 403},
		{"rebound Host reading secrets", "GET", "/sandbox/admin/clients", "", map[string]string{"Host": "rebind.evil.example"}, 403},
		{"cross-site fetch", "GET", "/sandbox/admin/clients", "", map[string]string{"Sec-Fetch-Site": "cross-site"}, 403},
		{"same-origin JSON", "POST", "/sandbox/admin/faults", "application/json", nil, 201},
		{"loopback GET", "GET", "/sandbox/admin/clients", "", nil, 200},
	} {
		if got := send(tc.method, tc.path, tc.ct, fault, tc.hdr); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
	// What it stores is capped.
	status := 0
	for i := range 150 {
		status = send("POST", "/sandbox/admin/clients", "application/json", `{"provider":"oidc","redirect_uris":["https://app.example/cb"]}`, nil)
		if status != 201 {
			if i < 90 {
				t.Fatalf("registration %d refused: %d", i, status)
			}
			break
		}
	}
	if status != http.StatusInsufficientStorage {
		t.Fatalf("150 registrations all accepted (last %d)", status)
	}
}

// TestAuthorizeFloodIsBounded: fetching authorization URLs in a loop (any
// local process or web page can) keeps at most oauthcore.MaxPending
// requests, and an oversized query is refused outright.
func TestAuthorizeFloodIsBounded(t *testing.T) {
	t.Parallel()
	sb := sandbox.New(sandbox.Options{Seed: 1})
	srv := httptest.NewServer(sb.Handler())
	defer srv.Close()
	c, _ := sb.DefaultClient("oidc")
	q := url.Values{"client_id": {c.ClientID}, "redirect_uri": {"http://127.0.0.1:9/cb"}, "response_type": {"code"}, "scope": {"openid"}, "state": {"state-0123456789"}}
	for range oauthcore.MaxPending + 50 {
		resp, err := http.Get(srv.URL + "/sandbox/oidc/oauth2/auth?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if n := sb.OIDC().Core().PendingCount(); n > oauthcore.MaxPending {
		t.Fatalf("%d pending authorization requests kept; want at most %d", n, oauthcore.MaxPending)
	}
	q.Set("state", strings.Repeat("s", oauthcore.MaxAuthorizeQuery))
	resp, err := http.Get(srv.URL + "/sandbox/oidc/oauth2/auth?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestURITooLong {
		t.Fatalf("oversized authorize query: %d", resp.StatusCode)
	}
}
