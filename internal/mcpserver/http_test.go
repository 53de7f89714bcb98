package mcpserver_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/authgatetest"
	"github.com/authgate/authgate/internal/clock"
	"github.com/authgate/authgate/sandbox"
	"github.com/authgate/authgate/server"
)

const initializeBody = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}`

// TestHTTPChallenge: /mcp without a key (or with a wrong one) answers 401
// with a Bearer challenge naming the protected-resource metadata (RFC
// 9728), which is served and names the resource.
func TestHTTPChallenge(t *testing.T) {
	t.Parallel()
	env := authgatetest.Start(t, authgatetest.Options{})
	for _, key := range []string{"", "ag_bogus"} {
		req, _ := http.NewRequest("POST", env.URL+"/mcp", strings.NewReader(initializeBody))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var p authgate.Error
		_ = json.NewDecoder(resp.Body).Decode(&p)
		resp.Body.Close()
		challenge := resp.Header.Get("WWW-Authenticate")
		want := `Bearer realm="authgate"`
		if key != "" {
			want += `, error="invalid_token"`
		}
		want += fmt.Sprintf(`, resource_metadata=%q`, env.URL+"/.well-known/oauth-protected-resource/mcp")
		if resp.StatusCode != 401 || challenge != want || p.Class != authgate.ClassUnauthorized {
			t.Fatalf("key %q: %d %q %+v; want 401 with %q", key, resp.StatusCode, challenge, p, want)
		}
	}
	resp, err := http.Get(env.URL + "/.well-known/oauth-protected-resource/mcp")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var meta struct {
		Resource             string   `json:"resource"`
		BearerMethods        []string `json:"bearer_methods_supported"`
		AuthorizationServers []string `json:"authorization_servers"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&meta); err != nil || meta.Resource != env.URL+"/mcp" || len(meta.BearerMethods) != 1 || meta.AuthorizationServers != nil {
		t.Fatalf("metadata %+v %v", meta, err)
	}
}

