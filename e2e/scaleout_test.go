package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authgate/authgate/sandbox"
	"github.com/authgate/authgate/webhook"
)

// hookCounter is a tenant's webhook receiver on loopback: it counts each
// event by its id, after dropping repeats of one delivery (same
// Authgate-Delivery header: allowed when an instance died after sending).
type hookCounter struct {
	mu         sync.Mutex
	byEvent    map[string]int    // event id → deliveries seen (distinct Authgate-Delivery)
	deliveries map[string]bool   // Authgate-Delivery headers seen
	types      map[string]string // event id → type
	subjects   map[string]string // event id → credential or run id
}

func newHookCounter(t *testing.T) (*hookCounter, string) {
	h := &hookCounter{byEvent: map[string]int{}, deliveries: map[string]bool{}, types: map[string]string{}, subjects: map[string]string{}}
	hs := httptest.NewServer(h)
	t.Cleanup(hs.Close)
	return h, hs.URL + "/hook"
}

func (h *hookCounter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var ev struct {
		ID   string `json:"id"`
		Type string `json:"type"`
		Data struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	_ = json.Unmarshal(body, &ev)
	h.mu.Lock()
	defer h.mu.Unlock()
	d := r.Header.Get(webhook.DeliveryHeader)
	if d != ev.ID {
		h.byEvent["header-mismatch:"+d]++
	}
	if !h.deliveries[d] {
		h.deliveries[d] = true
		h.byEvent[ev.ID]++
		h.types[ev.ID] = ev.Type
		h.subjects[ev.ID] = ev.Data.ID
	}
}

// count is how many distinct events of typ about subject arrived, and
// whether any event arrived twice under two deliveries.
func (h *hookCounter) count(typ, subject string) (n int, dup string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for id, c := range h.byEvent {
		if c != 1 {
			dup = id
		}
		if h.types[id] == typ && h.subjects[id] == subject {
			n++
		}
	}
	return n, dup
}

// sandboxGrant consents account at the sandbox's Google and exchanges the
// code: a real access and refresh token pair.
func sandboxGrant(t *testing.T, hc *http.Client, sb, account string) (access, refresh string) {
	t.Helper()
	if r := call(t, hc, "POST", sb+"/sandbox/admin/consent", "", fmt.Sprintf(`{"provider":"google","account":%q}`, account)); r.status != 200 {
		t.Fatalf("consent preset %d %s", r.status, r.body)
	}
	q := url.Values{"client_id": {"sandbox-google-client.apps.googleusercontent.com"}, "redirect_uri": {"http://127.0.0.1:9/cb"}, "response_type": {"code"},
		"scope": {"openid https://www.googleapis.com/auth/drive.file"}, "state": {"s"}, "access_type": {"offline"}, "prompt": {"consent"}}
	resp, err := hc.Get(sb + "/sandbox/google/o/oauth2/v2/auth?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := resp.Location()
	resp, err = hc.PostForm(sb+"/sandbox/google/token", url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")},
		"redirect_uri": {"http://127.0.0.1:9/cb"}, "client_id": {"sandbox-google-client.apps.googleusercontent.com"}, "client_secret": {"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"}})
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&raw)
	resp.Body.Close()
	access, _ = raw["access_token"].(string)
	refresh, _ = raw["refresh_token"].(string)
	if refresh == "" {
		t.Fatalf("no sandbox refresh token: %v", raw)
	}
	return access, refresh
}

type cluster struct {
	t   *testing.T
	hc  *http.Client
	sb  string
	dir string
	env []string
	key string
	// lb is the instances' public URL: a round-robin proxy on loopback, as
	// a load balancer would be; callbackTo, when set, takes the OAuth
	// callback (the instance under test).
	lb         string
	mu         sync.Mutex
	procs      []*proc
	callbackTo *proc
}

// backend picks the instance a request through the load balancer goes to.
func (c *cluster) backend(r *http.Request) *proc {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r.URL.Path == "/oauth/callback" && c.callbackTo != nil {
		return c.callbackTo
	}
	return c.live()
}

