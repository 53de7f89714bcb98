package mcpserver_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/authgatetest"
	"github.com/authgate/authgate/internal/mcpserver"
	"github.com/authgate/authgate/sandbox"
)

// transport is how a test client reaches the MCP server: in memory (the
// server built by mcpserver.New, as `authgate mcp` builds it) or over
// streamable HTTP (serve's /mcp).
type transport struct {
	name    string
	connect func(t *testing.T, env *authgatetest.Env, key, user string, c *mcp.Client) *mcp.ClientSession
}

var transports = []transport{
	{"memory", func(t *testing.T, env *authgatetest.Env, key, user string, c *mcp.Client) *mcp.ClientSession {
		t.Helper()
		client := env.Client
		if key != env.AdminKey {
			client = newAPIClient(env.URL, key)
		}
		srv, err := mcpserver.New(mcpserver.Config{Client: client, UserID: user, PollInterval: 5 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil))})
		if err != nil {
			t.Fatal(err)
		}
		st, ct := mcp.NewInMemoryTransports()
		ss, err := srv.Connect(context.Background(), st, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ss.Close() })
		cs, err := c.Connect(context.Background(), ct, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cs.Close() })
		return cs
	}},
	{"http", func(t *testing.T, env *authgatetest.Env, key, user string, c *mcp.Client) *mcp.ClientSession {
		t.Helper()
		ct := &mcp.StreamableClientTransport{Endpoint: env.URL + "/mcp?user_id=" + url.QueryEscape(user), HTTPClient: &http.Client{Transport: bearer(key)}}
		cs, err := c.Connect(context.Background(), ct, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cs.Close() })
		return cs
	}},
}

type bearer string

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+string(b))
	return http.DefaultTransport.RoundTrip(r)
}

// newClient is an SDK client; withURL declares URL-mode elicitation.
// Completed elicitation ids arrive on the channel.
func newClient(withURL bool) (*mcp.Client, <-chan string) {
	done := make(chan string, 8)
	opts := &mcp.ClientOptions{ElicitationCompleteHandler: func(_ context.Context, r *mcp.ElicitationCompleteNotificationRequest) {
		done <- r.Params.ElicitationID
	}}
	if withURL {
		opts.Capabilities = &mcp.ClientCapabilities{Elicitation: &mcp.ElicitationCapabilities{URL: &mcp.URLElicitationCapabilities{}}}
	}
	return mcp.NewClient(&mcp.Implementation{Name: "test-agent", Version: "1"}, opts), done
}

func call(t *testing.T, cs *mcp.ClientSession, name string, args map[string]any) (*mcp.CallToolResult, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return cs.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: args})
}

// ok calls a tool that must succeed and returns its structured answer.
func ok(t *testing.T, cs *mcp.ClientSession, name string, args map[string]any) map[string]any {
	t.Helper()
	res, err := call(t, cs, name, args)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if res.IsError {
		t.Fatalf("%s answered an error: %s", name, text(res))
	}
	var out map[string]any
	if err := json.Unmarshal([]byte(text(res)), &out); err != nil {
		t.Fatalf("%s: %v in %s", name, err, text(res))
	}
	return out
}

func text(res *mcp.CallToolResult) string {
	var b strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String()
}

// elicitation returns the URL elicitation a URL-elicitation-required error
// carries.
func elicitation(t *testing.T, err error) *mcp.ElicitParams {
	t.Helper()
	var we *jsonrpc.Error
	if !errors.As(err, &we) || we.Code != mcp.CodeURLElicitationRequired {
		t.Fatalf("want URL elicitation required, got %v", err)
	}
	var data struct {
		Elicitations []*mcp.ElicitParams `json:"elicitations"`
	}
	if err := json.Unmarshal(we.Data, &data); err != nil || len(data.Elicitations) != 1 {
		t.Fatalf("elicitations %s: %v", we.Data, err)
	}
	e := data.Elicitations[0]
	if e.Mode != "url" || e.URL == "" || e.ElicitationID == "" || e.Message == "" {
		t.Fatalf("elicitation %+v", e)
	}
	return e
}

// complete opens a connect link in a browser of its own, consents on the
// sandbox page and lands on the callback; it returns the provider
// authorization URL the link led to.
func complete(t *testing.T, link string, choice sandbox.Choice) *url.URL {
	t.Helper()
	ctx := context.Background()
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := browser.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := resp.Location()
	if err != nil {
		t.Fatalf("connect link answered %d", resp.StatusCode)
	}
	back, err := sandbox.CompleteConsent(ctx, browser, loc.String(), choice)
	if err != nil {
		t.Fatal(err)
	}
	resp, err = browser.Get(back.String())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode >= 400 {
		t.Fatalf("callback answered %d", resp.StatusCode)
	}
	return loc
}

