package mcpserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"golang.org/x/oauth2"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/connector/gdocs"
	"github.com/authgate/authgate/connector/gdrive"
	"github.com/authgate/authgate/connector/notion"
	"github.com/authgate/authgate/connector/slack"
)

// toolDef is what a tool declares: its provider and actions (what the
// token is asked for, what a connect link asks the user to grant) and
// whether it writes.
type toolDef struct {
	name, title, description string
	provider                 string
	actions                  []string
	write                    bool
}

// MetaProvider and MetaActions name the tool _meta keys declaring what a
// tool needs.
const (
	MetaProvider = "authgate/provider"
	MetaActions  = "authgate/actions"
)

func (d *toolDef) tool() *mcp.Tool {
	t := &mcp.Tool{Name: d.name, Title: d.title, Description: d.description}
	open := d.provider != ""
	t.Annotations = &mcp.ToolAnnotations{Title: d.title, ReadOnlyHint: !d.write, OpenWorldHint: &open}
	if d.write {
		// Every write tool here adds (a Doc, text, a page, a message);
		// none deletes or overwrites.
		no := false
		t.Annotations.DestructiveHint = &no
	}
	if d.provider != "" {
		t.Meta = mcp.Meta{MetaProvider: d.provider, MetaActions: d.actions}
	}
	return t
}

// conn is what a gated tool runs with: a token source for its credential
// and actions, and the provider's API URLs.
type conn struct {
	ts        *gatedSource
	apis      map[string]string
	transport http.RoundTripper
}

// gatedSource takes every token from authgate's token API for the tool's
// actions, and reports a token the provider refused so that authgate
// refreshes (or marks the credential) instead of serving it again.
type gatedSource struct {
	ctx     context.Context
	c       *authgate.Client
	id      authgate.CredentialID
	actions []string

	mu       sync.Mutex
	last     string
	rejected string
}

var _ oauth2.TokenSource = (*gatedSource)(nil)

func (g *gatedSource) Token() (*oauth2.Token, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	t, err := g.c.Token(g.ctx, g.id, authgate.TokenRequest{Actions: g.actions, RejectedFingerprint: g.rejected})
	if err != nil {
		return nil, err
	}
	g.last, g.rejected = t.Fingerprint, ""
	tok := &oauth2.Token{AccessToken: t.AccessToken, TokenType: t.TokenType}
	if t.ExpiresAt != nil {
		tok.Expiry = *t.ExpiresAt
	}
	return tok, nil
}

// reject reports the last token as refused by the provider.
func (g *gatedSource) reject() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.rejected = g.last
}

// writeArgs is what every write tool accepts besides its own arguments.
type writeArgs interface{ ownKey() string }

// IdempotencyKey lets an agent write the same thing twice on purpose: the
// key a write is remembered by is derived from its arguments, so two calls
// with the same arguments are one write unless their keys differ.
//
// Its field is not named like the type: a struct embedded under the name
// IdempotencyKey would shadow a field of that name, and the schema inferred
// for the tool's arguments would lose idempotency_key (every call naming
// it was then refused as an unexpected property).
type IdempotencyKey struct {
	Key string `json:"idempotency_key,omitempty" jsonschema:"optional: a key of your own; calls with the same arguments and key are done once (by default the arguments alone are the key)"`
}

func (k IdempotencyKey) ownKey() string { return k.Key }

// RunRef lets an agent record a tool call as a step of an authgate run, so
// its session shows in the run's timeline like any workflow: the call is
// gated as the run's step (a blocked run answers with its reconnect link),
// its result is the step's checkpoint, and a call already completed in the
// run answers with that checkpoint instead of running again.
type RunRef struct {
	RunID string `json:"run_id,omitempty" jsonschema:"optional: record this call as a step of this authgate run (run_…)"`
}

func (r RunRef) runID() string { return r.RunID }

// runArgs is what every connector tool accepts.
type runArgs interface{ runID() string }

// add registers one tool whose handler runs gated.
func add[In any](s *server, ms *mcp.Server, d toolDef, run func(ctx context.Context, c *conn, in In) (any, error)) {
	mcp.AddTool(ms, d.tool(), func(ctx context.Context, req *mcp.CallToolRequest, in In) (*mcp.CallToolResult, any, error) {
		res, err := s.call(ctx, req, &d, in, func(c *conn) (any, error) { return run(ctx, c, in) })
		return res, nil, err
	})
}

