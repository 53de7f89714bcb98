package sandbox_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/authgate/authgate/sandbox"
	"github.com/authgate/authgate/sandbox/notionsim"
)

func notionTokens(t *testing.T, e *env, c sandbox.Choice) (*oauth2.Config, *oauth2.Token) {
	t.Helper()
	cfg := e.oauthConfig(t, "notion")
	q := e.authorize(t, cfg.AuthCodeURL("state-notion", oauth2.SetAuthURLParam("owner", "user")), c)
	tok, err := cfg.Exchange(context.Background(), q.Get("code"))
	if err != nil {
		t.Fatal(err)
	}
	return cfg, tok
}

func notionAPI(t *testing.T, e *env, method, path, tok, version, body string) response {
	t.Helper()
	h := bearer(tok)
	if version != "" {
		h["Notion-Version"] = version
	}
	if body != "" {
		h["Content-Type"] = "application/json"
	}
	return send(t, method, e.url+"/sandbox/notion/v1"+path, h, body)
}

// notionError checks Notion's envelope, field by field and in order.
func notionError(t *testing.T, r response, status int, code, message string) {
	t.Helper()
	m := r.json(t)
	if r.status != status || m["object"] != "error" || m["status"] != float64(status) || m["code"] != code || m["message"] != message {
		t.Fatalf("got %d %s; want %d %s %q", r.status, r.body, status, code, message)
	}
	if !strings.HasPrefix(r.body, `{"object":"error","status":`) || r.header.Get("x-notion-request-id") != m["request_id"] {
		t.Fatalf("envelope order or request id header: %v %s", r.header, r.body)
	}
}