// waitFor waits for the elicitation-complete notification of id.
func waitFor(t *testing.T, done <-chan string, id string) {
	t.Helper()
	timeout := time.NewTimer(30 * time.Second)
	defer timeout.Stop()
	for {
		select {
		case got := <-done:
			if got == id {
				return
			}
		case <-timeout.C:
			t.Fatalf("no notifications/elicitation/complete for %s", id)
		}
	}
}

func requestedScopes(u *url.URL) []string {
	s := strings.Fields(u.Query().Get("scope"))
	slices.Sort(s)
	return s
}

func TestToolsList(t *testing.T) {
	t.Parallel()
	env := authgatetest.Start(t, authgatetest.Options{})
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			c, _ := newClient(false)
			cs := tr.connect(t, env, env.AdminKey, "alice", c)
			res, err := cs.ListTools(context.Background(), nil)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, tool := range res.Tools {
				names = append(names, tool.Name)
				schema, _ := json.Marshal(tool.InputSchema)
				if !strings.Contains(string(schema), `"type":"object"`) {
					t.Errorf("%s: input schema %s", tool.Name, schema)
				}
				if tool.Annotations == nil {
					t.Errorf("%s: no annotations", tool.Name)
					continue
				}
				if strings.HasPrefix(tool.Name, "authgate_") {
					continue
				}
				write := slices.Contains([]string{"docs_create", "docs_append", "notion_create_page", "slack_post_message"}, tool.Name)
				if tool.Annotations.ReadOnlyHint == write || (write && (tool.Annotations.DestructiveHint == nil || *tool.Annotations.DestructiveHint)) {
					t.Errorf("%s: annotations %+v", tool.Name, tool.Annotations)
				}
				if acts, _ := tool.Meta[mcpserver.MetaActions].([]any); len(acts) == 0 || tool.Meta[mcpserver.MetaProvider] == "" {
					t.Errorf("%s: declared actions %v", tool.Name, tool.Meta)
				}
			}
			want := mcpserver.ToolNames()
			slices.Sort(want)
			slices.Sort(names)
			if !slices.Equal(names, want) {
				t.Fatalf("tools %v, want %v", names, want)
			}
			var docs *mcp.Tool
			for _, tool := range res.Tools {
				if tool.Name == "docs_create" {
					docs = tool
				}
			}
			schema, _ := json.Marshal(docs.InputSchema)
			if !strings.Contains(string(schema), `"required":["title"]`) || !strings.Contains(string(schema), `"text"`) {
				t.Fatalf("docs_create schema %s", schema)
			}
		})
	}
}

