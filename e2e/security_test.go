package e2e

import (
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A database whose key file went missing refuses to start: one line naming
// the key id and where the file was expected; no new key is generated.
func TestMissingKeyFileRefusesStart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := serve(t, dir)
	hc := &http.Client{}
	if r := call(t, hc, "POST", p.URL+"/v1/credentials/import", p.AdminKey, `{"user_id":"u","provider":"google","subject":"1","access_token":"ya29.x"}`); r.status != 201 {
		t.Fatalf("import %d %s", r.status, r.body)
	}
	p.stop(t)
	keyData, _ := os.ReadFile(filepath.Join(dir, "authgate.key"))
	keyID, _, _ := strings.Cut(strings.Split(strings.TrimSpace(string(keyData)), "\n")[1], ":")
	for _, prepare := range []func(){
		func() { os.Remove(filepath.Join(dir, "authgate.key")) },
		func() { os.WriteFile(filepath.Join(dir, "authgate.key"), nil, 0o600) }, // what a crash used to leave
	} {
		prepare()
		_, stderr, code := cli(t, dir, "serve", "--addr", "127.0.0.1:0")
		if code == 0 || !strings.Contains(stderr, keyID) || !strings.Contains(stderr, filepath.Join(dir, "authgate.key")) || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
			t.Fatalf("exit %d, stderr %q; want one line naming %s and the key file", code, stderr, keyID)
		}
		if st, err := os.Stat(filepath.Join(dir, "authgate.key")); err == nil && st.Size() > 0 {
			t.Fatal("a new key file was generated over a database that needs another key")
		}
	}
	// An empty key file over an empty database is simply replaced.
	fresh := t.TempDir()
	os.WriteFile(filepath.Join(fresh, "authgate.key"), nil, 0o600)
	serve(t, fresh).stop(t)
	if st, err := os.Stat(filepath.Join(fresh, "authgate.key")); err != nil || st.Size() == 0 {
		t.Fatalf("empty key file not replaced: %v", err)
	}
}

// Configuration errors never echo a password, and bad allow-list entries
// stop start-up.
func TestConfigurationRefusedWithoutSecrets(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	_, stderr, code := cli(t, dir, "serve", "--addr", "127.0.0.1:0", "--db", "host=db.internal user=ag password=hunter2 dbname=ag")
	if code == 0 || strings.Contains(stderr, "hunter2") || stderr == "" {
		t.Fatalf("keyword DSN: exit %d, stderr %q", code, stderr)
	}
	_, stderr, code = cliEnv(t, dir, []string{"AUTHGATE_RETURN_URL_ALLOWLIST=app.example.com"}, "serve", "--addr", "127.0.0.1:0")
	if code == 0 || !strings.Contains(stderr, "return URL") {
		t.Fatalf("bad allow-list: exit %d, stderr %q", code, stderr)
	}
}

// The mounted sandbox's state survives a restart: a credential connected
// before it still gets tokens, by refresh, after.
func TestSandboxStateSurvivesRestart(t *testing.T) {
	t.Parallel()
	t.Run("graceful", func(t *testing.T) { t.Parallel(); sandboxStateSurvives(t, false) })
	t.Run("kill -9", func(t *testing.T) { t.Parallel(); sandboxStateSurvives(t, true) })
}