func TestNotionOAuthAndAPI(t *testing.T) {
	t.Parallel()
	e := start(t, sandbox.Options{NotionRateLimit: -1})
	cfg, tok := notionTokens(t, e, sandbox.Choice{Account: "pia@acme.example", Workspace: "Acme", Resources: []string{"Roadmap", "Tasks"}})
	if !strings.HasPrefix(tok.AccessToken, "ntn_") || tok.RefreshToken == "" || !tok.Expiry.IsZero() || tok.Extra("expires_in") != nil {
		t.Fatalf("token %+v", tok)
	}
	if tok.Extra("workspace_name") != "Acme" || tok.Extra("bot_id") == "" || tok.Extra("workspace_id") == "" {
		t.Fatalf("token fields %v %v", tok.Extra("workspace_name"), tok.Extra("bot_id"))
	}
	owner, _ := tok.Extra("owner").(map[string]any)
	if owner["type"] != "user" {
		t.Fatalf("owner %v", owner)
	}
	me := notionAPI(t, e, "GET", "/users/me", tok.AccessToken, notionsim.Version2022, "")
	m := me.json(t)
	if me.status != 200 || m["type"] != "bot" || m["id"] != tok.Extra("bot_id") || m["bot"].(map[string]any)["workspace_name"] != "Acme" {
		t.Fatalf("users/me %d %s", me.status, me.body)
	}
	// Refresh rotates the refresh token (x/oauth2 cannot tell expiry: none is sent).
	old := *tok
	old.Expiry = time.Now().Add(-time.Minute)
	fresh, err := cfg.TokenSource(context.Background(), &old).Token()
	if err != nil {
		t.Fatal(err)
	}
	if fresh.RefreshToken == tok.RefreshToken || fresh.AccessToken == tok.AccessToken {
		t.Fatal("refresh did not rotate")
	}
	if _, err := cfg.TokenSource(context.Background(), &old).Token(); err == nil {
		t.Fatal("a used refresh token worked again")
	} else {
		var re *oauth2.RetrieveError
		if !errors.As(err, &re) || re.Response.StatusCode != 400 || !strings.Contains(string(re.Body), `"code":"invalid_grant"`) {
			t.Fatalf("reused refresh token: %v", err)
		}
	}
	at := fresh.AccessToken

	roadmap := e.sb.Notion().ObjectID("Acme", "Roadmap")
	notes := e.sb.Notion().ObjectID("Acme", "Meeting Notes")
	tasks := e.sb.Notion().ObjectID("Acme", "Tasks")
	if r := notionAPI(t, e, "GET", "/pages/"+roadmap, at, notionsim.Version2022, ""); r.status != 200 || r.json(t)["object"] != "page" {
		t.Fatalf("shared page %d %s", r.status, r.body)
	}
	// Not shared: 404 object_not_found although the token is valid.
	notionError(t, notionAPI(t, e, "GET", "/pages/"+notes, at, notionsim.Version2022, ""), 404, "object_not_found",
		"Could not find page with ID: "+notes+". Make sure the relevant pages and databases are shared with your integration \"authgate sandbox app\".")
	// Search returns only shared content.
	s := notionAPI(t, e, "POST", "/search", at, notionsim.Version2022, `{"query":""}`).json(t)
	if n := len(s["results"].([]any)); n != 4 { // Roadmap, Tasks and its two rows
		t.Fatalf("search found %d objects: %v", n, s)
	}
	// Database query under 2022-06-28, data sources under 2025-09-03.
	q := notionAPI(t, e, "POST", "/databases/"+tasks+"/query", at, notionsim.Version2022, `{}`)
	if q.status != 200 || len(q.json(t)["results"].([]any)) != 2 {
		t.Fatalf("database query %d %s", q.status, q.body)
	}
	if r := notionAPI(t, e, "POST", "/databases/"+tasks+"/query", at, notionsim.Version2025, `{}`); r.status != 400 {
		t.Fatalf("database query under 2025-09-03: %d", r.status)
	}
	db := notionAPI(t, e, "GET", "/databases/"+tasks, at, notionsim.Version2025, "").json(t)
	ds := db["data_sources"].([]any)[0].(map[string]any)["id"].(string)
	if r := notionAPI(t, e, "POST", "/data_sources/"+ds+"/query", at, notionsim.Version2025, `{}`); r.status != 200 || len(r.json(t)["results"].([]any)) != 2 {
		t.Fatalf("data source query %d %s", r.status, r.body)
	}
	// Create a page in the database, append blocks, read them back.
	p := notionAPI(t, e, "POST", "/pages", at, notionsim.Version2022,
		`{"parent":{"database_id":"`+strings.ReplaceAll(tasks, "-", "")+`"},"properties":{"Name":{"title":[{"text":{"content":"Agent task"}}]}}}`)
	if p.status != 200 {
		t.Fatalf("create page %d %s", p.status, p.body)
	}
	pid := p.json(t)["id"].(string)
	ap := notionAPI(t, e, "PATCH", "/blocks/"+pid+"/children", at, notionsim.Version2022,
		`{"children":[{"object":"block","type":"paragraph","paragraph":{"rich_text":[{"type":"text","text":{"content":"done by the agent"}}]}}]}`)
	if ap.status != 200 || len(ap.json(t)["results"].([]any)) != 1 {
		t.Fatalf("append %d %s", ap.status, ap.body)
	}
	if r := notionAPI(t, e, "GET", "/blocks/"+pid+"/children", at, notionsim.Version2022, ""); !strings.Contains(r.body, "done by the agent") {
		t.Fatalf("blocks %s", r.body)
	}
	notionError(t, notionAPI(t, e, "POST", "/pages", at, notionsim.Version2022, `{"parent":{"page_id":"`+roadmap+`"}}`), 400, "validation_error",
		"body failed validation: body.properties should be defined, instead was `undefined`.")
	users := notionAPI(t, e, "GET", "/users", at, notionsim.Version2022, "").json(t)
	if res := users["results"].([]any); len(res) != 2 || !strings.Contains(fmt.Sprint(res), "pia@acme.example") {
		t.Fatalf("users %v", users)
	}
	cl, _ := e.sb.DefaultClient("notion")
	in := send(t, "POST", e.url+"/sandbox/notion/v1/oauth/introspect", mergeHeaders(basic(cl.ClientID, cl.ClientSecret), map[string]string{"Content-Type": "application/json"}), `{"token":"`+at+`"}`)
	if in.json(t)["active"] != true {
		t.Fatalf("introspect %s", in.body)
	}
	if r := send(t, "POST", e.url+"/sandbox/notion/v1/oauth/revoke", mergeHeaders(basic(cl.ClientID, cl.ClientSecret), map[string]string{"Content-Type": "application/json"}), `{"token":"`+at+`"}`); r.status != 200 {
		t.Fatalf("revoke %d %s", r.status, r.body)
	}
	notionError(t, notionAPI(t, e, "GET", "/users/me", at, notionsim.Version2022, ""), 401, "unauthorized", "API token is invalid.")
	if in := send(t, "POST", e.url+"/sandbox/notion/v1/oauth/introspect", mergeHeaders(basic(cl.ClientID, cl.ClientSecret), map[string]string{"Content-Type": "application/json"}), `{"token":"`+at+`"}`); in.json(t)["active"] != false {
		t.Fatalf("introspect after revoke %s", in.body)
	}
	c := e.counters(t, "notion")
	if c.CodeExchanges != 1 || c.Refreshes != 2 || c.APIRequests < 10 {
		t.Fatalf("counters %+v", c)
	}
}

