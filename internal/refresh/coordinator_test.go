package refresh_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/internal/refresh"
	"github.com/authgate/authgate/internal/storage"
	"github.com/authgate/authgate/sandbox"
)

// oidcCred is a credential at the sandbox's rotating server (strict
// rotation, reuse revokes the family) whose access token lasts ttl seconds.
func (f *fixture) oidcCred(t *testing.T, account string, ttl int) authgate.Credential {
	t.Helper()
	return f.grant(t, "oidc", account, ttl, "openid", "offline_access", "profile")
}

func (f *fixture) assertHealthy(t *testing.T, id authgate.CredentialID) sandbox.Counters {
	t.Helper()
	c := f.sb().Counters()["oidc"]
	if c.ReuseDetected != 0 {
		t.Fatalf("the provider detected %d refresh-token reuses", c.ReuseDetected)
	}
	for fp, n := range c.RefreshesByToken {
		if n != 1 {
			t.Fatalf("refresh token %s presented %d times", fp, n)
		}
	}
	got, err := f.env.Client.Credential(context.Background(), id)
	if err != nil || got.Status != authgate.CredentialStatusActive {
		t.Fatalf("credential after the run: %+v %v", got, err)
	}
	return c
}

// startHoldingFirstRefresh starts a server whose first refresh request to
// the rotating provider is held at the transport: sent is closed when it is
// on its way, and it goes out when the test closes proceed. Races become
// deterministic.
func startHoldingFirstRefresh(t *testing.T) (f *fixture, sent, proceed chan struct{}) {
	sent, proceed = make(chan struct{}), make(chan struct{})
	var once sync.Once
	f = startWith(t, func(c *serverConfig) {
		c.Transport = roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if strings.HasSuffix(r.URL.Path, "/oauth2/token") {
				first := false
				once.Do(func() { first = true; close(sent) })
				if first {
					<-proceed
				}
			}
			return http.DefaultTransport.RoundTrip(r)
		})
	})
	return f, sent, proceed
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func concurrently(n int, fn func(i int)) {
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() { defer wg.Done(); fn(i) }()
	}
	wg.Wait()
}

// TestMixedWindowsOneFlight: 300 concurrent callers asking for windows
// between 299 and 309 s on an expiring credential of a rotating provider
// make exactly one provider refresh between them, and all are served.
func TestMixedWindowsOneFlight(t *testing.T) {
	t.Parallel()
	f := start(t)
	cred := f.oidcCred(t, "mix@example.com", 3600)
	f.clock.Advance(3600*time.Second - 304*time.Second) // 304 s left (less Hydra's one second)
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 300, MaxConnsPerHost: 300}}
	results := make([]tokenResult, 300)
	concurrently(300, func(i int) {
		results[i] = f.token(t, hc, cred.ID, fmt.Sprintf(`{"min_valid_seconds":%d}`, 299+i%11))
	})
	for i, r := range results {
		if r.status != 200 || r.body["min_valid_met"] != true {
			t.Fatalf("caller %d: %d %v", i, r.status, r.body)
		}
	}
	c := f.assertHealthy(t, cred.ID)
	if c.Refreshes != 1 {
		t.Fatalf("%d provider refreshes; want exactly 1", c.Refreshes)
	}
}

// TestSlowProviderIsWaitedFor: a refresh answered after 12 s (longer than
// the old 10 s call timeout) is waited for, never retried with the same
// refresh token: the credential stays active and the provider sees no reuse.
func TestSlowProviderIsWaitedFor(t *testing.T) {
	t.Parallel()
	f := start(t)
	cred := f.oidcCred(t, "slow@example.com", 3600)
	f.clock.Advance(time.Hour)
	if err := f.sb().InjectFault(sandbox.Fault{Provider: "oidc", Fault: "latency", LatencyMS: 12000, Count: 1, Target: "token"}); err != nil {
		t.Fatal(err)
	}
	// One caller gives up early; the others wait. The refresh is theirs.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := f.env.Server.Refresher.Token(ctx, refresh.Request{TenantID: cred.TenantID, ID: cred.ID}); err == nil {
		t.Fatal("an impatient caller was served before the provider answered")
	}
	results := make([]tokenResult, 5)
	concurrently(5, func(i int) { results[i] = f.token(t, http.DefaultClient, cred.ID, "") })
	for i, r := range results {
		if r.status != 200 {
			t.Fatalf("caller %d: %d %v", i, r.status, r.body)
		}
	}
	if c := f.assertHealthy(t, cred.ID); c.Refreshes != 1 {
		t.Fatalf("%d refreshes; want 1", c.Refreshes)
	}
}

