package e2e

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/authgate/authgate/internal/storage/storagetest"
)

// TestTwoProcessesOneRefresh: two `authgate serve` processes on one SQLite
// file, both pointed at one standalone sandbox, get 500 concurrent token
// requests each for one expired credential. The provider sees exactly one
// refresh: the lease on the row makes the other process wait and re-read.
func TestTwoProcessesOneRefresh(t *testing.T) {
	t.Parallel()
	oneRefreshAcrossProcesses(t, t.TempDir())
}

// TestTwoProcessesOneRefreshPostgres is the same with both processes on one
// PostgreSQL database (the platform deployment).
func TestTwoProcessesOneRefreshPostgres(t *testing.T) {
	t.Parallel()
	oneRefreshAcrossProcesses(t, t.TempDir(), "AUTHGATE_DB="+postgresSchema(t), pgMasterKeys)
}

func oneRefreshAcrossProcesses(t *testing.T, dir string, env ...string) {
	sb := startSandbox(t)
	env = append(env, "AUTHGATE_SANDBOX_URL="+sb)
	a := serve(t, dir, env...)
	b := serve(t, dir, env...)

	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }, Transport: &http.Transport{MaxIdleConnsPerHost: 100}}

	// Real sandbox tokens, imported with an access token that already expired.
	req, _ := http.NewRequest("POST", sb+"/sandbox/admin/consent", strings.NewReader(`{"provider":"google","account":"two@acme.example"}`))
	req.Header.Set("Content-Type", "application/json")
	if resp, err := hc.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("consent preset: %v", err)
	}
	q := url.Values{"client_id": {"sandbox-google-client.apps.googleusercontent.com"}, "redirect_uri": {"http://127.0.0.1:9/cb"}, "response_type": {"code"},
		"scope": {"openid"}, "state": {"s"}, "access_type": {"offline"}}
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
	var tok struct{ AccessToken, RefreshToken string }
	var raw map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&raw)
	resp.Body.Close()
	tok.AccessToken, _ = raw["access_token"].(string)
	tok.RefreshToken, _ = raw["refresh_token"].(string)
	if tok.RefreshToken == "" {
		t.Fatalf("no sandbox refresh token: %v", raw)
	}
	expired := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)
	imp := call(t, hc, "POST", a.URL+"/v1/credentials/import", a.AdminKey, fmt.Sprintf(
		`{"user_id":"u","provider":"google","subject":"s","email":"two@acme.example","scopes":["openid"],"access_token":%q,"refresh_token":%q,"expires_at":%q}`,
		tok.AccessToken, tok.RefreshToken, expired))
	var cred struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(imp.body), &cred); err != nil || imp.status != 201 {
		t.Fatalf("import %d %s", imp.status, imp.body)
	}
	if r := call(t, hc, "DELETE", sb+"/sandbox/admin/counters", "", ""); r.status != 204 {
		t.Fatalf("reset counters %d", r.status)
	}

	const perProcess = 500
	var wg sync.WaitGroup
	tokens := make(chan string, 2*perProcess)
	errs := make(chan string, 2*perProcess)
	for _, p := range []*proc{a, b} {
		for range perProcess {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := call(t, hc, "POST", p.URL+"/v1/credentials/"+cred.ID+"/token", a.AdminKey, `{}`)
				var out struct {
					AccessToken string `json:"access_token"`
				}
				if err := json.Unmarshal([]byte(r.body), &out); err != nil || r.status != 200 {
					errs <- fmt.Sprintf("%d %s", r.status, r.body)
					return
				}
				tokens <- out.AccessToken
			}()
		}
	}
	wg.Wait()
	close(tokens)
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	distinct := map[string]bool{}
	for tk := range tokens {
		distinct[tk] = true
	}
	if len(distinct) != 1 || distinct[tok.AccessToken] {
		t.Fatalf("%d distinct tokens served (want 1, new)", len(distinct))
	}
	var counters map[string]struct {
		Refreshes int `json:"refreshes"`
	}
	r := call(t, hc, "GET", sb+"/sandbox/admin/counters", "", "")
	if err := json.Unmarshal([]byte(r.body), &counters); err != nil {
		t.Fatal(err)
	}
	if counters["google"].Refreshes != 1 {
		t.Fatalf("the provider saw %d refreshes; want exactly 1", counters["google"].Refreshes)
	}
	// On PostgreSQL, prove the processes really shared that database.
	for _, kv := range env {
		if db, ok := strings.CutPrefix(kv, "AUTHGATE_DB="); ok {
			conn, err := pgx.Connect(context.Background(), db)
			if err != nil {
				t.Fatal(err)
			}
			var version int
			err = conn.QueryRow(context.Background(), "SELECT version FROM credentials WHERE id = $1", cred.ID).Scan(&version)
			conn.Close(context.Background())
			if err != nil || version != 2 {
				t.Fatalf("credential in PostgreSQL: version %d, %v; want 2 (imported, refreshed once)", version, err)
			}
		}
	}
}

// postgresSchema creates a fresh schema in the test database and returns a
// URL whose search_path selects it; the schema is dropped after the test.
// pgMasterKeys is the key every instance on a test PostgreSQL database shares
// (on PostgreSQL authgate never generates one).
var pgMasterKeys = "AUTHGATE_MASTER_KEYS=e2e:" + base64.StdEncoding.EncodeToString([]byte("e2e-master-key-32-bytes-long!!!!"))

func postgresSchema(t *testing.T) string {
	t.Helper()
	base := storagetest.PostgresDSN(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("PostgreSQL at %s: %v", base, err)
	}
	defer conn.Close(ctx)
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema := "e2e_" + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if c, err := pgx.Connect(context.Background(), base); err == nil {
			_, _ = c.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
			c.Close(context.Background())
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