// call gates one tool call, runs it, and turns what went wrong into the
// answer the agent needs.
func (s *server) call(ctx context.Context, req *mcp.CallToolRequest, d *toolDef, in any, run func(c *conn) (any, error)) (*mcp.CallToolResult, error) {
	if d.provider == "" {
		out, err := run(nil)
		return s.answer(ctx, req, d, "", out, err)
	}
	p, err := s.provider(ctx, d.provider)
	if err != nil {
		return s.answer(ctx, req, d, "", nil, err)
	}
	cred, ok, err := s.credential(ctx, d.provider)
	if err != nil {
		return nil, err
	}
	if !ok {
		return s.connectResult(ctx, req, &needConnect{provider: d.provider, actions: d.actions, why: "no " + d.provider + " account is connected"})
	}
	// The gate: a token for exactly these actions, through the refresher.
	if _, err := s.cfg.Client.Token(ctx, cred.ID, authgate.TokenRequest{Actions: d.actions}); err != nil {
		return s.answer(ctx, req, d, cred.ID, nil, err)
	}
	c := &conn{ts: &gatedSource{ctx: ctx, c: s.cfg.Client, id: cred.ID, actions: d.actions}, apis: p.APIURLs, transport: s.cfg.Transport}
	exec := func() (*mcp.CallToolResult, error) {
		out, err := run(c)
		var pe *authgate.ProviderError
		if errors.As(err, &pe) && needsUser(s.classify(ctx, d, pe).Class) {
			// The provider refused a token authgate thought good (revoked
			// or narrowed out of band): report it, so that authgate
			// refreshes — learning the grant as it stands — or marks the
			// credential, and try once more (a refused call did nothing).
			// The token API then names exactly the scopes missing.
			c.ts.reject()
			out, err = run(c)
		}
		return s.answer(ctx, req, d, cred.ID, out, err)
	}
	own := ""
	if w, ok := in.(writeArgs); ok {
		own = w.ownKey()
	}
	key := idempotencyKey(s.cfg.Client.APIKey, s.cfg.UserID, d.name, in, own)
	if r, ok := in.(runArgs); ok && r.runID() != "" {
		return s.asRunStep(ctx, authgate.RunID(r.runID()), d, cred, key, exec)
	}
	if !d.write {
		return exec()
	}
	res, replayed, err := s.cfg.Writes.Do(ctx, key, exec)
	if replayed {
		s.cfg.Logger.Info("write answered from its first run", "tool", d.name, "idempotency_key", key[:16])
	}
	return res, err
}

// asRunStep runs a tool call as a step of run id: the run must bind this
// very credential for the tool's provider (runs name credentials by id),
// the step is gated (a blocked run answers with its reconnect link), and
// the result is recorded once as the step's checkpoint; a step the run has
// already completed answers with its checkpoint and does not run again.
func (s *server) asRunStep(ctx context.Context, id authgate.RunID, d *toolDef, cred authgate.Credential, key string, exec func() (*mcp.CallToolResult, error)) (*mcp.CallToolResult, error) {
	run, err := s.cfg.Client.Run(ctx, id)
	if err != nil {
		return refusalOf(err), nil
	}
	bound := false
	for _, c := range run.Bindings {
		bound = bound || c == cred.ID
	}
	if !bound {
		return refusal(authgate.Errorf(authgate.ClassWrongPrincipal, "run %s does not bind this user's %s connection (%s); tools act for a run only with the credentials it names", id, d.provider, cred.ID)), nil
	}
	stepKey := d.name + "-" + key[:12]
	gate, err := s.cfg.Client.GateStep(ctx, id, authgate.StepGateRequest{Key: stepKey, Actions: d.actions, IdempotencyKey: key})
	if err != nil {
		return refusalOf(err), nil
	}
	if gate.Completed {
		s.cfg.Logger.Info("tool call answered from its run checkpoint", "tool", d.name, "run_id", string(id), "step", stepKey)
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: string(gate.Step.Output)}}, StructuredContent: gate.Step.Output}, nil
	}
	res, err := exec()
	if err != nil || res == nil || res.IsError {
		return res, err
	}
	out := json.RawMessage(`{}`)
	if res.StructuredContent != nil {
		if b, merr := json.Marshal(res.StructuredContent); merr == nil {
			out = b
		}
	}
	if _, err := s.cfg.Client.CompleteStep(ctx, id, stepKey, authgate.StepCompleteRequest{IdempotencyKey: key, Output: out}); err != nil {
		s.cfg.Logger.Warn("record the tool call's checkpoint", "tool", d.name, "run_id", string(id), "error", err.Error())
	}
	return res, nil
}