// TestReadAndWrite: a connected user reads and writes with Slack and
// Google; a provider error is a tool error with the class and fix.
func TestReadAndWrite(t *testing.T) {
	t.Parallel()
	env := authgatetest.Start(t, authgatetest.Options{})
	slackCred := env.Connect(t, authgatetest.ConnectParams{UserID: "alice", Provider: "slack", Actions: []string{"slack.chat.post", "slack.channels.list"}, Choice: sandbox.Choice{Account: "sal@acme.example"}})
	var seen strings.Builder
	t.Cleanup(func() {
		// No token in any tool answer or server log line.
		tok, err := env.Client.Token(context.Background(), slackCred.ID, authgate.TokenRequest{})
		if err != nil || tok.AccessToken == "" {
			t.Errorf("token %v", err)
			return
		}
		if strings.Contains(seen.String(), tok.AccessToken) || strings.Contains(env.Logs.String(), tok.AccessToken) {
			t.Errorf("an access token leaked into a tool answer or a log line")
		}
	})
	env.Connect(t, authgatetest.ConnectParams{UserID: "alice", Provider: "google", Actions: []string{"drive.files.list", "docs.documents.create", "docs.documents.get", "docs.documents.update"}, Choice: sandbox.Choice{Account: "alice@acme.example"}})
	general := env.Server.Sandbox.Slack().ChannelID("", "general")
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			c, _ := newClient(false)
			cs := tr.connect(t, env, env.AdminKey, "alice", c)
			chans := ok(t, cs, "slack_list_channels", nil)
			if l, _ := chans["channels"].([]any); len(l) < 2 {
				t.Fatalf("channels %v", chans)
			}
			m := ok(t, cs, "slack_post_message", map[string]any{"channel": general, "text": "hello from " + tr.name})
			if m["ts"] == "" || m["channel"] != general {
				t.Fatalf("posted %v", m)
			}
			res, err := call(t, cs, "slack_post_message", map[string]any{"channel": env.Server.Sandbox.Slack().ChannelID("", "random"), "text": "hi"})
			if err != nil || !res.IsError {
				t.Fatalf("post where the bot is not: %v %v", res, err)
			}
			body, _ := json.Marshal(res.StructuredContent)
			if !strings.Contains(string(body), `"class":`) || !strings.Contains(string(body), `"fix":`) || !strings.Contains(text(res), "class") {
				t.Fatalf("provider error without class and fix: %s / %s", body, text(res))
			}

			d := ok(t, cs, "docs_create", map[string]any{"title": "Notes " + tr.name, "text": "first\n"})
			id, _ := d["id"].(string)
			if id == "" || d["mime_type"] != "application/vnd.google-apps.document" || !strings.Contains(d["link"].(string), id) {
				t.Fatalf("created %v", d)
			}
			ok(t, cs, "docs_append", map[string]any{"document_id": id, "text": "second\n"})
			r := ok(t, cs, "docs_read", map[string]any{"document_id": id})
			if txt, _ := r["text"].(string); !strings.Contains(txt, "first") || !strings.Contains(txt, "second\n") {
				t.Fatalf("read %v", r)
			}
			files := ok(t, cs, "drive_list_files", map[string]any{"query": "name = 'Notes " + tr.name + "'"})
			if l, _ := files["files"].([]any); len(l) != 1 {
				t.Fatalf("files %v", files)
			}
			conns := ok(t, cs, "authgate_connections", nil)
			b, _ := json.Marshal(conns)
			seen.Write(b)
			seen.WriteString(text(res))
			if !strings.Contains(string(b), `"slack_post_message"`) || !strings.Contains(string(b), `"docs_create"`) || !strings.Contains(string(b), `"state":"authorized"`) {
				t.Fatalf("connections %s", b)
			}
		})
	}
}

// docsCount counts the user's Google Docs named title.
func docsCount(t *testing.T, cs *mcp.ClientSession, title string) int {
	t.Helper()
	files := ok(t, cs, "drive_list_files", map[string]any{"query": "name = '" + title + "'"})
	l, _ := files["files"].([]any)
	return len(l)
}

// TestElicitationConnectsAndRetries: with no Google credential, docs_create
// answers URL elicitation required; the link is completed through the
// sandbox's consent; the notification arrives; the retry makes one Doc,
// and a second retry does not make another.
func TestElicitationConnectsAndRetries(t *testing.T) {
	t.Parallel()
	env := authgatetest.Start(t, authgatetest.Options{})
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			user := "eve-" + tr.name
			c, done := newClient(true)
			cs := tr.connect(t, env, env.AdminKey, user, c)
			args := map[string]any{"title": "Plan " + tr.name, "text": "hello"}
			_, err := call(t, cs, "docs_create", args)
			e := elicitation(t, err)
			if !strings.Contains(e.Message, "Google") {
				t.Fatalf("message %q", e.Message)
			}
			complete(t, e.URL, sandbox.Choice{Account: user + "@acme.example"})
			waitFor(t, done, e.ElicitationID)
			first := ok(t, cs, "docs_create", args)
			again := ok(t, cs, "docs_create", args)
			if first["id"] == "" || again["id"] != first["id"] {
				t.Fatalf("retry made another Doc: %v then %v", first, again)
			}
			if n := docsCount(t, cs, "Plan "+tr.name); n != 1 {
				t.Fatalf("%d Docs exist, want exactly one", n)
			}
		})
	}
}