func sandboxStateSurvives(t *testing.T, crash bool) {
	dir := t.TempDir()
	p := serve(t, dir)
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	hc := &http.Client{}
	if r := call(t, hc, "POST", p.URL+"/sandbox/admin/consent", "", `{"provider":"google","account":"demo@acme.example"}`); r.status != 200 {
		t.Fatalf("consent preset %d %s", r.status, r.body)
	}
	r := call(t, hc, "POST", p.URL+"/v1/connect-sessions", p.AdminKey, `{"user_id":"demo","provider":"google","actions":["drive.files.create"]}`)
	var s struct {
		ID         string `json:"id"`
		ConnectURL string `json:"connect_url"`
	}
	_ = json.Unmarshal([]byte(r.body), &s)
	req, _ := http.NewRequest("GET", s.ConnectURL, nil)
	req.Header.Set("Accept", "application/json")
	resp, err := browser.Do(req) // link → preset consent → callback, in one browser
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("connect flow: %v %v", err, resp)
	}
	var res struct {
		Credential struct {
			ID string `json:"id"`
		} `json:"credential"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&res)
	resp.Body.Close()
	key := p.AdminKey
	tr := call(t, hc, "POST", p.URL+"/v1/credentials/"+res.Credential.ID+"/token", key, `{}`)
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal([]byte(tr.body), &tok); err != nil || tok.AccessToken == "" {
		t.Fatalf("token %d %s", tr.status, tr.body)
	}
	stateFile := filepath.Join(dir, "authgate.db.sandbox.json")
	if crash {
		// The mounted sandbox saves every 2 s while its state changes: wait
		// (bounded) for the save that holds the new token, then kill -9.
		deadline := time.Now().Add(15 * time.Second)
		for {
			if b, err := os.ReadFile(stateFile); err == nil && strings.Contains(string(b), tok.AccessToken) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the sandbox state was not saved within 15 s")
			}
			time.Sleep(50 * time.Millisecond)
		}
		_ = p.cmd.Process.Kill()
		<-p.done
	} else {
		p.stop(t)
	}
	if _, err := os.Stat(stateFile); err != nil {
		t.Fatalf("no sandbox state file: %v", err)
	}

	p = serve(t, dir)
	// The access token still works at the restarted sandbox …
	if r := call(t, hc, "GET", p.URL+"/sandbox/google/v1/userinfo", tok.AccessToken, ""); r.status != 200 || !strings.Contains(r.body, "demo@acme.example") {
		t.Fatalf("userinfo after restart %d %s", r.status, r.body)
	}
	// … and so does the refresh token: disconnecting revokes it there.
	if r := call(t, hc, "DELETE", p.URL+"/v1/credentials/"+res.Credential.ID, key, ""); r.status != 200 {
		t.Fatalf("disconnect after restart %d %s", r.status, r.body)
	}
	if r := call(t, hc, "GET", p.URL+"/v1/credentials/"+res.Credential.ID+"/events", key, ""); !strings.Contains(r.body, `"provider_revoked":true`) {
		t.Fatalf("the restarted sandbox did not know the refresh token: %s", r.body)
	}
	if r := call(t, hc, "GET", p.URL+"/v1/connect-sessions/"+s.ID, key, ""); r.status != 200 || !strings.Contains(r.body, `"state":"connected"`) {
		t.Fatalf("connect session after restart %d %s", r.status, r.body)
	}
}

// Tenant API keys: a lost admin key is replaced from the CLI, listed, and
// revoked.
func TestTenantKeysCLI(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := serve(t, dir)
	out, stderr, code := cli(t, dir, "tenants", "keys", "create", "default", "--name", "replacement")
	if code != 0 {
		t.Fatalf("keys create: %d %s", code, stderr)
	}
	var keyID, key string
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, "key id: "); ok {
			keyID = strings.Fields(v)[0]
		}
		if v, ok := strings.CutPrefix(line, "api key: "); ok {
			key = v
		}
	}
	hc := &http.Client{}
	if r := call(t, hc, "GET", p.URL+"/v1/api-keys", key, ""); r.status != 200 || !strings.Contains(r.body, keyID) || strings.Contains(r.body, key) {
		t.Fatalf("new key against the running server: %d %s", r.status, r.body)
	}
	out, _, code = cli(t, dir, "tenants", "keys", "list", "default")
	if code != 0 || !strings.Contains(out, keyID) || !strings.Contains(out, "replacement") || strings.Contains(out, "ag_") {
		t.Fatalf("keys list: %s", out)
	}
	// A key revoked before it was ever used never authenticates.
	out, _, _ = cli(t, dir, "tenants", "keys", "create", "default")
	fresh := strings.TrimSpace(out[strings.Index(out, "api key: ")+len("api key: "):])
	freshID := strings.Fields(strings.TrimPrefix(out, "key id: "))[0]
	if _, stderr, code := cli(t, dir, "tenants", "keys", "revoke", "default", freshID); code != 0 {
		t.Fatalf("revoke: %s", stderr)
	}
	if r := call(t, hc, "GET", p.URL+"/v1/credentials", fresh, ""); r.status != 401 {
		t.Fatalf("revoked key: %d", r.status)
	}
	if _, stderr, code := cli(t, dir, "tenants", "keys", "revoke", "default", "key_nope"); code == 0 || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
		t.Fatalf("revoking an unknown key: %d %q", code, stderr)
	}
}

// NUL bytes and invalid UTF-8 are 400 on every backend, PostgreSQL included.
func TestBadBytesRefusedOnEveryBackend(t *testing.T) {
	t.Parallel()
	backends := map[string][]string{"sqlite": nil}
	if os.Getenv("AUTHGATE_TEST_POSTGRES") != "" {
		backends["postgres"] = []string{"AUTHGATE_DB=" + postgresSchema(t), pgMasterKeys}
	}
	for name, env := range backends {
		p := serve(t, t.TempDir(), env...)
		hc := &http.Client{}
		for _, tc := range []struct{ method, path, body string }{
			{"GET", "/v1/credentials/cred_%00", ""},
			{"GET", "/v1/credentials/%ff%fe", ""},
			{"GET", "/v1/credentials?user_id=a%00b", ""},
			{"GET", "/v1/credentials?user_id=%ff", ""},
			{"GET", "/connect/%ff", ""},
			{"GET", "/v1/connect-sessions/cs_%00", ""},
			{"POST", "/v1/credentials/import", `{"user_id":"a\u0000b","provider":"google","subject":"1","access_token":"x"}`},
			{"POST", "/v1/connect-sessions", `{"user_id":"u","provider":"google","expected_account":"a\u0000@b"}`},
			{"POST", "/v1/credentials/import", "{\"user_id\":\"\xff\",\"provider\":\"google\",\"subject\":\"1\",\"access_token\":\"x\"}"},
		} {
			if r := call(t, hc, tc.method, p.URL+tc.path, p.AdminKey, tc.body); r.status != 400 || !strings.Contains(r.body, "invalid_request") {
				t.Errorf("%s: %s %s: %d %s", name, tc.method, tc.path, r.status, r.body)
			}
		}
	}
}
