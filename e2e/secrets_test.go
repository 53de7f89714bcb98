package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// TestPlaintextHunt stores real-looking tokens, drives every API route and CLI
// command over them (successes and failures), restarts and rotates keys, then
// searches the database files, every log line, every API response and every
// CLI output for the plaintexts. Only the one-time "admin key:" lines may
// contain an API key; no token may appear anywhere.
func TestPlaintextHunt(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := serve(t, dir)
	hc := &http.Client{}
	tokens := map[string]string{}
	for i := range 3 {
		tokens[fmt.Sprintf("access %d", i)] = "ya29.a0AfH6SM" + randHex(24)
		tokens[fmt.Sprintf("refresh %d", i)] = "1//0g" + randHex(24)
	}
	tokens["reimport access"] = "ya29.a0Second" + randHex(24)
	tokens["refused access"] = "ya29.a0Refused" + randHex(24)
	tokens["tenant2 access"] = "xoxb-" + randHex(20)
	var responses, outputs []string
	record := func(r apiResult) apiResult { responses = append(responses, r.body); return r }
	run := func(args ...string) string {
		out, errOut, code := cli(t, dir, args...)
		outputs = append(outputs, out, errOut)
		if code != 0 {
			t.Fatalf("authgate %v: exit %d: %s", args, code, errOut)
		}
		return out
	}

	var ids []string
	idRe := regexp.MustCompile(`"id":"(cred_[a-z2-7]{26})"`)
	for i := range 3 {
		body := fmt.Sprintf(`{"user_id":"user-%d","provider":"google","subject":"sub-%d","email":"u%d@example.com","scopes":["openid","https://www.googleapis.com/auth/drive.file"],"access_token":%q,"refresh_token":%q,"expires_at":"2026-11-26T10:00:00Z"}`,
			i, i, i, tokens[fmt.Sprintf("access %d", i)], tokens[fmt.Sprintf("refresh %d", i)])
		r := record(call(t, hc, "POST", p.URL+"/v1/credentials/import", p.AdminKey, body))
		m := idRe.FindStringSubmatch(r.body)
		if r.status != 201 || m == nil {
			t.Fatalf("import %d: %d %s", i, r.status, r.body)
		}
		ids = append(ids, m[1])
	}
	// Re-import without a refresh token; refused imports that carry tokens.
	record(call(t, hc, "POST", p.URL+"/v1/credentials/import", p.AdminKey,
		fmt.Sprintf(`{"user_id":"user-0","provider":"google","subject":"sub-0","scopes":["openid"],"access_token":%q}`, tokens["reimport access"])))
	for _, bad := range []string{
		fmt.Sprintf(`{"user_id":"u","provider":"google","subject":"s","access_token":%q,"refresh_token":%q,"nope":1}`, tokens["refused access"], tokens["refresh 1"]),
		fmt.Sprintf(`{"user_id":"","provider":"google","subject":"s","access_token":%q}`, tokens["refused access"]),
		fmt.Sprintf(`{"user_id":"u","provider":"google","subject":"s","access_token":"%s with space"}`, tokens["refused access"]),
		fmt.Sprintf(`{"user_id":"u","provider":"google","subject":"s","access_token":%q,"expires_at":%q}`, tokens["refused access"], tokens["refused access"]),
		fmt.Sprintf(`{"user_id":"u","provider":"google","subject":%q,"access_token":"x"`, tokens["refused access"]),
	} {
		if r := record(call(t, hc, "POST", p.URL+"/v1/credentials/import", p.AdminKey, bad)); r.status != 400 {
			t.Fatalf("bad import answered %d %s", r.status, r.body)
		}
	}
	// A wrong API key that looks like a token, in the header.
	record(call(t, hc, "GET", p.URL+"/v1/credentials", tokens["refused access"], ""))

	// Another tenant, created with the CLI while the server runs.
	out := run("tenants", "create", "tenant-two")
	key2 := strings.TrimSpace(strings.SplitAfter(out, "admin key: ")[1])
	record(call(t, hc, "POST", p.URL+"/v1/credentials/import", key2,
		fmt.Sprintf(`{"user_id":"t2","provider":"slack","workspace_id":"T123","subject":"U1","access_token":%q}`, tokens["tenant2 access"])))

	for _, path := range []string{"/v1/credentials", "/v1/credentials?provider=google&limit=2", "/v1/credentials?status=active&user_id=user-1"} {
		record(call(t, hc, "GET", p.URL+path, p.AdminKey, ""))
	}
	for _, id := range ids {
		record(call(t, hc, "GET", p.URL+"/v1/credentials/"+id, p.AdminKey, ""))
		record(call(t, hc, "GET", p.URL+"/v1/credentials/"+id+"/events", p.AdminKey, ""))
		record(call(t, hc, "GET", p.URL+"/v1/credentials/"+id, key2, "")) // 404 across tenants
	}
	// A connect flow through the mounted sandbox, then token requests that
	// refresh: the provider's tokens may appear only in the token response.
	jar, _ := cookiejar.New(nil) // the connect link is bound to this browser
	noFollow := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest("POST", p.URL+"/sandbox/admin/consent", strings.NewReader(`{"provider":"google","account":"hunt@acme.example","access_token_ttl_seconds":600}`))
	req.Header.Set("Content-Type", "application/json")
	if resp, err := hc.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("consent preset: %v", err)
	}
	cs := record(call(t, hc, "POST", p.URL+"/v1/connect-sessions", p.AdminKey, `{"user_id":"hunter","provider":"google","actions":["drive.files.create"]}`))
	var session struct {
		ConnectURL string `json:"connect_url"`
	}
	if err := json.Unmarshal([]byte(cs.body), &session); err != nil || session.ConnectURL == "" {
		t.Fatalf("connect session %d %s", cs.status, cs.body)
	}
	location := session.ConnectURL
	for range 3 { // connect link → provider → callback
		resp, err := noFollow.Get(location)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc, err := resp.Location()
		if err != nil {
			t.Fatalf("no redirect from %s (%d)", location, resp.StatusCode)
		}
		location = loc.String()
		if q := loc.Query(); q.Get("code") != "" {
			tokens["authorization code"] = q.Get("code")
		}
		if strings.Contains(location, "/oauth/callback") {
			tokens["oauth state"] = loc.Query().Get("state")
			record(call(t, noFollow, "GET", location, "", "")) // the browser that opened the link
			break
		}
	}
	page := record(call(t, hc, "GET", p.URL+"/v1/credentials?user_id=hunter", p.AdminKey, ""))
	connected := idRe.FindStringSubmatch(page.body)
	if connected == nil {
		t.Fatalf("connect flow stored nothing: %s", page.body)
	}
	// Report the connect-time token as rejected: the refresher refreshes and
	// stores the new token. The served tokens are needles, so their own
	// responses are not haystacks.
	var first struct {
		Fingerprint string `json:"fingerprint"`
	}
	if r := call(t, hc, "POST", p.URL+"/v1/credentials/"+connected[1]+"/token", p.AdminKey, `{}`); r.status != 200 || json.Unmarshal([]byte(r.body), &first) != nil {
		t.Fatalf("token request %d", r.status)
	}
	var refreshed struct {
		Fingerprint string `json:"fingerprint"`
		AccessToken string `json:"access_token"`
	}
	if r := call(t, hc, "POST", p.URL+"/v1/credentials/"+connected[1]+"/token", p.AdminKey, `{"rejected_fingerprint":"`+first.Fingerprint+`"}`); r.status != 200 ||
		json.Unmarshal([]byte(r.body), &refreshed) != nil || refreshed.Fingerprint == first.Fingerprint || refreshed.AccessToken == "" {
		t.Fatalf("refreshing token request %d (fingerprint %s → %s)", r.status, first.Fingerprint, refreshed.Fingerprint)
	}
	tokens["refreshed access "+refreshed.AccessToken[:12]] = refreshed.AccessToken
	for _, body := range []string{`{"min_valid_seconds":60}`, `{}`} {
		tr := call(t, hc, "POST", p.URL+"/v1/credentials/"+connected[1]+"/token", p.AdminKey, body)
		var out struct {
			AccessToken string `json:"access_token"`
		}
		if err := json.Unmarshal([]byte(tr.body), &out); err != nil || out.AccessToken == "" {
			t.Fatalf("token %d %s", tr.status, tr.body)
		}
		tokens["served access "+out.AccessToken[:12]] = out.AccessToken // a needle; its own response is not a haystack
	}
	record(call(t, hc, "DELETE", p.URL+"/v1/credentials/"+connected[1], p.AdminKey, ""))

	record(call(t, hc, "DELETE", p.URL+"/v1/credentials/"+ids[2], p.AdminKey, ""))
	record(call(t, hc, "GET", p.URL+"/v1/credentials/"+ids[2]+"/events", p.AdminKey, ""))

	run("creds", "list")
	run("creds", "list", "--json")
	for _, id := range ids {
		run("creds", "show", id)
		run("creds", "show", id, "--json")
		run("events", id)
		run("events", id, "--json")
	}
	p.stop(t)
	run("keys", "rotate", "--generate")
	again := serve(t, dir)
	for _, id := range ids[:2] {
		if r := record(call(t, hc, "GET", again.URL+"/v1/credentials/"+id, p.AdminKey, "")); r.status != 200 {
			t.Fatalf("after rotation: %d %s", r.status, r.body)
		}
	}
	again.stop(t)

	// The hunt.
	haystacks := map[string]string{}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	sawDB := false
	for _, e := range entries {
		if e.Name() == "authgate.key" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		haystacks["file "+e.Name()] = string(b)
		if strings.HasPrefix(e.Name(), "authgate.db") && strings.Contains(string(b), ids[0]) {
			sawDB = true
		}
	}
	if !sawDB {
		t.Fatal("the database files do not even contain the credential ids: hunting in the wrong place")
	}
	haystacks["logs"] = p.stderr.String() + again.stderr.String()
	haystacks["server stdout (without the admin key line)"] = stripAdminKeyLines(p.stdout.String() + again.stdout.String())
	haystacks["API responses"] = strings.Join(responses, "\n")
	haystacks["CLI output (without the admin key line)"] = stripAdminKeyLines(strings.Join(outputs, "\n"))
	if !strings.Contains(haystacks["logs"], `"msg":"http request"`) {
		t.Fatal("no access log lines captured: hunting in the wrong place")
	}
	needles := map[string]string{"admin API key": p.AdminKey, "tenant-two API key": key2}
	for name, tok := range tokens {
		needles[name+" token"] = tok
		needles[name+" token core"] = tok[len(tok)-24:]
	}
	for where, hay := range haystacks {
		for what, needle := range needles {
			if strings.Contains(hay, needle) {
				t.Errorf("%s contains the plaintext %s", where, what)
			}
		}
	}
}

func stripAdminKeyLines(s string) string {
	var keep []string
	for _, l := range strings.Split(s, "\n") {
		if !strings.HasPrefix(l, "admin key: ") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}
