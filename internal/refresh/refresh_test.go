package refresh_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/authgatetest"
	"github.com/authgate/authgate/internal/clock"
	"github.com/authgate/authgate/internal/refresh"
	"github.com/authgate/authgate/sandbox"
	"github.com/authgate/authgate/server"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

type fixture struct {
	env    *authgatetest.Env
	clock  *clock.Fake
	mu     sync.Mutex
	sleeps []time.Duration
	// onSleep, when set, runs in the refresher's wait before it returns.
	onSleep func(ctx context.Context, d time.Duration)
}

type serverConfig = server.Config

func start(t testing.TB) *fixture { return startWith(t, nil) }

func startWith(t testing.TB, configure func(c *serverConfig)) *fixture {
	t.Helper()
	f := &fixture{clock: clock.NewFake(t0)}
	f.env = authgatetest.Start(t, authgatetest.Options{Clock: f.clock, Configure: func(c *server.Config) {
		if configure != nil {
			configure(c)
		}
		// Record the refresher's waits instead of sleeping: the test reads
		// them to prove Retry-After was honoured.
		c.RefreshSleep = func(ctx context.Context, d time.Duration) error {
			f.mu.Lock()
			f.sleeps = append(f.sleeps, d)
			hook := f.onSleep
			f.mu.Unlock()
			if hook != nil {
				hook(ctx, d)
			}
			return ctx.Err()
		}
	}})
	return f
}

func (f *fixture) sb() *sandbox.Sandbox { return f.env.Server.Sandbox }

type grantedTokens struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	ExpiresIn    int    `json:"expires_in"`
	Scope        string `json:"scope"`
}

// grant obtains real sandbox tokens for provider with a consent preset and
// imports them, so each test starts from a known credential.
func (f *fixture) grant(t testing.TB, provider, account string, ttl int, scopes ...string) authgate.Credential {
	t.Helper()
	tok := f.grantRaw(t, provider, account, ttl, scopes...)
	exp := f.clock.Now().Add(time.Duration(tok.ExpiresIn) * time.Second)
	cred, err := f.env.Client.ImportCredential(context.Background(), authgate.ImportCredentialRequest{
		UserID: "user-1", Provider: provider, Subject: "sub-" + account, Email: account, Scopes: strings.Fields(tok.Scope),
		AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken, ExpiresAt: &exp,
	})
	if err != nil {
		t.Fatal(err)
	}
	f.sb().ResetCounters()
	return cred
}