// live is a random instance that is not being killed (c.mu held).
func (c *cluster) live() *proc {
	for {
		if p := c.procs[rand.IntN(len(c.procs))]; p != nil {
			return p
		}
	}
}

func (c *cluster) setProc(i int, p *proc) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.procs[i] = p
}

// connect runs a connect (or, with credential, reconnect) flow for account
// as a browser through the load balancer, its callback taken by via; it
// returns the connect session id. The answer to the callback may never
// come (via may be killed): errors are returned, not fatal.
func (c *cluster) connect(user, account, credential string, via *proc) (string, error) {
	c.mu.Lock()
	c.callbackTo = via
	c.mu.Unlock()
	body := fmt.Sprintf(`{"user_id":%q,"provider":"google","actions":["drive.files.list"]}`, user)
	if credential != "" {
		body = fmt.Sprintf(`{"user_id":%q,"provider":"google","actions":["drive.files.list"],"credential_id":%q}`, user, credential)
	}
	var cs struct {
		ID         string `json:"id"`
		ConnectURL string `json:"connect_url"`
	}
	r := call(c.t, c.hc, "POST", c.lb+"/v1/connect-sessions", c.key, body)
	if err := json.Unmarshal([]byte(r.body), &cs); err != nil || r.status != 201 {
		return "", fmt.Errorf("connect session %d %s", r.status, r.body)
	}
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := browser.Get(cs.ConnectURL)
	if err != nil {
		return cs.ID, err
	}
	resp.Body.Close()
	loc, err := resp.Location()
	if err != nil {
		return cs.ID, fmt.Errorf("connect link answered %d", resp.StatusCode)
	}
	back, err := sandbox.CompleteConsent(context.Background(), browser, loc.String(), sandbox.Choice{Account: account})
	if err != nil {
		return cs.ID, err
	}
	resp, err = browser.Get(back.String())
	if err != nil {
		return cs.ID, err
	}
	resp.Body.Close()
	return cs.ID, nil
}

// connected is the credential a finished connect session stored ("" if none).
func (c *cluster) connected(session string) string {
	var st struct {
		State        string `json:"state"`
		CredentialID string `json:"credential_id"`
	}
	c.json(c.any(), "GET", "/v1/connect-sessions/"+session, "", 200, &st)
	if st.State != "connected" && st.State != "partial" {
		return ""
	}
	return st.CredentialID
}

func (c *cluster) any() *proc {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.live()
}

func (c *cluster) json(p *proc, method, path, body string, want int, out any) {
	c.t.Helper()
	r := call(c.t, c.hc, method, p.URL+path, c.key, body)
	if r.status != want {
		c.t.Fatalf("%s %s on %s: %d %s", method, path, p.URL, r.status, r.body)
	}
	if out != nil {
		if err := json.Unmarshal([]byte(r.body), out); err != nil {
			c.t.Fatal(err)
		}
	}
}

type credOut struct {
	ID           string `json:"id"`
	Status       string `json:"status"`
	StatusReason string `json:"status_reason"`
	AccessFP     string `json:"access_token_fingerprint"`
}

func (c *cluster) importCred(p *proc, user, subject, account, access, refresh string) credOut {
	var out credOut
	r := call(c.t, c.hc, "POST", p.URL+"/v1/credentials/import", c.key, fmt.Sprintf(
		`{"user_id":%q,"provider":"google","subject":%q,"email":%q,"scopes":["openid","https://www.googleapis.com/auth/drive.file"],"access_token":%q,"refresh_token":%q,"expires_at":%q}`,
		user, subject, account, access, refresh, time.Now().Add(50*time.Minute).UTC().Format(time.RFC3339)))
	if r.status != 200 && r.status != 201 {
		c.t.Fatalf("import %d %s", r.status, r.body)
	}
	_ = json.Unmarshal([]byte(r.body), &out)
	return out
}

// waitUntil polls (the API is all a client sees) until cond holds or the
// deadline passes.
func waitUntil(t *testing.T, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Since(start) > within {
			t.Fatalf("%s: not within %v", what, within)
		}
		<-tick.C
	}
	return time.Since(start)
}