// TestRefreshInDoubtIsNotRetried: when the token call times out after the
// request was sent to a rotating provider, the refresh token is not
// presented again while the first request may still land: callers get a
// transient error with a Retry-After and the credential stays active.
func TestRefreshInDoubtIsNotRetried(t *testing.T) {
	t.Parallel()
	f := startWith(t, func(c *serverConfig) { c.RefreshCallTimeout = 300 * time.Millisecond })
	cred := f.oidcCred(t, "doubt@example.com", 3600)
	f.clock.Advance(time.Hour)
	if err := f.sb().InjectFault(sandbox.Fault{Provider: "oidc", Fault: "latency", LatencyMS: 1500, Count: 1, Target: "token"}); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		r := f.token(t, http.DefaultClient, cred.ID, "")
		if r.status != 502 || r.body["type"] != "transient" || r.body["retry_after"] == nil {
			t.Fatalf("request %d in doubt: %d %v", i, r.status, r.body)
		}
	}
	c := f.sb().Counters()["oidc"]
	if c.Refreshes != 1 || c.ReuseDetected != 0 {
		t.Fatalf("refreshes %d, reuse %d; want one attempt and no reuse", c.Refreshes, c.ReuseDetected)
	}
	got, _ := f.env.Client.Credential(context.Background(), cred.ID)
	if got.Status != authgate.CredentialStatusActive {
		t.Fatalf("credential %s", got.Status)
	}
}

// TestLeaseTakeoverAfterHolderDies: a lease left by a dead process (never
// renewed, never released) is taken over once it expires: one lease period,
// not the old 30 s.
func TestLeaseTakeoverAfterHolderDies(t *testing.T) {
	t.Parallel()
	f := start(t)
	cred := f.oidcCred(t, "dead@example.com", 3600)
	f.clock.Advance(time.Hour)
	now := f.clock.Now()
	got, err := f.env.Server.Store.CredentialLeaseAcquire(context.Background(), storage.CredentialLeaseParams{ID: cred.ID, Holder: "dead-process/flight", Now: now, Until: now.Add(3 * time.Second)})
	if err != nil || !got {
		t.Fatalf("plant a dead holder's lease: %v %v", got, err)
	}
	res := make(chan tokenResult, 1)
	go func() { res <- f.token(t, http.DefaultClient, cred.ID, "") }()
	select {
	case r := <-res:
		t.Fatalf("served while another holder's lease is live: %d %v", r.status, r.body)
	case <-time.After(300 * time.Millisecond):
	}
	f.clock.Advance(3 * time.Second) // the dead holder's lease expires
	if r := <-res; r.status != 200 {
		t.Fatalf("after the lease expired: %d %v", r.status, r.body)
	}
	if c := f.assertHealthy(t, cred.ID); c.Refreshes != 1 {
		t.Fatalf("%d refreshes", c.Refreshes)
	}
}