// grantRaw runs the provider's consent and code exchange and returns the tokens.
func (f *fixture) grantRaw(t testing.TB, provider, account string, ttl int, scopes ...string) grantedTokens {
	t.Helper()
	if err := f.sb().SetConsent(provider, sandbox.Consent{Account: account, AccessTokenTTLSeconds: ttl}); err != nil {
		t.Fatal(err)
	}
	defer f.sb().ClearConsent(provider)
	c, _ := f.sb().DefaultClient(provider)
	base := f.env.URL + "/sandbox/" + provider
	auth, tokenURL := base+"/o/oauth2/v2/auth", base+"/token"
	if provider == "oidc" {
		auth, tokenURL = base+"/oauth2/auth", base+"/oauth2/token"
	}
	q := url.Values{"client_id": {c.ClientID}, "redirect_uri": {"http://127.0.0.1:9/cb"}, "response_type": {"code"}, "scope": {strings.Join(scopes, " ")},
		"state": {"state-0123456789"}, "access_type": {"offline"}}
	loc, err := sandbox.CompleteConsent(context.Background(), nil, auth+"?"+q.Encode(), sandbox.Choice{})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.PostForm(tokenURL, url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")}, "redirect_uri": {"http://127.0.0.1:9/cb"},
		"client_id": {c.ClientID}, "client_secret": {c.ClientSecret}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok grantedTokens
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || tok.RefreshToken == "" {
		t.Fatalf("sandbox tokens: %d %v %+v", resp.StatusCode, err, tok)
	}
	return tok
}

type tokenResult struct {
	status int
	body   map[string]any
	header http.Header
}

func (f *fixture) token(t testing.TB, hc *http.Client, id authgate.CredentialID, body string) tokenResult {
	req, _ := http.NewRequest("POST", f.env.URL+"/v1/credentials/"+string(id)+"/token", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+f.env.AdminKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		t.Error(err)
		return tokenResult{}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return tokenResult{status: resp.StatusCode, body: m, header: resp.Header}
}

func eventTypes(t testing.TB, f *fixture, id authgate.CredentialID) []string {
	page, err := f.env.Client.CredentialEvents(context.Background(), id, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range page.Events {
		out = append(out, string(e.Type))
	}
	return out
}

// TestThousandConcurrentRequestsOneRefresh: 1,000 concurrent token requests
// for one expired credential make exactly one provider refresh, and all
// 1,000 get the same new token.
func TestThousandConcurrentRequestsOneRefresh(t *testing.T) {
	t.Parallel()
	f := start(t)
	cred := f.grant(t, "google", "ann@acme.example", 0, "openid", "email", "https://www.googleapis.com/auth/drive.file")
	f.clock.Advance(time.Hour) // the access token is now expired
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 200, MaxConnsPerHost: 200}}
	const n = 1000
	var wg sync.WaitGroup
	results := make([]tokenResult, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = f.token(t, hc, cred.ID, `{"min_valid_seconds":300}`)
		}()
	}
	wg.Wait()
	first := results[0].body["access_token"]
	for i, r := range results {
		if r.status != 200 || r.body["access_token"] != first {
			t.Fatalf("request %d: %d %v; want the same new token as request 0", i, r.status, r.body)
		}
	}
	if first == nil || results[0].body["fingerprint"] == cred.AccessTokenFingerprint {
		t.Fatal("the token was not refreshed")
	}
	if c := f.sb().Counters()["google"]; c.Refreshes != 1 {
		t.Fatalf("sandbox saw %d refreshes; want exactly 1", c.Refreshes)
	}
	got, _ := f.env.Client.Credential(context.Background(), cred.ID)
	if got.Version != cred.Version+1 || got.RefreshTokenFingerprint != cred.RefreshTokenFingerprint || got.Status != authgate.CredentialStatusActive {
		t.Fatalf("after refresh %+v", got)
	}
}

// TestRotatingServerNoReuse: against the rotating server with reuse
// detection, 10,000 token requests at concurrency 200 over many expiries
// never present a retired refresh token.
func TestRotatingServerNoReuse(t *testing.T) {
	t.Parallel()
	f := start(t)
	cred := f.grant(t, "oidc", "rosa@example.com", 400, "openid", "offline_access", "profile")
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 200, MaxConnsPerHost: 200}}
	const total, workers = 10000, 200
	var wg sync.WaitGroup
	var mu sync.Mutex
	next, failures := 0, 0
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				if i > 0 && i%250 == 0 {
					f.clock.Advance(60 * time.Second) // an expiry every ~2 advances
				}
				mu.Unlock()
				if i >= total {
					return
				}
				if r := f.token(t, hc, cred.ID, ""); r.status != 200 {
					mu.Lock()
					failures++
					mu.Unlock()
					t.Errorf("request %d: %d %v", i, r.status, r.body)
					return
				}
			}
		}()
	}
	wg.Wait()
	c := f.sb().Counters()["oidc"]
	if c.ReuseDetected != 0 || failures != 0 {
		t.Fatalf("reuse detections %d, failures %d", c.ReuseDetected, failures)
	}
	if c.Refreshes < 8 {
		t.Fatalf("only %d refreshes: the test did not cross many expiries", c.Refreshes)
	}
	got, _ := f.env.Client.Credential(context.Background(), cred.ID)
	if got.Status != authgate.CredentialStatusActive {
		t.Fatalf("credential %s after the run", got.Status)
	}
	for fp, n := range c.RefreshesByToken {
		if n != 1 {
			t.Fatalf("refresh token %s presented %d times", fp, n)
		}
	}
	t.Logf("%d refreshes over %d requests", c.Refreshes, total)
}

