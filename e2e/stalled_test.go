package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The stalled holder (issue 16): two `serve` processes on one database, the
// rotating sandbox `oidc` answering a refresh in 8 s. Process A sends the
// refresh and is then frozen for 6 s (SIGSTOP: a GC pause, a frozen
// container, a VM migration), or killed. A's lease (3 s) runs out while its
// request is still at the provider; B's callers keep asking for a refresh.
// B must never present the same refresh token while A's request may still
// land: the provider sees no reuse and no refresh token twice, and the
// credential stays usable (killed: it may end reauth_required, but only
// with introspection's proof that A's request rotated it).
//
// Token calls time out after 10 s (AUTHGATE_REFRESH_CALL_TIMEOUT): short, so
// the killed variant's wait for A's request deadline (3 s + 10 s + 5 s) stays
// short, with 2 s of room over the 8 s answer for a loaded machine.

const (
	stallLatency = 8 * time.Second
	stallFreeze  = 6 * time.Second
	stallTimeout = "10s"
)

func TestStalledHolderFrozenSQLite(t *testing.T) {
	t.Parallel()
	stalledHolder(t, false)
}

func TestStalledHolderKilledSQLite(t *testing.T) {
	t.Parallel()
	stalledHolder(t, true)
}

func TestStalledHolderFrozenPostgres(t *testing.T) {
	t.Parallel()
	if os.Getenv("AUTHGATE_TEST_POSTGRES") == "" {
		t.Skip("AUTHGATE_TEST_POSTGRES is unset: set it (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable) to run on PostgreSQL")
	}
	stalledHolder(t, false, "AUTHGATE_DB="+postgresSchema(t), pgMasterKeys)
}

func TestStalledHolderKilledPostgres(t *testing.T) {
	t.Parallel()
	if os.Getenv("AUTHGATE_TEST_POSTGRES") == "" {
		t.Skip("AUTHGATE_TEST_POSTGRES is unset: set it (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable) to run on PostgreSQL")
	}
	stalledHolder(t, true, "AUTHGATE_DB="+postgresSchema(t), pgMasterKeys)
}

// tokenAnswer is a token route answer: a token or a problem.
type tokenAnswer struct {
	status      int
	Fingerprint string `json:"fingerprint"`
	Type        string `json:"type"`
	Detail      string `json:"detail"`
	RetryAfter  any    `json:"retry_after"`
}

func askToken(t *testing.T, hc *http.Client, p *proc, key, cred, body string) tokenAnswer {
	t.Helper()
	status, raw, err := post(context.Background(), hc, p.URL+"/v1/credentials/"+cred+"/token", key, body)
	if err != nil {
		t.Fatalf("token from %s: %v", p.URL, err)
	}
	a := tokenAnswer{status: status}
	if err := json.Unmarshal(raw, &a); err != nil {
		t.Fatalf("token answer %d %s: %v", status, raw, err)
	}
	return a
}

// sandboxCounters reads the oidc provider's counters.
type oidcCounters struct {
	Refreshes        int            `json:"refreshes"`
	ReuseDetected    int            `json:"reuse_detected"`
	RefreshesByToken map[string]int `json:"refreshes_by_token"`
}

func readOIDCCounters(t *testing.T, hc *http.Client, sb string) oidcCounters {
	t.Helper()
	var all map[string]oidcCounters
	r := call(t, hc, "GET", sb+"/sandbox/admin/counters", "", "")
	if err := json.Unmarshal([]byte(r.body), &all); err != nil {
		t.Fatalf("sandbox counters %d %s: %v", r.status, r.body, err)
	}
	return all["oidc"]
}

// assertNoReuse: the provider saw no reuse and no refresh token twice.
func assertNoReuse(t *testing.T, c oidcCounters) {
	t.Helper()
	if c.ReuseDetected != 0 {
		t.Errorf("the provider detected %d refresh-token reuses; want 0", c.ReuseDetected)
	}
	for fp, n := range c.RefreshesByToken {
		if n > 1 {
			t.Errorf("refresh token %s was presented %d times", fp, n)
		}
	}
}

// waitForRefreshAtProvider polls the sandbox until it has received n
// refresh requests: the moment the holder's request is on its way.
func waitForRefreshAtProvider(t *testing.T, hc *http.Client, sb string, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for readOIDCCounters(t, hc, sb).Refreshes < n {
		if time.Now().After(deadline) {
			t.Fatalf("the provider never received refresh %d", n)
		}
		<-tick.C
	}
}

