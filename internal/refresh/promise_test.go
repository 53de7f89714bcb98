package refresh_test

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/internal/catalog"
	"github.com/authgate/authgate/internal/refresh"
	"github.com/authgate/authgate/internal/storage"
	"github.com/authgate/authgate/sandbox"
)

// startRecordingRefreshes starts a server whose provider token calls are
// timed on the fake clock.
func startRecordingRefreshes(t *testing.T) (*fixture, func() []time.Time) {
	var mu sync.Mutex
	var at []time.Time
	var f *fixture
	f = startWith(t, func(c *serverConfig) {
		c.Transport = roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if r.URL.Path == "/sandbox/oidc/oauth2/token" || r.URL.Path == "/sandbox/google/token" {
				mu.Lock()
				at = append(at, f.clock.Now())
				mu.Unlock()
			}
			return http.DefaultTransport.RoundTrip(r)
		})
	})
	return f, func() []time.Time {
		mu.Lock()
		defer mu.Unlock()
		return append([]time.Time(nil), at...)
	}
}

// apiStatus uses an access token at the sandbox oidc's protected resource.
func (f *fixture) apiStatus(t *testing.T, token string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", f.env.URL+"/sandbox/oidc/api/me", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func window(t *testing.T, f *fixture, id authgate.CredentialID, seconds string) tokenResult {
	t.Helper()
	r := f.token(t, http.DefaultClient, id, `{"min_valid_seconds":`+seconds+`}`)
	if r.status != 200 {
		t.Fatalf("window %s s: %d %v", seconds, r.status, r.body)
	}
	return r
}