// refusalOf answers an authgate error as a tool error (the agent reads the
// class, the detail and any reconnect link); other errors say what failed.
func refusalOf(err error) *mcp.CallToolResult {
	var ae *authgate.Error
	if errors.As(err, &ae) {
		return refusal(ae)
	}
	return refusal(authgate.Errorf(authgate.ClassTransient, "authgate could not be asked: %s", err.Error()))
}

// answer turns a tool's outcome into its MCP answer.
func (s *server) answer(ctx context.Context, req *mcp.CallToolRequest, d *toolDef, cred authgate.CredentialID, out any, err error) (*mcp.CallToolResult, error) {
	if err == nil {
		return success(out)
	}
	var pe *authgate.ProviderError
	if errors.As(err, &pe) {
		res, n := s.providerFailure(ctx, d, pe)
		if n == nil {
			return res, nil
		}
		n.credentialID = cred
		return s.connectResult(ctx, req, n)
	}
	if n := asNeedConnect(err, d, cred); n != nil {
		return s.connectResult(ctx, req, n)
	}
	var ae *authgate.Error
	if errors.As(err, &ae) {
		return refusal(ae), nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return nil, err
	}
	s.cfg.Logger.Warn("tool failed", "tool", d.name, "error", err.Error())
	return &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: fmt.Sprintf("%s failed: %v", d.name, err)}}}, nil
}

// Tool arguments. Field names are the schema's; jsonschema tags describe.
type (
	DriveListFilesIn struct {
		Query     string `json:"query,omitempty" jsonschema:"Drive search query (the q parameter), e.g. name contains 'plan'"`
		Folder    string `json:"folder,omitempty" jsonschema:"only files in this folder id"`
		PageSize  int64  `json:"page_size,omitempty" jsonschema:"at most this many files (default 100)"`
		PageToken string `json:"page_token,omitempty" jsonschema:"continue from a previous answer's next_page_token"`
		RunRef
	}
	DocsCreateIn struct {
		Title string `json:"title" jsonschema:"the document's title"`
		Text  string `json:"text,omitempty" jsonschema:"optional text to start the document with"`
		IdempotencyKey
		RunRef
	}
	DocsReadIn struct {
		DocumentID string `json:"document_id" jsonschema:"the Google Doc's id"`
		RunRef
	}
	DocsAppendIn struct {
		DocumentID string `json:"document_id" jsonschema:"the Google Doc's id"`
		Text       string `json:"text" jsonschema:"text to add at the end"`
		IdempotencyKey
		RunRef
	}
	NotionSearchIn struct {
		Query    string `json:"query,omitempty" jsonschema:"words to search titles for (empty: everything shared with the integration)"`
		Filter   string `json:"filter,omitempty" jsonschema:"page or data_source to search only those"`
		PageSize int    `json:"page_size,omitempty" jsonschema:"at most this many results"`
		RunRef
	}
	NotionQueryDatabaseIn struct {
		DatabaseID string         `json:"database_id" jsonschema:"the database's id"`
		Filter     map[string]any `json:"filter,omitempty" jsonschema:"a Notion filter object"`
		PageSize   int            `json:"page_size,omitempty" jsonschema:"at most this many rows"`
		RunRef
	}
	NotionCreatePageIn struct {
		ParentID   string `json:"parent_id" jsonschema:"the parent page's or database's id"`
		ParentKind string `json:"parent_kind,omitempty" jsonschema:"page (default), database or data_source"`
		Title      string `json:"title" jsonschema:"the page's title"`
		Text       string `json:"text,omitempty" jsonschema:"optional paragraph of body text"`
		IdempotencyKey
		RunRef
	}
	SlackListChannelsIn struct {
		Limit  int    `json:"limit,omitempty" jsonschema:"at most this many channels"`
		Cursor string `json:"cursor,omitempty" jsonschema:"continue from a previous answer's next_cursor"`
		RunRef
	}
	SlackPostMessageIn struct {
		Channel string `json:"channel" jsonschema:"channel id (C…) or name"`
		Text    string `json:"text" jsonschema:"the message"`
		IdempotencyKey
		RunRef
	}
	ConnectionsIn struct {
		Provider string `json:"provider,omitempty" jsonschema:"only this provider's connections"`
	}
	ConnectIn struct {
		Provider string   `json:"provider" jsonschema:"google, notion or slack"`
		Actions  []string `json:"actions,omitempty" jsonschema:"actions to grant (default: every action the tools of this provider need)"`
	}
)