func startCluster(t *testing.T, n int) *cluster {
	sb := startSandbox(t)
	c := &cluster{t: t, sb: sb, dir: t.TempDir(),
		hc: &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	lb := httptest.NewServer(&httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		u, _ := url.Parse(c.backend(pr.In).URL)
		pr.SetURL(u)
		pr.Out.Host = pr.In.Host // the public host, as a load balancer keeps it
	}})
	t.Cleanup(lb.Close)
	c.lb = lb.URL
	c.env = []string{"AUTHGATE_DB=" + postgresSchema(t), pgMasterKeys, "AUTHGATE_SANDBOX_URL=" + sb, "AUTHGATE_PUBLIC_URL=" + lb.URL,
		"AUTHGATE_HEALTH_SWEEP_INTERVAL=10s", "AUTHGATE_JOB_RESCUE_AFTER=5s",
		// Behind a public URL the webhook address policy is strict: the
		// test's receiver is on loopback, so the operator opens that range.
		"AUTHGATE_WEBHOOK_ALLOW_CIDRS=127.0.0.0/8"}
	for range n {
		p := serve(t, c.dir, c.env...)
		if p.AdminKey != "" {
			c.key = p.AdminKey
		}
		c.mu.Lock()
		c.procs = append(c.procs, p)
		c.mu.Unlock()
	}
	if c.key == "" {
		t.Fatal("no instance printed the admin key")
	}
	return c
}