func stalledHolder(t *testing.T, kill bool, env ...string) {
	sb := startSandbox(t)
	env = append(env, "AUTHGATE_SANDBOX_URL="+sb, "AUTHGATE_REFRESH_CALL_TIMEOUT="+stallTimeout)
	dir := t.TempDir()
	a := serve(t, dir, env...)
	b := serve(t, dir, env...)
	key := a.AdminKey
	hc := &http.Client{Timeout: time.Minute}
	cred := connectOIDCTTL(t, hc, a, sb, fmt.Sprintf("stall-%v@acme.example", kill), 3600)
	first := askToken(t, hc, a, key, cred, `{}`)
	if first.status != 200 {
		t.Fatalf("first token %d %s", first.status, first.Detail)
	}
	if r := call(t, hc, "DELETE", sb+"/sandbox/admin/counters", "", ""); r.status != 204 {
		t.Fatalf("reset counters %d", r.status)
	}
	if r := call(t, hc, "POST", sb+"/sandbox/admin/faults", "", fmt.Sprintf(`{"provider":"oidc","fault":"latency","latency_ms":%d,"count":1,"target":"token"}`, stallLatency.Milliseconds())); r.status >= 300 {
		t.Fatalf("latency fault %d %s", r.status, r.body)
	}
	force := fmt.Sprintf(`{"min_valid_seconds":1,"rejected_fingerprint":%q}`, first.Fingerprint)

	// A's caller forces a refresh; A sends it to the slow provider.
	aAnswer := make(chan tokenAnswer, 1)
	aErr := make(chan error, 1)
	go func() {
		status, raw, err := post(context.Background(), hc, a.URL+"/v1/credentials/"+cred+"/token", key, force)
		if err != nil {
			aErr <- err
			return
		}
		ans := tokenAnswer{status: status}
		_ = json.Unmarshal(raw, &ans)
		aAnswer <- ans
	}()
	waitForRefreshAtProvider(t, hc, sb, 1)
	stopped := time.Now()
	if kill {
		if err := a.cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		<-a.done
	} else {
		if err := a.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		// Runs before serve's own cleanup (SIGTERM), should the test stop early.
		t.Cleanup(func() { _ = a.cmd.Process.Signal(syscall.SIGCONT) })
	}

	// B's callers keep asking for a refresh of the same credential, past
	// A's lease (3 s) and, frozen, until A resumes.
	until := stopped.Add(stallFreeze)
	if kill {
		until = stopped.Add(time.Minute) // until B settles it
	}
	transient, settled := 0, tokenAnswer{}
	tick := time.NewTicker(250 * time.Millisecond)
	for time.Now().Before(until) {
		ans := askToken(t, hc, b, key, cred, force)
		switch {
		case ans.status >= 500 && strings.HasSuffix(ans.Type, "transient"):
			transient++
		case kill && (ans.status == 200 || strings.HasSuffix(ans.Type, "reauth_required")):
			settled = ans
		default:
			t.Fatalf("B answered %d %s %q while A's refresh may still land; want transient", ans.status, ans.Type, ans.Detail)
		}
		if settled.status != 0 {
			break
		}
		<-tick.C
	}
	tick.Stop()
	if transient == 0 {
		t.Fatal("B was never asked while A's request was in doubt")
	}
	t.Logf("B answered transient %d times while A's request was in doubt (%v)", transient, time.Since(stopped).Round(time.Millisecond))

	if !kill {
		if err := a.cmd.Process.Signal(syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
		select {
		case ans := <-aAnswer:
			if ans.status != 200 || ans.Fingerprint == first.Fingerprint {
				t.Fatalf("A's caller got %d %s %q; want the refreshed token", ans.status, ans.Type, ans.Detail)
			}
		case err := <-aErr:
			t.Fatalf("A's caller: %v", err)
		case <-time.After(time.Minute):
			t.Fatal("A's caller never got an answer")
		}
	}

	// Afterwards: no reuse, no token presented twice, and the credential
	// is active and refreshable (or, killed, provably lost).
	assertNoReuse(t, readOIDCCounters(t, hc, sb))
	var c struct {
		Status       string `json:"status"`
		StatusReason string `json:"status_reason"`
	}
	r := call(t, hc, "GET", b.URL+"/v1/credentials/"+cred, key, "")
	if err := json.Unmarshal([]byte(r.body), &c); err != nil {
		t.Fatalf("credential %d %s", r.status, r.body)
	}
	if kill && c.Status != "active" {
		evs := allEvents(t, hc, b.URL, key, cred)
		if c.StatusReason != "invalid_grant" || !strings.Contains(evs, `"refresh_token_inactive"`) {
			t.Fatalf("credential ended %s (%s) without introspection's proof; events: %s", c.Status, c.StatusReason, evs)
		}
		t.Logf("the killed holder's request rotated the token at the provider; introspection proved it, the credential needs a reconnect (never presented again)")
		return
	}
	if c.Status != "active" {
		t.Fatalf("credential %s (%s); want active", c.Status, c.StatusReason)
	}
	now := askToken(t, hc, b, key, cred, `{"min_valid_seconds":1}`)
	if now.status != 200 {
		t.Fatalf("token after the stall %d %s %q", now.status, now.Type, now.Detail)
	}
	// A token refreshed a moment ago and already reported rejected is
	// refused for two seconds (the reject cooldown): ask as a client
	// would, after the Retry-After it is given.
	var again tokenAnswer
	for range 5 {
		again = askToken(t, hc, b, key, cred, fmt.Sprintf(`{"min_valid_seconds":1,"rejected_fingerprint":%q}`, now.Fingerprint))
		if again.status == 200 || !strings.Contains(again.Detail, "reported rejected was fetched") {
			break
		}
		time.Sleep(time.Second)
	}
	if again.status != 200 || again.Fingerprint == now.Fingerprint {
		t.Fatalf("refresh after the stall %d %s %q; want a new token", again.status, again.Type, again.Detail)
	}
	assertNoReuse(t, readOIDCCounters(t, hc, sb))
}