// TestRevocationIsAStateChange: a revoked grant answers reauth_required with
// a reconnect link after exactly one refresh attempt, and stays so.
func TestRevocationIsAStateChange(t *testing.T) {
	t.Parallel()
	f := start(t)
	cred := f.grant(t, "google", "rev@acme.example", 0, "openid", "https://www.googleapis.com/auth/drive.file")
	if err := f.sb().InjectFault(sandbox.Fault{Provider: "google", Fault: "revoke", Account: "rev@acme.example"}); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Hour)
	for range 3 {
		r := f.token(t, http.DefaultClient, cred.ID, "")
		if r.status != 409 || r.body["type"] != "reauth_required" || !strings.Contains(fmt.Sprint(r.body["reconnect_url"]), "/connect/cs_") || r.body["agent_hint"] == nil {
			t.Fatalf("token after revocation: %d %v", r.status, r.body)
		}
	}
	if c := f.sb().Counters()["google"]; c.Refreshes != 1 {
		t.Fatalf("%d refresh attempts; want exactly 1 (no retry storm)", c.Refreshes)
	}
	got, _ := f.env.Client.Credential(context.Background(), cred.ID)
	if got.Status != authgate.CredentialStatusReauthRequired || got.StatusReason != authgate.StatusReasonInvalidGrant {
		t.Fatalf("status %s (%s)", got.Status, got.StatusReason)
	}
	ev := eventTypes(t, f, cred.ID)
	if strings.Join(ev[len(ev)-3:], ",") != "refresh_failed,revoked_detected,reauth_required_set" {
		t.Fatalf("events %v", ev)
	}
}

// TestBurstsAreRetried: 5xx and 429 bursts end in success with no state
// change; Retry-After is honoured.
func TestBurstsAreRetried(t *testing.T) {
	t.Parallel()
	f := start(t)
	cred := f.grant(t, "google", "bea@acme.example", 0, "openid")
	f.clock.Advance(time.Hour)
	if err := f.sb().InjectFault(sandbox.Fault{Provider: "google", Fault: "server_error", Count: 2, Target: "token"}); err != nil {
		t.Fatal(err)
	}
	if r := f.token(t, http.DefaultClient, cred.ID, ""); r.status != 200 {
		t.Fatalf("after a 5xx burst: %d %v", r.status, r.body)
	}
	if c := f.sb().Counters()["google"]; c.Refreshes != 3 {
		t.Fatalf("%d refresh calls; want 3 (2 failures, 1 success)", c.Refreshes)
	}
	got, _ := f.env.Client.Credential(context.Background(), cred.ID)
	if got.Status != authgate.CredentialStatusActive {
		t.Fatalf("status changed: %s", got.Status)
	}
	ev := eventTypes(t, f, cred.ID)
	if strings.Join(ev[len(ev)-3:], ",") != "refresh_failed,refresh_failed,refresh_succeeded" {
		t.Fatalf("events %v", ev)
	}

	f.mu.Lock()
	f.sleeps = nil
	f.mu.Unlock()
	f.clock.Advance(time.Hour)
	if err := f.sb().InjectFault(sandbox.Fault{Provider: "google", Fault: "rate_limit", Count: 2, RetryAfterSeconds: 7, Target: "token"}); err != nil {
		t.Fatal(err)
	}
	if r := f.token(t, http.DefaultClient, cred.ID, ""); r.status != 200 {
		t.Fatalf("after a 429 burst: %d %v", r.status, r.body)
	}
	f.mu.Lock()
	sleeps := append([]time.Duration(nil), f.sleeps...)
	f.mu.Unlock()
	if len(sleeps) != 2 || sleeps[0] < 7*time.Second || sleeps[1] < 7*time.Second {
		t.Fatalf("waits %v; want two waits of at least Retry-After (7s)", sleeps)
	}
	// A Retry-After beyond what a caller should wait ends the request with it.
	f.clock.Advance(time.Hour)
	if err := f.sb().InjectFault(sandbox.Fault{Provider: "google", Fault: "rate_limit", Count: 1, RetryAfterSeconds: 120, Target: "token"}); err != nil {
		t.Fatal(err)
	}
	r := f.token(t, http.DefaultClient, cred.ID, "")
	if r.status != 429 || r.body["type"] != "rate_limited" || r.body["retry_after"] != float64(120) || r.header.Get("Retry-After") != "120" {
		t.Fatalf("long Retry-After: %d %v %v", r.status, r.body, r.header)
	}
	if got, _ := f.env.Client.Credential(context.Background(), cred.ID); got.Status != authgate.CredentialStatusActive {
		t.Fatal("a rate limit changed the credential's state")
	}
}