// TestThreeInstancesOnePostgres: three `authgate serve` on one PostgreSQL
// database and a standalone sandbox. The token route finding a revocation
// delivers credential.reauth_required; a run created on that credential
// starts blocked and runs within seconds of the reconnect, whichever
// instance took it; the health sweep (every 10 s) finds an idle credential
// revoked at the sandbox within 40 s; every event reaches the receiver
// exactly once.
func TestThreeInstancesOnePostgres(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 3)
	hooks, hookURL := newHookCounter(t)
	c.json(c.procs[0], "POST", "/v1/webhooks", fmt.Sprintf(`{"url":%q}`, hookURL), 201, nil)

	// 1. The token route finds a revocation.
	sess, err := c.connect("u1", "one@acme.example", "", c.procs[0])
	if err != nil {
		t.Fatal(err)
	}
	var one credOut
	c.json(c.procs[1], "GET", "/v1/credentials/"+c.connected(sess), "", 200, &one)
	if r := call(t, c.hc, "POST", c.sb+"/sandbox/admin/faults", "", `{"provider":"google","fault":"revoke","account":"one@acme.example"}`); r.status/100 != 2 {
		t.Fatalf("revoke %d %s", r.status, r.body)
	}
	r := call(t, c.hc, "POST", c.procs[1].URL+"/v1/credentials/"+one.ID+"/token", c.key, fmt.Sprintf(`{"rejected_fingerprint":%q}`, one.AccessFP))
	if r.status == 200 {
		t.Fatalf("token after revoke: %d %s", r.status, r.body)
	}
	var got credOut
	c.json(c.procs[2], "GET", "/v1/credentials/"+one.ID, "", 200, &got)
	if got.Status != "reauth_required" {
		t.Fatalf("after the token route found the revocation: %+v", got)
	}
	waitUntil(t, 30*time.Second, "credential.reauth_required delivered", func() bool {
		n, _ := hooks.count("credential.reauth_required", one.ID)
		return n == 1
	})

	// 2. A run on it starts blocked; the reconnect (a fresh grant for the
	// same account, on any instance) resumes it within seconds.
	var run struct {
		ID    string `json:"id"`
		State string `json:"state"`
	}
	c.json(c.procs[2], "POST", "/v1/runs", fmt.Sprintf(`{"workflow":"w","user_id":"u1","bindings":{"google":%q}}`, one.ID), 201, &run)
	if run.State != "blocked_on_auth" {
		t.Fatalf("run starts %s", run.State)
	}
	if r := call(t, c.hc, "DELETE", c.sb+"/sandbox/admin/faults", "", ""); r.status/100 != 2 {
		t.Fatalf("clear faults %d", r.status)
	}
	// The user reconnects; the callback lands on an instance that neither
	// created the run nor its link.
	if sess, err = c.connect("u1", "one@acme.example", one.ID, c.procs[1]); err != nil || c.connected(sess) != one.ID {
		t.Fatalf("reconnect: %v (session %s)", err, sess)
	}
	took := waitUntil(t, 20*time.Second, "run resumed after the reconnect", func() bool {
		var cur struct{ State string }
		c.json(c.any(), "GET", "/v1/runs/"+run.ID, "", 200, &cur)
		return cur.State != "blocked_on_auth"
	})
	t.Logf("run resumed %v after the reconnect", took.Round(time.Millisecond))

	// 3. The health sweep finds an idle credential revoked at the sandbox.
	at, rt := sandboxGrant(t, c.hc, c.sb, "two@acme.example")
	two := c.importCred(c.procs[1], "u2", "sub-two", "two@acme.example", at, rt)
	if r := call(t, c.hc, "POST", c.sb+"/sandbox/admin/faults", "", `{"provider":"google","fault":"revoke","account":"two@acme.example"}`); r.status/100 != 2 {
		t.Fatalf("revoke %d %s", r.status, r.body)
	}
	revoked := time.Now()
	took = waitUntil(t, 40*time.Second, "idle revoked credential found by the sweep", func() bool {
		c.json(c.any(), "GET", "/v1/credentials/"+two.ID, "", 200, &got)
		return got.Status == "reauth_required"
	})
	t.Logf("sweep found the revocation %v after it (interval 10 s)", took.Round(time.Millisecond))
	if got.StatusReason != "invalid_grant" {
		t.Fatalf("reason %q", got.StatusReason)
	}
	waitUntil(t, 40*time.Second-time.Since(revoked), "sweep webhook delivered", func() bool {
		n, _ := hooks.count("credential.reauth_required", two.ID)
		return n == 1
	})

	// Every event, once: nothing pending, nothing twice.
	waitUntil(t, 30*time.Second, "no delivery pending", func() bool {
		var page struct {
			Deliveries []json.RawMessage `json:"deliveries"`
		}
		c.json(c.any(), "GET", "/v1/webhooks/deliveries?status=pending", "", 200, &page)
		return len(page.Deliveries) == 0
	})
	for _, want := range []struct{ typ, subject string }{
		{"credential.reauth_required", one.ID}, {"run.blocked_on_auth", run.ID}, {"credential.reconnected", one.ID},
		{"run.resumed", run.ID}, {"credential.reauth_required", two.ID},
	} {
		if n, dup := hooks.count(want.typ, want.subject); n != 1 || dup != "" {
			t.Errorf("%s about %s delivered %d times (event delivered twice: %q)", want.typ, want.subject, n, dup)
		}
	}
	var dead struct {
		Deliveries []json.RawMessage `json:"deliveries"`
	}
	c.json(c.any(), "GET", "/v1/webhooks/deliveries?status=dead", "", 200, &dead)
	if len(dead.Deliveries) != 0 {
		t.Errorf("dead deliveries: %s", dead.Deliveries)
	}
}

