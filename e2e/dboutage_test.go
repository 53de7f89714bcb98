package e2e

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "modernc.org/sqlite"
)

// A rotation is never dropped because the database blinked (issue 16): a
// refresh at the rotating provider is in flight when the database goes away
// for 10 s (PostgreSQL: a loopback TCP proxy between serve and the server is
// cut; SQLite: another connection holds BEGIN EXCLUSIVE). The provider
// answers meanwhile; serve keeps the answer and stores it once the database
// is back: the caller gets the new token, the credential is active with the
// rotated refresh token, and the provider saw no reuse.

const outage = 10 * time.Second

func TestDatabaseOutagePostgres(t *testing.T) {
	t.Parallel()
	if os.Getenv("AUTHGATE_TEST_POSTGRES") == "" {
		t.Skip("AUTHGATE_TEST_POSTGRES is unset: set it (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable) to run on PostgreSQL")
	}
	u, err := url.Parse(postgresSchema(t))
	if err != nil {
		t.Fatal(err)
	}
	px := startTCPProxy(t, u.Host)
	u.Host = px.addr
	retries := dbOutage(t, t.TempDir(), px.cut, px.restore, false, "AUTHGATE_DB="+u.String(), pgMasterKeys)
	if retries == 0 {
		t.Error("no commit was retried: the outage did not hit the commit")
	}
}

// TestDatabaseOutageThroughShutdownPostgres: the same, with SIGTERM arriving
// just after the database went away: serve keeps the answer through the
// shutdown, stores it when the database is back, answers the caller and
// exits 0.
func TestDatabaseOutageThroughShutdownPostgres(t *testing.T) {
	t.Parallel()
	if os.Getenv("AUTHGATE_TEST_POSTGRES") == "" {
		t.Skip("AUTHGATE_TEST_POSTGRES is unset: set it (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable) to run on PostgreSQL")
	}
	u, err := url.Parse(postgresSchema(t))
	if err != nil {
		t.Fatal(err)
	}
	px := startTCPProxy(t, u.Host)
	u.Host = px.addr
	dbOutage(t, t.TempDir(), px.cut, px.restore, true, "AUTHGATE_DB="+u.String(), pgMasterKeys)
}

// TestDatabaseLockedSQLite: SQLite waits for a lock up to its busy timeout
// (10 s) inside each statement, then fails; the commit is retried after
// that, until the lock is gone.
func TestDatabaseLockedSQLite(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var db *sql.DB
	var tx *sql.Conn
	lock := func() {
		var err error
		db, err = sql.Open("sqlite", "file:"+filepath.Join(dir, "authgate.db")+"?_pragma=busy_timeout(20000)")
		if err != nil {
			t.Fatal(err)
		}
		if tx, err = db.Conn(context.Background()); err != nil {
			t.Fatal(err)
		}
		if _, err := tx.ExecContext(context.Background(), "BEGIN EXCLUSIVE"); err != nil {
			t.Fatalf("lock the database: %v", err)
		}
	}
	unlock := func() {
		if _, err := tx.ExecContext(context.Background(), "COMMIT"); err != nil {
			t.Fatalf("unlock the database: %v", err)
		}
		tx.Close()
		db.Close()
	}
	dbOutage(t, dir, lock, unlock, false)
}

