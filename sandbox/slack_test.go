package sandbox_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/authgate/authgate/sandbox"
)

func slackInstall(t *testing.T, e *env, account string) (*oauth2.Config, *oauth2.Token) {
	t.Helper()
	cfg := e.oauthConfig(t, "slack")
	u := cfg.AuthCodeURL("state-slack", oauth2.SetAuthURLParam("scope", "chat:write,channels:read"), oauth2.SetAuthURLParam("user_scope", "search:read"))
	q := e.authorize(t, u, sandbox.Choice{Account: account, Workspace: "Acme Corp"})
	tok, err := cfg.Exchange(context.Background(), q.Get("code"))
	if err != nil {
		t.Fatal(err)
	}
	return cfg, tok
}

func slackCall(t *testing.T, e *env, method, tok string, args url.Values) response {
	t.Helper()
	return form(t, e.url+"/sandbox/slack/api/"+method, bearer(tok), args)
}

func TestSlackInstallRotationAndWebAPI(t *testing.T) {
	t.Parallel()
	e := start(t, sandbox.Options{})
	cfg, tok := slackInstall(t, e, "sam@acme.example")
	if !strings.HasPrefix(tok.AccessToken, "xoxe.xoxb-1-") || !strings.HasPrefix(tok.RefreshToken, "xoxe-1-") || tok.Extra("expires_in") != float64(43200) {
		t.Fatalf("bot token %+v", tok)
	}
	if tok.Extra("ok") != true || tok.Extra("token_type") != "bot" || tok.Extra("scope") != "channels:read,chat:write" {
		t.Fatalf("oauth.v2.access fields %v %v %v", tok.Extra("ok"), tok.Extra("token_type"), tok.Extra("scope"))
	}
	team := tok.Extra("team").(map[string]any)
	user := tok.Extra("authed_user").(map[string]any)
	if team["name"] != "Acme Corp" || !strings.HasPrefix(team["id"].(string), "T") || !strings.HasPrefix(user["access_token"].(string), "xoxe.xoxp-1-") || user["token_type"] != "user" || user["scope"] != "search:read" {
		t.Fatalf("team %v authed_user %v", team, user)
	}
	r := slackCall(t, e, "auth.test", tok.AccessToken, nil)
	if r.status != 200 || r.json(t)["ok"] != true || r.json(t)["team_id"] != team["id"] || r.header.Get("X-OAuth-Scopes") != "channels:read,chat:write" {
		t.Fatalf("auth.test %d %v %s", r.status, r.header, r.body)
	}
	general := e.sb.Slack().ChannelID("Acme Corp", "general")
	r = slackCall(t, e, "chat.postMessage", tok.AccessToken, url.Values{"channel": {general}, "text": {"hello from the agent"}})
	if r.json(t)["ok"] != true || r.json(t)["channel"] != general || r.header.Get("X-Accepted-OAuth-Scopes") != "chat:write" {
		t.Fatalf("postMessage %s", r.body)
	}
	if r := slackCall(t, e, "chat.postMessage", tok.AccessToken, url.Values{"channel": {e.sb.Slack().ChannelID("Acme Corp", "random")}, "text": {"x"}}); r.body != `{"ok":false,"error":"not_in_channel"}` {
		t.Fatalf("channel the bot is not in: %s", r.body)
	}
	if r := slackCall(t, e, "chat.postMessage", tok.AccessToken, url.Values{"channel": {e.sb.Slack().ChannelID("Acme Corp", "private-ops")}, "text": {"x"}}); r.body != `{"ok":false,"error":"channel_not_found"}` {
		t.Fatalf("private channel: %s", r.body)
	}
	if r := slackCall(t, e, "conversations.list", tok.AccessToken, nil); r.json(t)["ok"] != true || len(r.json(t)["channels"].([]any)) != 2 {
		t.Fatalf("conversations.list %s", r.body)
	}
	r = slackCall(t, e, "conversations.list", tok.AccessToken, url.Values{"types": {"private_channel"}})
	if r.status != 200 || r.body != `{"ok":false,"error":"missing_scope","needed":"groups:read","provided":"channels:read,chat:write"}` {
		t.Fatalf("missing scope: %d %s", r.status, r.body)
	}
	// The user token cannot post (no chat:write user scope).
	r = slackCall(t, e, "chat.postMessage", user["access_token"].(string), url.Values{"channel": {general}, "text": {"x"}})
	if r.body != `{"ok":false,"error":"missing_scope","needed":"chat:write","provided":"search:read"}` {
		t.Fatalf("user token post: %s", r.body)
	}

	// Rotation: a new refresh token each time; the used one is dead.
	old := *tok
	old.Expiry = time.Now().Add(-time.Minute)
	fresh, err := cfg.TokenSource(context.Background(), &old).Token()
	if err != nil {
		t.Fatal(err)
	}
	if fresh.RefreshToken == tok.RefreshToken || fresh.Extra("expires_in") != float64(43200) {
		t.Fatalf("refresh %+v", fresh)
	}
	c, _ := e.sb.DefaultClient("slack")
	rr := form(t, e.url+"/sandbox/slack/api/oauth.v2.access", basic(c.ClientID, c.ClientSecret), url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}})
	if rr.status != 200 || rr.body != `{"ok":false,"error":"invalid_refresh_token"}` {
		t.Fatalf("used refresh token: %d %s", rr.status, rr.body)
	}
	// Access tokens expire after 12 hours.
	e.clock.Advance(12 * time.Hour)
	if r := slackCall(t, e, "auth.test", fresh.AccessToken, nil); r.body != `{"ok":false,"error":"token_expired"}` {
		t.Fatalf("after 12 h: %s", r.body)
	}
}

