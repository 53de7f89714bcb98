package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startSandbox runs `authgate sandbox` on a free port and returns its URL;
// it stops when the test ends.
func startSandbox(t *testing.T, args ...string) string {
	t.Helper()
	url, stop := startSandboxStoppable(t, args...)
	t.Cleanup(stop)
	return url
}

// startSandboxStoppable returns the sandbox's URL and a func that stops it
// gracefully (SIGTERM).
func startSandboxStoppable(t *testing.T, args ...string) (string, func()) {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"sandbox", "--addr", "127.0.0.1:0", "--seed", "7"}, args...)...)
	cmd.Env = cleanEnv()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var stopped bool
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("authgate sandbox exit: %v", err)
			}
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			t.Error("authgate sandbox ignored SIGTERM")
		}
	}
	t.Cleanup(stop)
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "authgate sandbox is serving on "); ok {
				ready <- strings.Fields(u)[0]
			}
		}
		close(ready)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	select {
	case u, ok := <-ready:
		if !ok {
			t.Fatal("authgate sandbox exited before serving")
		}
		return u, stop
	case <-ctx.Done():
		t.Fatal("authgate sandbox did not start")
	}
	return "", stop
}

// TestSandboxStateFile: with --state, registered clients survive a restart.
func TestSandboxStateFile(t *testing.T) {
	t.Parallel()
	state := filepath.Join(t.TempDir(), "sandbox.json")
	u, stop := startSandboxStoppable(t, "--state", state)
	hc := &http.Client{}
	r := call(t, hc, "POST", u+"/sandbox/admin/clients", "", `{"provider":"oidc","redirect_uris":["https://app.example/cb"],"name":"kept"}`)
	if r.status != 201 {
		t.Fatalf("register %d %s", r.status, r.body)
	}
	stop()
	u = startSandbox(t, "--state", state)
	if r := call(t, hc, "GET", u+"/sandbox/admin/clients", "", ""); !strings.Contains(r.body, `"kept"`) {
		t.Fatalf("client lost across restart: %s", r.body)
	}
}