// tools are the connector tools, in the order tools/list shows them.
var tools = []toolDef{
	{name: "drive_list_files", title: "List Drive files", description: "Lists files in the user's Google Drive (name, id, MIME type).", provider: "google", actions: []string{"drive.files.list"}},
	{name: "docs_create", title: "Create a Google Doc", description: "Creates a Google Doc (checked to be a Google Doc, not a plain file) with a title and optional text; answers its id and link.", provider: "google", actions: []string{"docs.documents.create"}, write: true},
	{name: "docs_read", title: "Read a Google Doc", description: "Reads a Google Doc's title and text.", provider: "google", actions: []string{"docs.documents.get"}},
	{name: "docs_append", title: "Append to a Google Doc", description: "Adds text at the end of a Google Doc.", provider: "google", actions: []string{"docs.documents.update"}, write: true},
	{name: "notion_search", title: "Search Notion", description: "Searches the pages and data sources shared with the Notion integration.", provider: "notion", actions: []string{"notion.read"}},
	{name: "notion_query_database", title: "Query a Notion database", description: "Lists rows of a Notion database (its first data source), optionally filtered.", provider: "notion", actions: []string{"notion.read"}},
	{name: "notion_create_page", title: "Create a Notion page", description: "Creates a Notion page under a page (or a row in a database) with a title and optional text.", provider: "notion", actions: []string{"notion.insert"}, write: true},
	{name: "slack_list_channels", title: "List Slack channels", description: "Lists the Slack workspace's public channels.", provider: "slack", actions: []string{"slack.channels.list"}},
	{name: "slack_post_message", title: "Post to Slack", description: "Posts a message to a Slack channel.", provider: "slack", actions: []string{"slack.chat.post"}, write: true},
}

// ToolNames lists every tool the server offers.
func ToolNames() []string {
	out := []string{}
	for _, d := range tools {
		out = append(out, d.name)
	}
	return append(out, "authgate_connections", "authgate_connect")
}

func def(name string) toolDef {
	for _, d := range tools {
		if d.name == name {
			return d
		}
	}
	panic("mcpserver: no tool " + name)
}

// docLink is where a person opens a Google Doc.
func docLink(id string) string { return "https://docs.google.com/document/d/" + id + "/edit" }

