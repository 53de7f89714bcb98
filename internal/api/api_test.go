package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/authgatetest"
)

func importReq(user string) authgate.ImportCredentialRequest {
	exp := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	return authgate.ImportCredentialRequest{
		UserID: user, Provider: "google", Subject: "sub-" + user, Email: user + "@example.com",
		Scopes: []string{"openid", "email"}, AccessToken: "ya29.access-" + user, RefreshToken: "1//refresh-" + user, ExpiresAt: &exp,
	}
}

type rawResponse struct {
	status int
	header http.Header
	body   []byte
}

func do(t *testing.T, method, url, key, contentType string, body io.Reader) rawResponse {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return rawResponse{status: resp.StatusCode, header: resp.Header, body: b}
}

// problem checks r is a problem+json document of the given status and class.
func problem(t *testing.T, r rawResponse, status int, class authgate.Class) authgate.Error {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d; want %d; body %s", r.status, status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("content type %q; want application/problem+json", ct)
	}
	var p authgate.Error
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatalf("problem body %s: %v", r.body, err)
	}
	if p.Class != class || p.Status != status || p.Title == "" || p.Detail == "" || p.Instance == "" {
		t.Fatalf("problem %s; want type %s status %d with title, detail, instance", r.body, class, status)
	}
	return p
}