// TestNotionRevokedReconnect: after the sandbox revokes Notion, a Notion
// tool answers with a reconnect link (an elicitation or an isError hint,
// by client capability) and works after the reconnect.
func TestNotionRevokedReconnect(t *testing.T) {
	t.Parallel()
	env := authgatetest.Start(t, authgatetest.Options{})
	for _, tr := range transports {
		for _, withURL := range []bool{true, false} {
			name := tr.name + "/hint"
			if withURL {
				name = tr.name + "/elicitation"
			}
			t.Run(name, func(t *testing.T) {
				user := "nora-" + strings.ReplaceAll(name, "/", "-")
				acct := user + "@acme.example"
				cred := env.Connect(t, authgatetest.ConnectParams{UserID: user, Provider: "notion", Actions: []string{"notion.read", "notion.insert"}, Choice: sandbox.Choice{Account: acct}})
				c, done := newClient(withURL)
				cs := tr.connect(t, env, env.AdminKey, user, c)
				ok(t, cs, "notion_search", map[string]any{"query": "Roadmap"})
				if err := env.Server.Sandbox.InjectFault(sandbox.Fault{Provider: "notion", Fault: "revoke", Account: acct}); err != nil {
					t.Fatal(err)
				}
				res, err := call(t, cs, "notion_search", map[string]any{"query": "Roadmap"})
				var link string
				if withURL {
					e := elicitation(t, err)
					link = e.URL
					complete(t, link, sandbox.Choice{Account: acct})
					waitFor(t, done, e.ElicitationID)
				} else {
					if err != nil || !res.IsError {
						t.Fatalf("want an isError result, got %v %v", res, err)
					}
					sc, _ := res.StructuredContent.(map[string]any)
					link, _ = sc["connect_url"].(string)
					if link == "" || !strings.Contains(text(res), link) || sc["credential_id"] != string(cred.ID) {
						t.Fatalf("hint %q %v", text(res), sc)
					}
					complete(t, link, sandbox.Choice{Account: acct})
				}
				ok(t, cs, "notion_search", map[string]any{"query": "Roadmap"})
				page := ok(t, cs, "notion_create_page", map[string]any{"parent_id": env.Server.Sandbox.Notion().ObjectID("", "Roadmap"), "title": "From " + name})
				if page["id"] == "" {
					t.Fatalf("page %v", page)
				}
			})
		}
	}
}

// TestDropScopeAsksForExactlyTheMissingScope: after the sandbox drops
// drive.file, docs_create's link asks for drive.file and nothing else.
func TestDropScopeAsksForExactlyTheMissingScope(t *testing.T) {
	t.Parallel()
	env := authgatetest.Start(t, authgatetest.Options{})
	const driveFile = "https://www.googleapis.com/auth/drive.file"
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			user := "dora-" + tr.name
			acct := user + "@acme.example"
			env.Connect(t, authgatetest.ConnectParams{UserID: user, Provider: "google", Actions: []string{"drive.files.list", "docs.documents.create"}, Choice: sandbox.Choice{Account: acct}})
			c, done := newClient(true)
			cs := tr.connect(t, env, env.AdminKey, user, c)
			ok(t, cs, "docs_create", map[string]any{"title": "Before"})
			if err := env.Server.Sandbox.InjectFault(sandbox.Fault{Provider: "google", Fault: "drop_scope", Account: acct, Scope: driveFile}); err != nil {
				t.Fatal(err)
			}
			_, err := call(t, cs, "docs_create", map[string]any{"title": "After"})
			e := elicitation(t, err)
			if !strings.Contains(e.Message, driveFile) {
				t.Fatalf("message %q does not name the missing scope", e.Message)
			}
			auth := complete(t, e.URL, sandbox.Choice{Account: acct})
			// Besides the missing scope, only the identity scopes every
			// Google link asks for (the broker needs them to know the account).
			got := slices.DeleteFunc(requestedScopes(auth), func(s string) bool {
				return s == "openid" || s == "email" || s == "https://www.googleapis.com/auth/userinfo.email"
			})
			if !slices.Equal(got, []string{driveFile}) {
				t.Fatalf("the link asked for %v, want exactly [%s]", requestedScopes(auth), driveFile)
			}
			waitFor(t, done, e.ElicitationID)
			ok(t, cs, "docs_create", map[string]any{"title": "After"})
			// The grant was added to, not replaced: listing still works.
			if n := docsCount(t, cs, "After"); n != 1 {
				t.Fatalf("%d Docs named After", n)
			}
		})
	}
}