func (s *server) register(ms *mcp.Server) {
	add(s, ms, def("drive_list_files"), func(ctx context.Context, c *conn, in DriveListFilesIn) (any, error) {
		d, err := gdrive.New(ctx, c.ts, gdrive.Options{Endpoint: c.apis["drive"], Transport: c.transport})
		if err != nil {
			return nil, err
		}
		l, err := d.List(ctx, gdrive.ListParams{Query: in.Query, Folder: in.Folder, PageSize: in.PageSize, PageToken: in.PageToken, Fields: "nextPageToken, files(id, name, mimeType, modifiedTime)"})
		if err != nil {
			return nil, err
		}
		files := []map[string]string{}
		for _, f := range l.Files {
			files = append(files, map[string]string{"id": f.Id, "name": f.Name, "mime_type": f.MimeType, "modified_time": f.ModifiedTime})
		}
		return map[string]any{"files": files, "next_page_token": l.NextPageToken}, nil
	})
	add(s, ms, def("docs_create"), func(ctx context.Context, c *conn, in DocsCreateIn) (any, error) {
		d, err := gdrive.New(ctx, c.ts, gdrive.Options{Endpoint: c.apis["drive"], Transport: c.transport})
		if err != nil {
			return nil, err
		}
		f, err := d.CreateGoogleDoc(ctx, in.Title, in.Text)
		if err != nil {
			return nil, err
		}
		return map[string]string{"id": f.Id, "title": f.Name, "mime_type": f.MimeType, "link": docLink(f.Id)}, nil
	})
	add(s, ms, def("docs_read"), func(ctx context.Context, c *conn, in DocsReadIn) (any, error) {
		g, err := gdocs.New(ctx, c.ts, gdocs.Options{Endpoint: c.apis["docs"], DriveEndpoint: c.apis["drive"], Transport: c.transport})
		if err != nil {
			return nil, err
		}
		doc, err := g.Get(ctx, in.DocumentID)
		if err != nil {
			return nil, err
		}
		return map[string]string{"id": doc.DocumentId, "title": doc.Title, "text": gdocs.Text(doc), "link": docLink(doc.DocumentId)}, nil
	})
	add(s, ms, def("docs_append"), func(ctx context.Context, c *conn, in DocsAppendIn) (any, error) {
		g, err := gdocs.New(ctx, c.ts, gdocs.Options{Endpoint: c.apis["docs"], DriveEndpoint: c.apis["drive"], Transport: c.transport})
		if err != nil {
			return nil, err
		}
		if err := g.AppendText(ctx, in.DocumentID, in.Text); err != nil {
			return nil, err
		}
		return map[string]any{"id": in.DocumentID, "appended": len(in.Text), "link": docLink(in.DocumentID)}, nil
	})
	add(s, ms, def("notion_search"), func(ctx context.Context, c *conn, in NotionSearchIn) (any, error) {
		l, err := notion.New(c.ts, notion.Options{BaseURL: c.apis["notion"], Transport: c.transport}).Search(ctx, notion.SearchParams{Query: in.Query, Filter: in.Filter, PageSize: in.PageSize})
		if err != nil {
			return nil, err
		}
		return l, nil
	})
	add(s, ms, def("notion_query_database"), func(ctx context.Context, c *conn, in NotionQueryDatabaseIn) (any, error) {
		n := notion.New(c.ts, notion.Options{BaseURL: c.apis["notion"], Transport: c.transport})
		db, err := n.Database(ctx, in.DatabaseID)
		if err != nil {
			return nil, err
		}
		ds := notion.DataSourceIDs(db)
		if len(ds) == 0 {
			return nil, authgate.Errorf(authgate.ClassInvalidRequest, "database %s has no data source", in.DatabaseID)
		}
		body := map[string]any{}
		if in.Filter != nil {
			body["filter"] = in.Filter
		}
		if in.PageSize > 0 {
			body["page_size"] = in.PageSize
		}
		return n.Query(ctx, ds[0], body)
	})
	add(s, ms, def("notion_create_page"), func(ctx context.Context, c *conn, in NotionCreatePageIn) (any, error) {
		kind := notion.ParentKind(in.ParentKind)
		if kind == "" {
			kind = notion.ParentPage
		}
		var children []notion.Object
		if in.Text != "" {
			children = append(children, notion.Paragraph(in.Text))
		}
		props := notion.Title(in.Title)
		if kind != notion.ParentPage {
			// A row's title property is its data source's title column;
			// Notion accepts "title" for the default name.
			props = map[string]any{"Name": props["title"]}
		}
		o, err := notion.New(c.ts, notion.Options{BaseURL: c.apis["notion"], Transport: c.transport}).CreatePage(ctx, notion.Parent{Kind: kind, ID: in.ParentID}, props, children)
		if err != nil {
			return nil, err
		}
		url, _ := o["url"].(string)
		return map[string]string{"id": o.ID(), "url": url}, nil
	})
	add(s, ms, def("slack_list_channels"), func(ctx context.Context, c *conn, in SlackListChannelsIn) (any, error) {
		l, err := slack.New(c.ts, slack.Options{BaseURL: c.apis["slack"], Transport: c.transport}).ConversationsList(ctx, slack.ListParams{Limit: in.Limit, Cursor: in.Cursor})
		if err != nil {
			return nil, err
		}
		return map[string]any{"channels": l.Channels, "next_cursor": l.ResponseMetadata.NextCursor}, nil
	})
	add(s, ms, def("slack_post_message"), func(ctx context.Context, c *conn, in SlackPostMessageIn) (any, error) {
		m, err := slack.New(c.ts, slack.Options{BaseURL: c.apis["slack"], Transport: c.transport}).PostMessage(ctx, in.Channel, in.Text, nil)
		if err != nil {
			return nil, err
		}
		return map[string]string{"channel": m.Channel, "ts": m.TS}, nil
	})
	add(s, ms, toolDef{name: "authgate_connections", title: "The user's connections",
		description: "Lists the user's connected accounts: each one's credential status and connector state (authorized, reauth_required or revoked; verified or not), and which tools it can run now."},
		func(ctx context.Context, _ *conn, in ConnectionsIn) (any, error) {
			return s.connections(ctx, in.Provider)
		})
	add(s, ms, toolDef{name: "authgate_connect", title: "Get a connect link",
		description: "Returns a link for the user to connect (or reconnect) a provider account granting the given actions; the user opens it in a browser."},
		func(ctx context.Context, _ *conn, in ConnectIn) (any, error) { return s.connectLink(ctx, in) })
}