// TestSandboxStandalone drives the standalone sandbox with nothing but HTTP,
// the way the README's curl examples do: list providers, preset consent,
// authorize, exchange the code, call Drive, inject a fault, read counters.
func TestSandboxStandalone(t *testing.T) {
	t.Parallel()
	base := startSandbox(t)
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	post := func(path, body string) apiResult {
		req, _ := http.NewRequest("POST", base+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b strings.Builder
		_, _ = bufio.NewReader(resp.Body).WriteTo(&b)
		return apiResult{resp.StatusCode, b.String()}
	}
	var providers struct {
		Providers []struct {
			Name          string            `json:"name"`
			Endpoints     map[string]string `json:"endpoints"`
			DefaultClient struct {
				ClientID     string `json:"client_id"`
				ClientSecret string `json:"client_secret"`
			} `json:"default_client"`
		} `json:"providers"`
	}
	r := call(t, hc, "GET", base+"/sandbox/admin/providers", "", "")
	if err := json.Unmarshal([]byte(r.body), &providers); err != nil || len(providers.Providers) != 4 {
		t.Fatalf("providers %d %s", r.status, r.body)
	}
	google := providers.Providers[0]
	if google.Name != "google" {
		t.Fatalf("first provider %s", google.Name)
	}
	if r := post("/sandbox/admin/consent", `{"provider":"google","account":"wes@acme.example"}`); r.status != 200 {
		t.Fatalf("consent %d %s", r.status, r.body)
	}
	q := url.Values{"client_id": {google.DefaultClient.ClientID}, "redirect_uri": {"http://127.0.0.1:9/cb"}, "response_type": {"code"},
		"scope": {"openid https://www.googleapis.com/auth/drive.file"}, "state": {"s1"}, "access_type": {"offline"}}
	resp, err := hc.Get(google.Endpoints["authorization"] + "?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := resp.Location()
	if err != nil || loc.Query().Get("code") == "" || loc.Query().Get("state") != "s1" {
		t.Fatalf("authorize: %d %v %v", resp.StatusCode, loc, err)
	}
	form := url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")}, "redirect_uri": {"http://127.0.0.1:9/cb"},
		"client_id": {google.DefaultClient.ClientID}, "client_secret": {google.DefaultClient.ClientSecret}}
	resp, err = hc.PostForm(google.Endpoints["token"], form)
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
		ExpiresIn    int    `json:"expires_in"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	if resp.StatusCode != 200 || tok.AccessToken == "" || tok.RefreshToken == "" || tok.ExpiresIn != 3599 {
		t.Fatalf("token %d %+v", resp.StatusCode, tok)
	}
	if r := call(t, hc, "GET", google.Endpoints["drive"]+"files", tok.AccessToken, ""); r.status != 200 {
		t.Fatalf("drive %d %s", r.status, r.body)
	}
	if r := post("/sandbox/admin/faults", `{"provider":"google","fault":"revoke","account":"wes@acme.example"}`); r.status != 201 {
		t.Fatalf("fault %d %s", r.status, r.body)
	}
	if r := call(t, hc, "GET", google.Endpoints["drive"]+"files", tok.AccessToken, ""); r.status != 401 {
		t.Fatalf("drive after revoke %d", r.status)
	}
	r = call(t, hc, "GET", base+"/sandbox/admin/counters", "", "")
	if !strings.Contains(r.body, `"code_exchanges": 1`) || !strings.Contains(r.body, `"api_requests": 2`) {
		t.Fatalf("counters %s", r.body)
	}
}

// TestServeMountsSandbox: `authgate serve` with no real provider mounts the
// sandbox next to its API; AUTHGATE_SANDBOX=off removes it.
func TestServeMountsSandbox(t *testing.T) {
	t.Parallel()
	hc := &http.Client{}
	p := serve(t, t.TempDir())
	if r := call(t, hc, "GET", p.URL+"/sandbox/admin/providers", "", ""); r.status != 200 || !strings.Contains(r.body, `"name": "notion"`) {
		t.Fatalf("mounted sandbox %d %s", r.status, r.body)
	}
	if r := call(t, hc, "GET", p.URL+"/sandbox/oidc/.well-known/openid-configuration", "", ""); r.status != 200 || !strings.Contains(r.body, p.URL+"/sandbox/oidc") {
		t.Fatalf("mounted discovery %d %s", r.status, r.body)
	}
	if r := call(t, hc, "GET", p.URL+"/v1/credentials", p.AdminKey, ""); r.status != 200 {
		t.Fatalf("API beside the sandbox %d", r.status)
	}
	off := serve(t, t.TempDir(), "AUTHGATE_SANDBOX=off")
	if r := call(t, hc, "GET", off.URL+"/sandbox/admin/providers", "", ""); r.status != 404 || !strings.Contains(r.body, `"type":"not_found"`) {
		t.Fatalf("sandbox off: %d %s", r.status, r.body)
	}
}

// TestSecondProcessSharesTheSandbox: two zero-config `serve` processes on
// one SQLite file. The first mounts the sandbox; the second uses it rather
// than mounting its own, so a credential connected through one process is
// refreshed through the other at the sandbox that issued its tokens.
func TestSecondProcessSharesTheSandbox(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a := serve(t, dir)
	b := serve(t, dir)
	defer a.stop(t)
	defer b.stop(t)
	hc := &http.Client{}
	cred := connectOIDC(t, hc, a, a.URL, "shared@example.com")
	var first struct {
		Fingerprint string `json:"fingerprint"`
	}
	if r := call(t, hc, "POST", a.URL+"/v1/credentials/"+cred+"/token", a.AdminKey, `{}`); r.status != 200 || json.Unmarshal([]byte(r.body), &first) != nil {
		t.Fatalf("token via a: %d %s", r.status, r.body)
	}
	r := call(t, hc, "POST", b.URL+"/v1/credentials/"+cred+"/token", a.AdminKey, `{"rejected_fingerprint":"`+first.Fingerprint+`"}`)
	if r.status != 200 || strings.Contains(r.body, first.Fingerprint) {
		t.Fatalf("refresh via b: %d %s", r.status, r.body)
	}
	if r := call(t, hc, "GET", b.URL+"/v1/credentials/"+cred, a.AdminKey, ""); !strings.Contains(r.body, `"status":"active"`) {
		t.Fatalf("credential after refresh via b: %s", r.body)
	}
	b.stop(t) // stderr is complete once the process has exited
	if !strings.Contains(b.stderr.String(), "using it instead of mounting a second one") {
		t.Fatalf("the second process did not share the sandbox:\n%s", b.stderr.String())
	}
}
