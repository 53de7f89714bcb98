package e2e

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestServeZeroConfig: `authgate serve` in an empty directory creates its
// database and a 0600 key file, prints the admin key once, answers, and shuts
// down cleanly; a restart reuses both and prints no new key.
func TestServeZeroConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := serve(t, dir)
	if !strings.HasPrefix(p.AdminKey, "ag_") {
		t.Fatalf("no admin key line on stdout:\n%s", p.stdout.String())
	}
	st, err := os.Stat(filepath.Join(dir, "authgate.key"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, mode %v; want 0600", err, st.Mode().Perm())
	}
	if st, err := os.Stat(filepath.Join(dir, "authgate.db")); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("database file: %v; want it created 0600", err)
	}
	hc := &http.Client{}
	if r := call(t, hc, "GET", p.URL+"/healthz", "", ""); r.status != 200 {
		t.Fatalf("healthz %d %s", r.status, r.body)
	}
	imp := call(t, hc, "POST", p.URL+"/v1/credentials/import", p.AdminKey,
		`{"user_id":"alice","provider":"google","subject":"1234","email":"alice@example.com","scopes":["openid"],"access_token":"ya29.x","refresh_token":"1//y","expires_at":"2026-11-26T10:00:00Z"}`)
	if imp.status != 201 {
		t.Fatalf("import %d %s", imp.status, imp.body)
	}
	p.stop(t)
	// Read after exit: stderr is a pipe of its own, not ordered with the
	// stdout line serve() waited for.
	if !strings.Contains(p.stderr.String(), "generated a new master key file") {
		t.Fatalf("no warning about the generated key file:\n%s", p.stderr.String())
	}

	again := serve(t, dir)
	if again.AdminKey != "" || strings.Contains(again.stdout.String(), "admin key") {
		t.Fatalf("restart printed a new admin key:\n%s", again.stdout.String())
	}
	list := call(t, hc, "GET", again.URL+"/v1/credentials", p.AdminKey, "")
	if list.status != 200 || !strings.Contains(list.body, `"user_id":"alice"`) {
		t.Fatalf("after restart list %d %s", list.status, list.body)
	}
}

// TestCLIErrors: bad input on the command line is one line on stderr and a
// non-zero exit, never a panic or a usage dump.
func TestCLIErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"creds", "list"}, "database authgate.db not found"},
		{[]string{"serve", "--addr", "nonsense"}, "want host:port"},
		{[]string{"serve", "--db", "mysql://x"}, "want sqlite:PATH"},
		{[]string{"creds", "show"}, "accepts 1 arg"},
		{[]string{"frobnicate"}, "unknown command"},
	} {
		_, stderr, code := cli(t, dir, tc.args...)
		lines := strings.Split(strings.TrimSpace(stderr), "\n")
		if code == 0 || len(lines) != 1 || !strings.HasPrefix(lines[0], "authgate: ") || !strings.Contains(stderr, tc.want) {
			t.Errorf("authgate %v: exit %d, stderr %q; want one 'authgate: …%s' line and a non-zero exit", tc.args, code, stderr, tc.want)
		}
	}
	p := serve(t, dir)
	p.stop(t)
	if _, stderr, code := cli(t, dir, "creds", "show", "cred_nope"); code == 0 || !strings.Contains(stderr, "is not a credential id") {
		t.Errorf("creds show bad id: exit %d, %q", code, stderr)
	}
	if _, stderr, code := cli(t, dir, "events", "cred_"+strings.Repeat("a", 26)); code == 0 || !strings.Contains(stderr, "no credential") {
		t.Errorf("events unknown id: exit %d, %q", code, stderr)
	}
	if out, _, code := cli(t, dir, "tenants", "create", "beta"); code != 0 || !strings.Contains(out, "admin key: ag_") {
		t.Fatalf("tenants create: exit %d, %q", code, out)
	}
	if _, stderr, code := cli(t, dir, "tenants", "create", "beta"); code == 0 || !strings.Contains(stderr, "already exists") {
		t.Errorf("duplicate tenant: exit %d, %q", code, stderr)
	}
	if out, _, code := cli(t, dir, "tenants", "allow-return-url", "beta", "https://app.beta.example/"); code != 0 || !strings.Contains(out, "https://app.beta.example/") {
		t.Errorf("allow-return-url: exit %d, %q", code, out)
	}
	if _, stderr, code := cli(t, dir, "tenants", "allow-return-url", "beta", "ftp://x"); code == 0 || !strings.Contains(stderr, "scheme must be http or https") {
		t.Errorf("bad prefix: exit %d, %q", code, stderr)
	}
	if _, stderr, code := cli(t, dir, "tenants", "create", "Bad Name"); code == 0 || !strings.Contains(stderr, "tenant name") {
		t.Errorf("bad tenant name: exit %d, %q", code, stderr)
	}
}