// TestPromisesHoldOnRevokingProvider: on the sandbox oidc, which revokes the
// previous access token when it rotates, a refresh that would break a
// promise waits (on the fake clock) until the last promise has run; while it
// waits, a caller whose window ends before the planned refresh gets the
// current token, one whose window crosses it gets the new token, and one
// whose deadline is too short for the wait gets the current token at once
// with min_valid_met false and the time it really has.
func TestPromisesHoldOnRevokingProvider(t *testing.T) {
	t.Parallel()
	f, refreshes := startRecordingRefreshes(t)
	cred := f.oidcCred(t, "promise@example.com", 20) // expires_in 19: expiry t0+19 s
	expiry := t0.Add(19 * time.Second)

	f.clock.Advance(11 * time.Second)
	c := window(t, f, cred.ID, "3") // promised until t0+14
	old := c.body["access_token"].(string)

	var (
		during              sync.Once
		e, shortHTTP        tokenResult
		short               *refresh.Token
		shortErr            error
		oldDuringWait       int
		crossing            = make(chan tokenResult, 1)
		sealedAt, waitStart time.Time
	)
	f.mu.Lock()
	f.onSleep = func(ctx context.Context, d time.Duration) {
		during.Do(func() {
			waitStart, sealedAt = f.clock.Now(), f.clock.Now().Add(d)
			oldDuringWait = f.apiStatus(t, old)
			e = window(t, f, cred.ID, "3") // ends t0+15: before the planned refresh
			sctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			short, shortErr = f.env.Server.Refresher.Token(sctx, refresh.Request{TenantID: cred.TenantID, ID: cred.ID, MinValid: 5 * time.Second})
			cancel()
			// The same over HTTP: the caller's deadline is max_wait_seconds.
			shortHTTP = f.token(t, http.DefaultClient, cred.ID, `{"min_valid_seconds":5,"max_wait_seconds":0.3}`)
			go func() { crossing <- f.token(t, http.DefaultClient, cred.ID, `{"min_valid_seconds":5}`) }()
		})
		f.clock.Advance(d)
	}
	f.mu.Unlock()

	f.clock.Advance(time.Second) // t0+12: 7 s left, a window of 8 needs a refresh
	b := window(t, f, cred.ID, "8")
	d := <-crossing

	f.mu.Lock()
	sleeps := append([]time.Duration(nil), f.sleeps...)
	f.mu.Unlock()
	if len(sleeps) != 1 {
		t.Fatalf("refresher waits %v; want exactly one (for the promises)", sleeps)
	}
	// The latest promise on the old token ran to t0+15 (e); the horizon is
	// pushed at most one chunk (a tenth of the 19 s lifetime) past it.
	lastPromise := t0.Add(15 * time.Second)
	if sealedAt.Before(lastPromise) || sealedAt.After(lastPromise.Add(1900*time.Millisecond)) {
		t.Fatalf("the refresh waited until %v; want between the last promise (%v) and one chunk after", sealedAt.Sub(t0), lastPromise.Sub(t0))
	}
	calls := refreshes()
	if len(calls) != 1 || calls[0].Before(sealedAt) {
		t.Fatalf("provider refreshes at %v; want one, not before the planned refresh at t0+%v", calls, sealedAt.Sub(t0))
	}
	if !waitStart.Equal(t0.Add(12 * time.Second)) {
		t.Fatalf("the wait started at t0+%v; want t0+12s", waitStart.Sub(t0))
	}
	if oldDuringWait != 200 {
		t.Fatalf("the promised token was refused (%d) while the refresh waited", oldDuringWait)
	}
	if e.body["access_token"] != old || e.body["min_valid_met"] != true {
		t.Fatalf("a window ending before the planned refresh: %v; want the current token, min_valid_met", e.body)
	}
	if shortErr != nil || short.AccessToken.Reveal() != old || short.MinValidMet || short.ExpiresAt == nil || !short.ExpiresAt.Equal(sealedAt) {
		t.Fatalf("a caller with a 300 ms deadline: %+v, %v; want the current token, min_valid_met false, expiring at the planned refresh t0+%v", short, shortErr, sealedAt.Sub(t0))
	}
	if shortHTTP.status != 200 || shortHTTP.body["access_token"] != old || shortHTTP.body["min_valid_met"] != false || shortHTTP.body["expires_at"] != sealedAt.UTC().Format(time.RFC3339Nano) {
		t.Fatalf("max_wait_seconds 0.3: %d %v; want the current token, min_valid_met false, expires_at %v", shortHTTP.status, shortHTTP.body, sealedAt)
	}
	if b.body["access_token"] == old || b.body["min_valid_met"] != true {
		t.Fatalf("the caller that needed the refresh got %v", b.body)
	}
	if d.status != 200 || d.body["access_token"] != b.body["access_token"] || d.body["min_valid_met"] != true {
		t.Fatalf("a window crossing the planned refresh: %d %v; want the new token", d.status, d.body)
	}
	// The provider really revokes: the old token is dead after the refresh.
	if got := f.apiStatus(t, old); got != http.StatusUnauthorized {
		t.Fatalf("the old token after the refresh: %d; want 401 (the sandbox oidc revokes it)", got)
	}
	if got := f.apiStatus(t, b.body["access_token"].(string)); got != 200 {
		t.Fatalf("the new token: %d", got)
	}
	if !expiry.After(sealedAt) {
		t.Fatalf("the planned refresh t0+%v is past the token's expiry", sealedAt.Sub(t0))
	}
	f.assertHealthy(t, cred.ID)
}