// TestKillDuringReconnect: kill -9 of the instance that handled a
// reconnect's OAuth callback, at a random moment between its commit and the
// resume: every run blocked on the credential resumes once, and every
// webhook arrives once (repeats only under the same Authgate-Delivery). 2
// trials by default; AUTHGATE_TEST_SCALEOUT=full runs 30. A job cut short
// by the kill is run again by River's rescuer (every 30 s, after
// AUTHGATE_JOB_RESCUE_AFTER=5s here), so a trial takes up to ~40 s.
func TestKillDuringReconnect(t *testing.T) {
	t.Parallel()
	trials := 2
	if os.Getenv("AUTHGATE_TEST_SCALEOUT") == "full" {
		trials = 30
	}
	c := startCluster(t, 3)
	hooks, hookURL := newHookCounter(t)
	c.json(c.any(), "POST", "/v1/webhooks", fmt.Sprintf(`{"url":%q}`, hookURL), 201, nil)
	for trial := range trials {
		account := fmt.Sprintf("k%d@acme.example", trial)
		user := fmt.Sprint("uk", trial)
		sess, err := c.connect(user, account, "", c.any())
		if err != nil {
			t.Fatal(err)
		}
		var cred credOut
		c.json(c.any(), "GET", "/v1/credentials/"+c.connected(sess), "", 200, &cred)
		if r := call(t, c.hc, "POST", c.sb+"/sandbox/admin/faults", "", fmt.Sprintf(`{"provider":"google","fault":"revoke","account":%q}`, account)); r.status/100 != 2 {
			t.Fatalf("revoke %d", r.status)
		}
		call(t, c.hc, "POST", c.any().URL+"/v1/credentials/"+cred.ID+"/token", c.key, fmt.Sprintf(`{"rejected_fingerprint":%q}`, cred.AccessFP))
		var runs []string
		for range 3 {
			var run struct{ ID, State string }
			c.json(c.any(), "POST", "/v1/runs", fmt.Sprintf(`{"workflow":"w","user_id":%q,"bindings":{"google":%q}}`, user, cred.ID), 201, &run)
			if run.State != "blocked_on_auth" {
				t.Fatalf("trial %d: run starts %s", trial, run.State)
			}
			runs = append(runs, run.ID)
		}
		call(t, c.hc, "DELETE", c.sb+"/sandbox/admin/faults", "", "")

		// The reconnect's callback lands on the victim; once its commit is
		// visible, kill -9 it at a random moment (0-20 ms later), before or
		// while the resume job runs.
		vi := rand.IntN(3)
		c.mu.Lock()
		victim := c.procs[vi]
		c.mu.Unlock()
		other := func() *proc {
			c.mu.Lock()
			defer c.mu.Unlock()
			return c.procs[(vi+1)%3] // never the victim
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			_, _ = c.connect(user, account, cred.ID, victim) // its answer may never come
		}()
		waitUntil(t, 30*time.Second, "reconnect committed", func() bool {
			var cur credOut
			c.json(other(), "GET", "/v1/credentials/"+cred.ID, "", 200, &cur)
			return cur.Status == "active"
		})
		time.Sleep(time.Duration(rand.IntN(20)) * time.Millisecond) // the random point is the test's subject
		c.setProc(vi, nil)                                          // the load balancer stops sending it requests
		_ = victim.cmd.Process.Kill()
		<-victim.done
		<-done
		c.setProc(vi, serve(t, c.dir, c.env...))

		for _, id := range runs {
			waitUntil(t, 90*time.Second, fmt.Sprintf("trial %d: run %s resumed", trial, id), func() bool {
				var cur struct{ State string }
				c.json(c.any(), "GET", "/v1/runs/"+id, "", 200, &cur)
				return cur.State == "running"
			})
		}
		for _, id := range runs {
			waitUntil(t, 90*time.Second, fmt.Sprintf("trial %d: run.resumed of %s delivered", trial, id), func() bool {
				n, _ := hooks.count("run.resumed", id)
				return n >= 1
			})
			if n, dup := hooks.count("run.resumed", id); n != 1 || dup != "" {
				t.Fatalf("trial %d: run.resumed of %s delivered %d times (dup %q)", trial, id, n, dup)
			}
			var full struct {
				Timeline []struct{ Kind string } `json:"timeline"`
			}
			c.json(c.any(), "GET", "/v1/runs/"+id, "", 200, &full)
			resumed := 0
			for _, e := range full.Timeline {
				if e.Kind == "resumed" {
					resumed++
				}
			}
			if resumed != 1 {
				t.Fatalf("trial %d: run %s resumed %d times", trial, id, resumed)
			}
		}
		if n, dup := hooks.count("credential.reconnected", cred.ID); n != 1 || dup != "" {
			waitUntil(t, 90*time.Second, "credential.reconnected delivered", func() bool {
				n, _ := hooks.count("credential.reconnected", cred.ID)
				return n >= 1
			})
			if n, dup = hooks.count("credential.reconnected", cred.ID); n != 1 || dup != "" {
				t.Fatalf("trial %d: credential.reconnected delivered %d times (dup %q)", trial, n, dup)
			}
		}
	}
	if strings.Contains(fmt.Sprint(hooks.byEvent), "header-mismatch") {
		t.Fatalf("a delivery's header did not match its event id")
	}
}