// TestShutdownWaitsForAbandonedRefresh: a refresh whose only caller gave up
// still commits before the refresher closes, so the rotated refresh token is
// not lost to the next process.
func TestShutdownWaitsForAbandonedRefresh(t *testing.T) {
	t.Parallel()
	f := start(t)
	cred := f.oidcCred(t, "bye@example.com", 3600)
	f.clock.Advance(time.Hour)
	if err := f.sb().InjectFault(sandbox.Fault{Provider: "oidc", Fault: "latency", LatencyMS: 800, Count: 1, Target: "token"}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := f.env.Server.Refresher.Token(ctx, refresh.Request{TenantID: cred.TenantID, ID: cred.ID}); err == nil {
		t.Fatal("served before the provider answered")
	}
	if err := f.env.Server.Refresher.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	got, _ := f.env.Client.Credential(context.Background(), cred.ID)
	if got.RefreshTokenFingerprint == cred.RefreshTokenFingerprint || got.Status != authgate.CredentialStatusActive {
		t.Fatalf("after shutdown the rotated refresh token was not stored: %+v", got)
	}
	if evs := eventTypes(t, f, cred.ID); !strings.Contains(strings.Join(evs, ","), "refresh_succeeded") {
		t.Fatalf("events %v", evs)
	}
}

// TestInvalidGrantAfterReconnectIsARace: invalid_grant for a refresh token
// that is no longer the stored one (a reconnect landed while the call was in
// flight) is a race lost, not a revocation: the refresher starts over with
// the new token and the credential stays active.
func TestInvalidGrantAfterReconnectIsARace(t *testing.T) {
	t.Parallel()
	// The first refresh request is held at the transport until the
	// reconnect has landed: the race, made deterministic.
	f, sent, proceed := startHoldingFirstRefresh(t)
	cred := f.oidcCred(t, "race@example.com", 3600)
	f.clock.Advance(time.Hour)
	fresh := f.grantRaw(t, "oidc", "race@example.com", 3600, "openid", "offline_access", "profile")
	res := make(chan tokenResult, 1)
	go func() { res <- f.token(t, http.DefaultClient, cred.ID, "") }()
	// While that refresh is in flight, the user reconnects (new tokens for
	// the same account land in the same credential).
	<-sent
	exp := f.clock.Now().Add(time.Hour)
	if _, err := f.env.Client.ImportCredential(context.Background(), authgate.ImportCredentialRequest{UserID: "user-1", Provider: "oidc", Subject: "sub-race@example.com",
		Email: "race@example.com", Scopes: strings.Fields(fresh.Scope), AccessToken: fresh.AccessToken, RefreshToken: fresh.RefreshToken, ExpiresAt: &exp}); err != nil {
		t.Fatal(err)
	}
	if err := f.sb().InjectFault(sandbox.Fault{Provider: "oidc", Fault: "invalid_grant_next", Count: 1}); err != nil {
		t.Fatal(err)
	}
	close(proceed)
	if r := <-res; r.status != 200 {
		dumpEvents(t, f, cred.ID)
		t.Fatalf("token: %d %v", r.status, r.body)
	}
	got, _ := f.env.Client.Credential(context.Background(), cred.ID)
	if got.Status != authgate.CredentialStatusActive {
		t.Fatalf("status %s %s; a race is not a revocation", got.Status, got.StatusReason)
	}
}

// TestNoRefreshToken: an expired token without a refresh token is
// reauth_required (no_refresh_token), after no provider call.
func TestNoRefreshToken(t *testing.T) {
	t.Parallel()
	f := start(t)
	exp := f.clock.Now().Add(time.Minute)
	cred, err := f.env.Client.ImportCredential(context.Background(), authgate.ImportCredentialRequest{UserID: "u-nort", Provider: "google", Subject: "sub-nort",
		Email: "nort@acme.example", Scopes: []string{"openid"}, AccessToken: "ya29.no-refresh-token-here", ExpiresAt: &exp})
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(2 * time.Minute)
	r := f.token(t, http.DefaultClient, cred.ID, "")
	if r.status != 409 || r.body["type"] != "reauth_required" {
		t.Fatalf("%d %v", r.status, r.body)
	}
	got, _ := f.env.Client.Credential(context.Background(), cred.ID)
	if got.StatusReason != authgate.StatusReasonNoRefreshToken || f.sb().Counters()["google"].Refreshes != 0 {
		t.Fatalf("reason %s, refreshes %d", got.StatusReason, f.sb().Counters()["google"].Refreshes)
	}
}

// TestRejectedTokenReports: 100 workers reporting that the provider rejected
// the same access token make one refresh; a report about a token that is no
// longer the stored one returns the stored one without a refresh.
func TestRejectedTokenReports(t *testing.T) {
	t.Parallel()
	f := start(t)
	cred := f.oidcCred(t, "rej@example.com", 3600)
	body := fmt.Sprintf(`{"rejected_fingerprint":%q}`, cred.AccessTokenFingerprint)
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 100}}
	results := make([]tokenResult, 100)
	concurrently(100, func(i int) { results[i] = f.token(t, hc, cred.ID, body) })
	for i, r := range results {
		if r.status != 200 || r.body["fingerprint"] == cred.AccessTokenFingerprint || r.body["access_token"] != results[0].body["access_token"] {
			t.Fatalf("worker %d: %d %v", i, r.status, r.body)
		}
	}
	if c := f.assertHealthy(t, cred.ID); c.Refreshes != 1 {
		t.Fatalf("%d refreshes for one rejection; want 1", c.Refreshes)
	}
	// A late report of the old token: the newer one, no refresh.
	if r := f.token(t, hc, cred.ID, body); r.status != 200 || r.body["access_token"] != results[0].body["access_token"] {
		t.Fatalf("late report: %d %v", r.status, r.body)
	}
	if r := f.token(t, hc, cred.ID, `{"rejected_fingerprint":"not-a-fp"}`); r.status != 400 {
		t.Fatalf("malformed fingerprint: %d", r.status)
	}
	if c := f.sb().Counters()["oidc"]; c.Refreshes != 1 {
		t.Fatalf("%d refreshes after a late report", c.Refreshes)
	}
}

