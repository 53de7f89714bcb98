package broker_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/sandbox"
)

// open follows a connect link in browser hc up to the provider's consent
// and returns where the provider sends the browser back.
func (f *fixture) consentIn(t *testing.T, hc *http.Client, connectURL string, c sandbox.Choice) *url.URL {
	t.Helper()
	resp, err := hc.Get(connectURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("connect link answered %d", resp.StatusCode)
	}
	if resp.Header.Get("Referrer-Policy") != "no-referrer" {
		t.Errorf("connect redirect without Referrer-Policy")
	}
	loc, _ := resp.Location()
	back, err := sandbox.CompleteConsent(context.Background(), nil, loc.String(), c)
	if err != nil {
		t.Fatal(err)
	}
	return back
}

func callback(t *testing.T, hc *http.Client, back *url.URL) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("GET", back.String(), nil)
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

func TestConnectFlowIsBoundToTheBrowserThatOpenedIt(t *testing.T) {
	t.Parallel()
	f := start(t)
	_, s := f.api(t, "POST", "/v1/connect-sessions", map[string]any{"user_id": "victim", "provider": "google", "actions": []string{"drive.files.create"}})
	link, id := s["connect_url"].(string), s["id"].(string)
	victim, attacker := browser(), browser()
	back := f.consentIn(t, victim, link, sandbox.Choice{Account: "victim@acme.example"})

	// The link is single-use once redirected: another browser cannot open it.
	if resp, err := attacker.Get(link); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("second browser opening the link: %v %v", err, resp.StatusCode)
	}
	// The callback URL completed by another client (other cookies, or none)
	// is refused, and does not spend the flow.
	for _, hc := range []*http.Client{attacker, {CheckRedirect: noFollow.CheckRedirect}} {
		if status, res := callback(t, hc, back); status != http.StatusForbidden || res["type"] != "forbidden" {
			t.Fatalf("callback from another browser: %d %v", status, res)
		}
	}
	if status, st := f.api(t, "GET", "/v1/connect-sessions/"+id, nil); status != 200 || st["state"] != "pending" || st["opened"] != true {
		t.Fatalf("status after refused callbacks %d %v", status, st)
	}
	// The browser that opened it completes it.
	status, res := callback(t, victim, back)
	if status != 200 {
		t.Fatalf("callback in the opening browser %d %v", status, res)
	}
	credID := credOf(t, res)["id"]
	status, st := f.api(t, "GET", "/v1/connect-sessions/"+id, nil)
	if status != 200 || st["state"] != "connected" || st["credential_id"] != credID {
		t.Fatalf("connect session status %d %v", status, st)
	}
	// Another tenant cannot read it.
	_, key := f.env.NewTenant(t, "other")
	req, _ := http.NewRequest("GET", f.env.URL+"/v1/connect-sessions/"+id, nil)
	req.Header.Set("Authorization", "Bearer "+key)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 404 {
		t.Fatalf("another tenant's connect session: %v %d", err, resp.StatusCode)
	}
}

