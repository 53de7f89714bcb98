package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSIGTERMDrainsAbandonedRefresh: SIGTERM arrives while a refresh at the
// rotating provider is in flight and its only caller has already given up.
// The process waits for the provider's answer and commits the rotated
// refresh token before it exits, so the next process uses the new token
// instead of presenting the old one (which would revoke the whole family).
func TestSIGTERMDrainsAbandonedRefresh(t *testing.T) {
	t.Parallel()
	sb := startSandbox(t)
	dir := t.TempDir()
	env := []string{"AUTHGATE_SANDBOX_URL=" + sb}
	p := serve(t, dir, env...)
	hc := &http.Client{}
	cred := connectOIDC(t, hc, p, sb, "sigterm@example.com")
	var first struct {
		Fingerprint string `json:"fingerprint"`
	}
	if r := call(t, hc, "POST", p.URL+"/v1/credentials/"+cred+"/token", p.AdminKey, `{}`); r.status != 200 || json.Unmarshal([]byte(r.body), &first) != nil {
		t.Fatalf("token %d %s", r.status, r.body)
	}
	var before struct {
		RefreshFP string `json:"refresh_token_fingerprint"`
	}
	if r := call(t, hc, "GET", p.URL+"/v1/credentials/"+cred, p.AdminKey, ""); json.Unmarshal([]byte(r.body), &before) != nil || before.RefreshFP == "" {
		t.Fatalf("credential %s", r.body)
	}
	if r := call(t, hc, "DELETE", sb+"/sandbox/admin/counters", "", ""); r.status != 204 {
		t.Fatalf("reset counters %d", r.status)
	}
	if r := call(t, hc, "POST", sb+"/sandbox/admin/faults", "", `{"provider":"oidc","fault":"latency","latency_ms":1500,"count":1,"target":"token"}`); r.status >= 300 {
		t.Fatalf("latency fault %d %s", r.status, r.body)
	}
	// The caller reports the token rejected (forcing a refresh), then gives up.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", p.URL+"/v1/credentials/"+cred+"/token", strings.NewReader(`{"rejected_fingerprint":"`+first.Fingerprint+`"}`))
	req.Header.Set("Authorization", "Bearer "+p.AdminKey)
	req.Header.Set("Content-Type", "application/json")
	if resp, err := hc.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("the caller was answered (%d) before the provider", resp.StatusCode)
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("serve exited with %v\n%s", err, p.stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not exit after SIGTERM")
	}
	var counters map[string]struct {
		Refreshes     int `json:"refreshes"`
		ReuseDetected int `json:"reuse_detected"`
	}
	r := call(t, hc, "GET", sb+"/sandbox/admin/counters", "", "")
	if err := json.Unmarshal([]byte(r.body), &counters); err != nil || counters["oidc"].Refreshes != 1 {
		t.Fatalf("counters %s", r.body)
	}
	// The next process starts from the committed, rotated token.
	q := serve(t, dir, env...)
	defer q.stop(t)
	var c struct {
		Status    string `json:"status"`
		RefreshFP string `json:"refresh_token_fingerprint"`
	}
	if r := call(t, hc, "GET", q.URL+"/v1/credentials/"+cred, p.AdminKey, ""); json.Unmarshal([]byte(r.body), &c) != nil || c.RefreshFP == before.RefreshFP {
		t.Fatalf("the rotated refresh token was not committed before exit: %s", r.body)
	}
	if r := call(t, hc, "POST", q.URL+"/v1/credentials/"+cred+"/token", p.AdminKey, `{"min_valid_seconds":1}`); r.status != 200 {
		t.Fatalf("token after restart %d %s", r.status, r.body)
	}
	if r := call(t, hc, "GET", q.URL+"/v1/credentials/"+cred, p.AdminKey, ""); json.Unmarshal([]byte(r.body), &c) != nil || c.Status != "active" {
		t.Fatalf("credential after restart: %s", r.body)
	}
	r = call(t, hc, "GET", sb+"/sandbox/admin/counters", "", "")
	if err := json.Unmarshal([]byte(r.body), &counters); err != nil || counters["oidc"].ReuseDetected != 0 {
		t.Fatalf("counters after restart %s", r.body)
	}
}