// TestClockSkewDetected: a provider clock 10 minutes ahead is measured and
// reported on the credential.
func TestClockSkewDetected(t *testing.T) {
	t.Parallel()
	f := start(t)
	cred := f.grant(t, "google", "sky@acme.example", 0, "openid")
	if err := f.sb().InjectFault(sandbox.Fault{Provider: "google", Fault: "clock_offset", OffsetSeconds: 600}); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Hour)
	if r := f.token(t, http.DefaultClient, cred.ID, ""); r.status != 200 {
		t.Fatalf("token %d %v", r.status, r.body)
	}
	got, _ := f.env.Client.Credential(context.Background(), cred.ID)
	if got.ClockSkewSeconds == nil || *got.ClockSkewSeconds != 600 {
		t.Fatalf("clock skew %v; want 600", got.ClockSkewSeconds)
	}
	if !strings.Contains(f.env.Logs.String(), `"msg":"provider clock skew"`) {
		t.Fatal("no warning logged for a 10-minute skew")
	}
}

func TestFreshTokenIsServedWithoutRefresh(t *testing.T) {
	t.Parallel()
	f := start(t)
	cred := f.grant(t, "google", "fay@acme.example", 0, "openid")
	for range 3 {
		if r := f.token(t, http.DefaultClient, cred.ID, `{"min_valid_seconds":600}`); r.status != 200 || r.body["fingerprint"] != cred.AccessTokenFingerprint {
			t.Fatalf("fresh token %d %v", r.status, r.body)
		}
	}
	if c := f.sb().Counters()["google"]; c.Refreshes != 0 {
		t.Fatalf("%d refreshes for a fresh token", c.Refreshes)
	}
	// Serving records the use, at most once a minute, flushed in batches.
	f.env.Server.Refresher.FlushUses(context.Background())
	used, _ := f.env.Client.Credential(context.Background(), cred.ID)
	if used.LastUsedAt == nil || !used.LastUsedAt.Equal(f.clock.Now()) || used.Version != cred.Version {
		t.Fatalf("last_used_at %v version %d; want now and an unchanged version", used.LastUsedAt, used.Version)
	}
	f.clock.Advance(30 * time.Second)
	f.token(t, http.DefaultClient, cred.ID, "")
	f.env.Server.Refresher.FlushUses(context.Background())
	if again, _ := f.env.Client.Credential(context.Background(), cred.ID); !again.LastUsedAt.Equal(*used.LastUsedAt) {
		t.Fatal("last_used_at rewritten within a minute")
	}
	f.clock.Advance(31 * time.Second)
	f.token(t, http.DefaultClient, cred.ID, "")
	f.env.Server.Refresher.FlushUses(context.Background())
	if again, _ := f.env.Client.Credential(context.Background(), cred.ID); !again.LastUsedAt.Equal(f.clock.Now()) {
		t.Fatalf("last_used_at %v after a minute; want %v", again.LastUsedAt, f.clock.Now())
	}
	// A window no Google token can meet: the fresh token, said so, and no
	// refresh (it is in the first half of its life).
	if r := f.token(t, http.DefaultClient, cred.ID, `{"min_valid_seconds":7200}`); r.status != 200 || r.body["min_valid_met"] != false || r.body["fingerprint"] != cred.AccessTokenFingerprint {
		t.Fatalf("impossible window: %d %v", r.status, r.body)
	}
	if c := f.sb().Counters()["google"]; c.Refreshes != 0 {
		t.Fatalf("%d refreshes for a window no token meets", c.Refreshes)
	}
	for _, body := range []string{`{"min_valid_seconds":-1}`, `{"actions":["drive.explode"]}`, `{"min_valid_seconds":"soon"}`, `{"max_wait_seconds":0}`, `{"max_wait_seconds":-2}`, `{"max_wait_seconds":7200}`} {
		if r := f.token(t, http.DefaultClient, cred.ID, body); r.status != 400 {
			t.Errorf("bad body %s: %d", body, r.status)
		}
	}
}