// connections is authgate_connections: only this user's credentials.
func (s *server) connections(ctx context.Context, only string) (any, error) {
	type conn struct {
		Provider      string                    `json:"provider"`
		CredentialID  authgate.CredentialID     `json:"credential_id"`
		Account       string                    `json:"account,omitempty"`
		Workspace     string                    `json:"workspace,omitempty"`
		Status        authgate.CredentialStatus `json:"status"`
		StatusReason  authgate.StatusReason     `json:"status_reason,omitempty"`
		Connector     authgate.ConnectorState   `json:"connector"`
		GrantedScopes []string                  `json:"granted_scopes"`
		Tools         []string                  `json:"tools"`
		Actions       []string                  `json:"actions"`
	}
	out := []conn{}
	f := authgate.CredentialFilter{UserID: s.cfg.UserID, Provider: only}
	for {
		page, err := s.cfg.Client.Credentials(ctx, f)
		if err != nil {
			return nil, err
		}
		for _, c := range page.Credentials {
			if c.UserID != s.cfg.UserID {
				continue
			}
			x := conn{Provider: c.Provider, CredentialID: c.ID, Account: c.Account.Email, Workspace: c.WorkspaceID, Status: c.Status, StatusReason: c.StatusReason,
				Connector: c.Connector, GrantedScopes: c.GrantedScopes, Tools: []string{}, Actions: []string{}}
			if x.Account == "" {
				x.Account = c.Account.Subject
			}
			if p, err := s.provider(ctx, c.Provider); err == nil && c.Status == authgate.CredentialStatusActive {
				for _, a := range p.Actions {
					if p.Allows(c.GrantedScopes, a) {
						x.Actions = append(x.Actions, a)
					}
				}
				for _, d := range tools {
					if d.provider == c.Provider && p.Allows(c.GrantedScopes, d.actions...) {
						x.Tools = append(x.Tools, d.name)
					}
				}
			}
			out = append(out, x)
		}
		if page.NextAfter == "" {
			break
		}
		f.After = page.NextAfter
	}
	return map[string]any{"user_id": s.cfg.UserID, "connections": out}, nil
}

// connectLink is authgate_connect.
func (s *server) connectLink(ctx context.Context, in ConnectIn) (any, error) {
	if _, err := s.provider(ctx, in.Provider); err != nil {
		return nil, err
	}
	actions := in.Actions
	if len(actions) == 0 {
		for _, d := range tools {
			if d.provider == in.Provider {
				actions = append(actions, d.actions...)
			}
		}
		slices.Sort(actions)
		actions = slices.Compact(actions)
	}
	req := authgate.ConnectSessionRequest{UserID: s.cfg.UserID, Provider: in.Provider, Actions: actions}
	if c, ok, err := s.credential(ctx, in.Provider); err != nil {
		return nil, err
	} else if ok {
		req.CredentialID = c.ID
	}
	cs, err := s.cfg.Client.CreateConnectSession(ctx, req)
	if err != nil {
		return nil, err
	}
	return map[string]any{"connect_url": cs.ConnectURL, "connect_session_id": cs.ID, "provider": cs.Provider, "scopes": cs.Scopes, "expires_at": cs.ExpiresAt,
		"agent_hint": fmt.Sprintf("Ask the user to open %s to connect %s.", cs.ConnectURL, in.Provider)}, nil
}