// TestSIGTERMAnswersRefreshAndCutsMCPStream: SIGTERM arrives while a 12 s
// refresh at the rotating provider is in flight (longer than the 10 s given
// to open requests) and an MCP client holds its event stream open. The
// refresh commits, its caller gets the new token, the stream is cut at the
// deadline and named in the log, and the process exits 0.
func TestSIGTERMAnswersRefreshAndCutsMCPStream(t *testing.T) {
	t.Parallel()
	sb := startSandbox(t)
	dir := t.TempDir()
	env := []string{"AUTHGATE_SANDBOX_URL=" + sb}
	p := serve(t, dir, env...)
	hc := &http.Client{Timeout: 2 * time.Minute}
	cred := connectOIDCTTL(t, hc, p, sb, "drain@acme.example", 3600)
	first := askToken(t, hc, p, p.AdminKey, cred, `{}`)
	var before struct {
		RefreshFP string `json:"refresh_token_fingerprint"`
	}
	if r := call(t, hc, "GET", p.URL+"/v1/credentials/"+cred, p.AdminKey, ""); json.Unmarshal([]byte(r.body), &before) != nil || before.RefreshFP == "" {
		t.Fatalf("credential %s", r.body)
	}

	// An MCP client: initialize, then the standalone event stream (GET).
	mcpURL := p.URL + "/mcp?user_id=drain"
	mcpReq := func(method, body, session string) *http.Response {
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		req, _ := http.NewRequest(method, mcpURL, rd)
		req.Header.Set("Authorization", "Bearer "+p.AdminKey)
		req.Header.Set("Accept", "application/json, text/event-stream")
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		if session != "" {
			req.Header.Set("Mcp-Session-Id", session)
			req.Header.Set("Mcp-Protocol-Version", "2025-06-18")
		}
		resp, err := (&http.Client{}).Do(req)
		if err != nil {
			t.Fatalf("mcp %s: %v", method, err)
		}
		return resp
	}
	init := mcpReq("POST", `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"e2e","version":"1"}}}`, "")
	session := init.Header.Get("Mcp-Session-Id")
	_, _ = io.Copy(io.Discard, init.Body)
	init.Body.Close()
	if init.StatusCode != 200 || session == "" {
		t.Fatalf("mcp initialize %d, session %q", init.StatusCode, session)
	}
	ack := mcpReq("POST", `{"jsonrpc":"2.0","method":"notifications/initialized"}`, session)
	ack.Body.Close()
	stream := mcpReq("GET", "", session)
	if stream.StatusCode != 200 || !strings.HasPrefix(stream.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("mcp stream %d %s", stream.StatusCode, stream.Header.Get("Content-Type"))
	}
	streamEnded := make(chan struct{})
	go func() {
		defer close(streamEnded)
		_, _ = io.Copy(io.Discard, stream.Body)
		stream.Body.Close()
	}()

	if r := call(t, hc, "DELETE", sb+"/sandbox/admin/counters", "", ""); r.status != 204 {
		t.Fatalf("reset counters %d", r.status)
	}
	if r := call(t, hc, "POST", sb+"/sandbox/admin/faults", "", `{"provider":"oidc","fault":"latency","latency_ms":12000,"count":1,"target":"token"}`); r.status >= 300 {
		t.Fatalf("latency fault %d %s", r.status, r.body)
	}
	answer := make(chan tokenAnswer, 1)
	go func() {
		status, raw, err := post(context.Background(), hc, p.URL+"/v1/credentials/"+cred+"/token", p.AdminKey,
			`{"min_valid_seconds":1,"rejected_fingerprint":"`+first.Fingerprint+`"}`)
		ans := tokenAnswer{status: status}
		if err != nil {
			ans.Detail = err.Error()
		}
		_ = json.Unmarshal(raw, &ans)
		answer <- ans
	}()
	waitForRefreshAtProvider(t, hc, sb, 1)
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case ans := <-answer:
		if ans.status != 200 || ans.Fingerprint == first.Fingerprint {
			t.Fatalf("the caller got %d %s %q; want the refreshed token", ans.status, ans.Type, ans.Detail)
		}
	case <-time.After(time.Minute):
		t.Fatal("the caller got no answer")
	}
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("serve exited with %v; want 0\n%s", err, p.stderr.String())
		}
	case <-time.After(time.Minute):
		t.Fatal("serve did not exit after SIGTERM")
	}
	select {
	case <-streamEnded:
	case <-time.After(10 * time.Second):
		t.Fatal("the MCP stream was left open after exit")
	}
	logs := p.stderr.String()
	if !strings.Contains(logs, "requests still open at the deadline were cut") || !strings.Contains(logs, "GET /mcp") {
		t.Fatalf("the log does not say what was cut:\n%s", logs)
	}
	c := readOIDCCounters(t, hc, sb)
	assertNoReuse(t, c)
	if c.Refreshes != 1 {
		t.Fatalf("the provider saw %d refreshes; want 1", c.Refreshes)
	}
	q := serve(t, dir, env...)
	var after struct {
		Status    string `json:"status"`
		RefreshFP string `json:"refresh_token_fingerprint"`
	}
	if r := call(t, hc, "GET", q.URL+"/v1/credentials/"+cred, p.AdminKey, ""); json.Unmarshal([]byte(r.body), &after) != nil || after.Status != "active" || after.RefreshFP == before.RefreshFP {
		t.Fatalf("after restart: %s; want active with the rotated refresh token", r.body)
	}
}