func TestExpectedAccountAndOutcomes(t *testing.T) {
	t.Parallel()
	f := start(t)
	for _, tc := range []struct {
		expected, account, state string
	}{
		{"alice@acme.example", "mallory@acme.example", "error"},
		{"ALICE@acme.example", "alice@acme.example", "connected"},
		{"acme.example", "bob@acme.example", "connected"}, // Workspace domain
		{"acme.example", "eve@gmail.com", "error"},        // consumer account: no hd
	} {
		_, s := f.api(t, "POST", "/v1/connect-sessions", map[string]any{"user_id": "u-" + tc.account, "provider": "google", "expected_account": tc.expected})
		hc := browser()
		status, res := callback(t, hc, f.consentIn(t, hc, s["connect_url"].(string), sandbox.Choice{Account: tc.account}))
		_, st := f.api(t, "GET", "/v1/connect-sessions/"+s["id"].(string), nil)
		if st["state"] != tc.state {
			t.Errorf("expected %s, signed in as %s: state %v (%d %v)", tc.expected, tc.account, st, status, res)
		}
		if tc.state == "error" && (status != 409 || st["error_code"] != "identity_mismatch" || !strings.Contains(res["detail"].(string), tc.expected)) {
			t.Errorf("mismatch %s/%s: %d %v %v", tc.expected, tc.account, status, res, st)
		}
	}
	// Canceled at the provider.
	_, s := f.api(t, "POST", "/v1/connect-sessions", map[string]any{"user_id": "u9", "provider": "google"})
	hc := browser()
	callback(t, hc, f.consentIn(t, hc, s["connect_url"].(string), sandbox.Choice{Account: "x@acme.example", Deny: true}))
	if _, st := f.api(t, "GET", "/v1/connect-sessions/"+s["id"].(string), nil); st["state"] != "canceled" {
		t.Errorf("denied flow: %v", st)
	}
	// Untouched past its lifetime: expired.
	_, s = f.api(t, "POST", "/v1/connect-sessions", map[string]any{"user_id": "u10", "provider": "google"})
	f.clock.Advance(16 * time.Minute)
	if _, st := f.api(t, "GET", "/v1/connect-sessions/"+s["id"].(string), nil); st["state"] != "expired" {
		t.Errorf("old flow: %v", st)
	}
}

func TestIDTokenIsVerified(t *testing.T) {
	t.Parallel()
	f := start(t)
	// The provider's clock runs two hours behind: its ID token expired an
	// hour before we receive it. go-oidc refuses it; nothing is stored.
	if err := f.sb().InjectFault(sandbox.Fault{Provider: "oidc", Fault: "clock_offset", OffsetSeconds: -7200}); err != nil {
		t.Fatal(err)
	}
	_, s := f.api(t, "POST", "/v1/connect-sessions", map[string]any{"user_id": "u1", "provider": "oidc"})
	hc := browser()
	status, res := callback(t, hc, f.consentIn(t, hc, s["connect_url"].(string), sandbox.Choice{Account: "olga@example.com"}))
	if status != 400 || !strings.Contains(res["detail"].(string), "ID token") {
		t.Fatalf("expired ID token: %d %v", status, res)
	}
	if _, st := f.api(t, "GET", "/v1/connect-sessions/"+s["id"].(string), nil); st["error_code"] != "invalid_id_token" {
		t.Fatalf("status %v", st)
	}
	if page, _ := f.env.Client.Credentials(context.Background(), authgate.CredentialFilter{}); len(page.Credentials) != 0 {
		t.Fatal("a flow with a bad ID token stored a credential")
	}
}

func TestReconnectSessionsReusedAndPruned(t *testing.T) {
	t.Parallel()
	f := start(t)
	status, res := f.connect(t, map[string]any{"user_id": "u1", "provider": "google"}, sandbox.Choice{Account: "alice@acme.example"})
	if status != 200 {
		t.Fatal(status, res)
	}
	cred := credOf(t, res)["id"]
	body := map[string]any{"user_id": "u1", "provider": "google", "credential_id": cred}
	_, a := f.api(t, "POST", "/v1/connect-sessions", body)
	_, b := f.api(t, "POST", "/v1/connect-sessions", body)
	if a["id"] == nil || a["id"] != b["id"] {
		t.Fatalf("reconnect links not reused: %v %v", a["id"], b["id"])
	}
	body["actions"] = []string{"drive.files.create"}
	if _, c := f.api(t, "POST", "/v1/connect-sessions", body); c["id"] == a["id"] {
		t.Fatal("a reconnect for other scopes reused the link")
	}
	// Past half its life, a new link is minted; a day after expiry the old
	// ones are pruned.
	f.clock.Advance(8 * time.Minute)
	delete(body, "actions")
	if _, d := f.api(t, "POST", "/v1/connect-sessions", body); d["id"] == a["id"] {
		t.Fatal("a link near expiry was reused")
	}
	f.clock.Advance(25 * time.Hour)
	f.api(t, "POST", "/v1/connect-sessions", body)
	if status, _ := f.api(t, "GET", "/v1/connect-sessions/"+a["id"].(string), nil); status != 404 {
		t.Fatalf("expired session not pruned: %d", status)
	}
}