func TestNotionErrorsAndFaults(t *testing.T) {
	t.Parallel()
	e := start(t, sandbox.Options{})
	const acct = "quinn@acme.example"
	_, tok := notionTokens(t, e, sandbox.Choice{Account: acct})
	at := tok.AccessToken
	notionError(t, notionAPI(t, e, "GET", "/users/me", at, "", ""), 400, "missing_version",
		"Notion-Version header failed validation: Notion-Version header should be defined, instead was undefined.")
	r := notionAPI(t, e, "GET", "/users/me", "ntn_bogus", notionsim.Version2022, "")
	notionError(t, r, 401, "unauthorized", "API token is invalid.")
	if len(r.body) != 139 {
		t.Fatalf("401 body is %d bytes; Notion's is 139", len(r.body))
	}
	roadmap := e.sb.Notion().ObjectID("", "Roadmap")
	mustFault(t, e, sandbox.Fault{Provider: "notion", Fault: "unshare", Resource: roadmap})
	notionError(t, notionAPI(t, e, "GET", "/pages/"+roadmap, at, notionsim.Version2022, ""), 404, "object_not_found",
		"Could not find page with ID: "+roadmap+". Make sure the relevant pages and databases are shared with your integration \"authgate sandbox app\".")
	mustFault(t, e, sandbox.Fault{Provider: "notion", Fault: "drop_scope", Account: acct, Scope: notionsim.CapInsertContent})
	notionError(t, notionAPI(t, e, "PATCH", "/blocks/"+e.sb.Notion().ObjectID("", "Meeting Notes")+"/children", at, notionsim.Version2022, `{"children":[]}`),
		403, "restricted_resource", "API token does not have access to this resource.")
	mustFault(t, e, sandbox.Fault{Provider: "notion", Fault: "rate_limit", RetryAfterSeconds: 2, Target: "api"})
	r = notionAPI(t, e, "GET", "/users/me", at, notionsim.Version2022, "")
	notionError(t, r, 429, "rate_limited", "You have been rate limited. Please try again in a few minutes.")
	if r.header.Get("Retry-After") != "2" {
		t.Fatalf("Retry-After %q", r.header.Get("Retry-After"))
	}
	mustFault(t, e, sandbox.Fault{Provider: "notion", Fault: "server_error", Target: "api"})
	notionError(t, notionAPI(t, e, "GET", "/users/me", at, notionsim.Version2022, ""), 503, "service_unavailable", "Notion is unavailable, please try again later.")
	mustFault(t, e, sandbox.Fault{Provider: "notion", Fault: "revoke", Account: acct})
	notionError(t, notionAPI(t, e, "GET", "/users/me", at, notionsim.Version2022, ""), 401, "unauthorized", "API token is invalid.")
	c, _ := e.sb.DefaultClient("notion")
	rr := form(t, e.url+"/sandbox/notion/v1/oauth/token", basic(c.ClientID, c.ClientSecret), url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}})
	notionError(t, rr, 400, "invalid_grant", "Invalid refresh token.")
	// Client authentication must be HTTP Basic.
	rr = form(t, e.url+"/sandbox/notion/v1/oauth/token", nil, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}, "client_id": {c.ClientID}, "client_secret": {c.ClientSecret}})
	if rr.status != 401 || rr.json(t)["code"] != "invalid_client" {
		t.Fatalf("form client auth: %d %s", rr.status, rr.body)
	}
	if err := e.sb.InjectFault(sandbox.Fault{Provider: "notion", Fault: "admin_policy"}); err == nil {
		t.Fatal("notion accepted an admin_policy fault it cannot emulate")
	}
}

// TestNotionRateLimit: about three requests per second per integration,
// with a burst; Retry-After says when the next one fits.
func TestNotionRateLimit(t *testing.T) {
	t.Parallel()
	e := start(t, sandbox.Options{})
	_, tok := notionTokens(t, e, sandbox.Choice{Account: "ray@acme.example"})
	for i := range 10 {
		if r := notionAPI(t, e, "GET", "/users/me", tok.AccessToken, notionsim.Version2022, ""); r.status != 200 {
			t.Fatalf("request %d of the burst: %d", i, r.status)
		}
	}
	r := notionAPI(t, e, "GET", "/users/me", tok.AccessToken, notionsim.Version2022, "")
	notionError(t, r, 429, "rate_limited", "You have been rate limited. Please try again in a few minutes.")
	if r.header.Get("Retry-After") != "1" {
		t.Fatalf("Retry-After %q", r.header.Get("Retry-After"))
	}
	e.clock.Advance(time.Second) // three more requests fit
	for i := range 3 {
		if r := notionAPI(t, e, "GET", "/users/me", tok.AccessToken, notionsim.Version2022, ""); r.status != 200 {
			t.Fatalf("request %d after a second: %d", i, r.status)
		}
	}
	if r := notionAPI(t, e, "GET", "/users/me", tok.AccessToken, notionsim.Version2022, ""); r.status != 429 {
		t.Fatalf("fourth request in that second: %d", r.status)
	}
}

func mergeHeaders(a, b map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}