// TestIsolation: one user's session never sees another user's or another
// tenant's connections, and cannot use them.
func TestIsolation(t *testing.T) {
	t.Parallel()
	env := authgatetest.Start(t, authgatetest.Options{})
	env.Connect(t, authgatetest.ConnectParams{UserID: "alice", Provider: "slack", Actions: []string{"slack.chat.post", "slack.channels.list"}, Choice: sandbox.Choice{Account: "alice@acme.example"}})
	_, otherKey := env.NewTenant(t, "other")
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			for _, who := range []struct{ key, user string }{{env.AdminKey, "bob"}, {otherKey, "alice"}} {
				c, _ := newClient(false)
				cs := tr.connect(t, env, who.key, who.user, c)
				conns := ok(t, cs, "authgate_connections", nil)
				if l, _ := conns["connections"].([]any); len(l) != 0 {
					t.Fatalf("%s sees %v", who.user, conns)
				}
				res, err := call(t, cs, "slack_list_channels", nil)
				if err != nil || !res.IsError || !strings.Contains(text(res), "/connect/") {
					t.Fatalf("%s used another's Slack: %v %v", who.user, res, err)
				}
			}
			c, _ := newClient(false)
			cs := tr.connect(t, env, env.AdminKey, "alice", c)
			conns := ok(t, cs, "authgate_connections", nil)
			if l, _ := conns["connections"].([]any); len(l) != 1 {
				t.Fatalf("alice sees %v", conns)
			}
		})
	}
}

// TestHTTPRefusesWithoutKeyOrUser: /mcp needs a tenant key and a user.
func TestHTTPRefusesWithoutKeyOrUser(t *testing.T) {
	t.Parallel()
	env := authgatetest.Start(t, authgatetest.Options{})
	body := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}`
	for _, tc := range []struct {
		path, key string
		want      int
	}{{"/mcp?user_id=a", "", 401}, {"/mcp?user_id=a", "ag_bogus", 401}, {"/mcp", env.AdminKey, 400}} {
		req, _ := http.NewRequest("POST", env.URL+tc.path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		if tc.key != "" {
			req.Header.Set("Authorization", "Bearer "+tc.key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s key=%q: %d, want %d", tc.path, tc.key, resp.StatusCode, tc.want)
		}
	}
}

func newAPIClient(base, key string) *authgate.Client { return authgate.NewClient(base, key) }

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// TestToolCallsAsRunSteps: with run_id, a tool call is a step of that run —
// gated, its result the step's checkpoint — and calling it again answers
// from the checkpoint without doing it twice. A run that does not bind the
// user's credential is refused (runs name credentials by id).
func TestToolCallsAsRunSteps(t *testing.T) {
	t.Parallel()
	env := authgatetest.Start(t, authgatetest.Options{})
	google := env.Connect(t, authgatetest.ConnectParams{UserID: "alice", Provider: "google", Actions: []string{"drive.files.list", "docs.documents.create"}, Choice: sandbox.Choice{Account: "alice@acme.example"}})
	other := env.Connect(t, authgatetest.ConnectParams{UserID: "bob", Provider: "google", Actions: []string{"docs.documents.create"}, Choice: sandbox.Choice{Account: "bob@acme.example"}})
	ctx := context.Background()
	run, err := env.Client.CreateRun(ctx, authgate.RunCreateRequest{Workflow: "agent-session", UserID: "alice", Bindings: map[string]authgate.CredentialID{"google": google.ID}, Actions: []string{"docs.documents.create"}})
	if err != nil || run.State != authgate.RunStateRunning {
		t.Fatalf("run %+v %v", run, err)
	}
	bobsRun, err := env.Client.CreateRun(ctx, authgate.RunCreateRequest{Workflow: "agent-session", UserID: "bob", Bindings: map[string]authgate.CredentialID{"google": other.ID}, Actions: []string{"docs.documents.create"}})
	if err != nil {
		t.Fatal(err)
	}
	c, _ := newClient(false)
	cs := transports[0].connect(t, env, env.AdminKey, "alice", c)
	args := map[string]any{"title": "Run notes", "text": "step one", "run_id": string(run.ID)}
	first := ok(t, cs, "docs_create", args)
	again := ok(t, cs, "docs_create", args)
	if first["id"] == "" || again["id"] != first["id"] {
		t.Fatalf("first %v, again %v; want the checkpoint's answer", first, again)
	}
	if n := docsCount(t, cs, "Run notes"); n != 1 {
		t.Fatalf("%d Docs; want exactly 1", n)
	}
	got, err := env.Client.Run(ctx, run.ID)
	if err != nil || len(got.Steps) != 1 || got.Steps[0].Status != authgate.StepStatusCompleted || !strings.Contains(string(got.Steps[0].Output), first["id"].(string)) {
		t.Fatalf("run after the tool calls: %+v %v", got.Steps, err)
	}
	res, err := call(t, cs, "docs_create", map[string]any{"title": "Elsewhere", "run_id": string(bobsRun.ID)})
	if err != nil || !res.IsError || !strings.Contains(text(res), "wrong_principal") {
		t.Fatalf("a run binding another user's credential: %v %v", text(res), err)
	}
}