func TestReturnURLsMatchedByOriginAndPath(t *testing.T) {
	t.Parallel()
	f := start(t)
	if _, err := f.env.Server.Tenancy.SetReturnURLs(context.Background(), "default", []string{"https://app.example.com"}); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"https://app.example.com.evil.example/steal", "https://app.example.com@evil.example/", "https://app.example.comevil.example/x", "http://app.example.com/x"} {
		if status, res := f.api(t, "POST", "/v1/connect-sessions", map[string]any{"user_id": "u1", "provider": "google", "return_url": u}); status != 400 || res["type"] != "invalid_request" {
			t.Errorf("return_url %s: %d %v", u, status, res)
		}
	}
	if status, res := f.api(t, "POST", "/v1/connect-sessions", map[string]any{"user_id": "u1", "provider": "google", "return_url": "https://app.example.com/done"}); status != 201 {
		t.Errorf("allowed return_url: %d %v", status, res)
	}
}

// TestLinkPreviewsDoNotOpenTheLink: a chat app's unfurler or a HEAD request
// fetching a connect link first must not bind it to themselves; the person
// who opens it afterwards completes the flow.
func TestLinkPreviewsDoNotOpenTheLink(t *testing.T) {
	t.Parallel()
	f := start(t)
	_, s := f.api(t, "POST", "/v1/connect-sessions", map[string]any{"user_id": "unfurled", "provider": "google"})
	link, id := s["connect_url"].(string), s["id"].(string)
	for _, ua := range []string{"Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)", "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)", "facebookexternalhit/1.1", "SkypeUriPreview Preview/0.5"} {
		req, _ := http.NewRequest("GET", link, nil)
		req.Header.Set("User-Agent", ua)
		resp, err := browser().Do(req)
		if err != nil || resp.StatusCode != 200 || resp.Header.Get("Set-Cookie") != "" || resp.Header.Get("Location") != "" {
			t.Fatalf("%s: %v %v %v", ua, err, resp.StatusCode, resp.Header)
		}
		resp.Body.Close()
	}
	resp, err := browser().Head(link)
	if err != nil || resp.StatusCode != 200 || resp.Header.Get("Set-Cookie") != "" {
		t.Fatalf("HEAD: %v %v", err, resp.Header)
	}
	if _, st := f.api(t, "GET", "/v1/connect-sessions/"+id, nil); st["opened"] != false {
		t.Fatalf("previews opened the link: %v", st)
	}
	hc := browser()
	if status, res := callback(t, hc, f.consentIn(t, hc, link, sandbox.Choice{Account: "person@acme.example"})); status != 200 {
		t.Fatalf("the person after the previews: %d %v", status, res)
	}
}

// TestCallbackInProgressIsPending: a session whose callback is still
// exchanging the code (used, no outcome yet) reads pending, not expired;
// only a callback that never finished within the grace reads expired.
func TestCallbackInProgressIsPending(t *testing.T) {
	t.Parallel()
	f := start(t)
	_, s := f.api(t, "POST", "/v1/connect-sessions", map[string]any{"user_id": "inflight", "provider": "google"})
	id := s["id"].(string)
	if err := f.env.Server.Store.ConnectSessionConsume(context.Background(), id, f.clock.Now()); err != nil {
		t.Fatal(err)
	}
	if _, st := f.api(t, "GET", "/v1/connect-sessions/"+id, nil); st["state"] != "pending" {
		t.Fatalf("callback in progress: %v", st)
	}
	f.clock.Advance(3 * time.Minute)
	if _, st := f.api(t, "GET", "/v1/connect-sessions/"+id, nil); st["state"] != "expired" {
		t.Fatalf("callback abandoned: %v", st)
	}
}