// TestHTTPUserKey: a user key's sessions act as its user without naming
// one; naming another user is refused; the tools see only its user's
// connections and runs.
func TestHTTPUserKey(t *testing.T) {
	t.Parallel()
	env := authgatetest.Start(t, authgatetest.Options{})
	ctx := context.Background()
	k, err := env.Client.CreateAPIKey(ctx, authgate.NewAPIKeyRequest{Name: "alice-agent", Role: authgate.RoleUser, UserID: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	alice := env.Connect(t, authgatetest.ConnectParams{UserID: "alice", Provider: "google", Actions: []string{"drive.files.list", "docs.documents.create"}, Choice: sandbox.Choice{Account: "alice@acme.example"}})
	bob := env.Connect(t, authgatetest.ConnectParams{UserID: "bob", Provider: "google", Actions: []string{"docs.documents.create"}, Choice: sandbox.Choice{Account: "bob@acme.example"}})
	bobsRun, err := env.Client.CreateRun(ctx, authgate.RunCreateRequest{Workflow: "agent-session", UserID: "bob", Bindings: map[string]authgate.CredentialID{"google": bob.ID}, Actions: []string{"docs.documents.create"}})
	if err != nil {
		t.Fatal(err)
	}

	// Naming bob: refused before any session exists.
	c, _ := newClient(false)
	ct := &mcp.StreamableClientTransport{Endpoint: env.URL + "/mcp?user_id=bob", HTTPClient: &http.Client{Transport: bearer(k.Key)}}
	if cs, err := c.Connect(ctx, ct, nil); err == nil {
		cs.Close()
		t.Fatal("a user key opened a session for another user")
	}

	ct = &mcp.StreamableClientTransport{Endpoint: env.URL + "/mcp", HTTPClient: &http.Client{Transport: bearer(k.Key)}}
	cs, err := c.Connect(ctx, ct, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	conns := ok(t, cs, "authgate_connections", map[string]any{})
	raw, _ := json.Marshal(conns)
	if conns["user_id"] != "alice" || !strings.Contains(string(raw), string(alice.ID)) || strings.Contains(string(raw), string(bob.ID)) {
		t.Fatalf("a user key's connections: %s", raw)
	}
	res, err := call(t, cs, "docs_create", map[string]any{"title": "x", "run_id": string(bobsRun.ID)})
	if err != nil || !res.IsError || !strings.Contains(text(res), "not_found") {
		t.Fatalf("a tool on bob's run through alice's key: %v %v", text(res), err)
	}
}

// mcpEnv is a server on a fake clock whose /mcp handler a test calls in
// process (no sockets, so only the sessions' own goroutines are counted).
func mcpEnv(t *testing.T, idle time.Duration, perKey int) (*authgatetest.Env, *clock.Fake) {
	clk := clock.NewFake(time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC))
	env := authgatetest.Start(t, authgatetest.Options{Clock: clk, Configure: func(c *server.Config) {
		c.MCPIdleTimeout, c.MCPMaxSessionsPerKey = idle, perKey
	}})
	return env, clk
}

// open initializes a session in process and returns its id.
func open(t *testing.T, h http.Handler, key string) string {
	t.Helper()
	req := httptest.NewRequest("POST", "/mcp?user_id=alice", strings.NewReader(initializeBody))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Authorization", "Bearer "+key)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	id := rec.Header().Get("Mcp-Session-Id")
	if rec.Code != 200 || id == "" {
		t.Fatalf("initialize: %d %s", rec.Code, rec.Body)
	}
	return id
}

// ping sends a ping on a session and returns the HTTP status.
func ping(h http.Handler, key, id string) int {
	req := httptest.NewRequest("POST", "/mcp?user_id=alice", strings.NewReader(`{"jsonrpc":"2.0","id":2,"method":"ping"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Mcp-Session-Id", id)
	req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code
}

// TestHTTPIdleSessionsReleased: 3,000 sessions opened and never closed
// hold goroutines and memory until the idle timeout; one sweep after it
// (on the injected clock) gives both back to within a small bound.
func TestHTTPIdleSessionsReleased(t *testing.T) {
	env, clk := mcpEnv(t, time.Minute, 10_000)
	h := env.Server.Handler()
	// Warm up what every session shares (the per-process tool schemas,
	// the key cache) so that the baseline is the steady state.
	open(t, h, env.AdminKey)
	clk.Advance(time.Minute)
	env.Server.MCP.Sweep()
	g0, m0 := settle()

	const n = 3000
	for range n {
		open(t, h, env.AdminKey)
	}
	g1, m1 := settle()
	if env.Server.MCP.Open() != n {
		t.Fatalf("%d sessions open; want %d", env.Server.MCP.Open(), n)
	}
	clk.Advance(59 * time.Second)
	if closed := env.Server.MCP.Sweep(); closed != 0 {
		t.Fatalf("swept %d sessions before the timeout", closed)
	}
	clk.Advance(time.Second)
	if closed := env.Server.MCP.Sweep(); closed != n {
		t.Fatalf("swept %d of %d idle sessions", closed, n)
	}
	g2, m2 := settle()
	t.Logf("goroutines %d → %d with %d sessions → %d after the sweep; heap %.1f MiB → %.1f MiB → %.1f MiB (of which the test's log buffer %.1f MiB)", g0, g1, n, g2, mib(m0), mib(m1), mib(m2), mib(uint64(len(env.Logs.String()))))
	if g1-g0 < n {
		t.Fatalf("only %d more goroutines with %d sessions open: the test does not see sessions", g1-g0, n)
	}
	if g2 > g0+20 {
		t.Fatalf("goroutines %d after the sweep; started at %d", g2, g0)
	}
	if m2 > m0+8<<20 {
		t.Fatalf("heap %.1f MiB after the sweep; started at %.1f MiB", mib(m2), mib(m0))
	}
	if env.Server.MCP.Open() != 0 {
		t.Fatalf("%d sessions still tracked", env.Server.MCP.Open())
	}
}

// settle lets closed sessions' goroutines finish (they end on their own
// once their connection is closed; no timer involved) and returns the
// goroutine count and live heap.
func settle() (int, uint64) {
	var ms runtime.MemStats
	prev, same := -1, 0
	for i := 0; i < 10_000 && same < 50; i++ {
		runtime.Gosched()
		if g := runtime.NumGoroutine(); g == prev {
			same++
		} else {
			prev, same = g, 0
			runtime.GC()
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return runtime.NumGoroutine(), ms.HeapAlloc
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

// TestHTTPSessionCap: at its cap, a key's new session closes the key's
// longest-idle one; another key's sessions are not touched; a session in
// use keeps its place. A session in use is not idle.
func TestHTTPSessionCap(t *testing.T) {
	t.Parallel()
	env, clk := mcpEnv(t, time.Hour, 3)
	h := env.Server.Handler()
	other, err := env.Client.CreateAPIKey(context.Background(), authgate.NewAPIKeyRequest{Name: "other", Role: authgate.RoleService})
	if err != nil {
		t.Fatal(err)
	}
	theirs := open(t, h, other.Key)
	var ids []string
	for range 3 {
		ids = append(ids, open(t, h, env.AdminKey))
		clk.Advance(time.Minute)
	}
	// The first session is used again: the second is now the longest idle.
	if code := ping(h, env.AdminKey, ids[0]); code != 200 {
		t.Fatalf("ping: %d", code)
	}
	clk.Advance(time.Minute)
	fourth := open(t, h, env.AdminKey)
	for id, want := range map[string]int{ids[0]: 200, ids[1]: 404, ids[2]: 200, fourth: 200} {
		if code := ping(h, env.AdminKey, id); code != want {
			t.Errorf("session %s: %d, want %d", id, code, want)
		}
	}
	if code := ping(h, other.Key, theirs); code != 200 {
		t.Errorf("the other key's session: %d", code)
	}
	if env.Server.MCP.Open() != 4 {
		t.Errorf("%d sessions open; want 4", env.Server.MCP.Open())
	}
}

// TestHTTPForeignRequestsDoNotKeepASessionAlive: another key's requests on
// a session id (refused by the SDK) do not count as the session's activity:
// the session still closes when its own caller leaves it idle.
func TestHTTPForeignRequestsDoNotKeepASessionAlive(t *testing.T) {
	t.Parallel()
	env, clk := mcpEnv(t, time.Minute, 10)
	h := env.Server.Handler()
	other, err := env.Client.CreateAPIKey(context.Background(), authgate.NewAPIKeyRequest{Name: "other", Role: authgate.RoleService})
	if err != nil {
		t.Fatal(err)
	}
	id := open(t, h, env.AdminKey)
	for range 3 {
		clk.Advance(30 * time.Second)
		if code := ping(h, other.Key, id); code == http.StatusOK {
			t.Fatalf("another key's ping on the session answered %d", code)
		}
	}
	if closed := env.Server.MCP.Sweep(); closed != 1 {
		t.Fatalf("swept %d sessions; want the one its own caller left idle for 90 s", closed)
	}
	if code := ping(h, env.AdminKey, id); code != http.StatusNotFound {
		t.Fatalf("the swept session answered %d; want 404", code)
	}
}

// TestHTTPSessionCapUnderABurst: a burst of concurrent opens by one key
// leaves no more than the key's cap of sessions open (each open holds its
// slot from the cap check until its session is registered).
func TestHTTPSessionCapUnderABurst(t *testing.T) {
	t.Parallel()
	const limit, burst = 3, 40
	env, _ := mcpEnv(t, time.Hour, limit)
	h := env.Server.Handler()
	var wg sync.WaitGroup
	codes := make(chan int, burst)
	for range burst {
		wg.Go(func() {
			req := httptest.NewRequest("POST", "/mcp?user_id=alice", strings.NewReader(initializeBody))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			req.Header.Set("Authorization", "Bearer "+env.AdminKey)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			codes <- rec.Code
		})
	}
	wg.Wait()
	close(codes)
	ok := 0
	for c := range codes {
		if c == http.StatusOK {
			ok++
		}
	}
	if ok == 0 {
		t.Fatal("no open of the burst succeeded")
	}
	if n := env.Server.MCP.Open(); n > limit {
		t.Fatalf("%d sessions open after a burst of %d opens (%d answered 200); the cap is %d", n, burst, ok, limit)
	}
}