func TestImportThenRead(t *testing.T) {
	t.Parallel()
	env := authgatetest.Start(t, authgatetest.Options{})
	ctx := context.Background()
	c, err := env.Client.ImportCredential(ctx, importReq("alice"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := env.Client.Credential(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != c.ID || got.UserID != "alice" || got.Account.Email != "alice@example.com" || !got.HasRefreshToken ||
		got.AccessTokenFingerprint == "" || got.Status != authgate.CredentialStatusActive || !got.CreatedAt.Equal(c.CreatedAt) {
		t.Fatalf("read back %+v; imported %+v", got, c)
	}
	// Re-import to the same slot: 200, same id, version 2.
	r := importReq("alice")
	r.AccessToken, r.RefreshToken = "ya29.second", ""
	again, err := env.Client.ImportCredential(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	if again.ID != c.ID || again.Version != 2 || again.RefreshTokenFingerprint != c.RefreshTokenFingerprint {
		t.Fatalf("re-import %+v; want same id, version 2, refresh token kept", again)
	}
	page, err := env.Client.Credentials(ctx, authgate.CredentialFilter{UserID: "alice"})
	if err != nil || len(page.Credentials) != 1 {
		t.Fatalf("list = %+v, %v", page, err)
	}
	evs, err := env.Client.CredentialEvents(ctx, c.ID, 0)
	if err != nil || len(evs.Events) != 2 || evs.Events[0].Type != authgate.EventTokenIssued {
		t.Fatalf("events = %+v, %v", evs, err)
	}
	del, err := env.Client.DeleteCredential(ctx, c.ID)
	if err != nil || del.Status != authgate.CredentialStatusRevoked || del.HasRefreshToken {
		t.Fatalf("delete = %+v, %v", del, err)
	}
	evs, _ = env.Client.CredentialEvents(ctx, c.ID, evs.Events[1].ID)
	if len(evs.Events) != 1 || evs.Events[0].Type != authgate.EventDisconnected {
		t.Fatalf("events after delete = %+v", evs)
	}
}

func TestListPagingAndFilters(t *testing.T) {
	t.Parallel()
	env := authgatetest.Start(t, authgatetest.Options{})
	ctx := context.Background()
	for _, u := range []string{"a", "b", "c", "d", "e"} {
		r := importReq(u)
		if u == "e" {
			r.Provider = "notion"
		}
		if _, err := env.Client.ImportCredential(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	var seen int
	f := authgate.CredentialFilter{Limit: 2}
	for {
		page, err := env.Client.Credentials(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		seen += len(page.Credentials)
		if page.NextAfter == "" {
			break
		}
		f.After = page.NextAfter
	}
	if seen != 5 {
		t.Fatalf("paged %d; want 5", seen)
	}
	page, err := env.Client.Credentials(ctx, authgate.CredentialFilter{Provider: "notion"})
	if err != nil || len(page.Credentials) != 1 || page.Credentials[0].UserID != "e" {
		t.Fatalf("provider filter = %+v, %v", page, err)
	}
	page, err = env.Client.Credentials(ctx, authgate.CredentialFilter{Status: authgate.CredentialStatusRevoked})
	if err != nil || len(page.Credentials) != 0 {
		t.Fatalf("status filter = %+v, %v", page, err)
	}
}

// TestTenantIsolation: tenant B's key gets 404 on tenant A's credential on
// every route, sees none of A's credentials, and changes nothing of A's.
func TestTenantIsolation(t *testing.T) {
	t.Parallel()
	env := authgatetest.Start(t, authgatetest.Options{})
	ctx := context.Background()
	a, err := env.Client.ImportCredential(ctx, importReq("alice"))
	if err != nil {
		t.Fatal(err)
	}
	b, bKey := env.NewTenant(t, "globex")
	id := string(a.ID)
	for _, rt := range []struct{ method, path string }{
		{"GET", "/v1/credentials/" + id},
		{"DELETE", "/v1/credentials/" + id},
		{"GET", "/v1/credentials/" + id + "/events"},
	} {
		r := do(t, rt.method, env.URL+rt.path, bKey, "", nil)
		p := problem(t, r, http.StatusNotFound, authgate.ClassNotFound)
		if strings.Contains(string(r.body), "alice") {
			t.Errorf("%s %s: 404 body mentions tenant A's data: %s", rt.method, rt.path, r.body)
		}
		_ = p
	}
	page, err := b.Credentials(ctx, authgate.CredentialFilter{})
	if err != nil || len(page.Credentials) != 0 {
		t.Fatalf("tenant B list = %+v, %v; want empty", page, err)
	}
	page, err = b.Credentials(ctx, authgate.CredentialFilter{UserID: "alice"})
	if err != nil || len(page.Credentials) != 0 {
		t.Fatalf("tenant B list by A's user = %+v, %v; want empty", page, err)
	}
	// Importing the very same slot in tenant B makes B's own credential.
	bc, err := b.ImportCredential(ctx, importReq("alice"))
	if err != nil {
		t.Fatal(err)
	}
	if bc.ID == a.ID || bc.TenantID == a.TenantID || bc.Version != 1 {
		t.Fatalf("tenant B import = %+v; want a new credential of its own", bc)
	}
	after, err := env.Client.Credential(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if after.Status != authgate.CredentialStatusActive || after.Version != a.Version || after.AccessTokenFingerprint != a.AccessTokenFingerprint {
		t.Fatalf("tenant A's credential changed: %+v", after)
	}
	evs, _ := env.Client.CredentialEvents(ctx, a.ID, 0)
	if len(evs.Events) != 1 {
		t.Fatalf("tenant A's events = %+v; want just its own token_issued", evs)
	}
	// And A cannot see B's.
	if _, err := env.Client.Credential(ctx, bc.ID); !errors.Is(err, &authgate.Error{Class: authgate.ClassNotFound}) {
		t.Fatalf("A reading B's credential err = %v; want not_found", err)
	}
}

func TestAuthentication(t *testing.T) {
	t.Parallel()
	env := authgatetest.Start(t, authgatetest.Options{})
	for name, header := range map[string]string{
		"none":          "",
		"unknown key":   "Bearer ag_" + strings.Repeat("a", 52),
		"malformed key": "Bearer nope",
		"basic scheme":  "Basic " + env.AdminKey,
		"key only":      env.AdminKey,
	} {
		t.Run(name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", env.URL+"/v1/credentials", nil)
			if header != "" {
				req.Header.Set("Authorization", header)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			problem(t, rawResponse{resp.StatusCode, resp.Header, b}, http.StatusUnauthorized, authgate.ClassUnauthorized)
			if resp.Header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
	// Health endpoints need no key.
	if r := do(t, "GET", env.URL+"/healthz", "", "", nil); r.status != 200 {
		t.Fatalf("healthz %d", r.status)
	}
	if r := do(t, "GET", env.URL+"/readyz", "", "", nil); r.status != 200 {
		t.Fatalf("readyz %d", r.status)
	}
}

// TestBadInput: every malformed request is a 4xx problem, nothing is stored,
// and the server keeps answering.
func TestBadInput(t *testing.T) {
	t.Parallel()
	env := authgatetest.Start(t, authgatetest.Options{})
	valid := `{"user_id":"u","provider":"google","subject":"s","access_token":"ya29.SECRET-IN-BAD-BODY"}`
	unknownID := "cred_" + strings.Repeat("a", 26)
	for _, tc := range []struct {
		name, method, path, ctype, body string
		status                          int
		class                           authgate.Class
		detail                          string
	}{
		{"malformed json", "POST", "/v1/credentials/import", "application/json", `{"user_id":`, 400, authgate.ClassInvalidRequest, "JSON"},
		{"syntax error", "POST", "/v1/credentials/import", "application/json", `{"user_id" "u"}`, 400, authgate.ClassInvalidRequest, "not valid JSON"},
		{"empty body", "POST", "/v1/credentials/import", "application/json", ``, 400, authgate.ClassInvalidRequest, "empty"},
		{"unknown field", "POST", "/v1/credentials/import", "application/json", strings.Replace(valid, `"u",`, `"u","admin":true,`, 1), 400, authgate.ClassInvalidRequest, `unknown field "admin"`},
		{"trailing data", "POST", "/v1/credentials/import", "application/json", valid + `{}`, 400, authgate.ClassInvalidRequest, "exactly one"},
		{"array body", "POST", "/v1/credentials/import", "application/json", `[` + valid + `]`, 400, authgate.ClassInvalidRequest, "object"},
		{"wrong type", "POST", "/v1/credentials/import", "application/json", strings.Replace(valid, `"s"`, `42`, 1), 400, authgate.ClassInvalidRequest, "subject must be a string"},
		{"scopes not array", "POST", "/v1/credentials/import", "application/json", strings.Replace(valid, `"subject"`, `"scopes":"openid","subject"`, 1), 400, authgate.ClassInvalidRequest, "scopes must be an array"},
		{"bad expires_at", "POST", "/v1/credentials/import", "application/json", strings.Replace(valid, `"s",`, `"s","expires_at":"tomorrow",`, 1), 400, authgate.ClassInvalidRequest, "RFC 3339"},
		{"missing fields", "POST", "/v1/credentials/import", "application/json", `{"access_token":"x"}`, 400, authgate.ClassInvalidRequest, "user_id is required"},
		{"form encoded", "POST", "/v1/credentials/import", "application/x-www-form-urlencoded", `user_id=u`, 415, authgate.ClassUnsupportedMedia, "JSON"},
		{"oversize", "POST", "/v1/credentials/import", "application/json", `{"user_id":"` + strings.Repeat("x", 70<<10) + `"}`, 413, authgate.ClassPayloadTooLarge, "larger than"},
		{"bad id get", "GET", "/v1/credentials/not-an-id", "", "", 400, authgate.ClassInvalidRequest, "not a credential id"},
		{"bad id delete", "DELETE", "/v1/credentials/cred_UPPER", "", "", 400, authgate.ClassInvalidRequest, "not a credential id"},
		{"bad id events", "GET", "/v1/credentials/%27%3B--/events", "", "", 400, authgate.ClassInvalidRequest, "not a credential id"},
		{"unknown id", "GET", "/v1/credentials/" + unknownID, "", "", 404, authgate.ClassNotFound, "no credential"},
		{"unknown id events", "GET", "/v1/credentials/" + unknownID + "/events", "", "", 404, authgate.ClassNotFound, "no credential"},
		{"limit zero", "GET", "/v1/credentials?limit=0", "", "", 400, authgate.ClassInvalidRequest, "limit"},
		{"limit text", "GET", "/v1/credentials?limit=ten", "", "", 400, authgate.ClassInvalidRequest, "limit"},
		{"unknown query", "GET", "/v1/credentials?user=alice", "", "", 400, authgate.ClassInvalidRequest, `unknown query parameter "user"`},
		{"repeated query", "GET", "/v1/credentials?provider=a&provider=b", "", "", 400, authgate.ClassInvalidRequest, "given 2 times"},
		{"bad status", "GET", "/v1/credentials?status=dead", "", "", 400, authgate.ClassInvalidRequest, "status must be"},
		{"bad after", "GET", "/v1/credentials?after=x", "", "", 400, authgate.ClassInvalidRequest, "after"},
		{"bad events after", "GET", "/v1/credentials/" + unknownID + "/events?after=-1", "", "", 400, authgate.ClassInvalidRequest, "after"},
		{"unknown route", "GET", "/v1/nothing", "", "", 404, authgate.ClassNotFound, "no route"},
		{"wrong method", "PUT", "/v1/credentials/" + unknownID, "application/json", `{}`, 405, authgate.ClassMethodNotAllowed, "not allowed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, tc.method, env.URL+tc.path, env.AdminKey, tc.ctype, strings.NewReader(tc.body))
			p := problem(t, r, tc.status, tc.class)
			if !strings.Contains(p.Detail, tc.detail) {
				t.Errorf("detail %q does not contain %q", p.Detail, tc.detail)
			}
			if bytes.Contains(r.body, []byte("SECRET-IN-BAD-BODY")) {
				t.Errorf("problem echoes the token: %s", r.body)
			}
			if tc.status == 405 && r.header.Get("Allow") == "" {
				t.Error("405 without Allow")
			}
		})
	}
	page, err := env.Client.Credentials(context.Background(), authgate.CredentialFilter{})
	if err != nil || len(page.Credentials) != 0 {
		t.Fatalf("bad requests stored credentials: %+v, %v", page, err)
	}
	if r := do(t, "GET", env.URL+"/healthz", "", "", nil); r.status != 200 {
		t.Fatalf("server unhealthy after bad input: %d", r.status)
	}
}

// FuzzImport sends arbitrary bodies to the import route: the answer is always
// a 2xx or a 4xx problem, never a 5xx or a dropped connection.
func FuzzImport(f *testing.F) {
	for _, seed := range []string{
		`{"user_id":"u","provider":"google","subject":"s","access_token":"t"}`,
		`{"user_id":"u","provider":"google","subject":"s","refresh_token":"r","scopes":["a","a"],"expires_at":"2026-01-01T00:00:00Z"}`,
		`{"user_id":null}`, `{}`, `[]`, `"x"`, `{"scopes":[1,2]}`, `{"user_id":"\u0000"}`, "\xff\xfe", `{"expires_at":"2026-13-45T99:00:00Z"}`,
	} {
		f.Add(seed)
	}
	env := authgatetest.Start(f, authgatetest.Options{})
	f.Fuzz(func(t *testing.T, body string) {
		req, _ := http.NewRequest("POST", env.URL+"/v1/credentials/import", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+env.AdminKey)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode >= 500 {
			t.Fatalf("status %d for body %q: %s", resp.StatusCode, body, b)
		}
		if resp.StatusCode >= 400 && resp.Header.Get("Content-Type") != "application/problem+json" {
			t.Fatalf("status %d without problem+json", resp.StatusCode)
		}
	})
}