// TestDifferentWindows: concurrent callers with different windows on a token
// that satisfies only some of them are all served, with one refresh.
func TestDifferentWindows(t *testing.T) {
	t.Parallel()
	f := start(t)
	cred := f.grant(t, "google", "win@acme.example", 0, "openid")
	f.clock.Advance(50 * time.Minute) // 599 s left
	var wg sync.WaitGroup
	results := make([]tokenResult, 40)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := `{"min_valid_seconds":300}`
			if i%2 == 1 {
				body = `{"min_valid_seconds":1800}`
			}
			results[i] = f.token(t, http.DefaultClient, cred.ID, body)
		}()
	}
	wg.Wait()
	for i, r := range results {
		if r.status != 200 {
			t.Fatalf("request %d: %d %v", i, r.status, r.body)
		}
	}
	if c := f.sb().Counters()["google"]; c.Refreshes != 1 {
		t.Fatalf("%d refreshes; want exactly 1", c.Refreshes)
	}
}

// BenchmarkTokenFresh is the hot path: the stored token is fresh.
func BenchmarkTokenFresh(b *testing.B) {
	f := start(b)
	cred := f.grant(b, "google", "hot@acme.example", 0, "openid")
	b.Run("in-process", func(b *testing.B) {
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := f.env.Server.Refresher.Token(ctx, refresh.Request{TenantID: cred.TenantID, ID: cred.ID}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("http", func(b *testing.B) {
		hc := &http.Client{}
		b.ReportAllocs()
		for b.Loop() {
			if r := f.token(b, hc, cred.ID, ""); r.status != 200 {
				b.Fatal(r.status)
			}
		}
	})
}

// TestProactiveIgnoresImportLifetime: a token imported with 15 minutes
// left looks 15 minutes long (its lifetime is estimated from the import),
// so 6 minutes later an ordinary 10-minute window is capped at 7.5 minutes
// and the token, 9 minutes from expiry, is served without a refresh; the planner's proactive request is not capped by that
// guess and refreshes once; after the refresh the lifetime is known (an
// hour) and a second proactive request refreshes nothing.
func TestProactiveIgnoresImportLifetime(t *testing.T) {
	t.Parallel()
	f := start(t)
	ctx := context.Background()
	tok := f.grantRaw(t, "google", "pro@acme.example", 3600, "openid", "email")
	exp := f.clock.Now().Add(15 * time.Minute) // as if issued 45 minutes before the import
	cred, err := f.env.Client.ImportCredential(ctx, authgate.ImportCredentialRequest{UserID: "pro", Provider: "google", Subject: "sub-pro",
		Scopes: strings.Fields(tok.Scope), AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken, ExpiresAt: &exp})
	if err != nil {
		t.Fatal(err)
	}
	f.sb().ResetCounters()
	f.clock.Advance(6 * time.Minute) // the planner's time: 9 minutes left, 4 before the 5-minute safety window
	r := f.env.Server.Refresher
	req := refresh.Request{TenantID: cred.TenantID, ID: cred.ID, MinValid: 10 * time.Minute}
	got, err := r.Token(ctx, req)
	if err != nil || got.Refreshed || f.sb().Counters()["google"].Refreshes != 0 {
		t.Fatalf("ordinary request: refreshed %v, %d refreshes, %v; want the stored token (window capped)", got != nil && got.Refreshed, f.sb().Counters()["google"].Refreshes, err)
	}
	req.Proactive = true
	got, err = r.Token(ctx, req)
	if err != nil || !got.Refreshed || f.sb().Counters()["google"].Refreshes != 1 {
		t.Fatalf("proactive request: refreshed %v, %d refreshes, %v; want one refresh", got != nil && got.Refreshed, f.sb().Counters()["google"].Refreshes, err)
	}
	if left := got.ExpiresAt.Sub(f.clock.Now()); left < 59*time.Minute {
		t.Fatalf("the refreshed token has %v left; want the hour the provider gave", left)
	}
	got, err = r.Token(ctx, req)
	if err != nil || got.Refreshed || f.sb().Counters()["google"].Refreshes != 1 {
		t.Fatalf("second proactive request: refreshed %v, %d refreshes, %v; want none", got != nil && got.Refreshed, f.sb().Counters()["google"].Refreshes, err)
	}
}