// TestShortLivedTokensDefaultWindow: 5-minute tokens (Keycloak's default)
// with the default 5-minute window are served, and refreshed once per half
// lifetime rather than on every request.
func TestShortLivedTokensDefaultWindow(t *testing.T) {
	t.Parallel()
	f := start(t)
	cred := f.oidcCred(t, "kc@example.com", 300)
	for range 20 {
		r := f.token(t, http.DefaultClient, cred.ID, "")
		if r.status != 200 {
			t.Fatalf("%d %v", r.status, r.body)
		}
		f.clock.Advance(15 * time.Second) // 20 requests over 5 minutes
	}
	c := f.assertHealthy(t, cred.ID)
	if c.Refreshes < 1 || c.Refreshes > 3 {
		t.Fatalf("%d refreshes over 5 minutes of 5-minute tokens; want about 2", c.Refreshes)
	}
	// A window longer than the token's life: the freshest token, said so,
	// without a provider call.
	f.token(t, http.DefaultClient, cred.ID, "")
	before := f.sb().Counters()["oidc"].Refreshes
	r := f.token(t, http.DefaultClient, cred.ID, `{"min_valid_seconds":3600}`)
	if r.status != 200 || r.body["min_valid_met"] != false {
		t.Fatalf("window beyond the lifetime: %d %v", r.status, r.body)
	}
	if after := f.sb().Counters()["oidc"].Refreshes; after != before {
		t.Fatalf("a window the provider cannot meet made %d refreshes", after-before)
	}
}

// TestRevokedElsewhereIsSeen: a credential disconnected through another
// route stops being served from memory at once.
func TestDisconnectStopsServing(t *testing.T) {
	t.Parallel()
	f := start(t)
	cred := f.oidcCred(t, "gone@example.com", 3600)
	if r := f.token(t, http.DefaultClient, cred.ID, ""); r.status != 200 {
		t.Fatal(r.status)
	}
	if _, err := f.env.Client.DeleteCredential(context.Background(), cred.ID); err != nil {
		t.Fatal(err)
	}
	if r := f.token(t, http.DefaultClient, cred.ID, ""); r.status != 409 {
		t.Fatalf("token after disconnect: %d %v", r.status, r.body)
	}
}

func dumpEvents(t *testing.T, f *fixture, id authgate.CredentialID) {
	page, _ := f.env.Client.CredentialEvents(context.Background(), id, 0)
	for _, e := range page.Events {
		t.Logf("%s %s %s", e.Type, e.Actor, e.Details)
	}
}