// TestMasterKeysFromEnvironment: with AUTHGATE_MASTER_KEYS set no key file is
// written, and a process holding other keys than the data was sealed with
// says which key it lacks instead of producing garbage.
func TestMasterKeysFromEnvironment(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	k1 := "AUTHGATE_MASTER_KEYS=prod-2026:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	p := serve(t, dir, k1)
	if _, err := os.Stat(filepath.Join(dir, "authgate.key")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a key file was written although keys came from the environment: %v", err)
	}
	if strings.Contains(p.stderr.String(), "generated a new master key file") {
		t.Fatal("warned about a generated key file that should not exist")
	}
	r := call(t, &http.Client{}, "POST", p.URL+"/v1/credentials/import", p.AdminKey,
		`{"user_id":"alice","provider":"google","subject":"1234","access_token":"ya29.x","refresh_token":"1//y"}`)
	if r.status != 201 {
		t.Fatalf("import %d %s", r.status, r.body)
	}
	p.stop(t)

	staging := "AUTHGATE_MASTER_KEYS=staging-1:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{8}, 32))
	out, stderr, code := cliEnv(t, dir, []string{staging}, "keys", "rotate")
	if code == 0 || !strings.Contains(stderr, "master key prod-2026, which AUTHGATE_MASTER_KEYS does not have") {
		t.Fatalf("rotate with the wrong keys: exit %d\nstdout %s\nstderr %s", code, out, stderr)
	}
	both := "AUTHGATE_MASTER_KEYS=staging-1:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{8}, 32)) + ",prod-2026:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	if out, stderr, code := cliEnv(t, dir, []string{both}, "keys", "rotate"); code != 0 || !strings.Contains(out, "re-encrypted 1,") || !strings.Contains(out, "remaining on other keys 0") {
		t.Fatalf("rotate with both keys: exit %d\n%s\n%s", code, out, stderr)
	}
	if _, stderr, code := cliEnv(t, dir, []string{k1}, "keys", "rotate"); code == 0 || !strings.Contains(stderr, "master key staging-1") {
		t.Fatalf("after rotation the old key alone must no longer decrypt: exit %d %s", code, stderr)
	}
	if _, stderr, code := cliEnv(t, dir, []string{"AUTHGATE_MASTER_KEYS=k1:short"}, "creds", "list"); code == 0 || !strings.Contains(stderr, "master keys") {
		t.Fatalf("malformed AUTHGATE_MASTER_KEYS: exit %d %s", code, stderr)
	}
}

