package e2e

import (
	"context"
	"encoding/json"
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
