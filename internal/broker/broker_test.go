package broker_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/authgatetest"
	"github.com/authgate/authgate/internal/clock"
	"github.com/authgate/authgate/sandbox"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

type fixture struct {
	env   *authgatetest.Env
	clock *clock.Fake
}

func start(t *testing.T) *fixture {
	t.Helper()
	clk := clock.NewFake(t0)
	return &fixture{env: authgatetest.Start(t, authgatetest.Options{Clock: clk}), clock: clk}
}

func (f *fixture) sb() *sandbox.Sandbox { return f.env.Server.Sandbox }

func (f *fixture) api(t *testing.T, method, path string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = strings.NewReader(string(b))
	}
	req, _ := http.NewRequest(method, f.env.URL+path, rd)
	req.Header.Set("Authorization", "Bearer "+f.env.AdminKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

// noFollow is the user's browser: it keeps cookies (connect links are bound
// to the browser that opened them) and shows each redirect to the test.
var noFollow = browser()

func browser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// connect runs a whole connect flow as the user: create the session, open
// the connect link, consent at the sandbox, land on the callback.
func (f *fixture) connect(t *testing.T, body map[string]any, c sandbox.Choice) (int, map[string]any) {
	t.Helper()
	status, s := f.api(t, "POST", "/v1/connect-sessions", body)
	if status != 201 {
		t.Fatalf("connect session: %d %v", status, s)
	}
	resp, err := noFollow.Get(s["connect_url"].(string))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("connect link answered %d", resp.StatusCode)
	}
	providerURL, _ := resp.Location()
	back, err := sandbox.CompleteConsent(context.Background(), nil, providerURL.String(), c)
	if err != nil {
		t.Fatalf("consent: %v", err)
	}
	if !strings.HasPrefix(back.String(), f.env.URL+"/oauth/callback") {
		t.Fatalf("provider sent the browser to %s", back)
	}
	req, _ := http.NewRequest("GET", back.String(), nil)
	req.Header.Set("Accept", "application/json")
	resp, err = noFollow.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

func credOf(t *testing.T, res map[string]any) map[string]any {
	t.Helper()
	c, ok := res["credential"].(map[string]any)
	if !ok {
		t.Fatalf("no credential in %v", res)
	}
	return c
}

func events(t *testing.T, f *fixture, id string) []string {
	t.Helper()
	page, err := f.env.Client.CredentialEvents(context.Background(), authgate.CredentialID(id), 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range page.Events {
		out = append(out, string(e.Type))
	}
	return out
}

func TestGoogleConnectPartialAndReconnects(t *testing.T) {
	t.Parallel()
	f := start(t)
	status, res := f.connect(t, map[string]any{"user_id": "u1", "provider": "google", "actions": []string{"drive.files.create", "docs.documents.update"}},
		sandbox.Choice{Account: "alice@acme.example"})
	if status != 200 {
		t.Fatalf("callback %d %v", status, res)
	}
	c := credOf(t, res)
	id := c["id"].(string)
	acct := c["account"].(map[string]any)
	if acct["email"] != "alice@acme.example" || acct["type"] != "workspace" || acct["domain"] != "acme.example" || c["has_refresh_token"] != true {
		t.Fatalf("credential %v", c)
	}
	if len(res["missing_scopes"].([]any)) != 0 {
		t.Fatalf("missing %v", res["missing_scopes"])
	}
	refreshFP := c["refresh_token_fingerprint"]

	// Reconnect as the same account: same id; Google sends no new refresh
	// token (no forced consent: we hold one) and the stored one is kept.
	status, res = f.connect(t, map[string]any{"user_id": "u1", "provider": "google", "credential_id": id}, sandbox.Choice{Account: "alice@acme.example"})
	if status != 200 || credOf(t, res)["id"] != id || credOf(t, res)["refresh_token_fingerprint"] != refreshFP || res["created"] != false {
		t.Fatalf("same-account reconnect %d %v", status, res)
	}
	// Reconnect as another account: refused, credential untouched, event recorded.
	status, res = f.connect(t, map[string]any{"user_id": "u1", "provider": "google", "credential_id": id}, sandbox.Choice{Account: "mallory@acme.example"})
	if status != 409 || res["type"] != "reauth_required" || !strings.Contains(res["detail"].(string), "alice@acme.example") || !strings.Contains(res["detail"].(string), "mallory@acme.example") {
		t.Fatalf("other-account reconnect %d %v", status, res)
	}
	got, _ := f.env.Client.Credential(context.Background(), authgate.CredentialID(id))
	if got.Account.Email != "alice@acme.example" || got.RefreshTokenFingerprint != refreshFP || got.Status != authgate.CredentialStatusActive {
		t.Fatalf("credential changed by a mismatched reconnect: %+v", got)
	}
	if ev := events(t, f, id); ev[len(ev)-1] != "identity_mismatch" {
		t.Fatalf("events %v", ev)
	}

	// Partial grant: the user unticks the scope drive.files.list needs.
	status, res = f.connect(t, map[string]any{"user_id": "u2", "provider": "google", "actions": []string{"drive.files.list"}},
		sandbox.Choice{Account: "bob@acme.example", Scopes: []string{}})
	if status != 200 || len(res["missing_scopes"].([]any)) != 1 || res["missing_scopes"].([]any)[0] != "https://www.googleapis.com/auth/drive.metadata.readonly" {
		t.Fatalf("partial grant %d %v", status, res)
	}
	pid := credOf(t, res)["id"].(string)
	status, tok := f.api(t, "POST", "/v1/credentials/"+pid+"/token", map[string]any{"actions": []string{"drive.files.list"}})
	if status != 403 || tok["type"] != "insufficient_scope" || tok["reconnect_url"] == nil || !strings.Contains(tok["agent_hint"].(string), "drive.metadata.readonly") {
		t.Fatalf("token for a partially granted action: %d %v", status, tok)
	}
	// Without actions the token is served.
	if status, tok := f.api(t, "POST", "/v1/credentials/"+pid+"/token", nil); status != 200 || tok["access_token"] == "" {
		t.Fatalf("token %d %v", status, tok)
	}
}

func TestNotionAndSlackConnect(t *testing.T) {
	t.Parallel()
	f := start(t)
	status, res := f.connect(t, map[string]any{"user_id": "u1", "provider": "notion", "actions": []string{"notion.read", "notion.insert"}},
		sandbox.Choice{Account: "nia@acme.example", Workspace: "Acme"})
	if status != 200 {
		t.Fatalf("notion %d %v", status, res)
	}
	c := credOf(t, res)
	if c["workspace_id"] == "" || c["account"].(map[string]any)["email"] != "nia@acme.example" || c["has_refresh_token"] != true {
		t.Fatalf("notion credential %v", c)
	}
	// Notion tokens have no expiry: served without a refresh.
	if status, tok := f.api(t, "POST", "/v1/credentials/"+c["id"].(string)+"/token", map[string]any{"actions": []string{"notion.read"}}); status != 200 || tok["expires_at"] != nil {
		t.Fatalf("notion token %d %v", status, tok)
	}
	status, res = f.connect(t, map[string]any{"user_id": "u1", "provider": "slack", "actions": []string{"slack.chat.post", "slack.channels.list"}},
		sandbox.Choice{Account: "sol@acme.example", Workspace: "Acme Corp"})
	if status != 200 {
		t.Fatalf("slack %d %v", status, res)
	}
	c = credOf(t, res)
	if !strings.HasPrefix(c["workspace_id"].(string), "T") || !strings.HasPrefix(c["account"].(map[string]any)["subject"].(string), "U") || len(res["missing_scopes"].([]any)) != 0 {
		t.Fatalf("slack credential %v", res)
	}
	f.clock.Advance(12 * time.Hour)
	status, tok := f.api(t, "POST", "/v1/credentials/"+c["id"].(string)+"/token", nil)
	if status != 200 || !strings.HasPrefix(tok["access_token"].(string), "xoxe.xoxb-1-") {
		t.Fatalf("slack refresh %d %v", status, tok)
	}
	after, _ := f.env.Client.Credential(context.Background(), authgate.CredentialID(c["id"].(string)))
	if after.RefreshTokenFingerprint == c["refresh_token_fingerprint"] {
		t.Fatal("Slack rotated the refresh token but the stored one did not change")
	}
}

func TestCallbackErrors(t *testing.T) {
	t.Parallel()
	f := start(t)
	// The user cancels: a clear page, nothing stored, and not
	// reauth_required (no credential is in question).
	status, res := f.connect(t, map[string]any{"user_id": "u1", "provider": "google"}, sandbox.Choice{Deny: true})
	if status != 403 || res["type"] != "insufficient_scope" || !strings.Contains(res["detail"].(string), "not granted") {
		t.Fatalf("denied: %d %v", status, res)
	}
	// Links are single-use: the page sends the user for a new one, never
	// back to the one just spent.
	if d := res["detail"].(string); !strings.Contains(d, "new link") || strings.Contains(d, "open the link again") {
		t.Fatalf("cancel page says %q", d)
	}
	// With a return_url the app reads status=canceled.
	_, cs := f.api(t, "POST", "/v1/connect-sessions", map[string]any{"user_id": "u1", "provider": "google", "return_url": "http://127.0.0.1:9/done"})
	cresp, err := noFollow.Get(cs["connect_url"].(string))
	if err != nil {
		t.Fatal(err)
	}
	cresp.Body.Close()
	cloc, _ := cresp.Location()
	cback, err := sandbox.CompleteConsent(context.Background(), nil, cloc.String(), sandbox.Choice{Deny: true})
	if err != nil {
		t.Fatal(err)
	}
	if cresp, err = noFollow.Get(cback.String()); err != nil {
		t.Fatal(err)
	}
	cresp.Body.Close()
	if done, _ := cresp.Location(); done == nil || done.Query().Get("status") != "canceled" || done.Query().Get("error_code") != "access_denied" || done.Query().Get("error") == "reauth_required" {
		t.Fatalf("canceled flow returned to %v", done)
	}
	page, _ := f.env.Client.Credentials(context.Background(), authgate.CredentialFilter{})
	if len(page.Credentials) != 0 {
		t.Fatal("a denied flow stored a credential")
	}
	// A replayed callback (state already used) is refused.
	_, s := f.api(t, "POST", "/v1/connect-sessions", map[string]any{"user_id": "u1", "provider": "oidc", "return_url": "http://127.0.0.1:9/done"})
	resp, _ := noFollow.Get(s["connect_url"].(string))
	loc, _ := resp.Location()
	back, err := sandbox.CompleteConsent(context.Background(), nil, loc.String(), sandbox.Choice{Account: "olga@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	resp, err = noFollow.Get(back.String())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	done, _ := resp.Location()
	if done == nil || !strings.HasPrefix(done.String(), "http://127.0.0.1:9/done?") || done.Query().Get("status") != "connected" {
		t.Fatalf("callback: %v; want status connected", done)
	}
	// The replay finds the binding cookie spent with the flow: refused.
	if resp, err = noFollow.Get(back.String()); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("replayed callback: %v %v", err, resp.StatusCode)
	}
	resp.Body.Close()
	// return_url off the allow-list is refused up front.
	if status, res := f.api(t, "POST", "/v1/connect-sessions", map[string]any{"user_id": "u1", "provider": "google", "return_url": "https://evil.example/x"}); status != 400 || !strings.Contains(res["detail"].(string), "allow-list") {
		t.Fatalf("foreign return_url %d %v", status, res)
	}
	// The tenant's own allow-list admits its app; another tenant's does not.
	if _, err := f.env.Server.Tenancy.SetReturnURLs(context.Background(), "default", []string{"https://app.acme.example/"}); err != nil {
		t.Fatal(err)
	}
	if status, res := f.api(t, "POST", "/v1/connect-sessions", map[string]any{"user_id": "u1", "provider": "google", "return_url": "https://app.acme.example/done"}); status != 201 {
		t.Fatalf("allowed return_url %d %v", status, res)
	}
	other, key := f.env.NewTenant(t, "globex")
	_ = other
	req, _ := http.NewRequest("POST", f.env.URL+"/v1/connect-sessions", strings.NewReader(`{"user_id":"u1","provider":"google","return_url":"https://app.acme.example/done"}`))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 400 {
		t.Fatalf("another tenant's return_url: %v %d", err, resp.StatusCode)
	}
	if _, err := f.env.Server.Tenancy.SetReturnURLs(context.Background(), "default", []string{"not a url"}); err == nil {
		t.Fatal("a malformed prefix was accepted")
	}
	for _, body := range []map[string]any{{"user_id": "u1", "provider": "myspace"}, {"user_id": "u1", "provider": "google", "actions": []string{"drive.delete_everything"}}, {"provider": "google"}} {
		if status, _ := f.api(t, "POST", "/v1/connect-sessions", body); status != 400 {
			t.Errorf("bad session %v: %d", body, status)
		}
	}
	if r, _ := noFollow.Get(f.env.URL + "/connect/cs_nope"); r.StatusCode != 404 {
		t.Fatalf("unknown connect link %d", r.StatusCode)
	}
}

func TestDisconnectRevokesAtProvider(t *testing.T) {
	t.Parallel()
	f := start(t)
	_, res := f.connect(t, map[string]any{"user_id": "u1", "provider": "google", "actions": []string{"drive.files.create"}}, sandbox.Choice{Account: "dan@acme.example"})
	id := credOf(t, res)["id"].(string)
	_, tok := f.api(t, "POST", "/v1/credentials/"+id+"/token", nil)
	c, err := f.env.Client.DeleteCredential(context.Background(), authgate.CredentialID(id))
	if err != nil || c.Status != authgate.CredentialStatusRevoked {
		t.Fatalf("delete %v %+v", err, c)
	}
	// The provider no longer accepts the access token: the grant is gone.
	req, _ := http.NewRequest("GET", f.env.URL+"/sandbox/google/drive/v3/files", nil)
	req.Header.Set("Authorization", "Bearer "+tok["access_token"].(string))
	resp, _ := http.DefaultClient.Do(req)
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("provider still accepts the token: %d", resp.StatusCode)
	}
	evs, _ := f.env.Client.CredentialEvents(context.Background(), authgate.CredentialID(id), 0)
	last := evs.Events[len(evs.Events)-1]
	if last.Type != authgate.EventDisconnected || !strings.Contains(string(last.Details), `"provider_revoked":true`) {
		t.Fatalf("last event %s %s", last.Type, last.Details)
	}
	if _, err := f.env.Client.Credential(context.Background(), authgate.CredentialID(id)); err != nil {
		t.Fatal(err)
	}
	status, terr := f.api(t, "POST", "/v1/credentials/"+id+"/token", nil)
	if status != 409 || terr["type"] != "reauth_required" {
		t.Fatalf("token of a disconnected credential: %d %v", status, terr)
	}
	var ae *authgate.Error
	_, err = f.env.Client.Credential(context.Background(), authgate.CredentialID("cred_"+strings.Repeat("a", 26)))
	if !errors.As(err, &ae) {
		t.Fatal(err)
	}
	_ = url.Values{}
}

// TestSkewMeasuredAtConnect: the code exchange's Date header is compared too.
func TestSkewMeasuredAtConnect(t *testing.T) {
	t.Parallel()
	f := start(t)
	if err := f.sb().InjectFault(sandbox.Fault{Provider: "google", Fault: "clock_offset", OffsetSeconds: -90}); err != nil {
		t.Fatal(err)
	}
	_, res := f.connect(t, map[string]any{"user_id": "u1", "provider": "google"}, sandbox.Choice{Account: "cal@acme.example"})
	c := credOf(t, res)
	if c["clock_skew_seconds"] != float64(-90) {
		t.Fatalf("clock skew %v; want -90", c["clock_skew_seconds"])
	}
}