// TestKeyRotationWhileServing: `keys rotate --generate` re-encrypts under a
// new key while serve runs; the running server follows the key file and
// keeps serving tokens without a restart, also once the old key is gone.
func TestKeyRotationWhileServing(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := serve(t, dir)
	hc := &http.Client{}
	exp := time.Now().Add(24 * time.Hour).UTC().Format(time.RFC3339)
	imp := call(t, hc, "POST", p.URL+"/v1/credentials/import", p.AdminKey,
		`{"user_id":"u","provider":"google","subject":"s","access_token":"ya29.rotating","refresh_token":"1//r","expires_at":"`+exp+`"}`)
	var cred struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(imp.body), &cred); err != nil || imp.status != 201 {
		t.Fatalf("import %d %s", imp.status, imp.body)
	}
	token := func() apiResult {
		return call(t, hc, "POST", p.URL+"/v1/credentials/"+cred.ID+"/token", p.AdminKey, `{}`)
	}
	if r := token(); r.status != 200 {
		t.Fatalf("token before rotation %d %s", r.status, r.body)
	}
	out, stderr, code := cli(t, dir, "keys", "rotate", "--generate")
	if code != 0 || !strings.Contains(out, "remaining on other keys 0") {
		t.Fatalf("rotate: %d %s %s", code, out, stderr)
	}
	if r := token(); r.status != 200 || !strings.Contains(r.body, "ya29.rotating") {
		t.Fatalf("token after rotation, no restart: %d %s", r.status, r.body)
	}
	// Retire the old key from the file: the server still serves.
	keyFile := filepath.Join(dir, "authgate.key")
	data, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	var kept []string
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if !strings.HasPrefix(line, "#") {
			kept = append(kept, line)
			break // the first key line is the new primary
		}
	}
	if err := os.WriteFile(keyFile, []byte(strings.Join(kept, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := token(); r.status != 200 {
		t.Fatalf("token with the old key retired: %d %s", r.status, r.body)
	}
	// A process holding other keys refuses to start, naming the key it lacks.
	p.stop(t)
	primary, _, _ := strings.Cut(kept[0], ":")
	_, stderr, code = cliEnv(t, dir, []string{"AUTHGATE_MASTER_KEYS=elsewhere:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{3}, 32))}, "serve", "--addr", "127.0.0.1:0")
	if code == 0 || !strings.Contains(stderr, primary) || !strings.Contains(stderr, "refusing to start") || strings.Contains(stderr, "ya29.rotating") {
		t.Fatalf("wrong keys: exit %d, %q", code, stderr)
	}
}

// TestCLIExitCodes: the real binary fails (exit 1, one "authgate: …" line
// that keeps the useful part) on typos and bad settings, and the metadata
// commands work without the master key.
func TestCLIExitCodes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	providers := filepath.Join(dir, "providers.yaml")
	if err := os.WriteFile(providers, []byte("providers:\n  - name: w\n    colour: red\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		env  []string
		args []string
		want string
	}{
		{nil, []string{"creds", "lst"}, `unknown command "lst" for "authgate creds"; did you mean list?`},
		{nil, []string{"tenants", "crate"}, "did you mean create?"},
		{nil, []string{"serv"}, "Did you mean this? serve"},
		{[]string{"AUTHGATE_LOG_LEVEL=loud"}, []string{"creds", "list"}, `AUTHGATE_LOG_LEVEL="loud": want debug, info, warn or error`},
		{[]string{"AUTHGATE_LOG_FORMAT=xml"}, []string{"serve"}, `AUTHGATE_LOG_FORMAT="xml": want json or text`},
		{[]string{"AUTHGATE_PROVIDERS_FILE=" + providers}, []string{"serve", "--addr", "127.0.0.1:0"}, "field colour not found"},
	} {
		_, stderr, code := cliEnv(t, dir, tc.env, tc.args...)
		lines := strings.Split(strings.TrimSpace(stderr), "\n")
		last := lines[len(lines)-1]
		if code != 1 || !strings.HasPrefix(last, "authgate: ") || !strings.Contains(last, tc.want) {
			t.Errorf("%v authgate %v: exit %d, stderr %q; want exit 1 and a last line 'authgate: …%s…'", tc.env, tc.args, code, stderr, tc.want)
		}
	}
	if out, _, code := cli(t, dir, "creds"); code != 0 || !strings.Contains(out, "Available Commands") {
		t.Errorf("authgate creds (no subcommand): exit %d; want its help and 0", code)
	}

	// creds list|show read metadata only: no master key needed.
	dir = t.TempDir()
	p := serve(t, dir)
	r := call(t, http.DefaultClient, "POST", p.URL+"/v1/credentials/import", p.AdminKey,
		`{"user_id":"alice","provider":"google","subject":"1234","email":"alice@example.com","scopes":["openid"],"access_token":"ya29.x","refresh_token":"1//y","expires_at":"2030-01-01T00:00:00Z"}`)
	p.stop(t)
	id := regexp.MustCompile(`"id":"(cred_[a-z2-7]{26})"`).FindStringSubmatch(r.body)
	if id == nil {
		t.Fatalf("import %d %s", r.status, r.body)
	}
	if err := os.Rename(filepath.Join(dir, "authgate.key"), filepath.Join(dir, "elsewhere.key")); err != nil {
		t.Fatal(err)
	}
	if out, stderr, code := cli(t, dir, "creds", "list"); code != 0 || !strings.Contains(out, id[1]) {
		t.Errorf("creds list without the key: exit %d, %q %q", code, out, stderr)
	}
	if out, stderr, code := cli(t, dir, "creds", "show", id[1]); code != 0 || !strings.Contains(out, "alice@example.com") {
		t.Errorf("creds show without the key: exit %d, %q %q", code, out, stderr)
	}
	if _, stderr, code := cli(t, dir, "tenants", "create", "beta"); code == 0 || !strings.Contains(stderr, "master key file") {
		t.Errorf("a command that needs the key ran without it: exit %d, %q", code, stderr)
	}
}

// TestImpostorKeyRefused: a master key with the database's key id but other
// bytes (a mistyped AUTHGATE_MASTER_KEYS) is refused at start, instead of
// answering 500 for every credential and sealing new secrets under an id two
// different keys now share.
func TestImpostorKeyRefused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	real := "AUTHGATE_MASTER_KEYS=k1:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32))
	p := serve(t, dir, real)
	if r := call(t, &http.Client{}, "POST", p.URL+"/v1/credentials/import", p.AdminKey,
		`{"user_id":"alice","provider":"google","subject":"1234","access_token":"ya29.x","refresh_token":"1//y"}`); r.status != 201 {
		t.Fatalf("import %d %s", r.status, r.body)
	}
	p.stop(t)
	impostor := "AUTHGATE_MASTER_KEYS=k1:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{2}, 32))
	_, stderr, code := cliEnv(t, dir, []string{impostor}, "serve", "--addr", "127.0.0.1:0")
	if code == 0 || !strings.Contains(stderr, "another key under the same id") || strings.Count(strings.TrimSpace(stderr), "\n") > 0 {
		t.Fatalf("impostor key: exit %d, %q", code, stderr)
	}
	q := serve(t, dir, real)
	q.stop(t)
}

// TestPostgresNeedsExplicitKeys: instances sharing a PostgreSQL database
// never generate keys of their own (each would seal what the others cannot
// open): without AUTHGATE_MASTER_KEYS or a key file, serve refuses.
func TestPostgresNeedsExplicitKeys(t *testing.T) {
	t.Parallel()
	db := postgresSchema(t)
	_, stderr, code := cliEnv(t, t.TempDir(), []string{"AUTHGATE_DB=" + db}, "serve", "--addr", "127.0.0.1:0")
	if code == 0 || !strings.Contains(stderr, "AUTHGATE_MASTER_KEYS") || !strings.Contains(stderr, "PostgreSQL") {
		t.Fatalf("PostgreSQL without keys: exit %d, %q", code, stderr)
	}
}

// TestKeyRotationKeepsPendingConnectLinks: a connect link created before
// `keys rotate` still completes after the old key is retired (the rotation
// re-seals pending sessions' PKCE verifiers, not only credentials).
func TestKeyRotationKeepsPendingConnectLinks(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := serve(t, dir)
	defer p.stop(t)
	hc := &http.Client{}
	if r := call(t, hc, "POST", p.URL+"/sandbox/admin/consent", "", `{"provider":"oidc","account":"rota@example.com"}`); r.status != 200 {
		t.Fatalf("consent preset %d %s", r.status, r.body)
	}
	r := call(t, hc, "POST", p.URL+"/v1/connect-sessions", p.AdminKey, `{"user_id":"rota","provider":"oidc","actions":["api.read"]}`)
	var s struct {
		ConnectURL string `json:"connect_url"`
	}
	if err := json.Unmarshal([]byte(r.body), &s); err != nil || s.ConnectURL == "" {
		t.Fatalf("connect session %d %s", r.status, r.body)
	}
	out, stderr, code := cli(t, dir, "keys", "rotate", "--generate")
	if code != 0 || !strings.Contains(out, "remaining on other keys 0") {
		t.Fatalf("rotate: %d %s %s", code, out, stderr)
	}
	keyFile := filepath.Join(dir, "authgate.key")
	data, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	var kept []string
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if !strings.HasPrefix(line, "#") {
			kept = append(kept, line)
			break // the new primary only: the old key is retired
		}
	}
	if err := os.WriteFile(keyFile, []byte(strings.Join(kept, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// A fresh process knows only the new key: the pending session must have
	// been re-sealed (or the server would refuse to start, or the callback
	// could not open the PKCE verifier).
	p.stop(t)
	p = serve(t, dir)
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	link, _ := url.Parse(s.ConnectURL)
	req, _ := http.NewRequest("GET", p.URL+link.Path, nil) // the restarted server has another port
	req.Header.Set("Accept", "application/json")
	resp, err := browser.Do(req) // link → preset consent → callback
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"credential"`) {
		t.Fatalf("connect after the old key was retired: %d %s", resp.StatusCode, body)
	}
}