func TestSlackErrorsAndFaults(t *testing.T) {
	t.Parallel()
	e := start(t, sandbox.Options{})
	const acct = "tia@acme.example"
	_, tok := slackInstall(t, e, acct)
	c, _ := e.sb.DefaultClient("slack")
	access := e.url + "/sandbox/slack/api/oauth.v2.access"
	for _, tc := range []struct {
		header map[string]string
		v      url.Values
		want   string
	}{
		{nil, url.Values{"code": {"x"}}, `{"ok":false,"error":"invalid_client_id"}`},
		{basic(c.ClientID, "wrong"), url.Values{"code": {"x"}}, `{"ok":false,"error":"bad_client_secret"}`},
		{basic(c.ClientID, c.ClientSecret), url.Values{"code": {"nope"}}, `{"ok":false,"error":"invalid_code"}`},
		{basic(c.ClientID, c.ClientSecret), url.Values{"grant_type": {"password"}}, `{"ok":false,"error":"invalid_grant_type"}`},
	} {
		if r := form(t, access, tc.header, tc.v); r.status != 200 || r.body != tc.want {
			t.Errorf("oauth.v2.access %v: %d %s; want %s", tc.v, r.status, r.body, tc.want)
		}
	}
	if r := slackCall(t, e, "auth.test", "", nil); r.body != `{"ok":false,"error":"not_authed"}` {
		t.Fatalf("no token: %s", r.body)
	}
	if r := slackCall(t, e, "auth.test", "xoxb-bogus", nil); r.body != `{"ok":false,"error":"invalid_auth"}` {
		t.Fatalf("bogus token: %s", r.body)
	}
	// The token may come as a form parameter too.
	if r := form(t, e.url+"/sandbox/slack/api/auth.test", nil, url.Values{"token": {tok.AccessToken}}); r.json(t)["ok"] != true {
		t.Fatalf("token parameter: %s", r.body)
	}
	mustFault(t, e, sandbox.Fault{Provider: "slack", Fault: "rate_limit", RetryAfterSeconds: 1, Target: "api"})
	r := slackCall(t, e, "auth.test", tok.AccessToken, nil)
	if r.status != 429 || r.body != `{"ok":false,"error":"ratelimited"}` || len(r.body) != 34 || r.header.Get("Retry-After") != "1" {
		t.Fatalf("rate limited: %d %v %s", r.status, r.header, r.body)
	}
	mustFault(t, e, sandbox.Fault{Provider: "slack", Fault: "admin_policy", Account: acct})
	if r := slackCall(t, e, "auth.test", tok.AccessToken, nil); r.body != `{"ok":false,"error":"ekm_access_denied"}` {
		t.Fatalf("admin policy: %s", r.body)
	}
	e.sb.ClearFaults("slack")
	mustFault(t, e, sandbox.Fault{Provider: "slack", Fault: "drop_scope", Account: acct, Scope: "chat:write"})
	r = slackCall(t, e, "chat.postMessage", tok.AccessToken, url.Values{"channel": {e.sb.Slack().ChannelID("Acme Corp", "general")}, "text": {"x"}})
	if r.body != `{"ok":false,"error":"missing_scope","needed":"chat:write","provided":"channels:read"}` {
		t.Fatalf("dropped scope: %s", r.body)
	}
	e.sb.ClearFaults("slack")
	mustFault(t, e, sandbox.Fault{Provider: "slack", Fault: "unshare", Resource: e.sb.Slack().ChannelID("Acme Corp", "general")})
	r = slackCall(t, e, "conversations.list", tok.AccessToken, nil)
	if !strings.Contains(r.body, `"is_member":false,"is_private":false,"name":"general"`) {
		t.Fatalf("general after unshare: %s", r.body)
	}
	mustFault(t, e, sandbox.Fault{Provider: "slack", Fault: "expire_access_tokens", Account: acct})
	if r := slackCall(t, e, "auth.test", tok.AccessToken, nil); r.body != `{"ok":false,"error":"token_expired"}` {
		t.Fatalf("expired by fault: %s", r.body)
	}
	mustFault(t, e, sandbox.Fault{Provider: "slack", Fault: "invalid_grant_next", Account: acct})
	rr := form(t, access, basic(c.ClientID, c.ClientSecret), url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}})
	if rr.body != `{"ok":false,"error":"invalid_refresh_token"}` {
		t.Fatalf("invalid_grant_next: %s", rr.body)
	}
	mustFault(t, e, sandbox.Fault{Provider: "slack", Fault: "revoke", Account: acct})
	if r := slackCall(t, e, "auth.test", tok.AccessToken, nil); r.body != `{"ok":false,"error":"token_revoked"}` {
		t.Fatalf("revoked: %s", r.body)
	}
	mustFault(t, e, sandbox.Fault{Provider: "slack", Fault: "server_error", Status: 500, Target: "token"})
	if r := form(t, access, basic(c.ClientID, c.ClientSecret), url.Values{"code": {"x"}}); r.status != 500 {
		t.Fatalf("token endpoint 500: %d", r.status)
	}
}