// TestNonRevokingProviderRefreshesAtOnce: Google does not revoke the previous
// access token, so promises are neither recorded nor waited for: the refresh
// goes out the moment a window needs it, as before.
func TestNonRevokingProviderRefreshesAtOnce(t *testing.T) {
	t.Parallel()
	f, refreshes := startRecordingRefreshes(t)
	cred := f.grant(t, "google", "plain@acme.example", 20, "openid")
	f.clock.Advance(11 * time.Second)
	c := window(t, f, cred.ID, "3")
	f.clock.Advance(time.Second)
	b := window(t, f, cred.ID, "9") // Google's expires_in is the full 20 s: 8 s left
	if b.body["access_token"] == c.body["access_token"] || b.body["min_valid_met"] != true {
		t.Fatalf("after the refresh: %v", b.body)
	}
	f.mu.Lock()
	sleeps := len(f.sleeps)
	f.mu.Unlock()
	if calls := refreshes(); sleeps != 0 || len(calls) != 1 || !calls[0].Equal(t0.Add(12*time.Second)) {
		t.Fatalf("waits %d, provider refreshes at %v; want no wait and one refresh at t0+12s", sleeps, calls)
	}
	// Nothing was recorded: an extend with a made-up token at version 0
	// creates the credential's row instead of finding one.
	got, err := f.env.Server.Store.CredentialPromiseExtend(context.Background(), storage.CredentialPromiseParams{ID: cred.ID, AccessFP: "zzzzzzzzzz", Version: 0, Until: t0})
	if err != nil || got.AccessFP != "zzzzzzzzzz" {
		t.Fatalf("promise row of a Google credential: %+v %v; want none", got, err)
	}
}

// countingStore is the server's real store, counting promise writes.
type countingStore struct {
	storage.Store
	storage.ChangeFeed
	extends atomic.Int64
}

func (s *countingStore) CredentialPromiseExtend(ctx context.Context, p storage.CredentialPromiseParams) (storage.CredentialPromise, error) {
	s.extends.Add(1)
	return s.Store.CredentialPromiseExtend(ctx, p)
}

// TestPromiseWritesAreRare: 2,000 requests for a 5-minute window over 20 s
// (fake clock) on a revoking provider's hour-long token record the promise
// in a handful of writes (the horizon grows in 5 s chunks), not one per
// request.
func TestPromiseWritesAreRare(t *testing.T) {
	t.Parallel()
	f := start(t)
	cred := f.oidcCred(t, "hot@example.com", 3600)
	o := catalog.Options{SandboxBase: f.env.URL, SandboxClients: map[string]catalog.Credentials{}}
	for _, name := range sandbox.ProviderNames {
		if id, secret, ok := sandbox.DefaultCredentials(name); ok {
			o.SandboxClients[name] = catalog.Credentials{ClientID: id, ClientSecret: secret}
		}
	}
	cat, err := catalog.Load(o)
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := cat.Get("oidc"); !p.RevokesAccessTokenOnRefresh {
		t.Fatal("the catalog's oidc does not say it revokes the previous access token")
	}
	store := &countingStore{Store: f.env.Server.Store, ChangeFeed: f.env.Server.Store.(storage.ChangeFeed)}
	r := refresh.New(refresh.Config{Store: store, Vault: f.env.Server.Vault, Providers: cat, Clock: f.clock})
	r.Start()
	t.Cleanup(func() { _ = r.Close(context.Background()) })
	const requests = 2000
	for range requests {
		tok, err := r.Token(context.Background(), refresh.Request{TenantID: cred.TenantID, ID: cred.ID, MinValid: 5 * time.Minute})
		if err != nil || !tok.MinValidMet || tok.Refreshed {
			t.Fatalf("token: %+v %v", tok, err)
		}
		f.clock.Advance(10 * time.Millisecond)
	}
	t.Logf("%d promise writes for %d requests over 20 s", store.extends.Load(), requests)
	if n := store.extends.Load(); n < 1 || n > 6 {
		t.Fatalf("%d promise writes for %d requests over 20 s; want between 1 and 6 (one per 5 s chunk)", n, requests)
	}
}

// BenchmarkTokenFreshRevoking is the hot path on a provider that revokes
// the previous access token: the promise is already recorded.
func BenchmarkTokenFreshRevoking(b *testing.B) {
	f := start(b)
	cred := f.grant(b, "oidc", "hotrev@example.com", 3600, "openid", "offline_access", "profile")
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.env.Server.Refresher.Token(ctx, refresh.Request{TenantID: cred.TenantID, ID: cred.ID}); err != nil {
			b.Fatal(err)
		}
	}
}