// dbOutage runs the scenario and returns how many commits serve retried.
// With sigterm, serve is asked to stop just after the database went away.
func dbOutage(t *testing.T, dir string, down, up func(), sigterm bool, env ...string) float64 {
	sb := startSandbox(t)
	env = append(env, "AUTHGATE_SANDBOX_URL="+sb)
	p := serve(t, dir, env...)
	hc := &http.Client{Timeout: 2 * time.Minute}
	cred := connectOIDCTTL(t, hc, p, sb, "outage@acme.example", 3600)
	first := askToken(t, hc, p, p.AdminKey, cred, `{}`)
	var before struct {
		RefreshFP string `json:"refresh_token_fingerprint"`
	}
	if r := call(t, hc, "GET", p.URL+"/v1/credentials/"+cred, p.AdminKey, ""); json.Unmarshal([]byte(r.body), &before) != nil || before.RefreshFP == "" {
		t.Fatalf("credential %s", r.body)
	}
	if r := call(t, hc, "DELETE", sb+"/sandbox/admin/counters", "", ""); r.status != 204 {
		t.Fatalf("reset counters %d", r.status)
	}
	// The provider takes 2 s: the database goes away while it works.
	if r := call(t, hc, "POST", sb+"/sandbox/admin/faults", "", `{"provider":"oidc","fault":"latency","latency_ms":2000,"count":1,"target":"token"}`); r.status >= 300 {
		t.Fatalf("latency fault %d %s", r.status, r.body)
	}
	answer := make(chan tokenAnswer, 1)
	go func() {
		status, raw, err := post(context.Background(), hc, p.URL+"/v1/credentials/"+cred+"/token", p.AdminKey,
			fmt.Sprintf(`{"min_valid_seconds":1,"rejected_fingerprint":%q}`, first.Fingerprint))
		ans := tokenAnswer{status: status}
		if err != nil {
			ans.Detail = err.Error()
		}
		_ = json.Unmarshal(raw, &ans)
		answer <- ans
	}()
	waitForRefreshAtProvider(t, hc, sb, 1)
	down()
	start := time.Now()
	if sigterm {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	}
	select {
	case ans := <-answer:
		t.Fatalf("the caller was answered (%d %s %q) while the database was down", ans.status, ans.Type, ans.Detail)
	case <-time.After(outage):
	}
	up()
	t.Logf("database down for %v", time.Since(start).Round(time.Millisecond))
	var ans tokenAnswer
	select {
	case ans = <-answer:
	case <-time.After(time.Minute):
		t.Fatal("the caller never got an answer after the database came back")
	}
	if ans.status != 200 || ans.Fingerprint == first.Fingerprint {
		t.Fatalf("after the outage the caller got %d %s %q; want the refreshed token", ans.status, ans.Type, ans.Detail)
	}
	key := p.AdminKey
	if sigterm {
		select {
		case err := <-p.done:
			if err != nil {
				t.Fatalf("serve exited with %v; want 0\n%s", err, p.stderr.String())
			}
		case <-time.After(time.Minute):
			t.Fatal("serve did not exit")
		}
		if !strings.Contains(p.stderr.String(), "refreshed tokens stored after the database came back") {
			t.Fatalf("no log line says the answer was stored after the outage:\n%s", p.stderr.String())
		}
		p = serve(t, dir, env...) // look at what was stored
	}
	var after struct {
		Status    string `json:"status"`
		RefreshFP string `json:"refresh_token_fingerprint"`
		AccessFP  string `json:"access_token_fingerprint"`
	}
	if r := call(t, hc, "GET", p.URL+"/v1/credentials/"+cred, key, ""); json.Unmarshal([]byte(r.body), &after) != nil {
		t.Fatalf("credential %s", r.body)
	}
	if after.Status != "active" || after.RefreshFP == before.RefreshFP || after.AccessFP != ans.Fingerprint {
		t.Fatalf("after the outage: %+v; want active with the rotated refresh token (was %s) and the served access token %s", after, before.RefreshFP, ans.Fingerprint)
	}
	c := readOIDCCounters(t, hc, sb)
	assertNoReuse(t, c)
	if c.Refreshes != 1 {
		t.Errorf("the provider saw %d refreshes; want 1", c.Refreshes)
	}
	retries := metricSum(t, hc, p.URL, "authgate_refresh_commit_retries_total")
	t.Logf("commits retried: %.0f", retries)
	return retries
}

// metricSum adds up a counter's series on a process's /metrics.
func metricSum(t *testing.T, hc *http.Client, base, name string) float64 {
	r := call(t, hc, "GET", base+"/metrics", "", "")
	var sum float64
	for _, line := range strings.Split(r.body, "\n") {
		if strings.HasPrefix(line, name+"{") || strings.HasPrefix(line, name+" ") {
			var v float64
			if _, err := fmt.Sscan(line[strings.LastIndexByte(line, ' ')+1:], &v); err == nil {
				sum += v
			}
		}
	}
	return sum
}

// tcpProxy forwards loopback connections to a target; cut drops every
// connection and refuses new ones until restore.
type tcpProxy struct {
	addr   string
	mu     sync.Mutex
	down   bool
	conns  map[net.Conn]struct{}
	target string
}

func startTCPProxy(t *testing.T, target string) *tcpProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	px := &tcpProxy{addr: ln.Addr().String(), conns: map[net.Conn]struct{}{}, target: target}
	t.Cleanup(func() { ln.Close(); px.cut() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go px.serve(c)
		}
	}()
	return px
}

func (px *tcpProxy) serve(c net.Conn) {
	px.mu.Lock()
	if px.down {
		px.mu.Unlock()
		c.Close()
		return
	}
	px.mu.Unlock()
	up, err := net.Dial("tcp", px.target)
	if err != nil {
		c.Close()
		return
	}
	px.mu.Lock()
	if px.down {
		px.mu.Unlock()
		c.Close()
		up.Close()
		return
	}
	px.conns[c], px.conns[up] = struct{}{}, struct{}{}
	px.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(up, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, up); done <- struct{}{} }()
	<-done
	c.Close()
	up.Close()
	px.mu.Lock()
	delete(px.conns, c)
	delete(px.conns, up)
	px.mu.Unlock()
}

func (px *tcpProxy) cut() {
	px.mu.Lock()
	defer px.mu.Unlock()
	px.down = true
	for c := range px.conns {
		c.Close()
	}
}

func (px *tcpProxy) restore() {
	px.mu.Lock()
	px.down = false
	px.mu.Unlock()
}