// TestTakeoverAfterLostRotation: a process died after the provider rotated
// the refresh token but before storing the answer. The process taking over
// its lease asks the provider (RFC 7662) before presenting the stored token,
// finds it retired, and marks the credential reauth_required without
// presenting it: no reuse detection, no revoked family.
func TestTakeoverAfterLostRotation(t *testing.T) {
	t.Parallel()
	f := start(t)
	tok := f.grantRaw(t, "oidc", "lost@example.com", 3600, "openid", "offline_access", "profile")
	exp := f.clock.Now().Add(time.Hour)
	cred, err := f.env.Client.ImportCredential(context.Background(), authgate.ImportCredentialRequest{UserID: "user-1", Provider: "oidc", Subject: "sub-lost",
		Email: "lost@example.com", Scopes: strings.Fields(tok.Scope), AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken, ExpiresAt: &exp})
	if err != nil {
		t.Fatal(err)
	}
	// The dead process's refresh: it reached the provider, which rotated.
	c, _ := f.sb().DefaultClient("oidc")
	req, _ := http.NewRequest("POST", f.env.URL+"/sandbox/oidc/oauth2/token", strings.NewReader("grant_type=refresh_token&refresh_token="+tok.RefreshToken))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(c.ClientID, c.ClientSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("the lost refresh: %v %v", resp, err)
	}
	resp.Body.Close()
	now := f.clock.Now()
	if ok, err := f.env.Server.Store.CredentialLeaseAcquire(context.Background(), storage.CredentialLeaseParams{ID: cred.ID, Holder: "dead/flight", Now: now, Until: now.Add(time.Second)}); err != nil || !ok {
		t.Fatalf("plant the dead holder's lease: %v %v", ok, err)
	}
	f.clock.Advance(time.Hour) // its lease expired long ago; the token must be refreshed
	f.sb().ResetCounters()
	r := f.token(t, http.DefaultClient, cred.ID, "")
	if r.status != 409 || r.body["type"] != "reauth_required" || r.body["reconnect_url"] == nil {
		t.Fatalf("token after a lost rotation: %d %v", r.status, r.body)
	}
	if c := f.sb().Counters()["oidc"]; c.Refreshes != 0 || c.ReuseDetected != 0 {
		t.Fatalf("the retired refresh token was presented: %+v", c)
	}
	if evs := strings.Join(eventTypes(t, f, cred.ID), ","); !strings.Contains(evs, "reauth_required_set") {
		t.Fatalf("events %s", evs)
	}
}

// TestOtherTenantNeverWaitsOnAFlight: while tenant A's refresh is held at
// the provider, tenant B asking for A's credential id is told "not found" at
// once: it never joins A's flight, so timing reveals nothing.
func TestOtherTenantNeverWaitsOnAFlight(t *testing.T) {
	t.Parallel()
	f, sent, proceed := startHoldingFirstRefresh(t)
	cred := f.oidcCred(t, "tenant-a@example.com", 3600)
	f.clock.Advance(time.Hour)
	_, keyB, err := f.env.Server.Tenancy.CreateTenant(context.Background(), "tenant-b")
	if err != nil {
		t.Fatal(err)
	}
	res := make(chan tokenResult, 1)
	go func() { res <- f.token(t, http.DefaultClient, cred.ID, "") }()
	<-sent // A's flight is now waiting on the provider
	req, _ := http.NewRequest("POST", f.env.URL+"/v1/credentials/"+string(cred.ID)+"/token", strings.NewReader(`{}`))
	req.Header.Set("Authorization", "Bearer "+keyB.Reveal())
	req.Header.Set("Content-Type", "application/json")
	// Joining A's flight would block until proceed: the client gives up.
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		close(proceed)
		t.Fatalf("tenant B waited on tenant A's flight: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Fatalf("tenant B: %d; want 404", resp.StatusCode)
	}
	close(proceed)
	if r := <-res; r.status != 200 {
		t.Fatalf("tenant A: %d %v", r.status, r.body)
	}
}

// TestRejectingAFreshTokenIsRateLimited: a worker that reports every new
// token as rejected cannot make the refresher rotate in a loop: a token
// fetched under two seconds ago is not refreshed because of a report.
func TestRejectingAFreshTokenIsRateLimited(t *testing.T) {
	t.Parallel()
	f := start(t)
	cred := f.oidcCred(t, "loop@example.com", 3600)
	r := f.token(t, http.DefaultClient, cred.ID, fmt.Sprintf(`{"rejected_fingerprint":%q}`, cred.AccessTokenFingerprint))
	if r.status != 200 {
		t.Fatalf("first report: %d %v", r.status, r.body)
	}
	fresh := r.body["fingerprint"].(string)
	r = f.token(t, http.DefaultClient, cred.ID, fmt.Sprintf(`{"rejected_fingerprint":%q}`, fresh))
	if r.status != 502 || r.body["type"] != "transient" || r.body["retry_after"] == nil {
		t.Fatalf("report of a token fetched just now: %d %v", r.status, r.body)
	}
	if c := f.sb().Counters()["oidc"]; c.Refreshes != 1 {
		t.Fatalf("%d refreshes; want 1", c.Refreshes)
	}
	f.clock.Advance(3 * time.Second)
	if r := f.token(t, http.DefaultClient, cred.ID, fmt.Sprintf(`{"rejected_fingerprint":%q}`, fresh)); r.status != 200 || r.body["fingerprint"] == fresh {
		t.Fatalf("report after the cooldown: %d %v", r.status, r.body)
	}
	f.assertHealthy(t, cred.ID)
}