// TestSlackJSONBodies: chat.postMessage takes an application/json body, as
// Slack's Web API does for its write methods, with the token in the
// Authorization header; blocks stay JSON.
func TestSlackJSONBodies(t *testing.T) {
	t.Parallel()
	e := start(t, sandbox.Options{})
	_, tok := slackInstall(t, e, "jo@acme.example")
	general := e.sb.Slack().ChannelID("Acme Corp", "general")
	post := func(body string) map[string]any {
		req, _ := http.NewRequest("POST", e.url+"/sandbox/slack/api/chat.postMessage", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		req.Header.Set("Content-Type", "application/json; charset=utf-8")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	if out := post(`{"channel":"` + general + `","text":"hello as JSON"}`); out["ok"] != true || out["channel"] != general {
		t.Fatalf("JSON postMessage: %v", out)
	}
	if out := post(`{"channel":"` + general + `","blocks":[{"type":"section","text":{"type":"mrkdwn","text":"*hi*"}}]}`); out["ok"] != true {
		t.Fatalf("JSON postMessage with blocks: %v", out)
	}
	if out := post(`{"channel":"C_NOPE","text":"x"}`); out["error"] != "channel_not_found" {
		t.Fatalf("unknown channel: %v", out)
	}
	if out := post(`not json`); out["ok"] != false || out["error"] != "invalid_json" {
		t.Fatalf("bad JSON: %v", out)
	}
}
