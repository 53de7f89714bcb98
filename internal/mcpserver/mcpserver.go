// Package mcpserver offers the connectors (Drive, Docs, Notion, Slack) to
// agents as Model Context Protocol tools, on the official Go SDK
// (github.com/modelcontextprotocol/go-sdk), for one end user of one tenant.
//
// Every tool call is gated: its token comes from authgate's token API (the
// refresher behind it) asked for the tool's declared actions. When the user
// must (re)connect — no credential, reauth_required, revoked, a missing
// scope — the call answers with a connect link for exactly what is missing:
// as MCP's URL-elicitation-required error to a client that declared URL
// elicitation (followed by notifications/elicitation/complete once the
// callback has stored the credential, so the client retries by itself), and
// as a tool result with isError and the agent hint otherwise. Provider
// failures are tool results carrying the classifier's class and fix, never
// protocol errors.
//
// It talks to authgate only through the public SDK client (authgate.Client),
// whether it runs in `authgate mcp` (stdio, another process) or mounted by
// serve at /mcp, so both see the same API a tenant sees. It must never put a
// token, refresh token or API key in a tool result, an error or a log line:
// connect links are the only URLs it hands out, and they carry no token.
package mcpserver

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/authgate/authgate"
)

// Version is what the server reports as its implementation version.
const Version = "0.1.0"

// Config is one MCP server: one tenant (its API client) and one end user.
type Config struct {
	// Client calls authgate as the tenant.
	Client *authgate.Client
	// UserID is the end user whose connections the tools use.
	UserID string
	// Transport carries connector calls to the providers (default
	// http.DefaultTransport).
	Transport http.RoundTripper
	// PollInterval is how often a pending connect link is checked for
	// completion when there is no Changes feed (default 500 ms).
	PollInterval time.Duration
	// Changes, when set, wakes the watchers of pending connect links on
	// every credential change in the database instead of a timer.
	Changes *Changes
	// Writes remembers the writes done, shared by every session of a
	// process so that a retried write is answered, not run again (nil: a
	// record of this server's own).
	Writes *Writes
	Logger *slog.Logger
}

// WithDefaults fills the zero fields.
func (c Config) WithDefaults() Config {
	if c.Transport == nil {
		c.Transport = http.DefaultTransport
	}
	if c.PollInterval <= 0 {
		c.PollInterval = 500 * time.Millisecond
	}
	if c.Writes == nil {
		c.Writes = NewWrites(time.Hour)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate reports a config that cannot serve.
func (c Config) Validate() error {
	if c.Client == nil {
		return errors.New("mcpserver: an authgate client is required")
	}
	if strings.TrimSpace(c.UserID) == "" {
		return errors.New("mcpserver: a user id is required")
	}
	return nil
}

// server holds what the tools share.
type server struct {
	cfg Config

	mu        sync.Mutex
	providers map[string]authgate.Provider
	// watching are the connect sessions whose completion is awaited.
	watching map[string]bool
}

// New returns the MCP server for cfg's tenant and user.
func New(cfg Config) (*mcp.Server, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &server{cfg: cfg, watching: map[string]bool{}}
	ms := mcp.NewServer(&mcp.Implementation{Name: "authgate", Title: "authgate connectors", Version: Version}, &mcp.ServerOptions{
		Instructions: "Tools for the user's Google Drive and Docs, Notion and Slack, through authgate. When a tool needs the user to connect an account, it answers with a link for the user to open; call the tool again once they have.",
		Logger:       cfg.Logger,
	})
	s.register(ms)
	return ms, nil
}

// provider returns the provider's catalog entry (its actions and API URLs).
func (s *server) provider(ctx context.Context, name string) (authgate.Provider, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.providers == nil {
		list, err := s.cfg.Client.Providers(ctx)
		if err != nil {
			return authgate.Provider{}, fmt.Errorf("list providers: %w", err)
		}
		s.providers = map[string]authgate.Provider{}
		for _, p := range list {
			s.providers[p.Name] = p
		}
	}
	p, ok := s.providers[name]
	if !ok {
		return authgate.Provider{}, authgate.Errorf(authgate.ClassInvalidRequest, "provider %q is not configured on this authgate", name)
	}
	return p, nil
}

// credential returns the user's credential for provider that the tool
// should use: an active one holding the scopes if any, else the most
// recently changed (to reconnect it); ok is false when there is none.
func (s *server) credential(ctx context.Context, provider string) (authgate.Credential, bool, error) {
	var all []authgate.Credential
	f := authgate.CredentialFilter{UserID: s.cfg.UserID, Provider: provider}
	for {
		page, err := s.cfg.Client.Credentials(ctx, f)
		if err != nil {
			return authgate.Credential{}, false, fmt.Errorf("list credentials: %w", err)
		}
		all = append(all, page.Credentials...)
		if page.NextAfter == "" {
			break
		}
		f.After = page.NextAfter
	}
	// The API is tenant-scoped; the user filter is checked again here so
	// that no other user's credential can ever be handed to this session.
	all = slices.DeleteFunc(all, func(c authgate.Credential) bool { return c.UserID != s.cfg.UserID || c.Provider != provider })
	if len(all) == 0 {
		return authgate.Credential{}, false, nil
	}
	slices.SortStableFunc(all, func(a, b authgate.Credential) int {
		if (a.Status == authgate.CredentialStatusActive) != (b.Status == authgate.CredentialStatusActive) {
			if a.Status == authgate.CredentialStatusActive {
				return -1
			}
			return 1
		}
		return b.UpdatedAt.Compare(a.UpdatedAt)
	})
	return all[0], true, nil
}

// needConnect is a tool call that cannot run until the user connects.
type needConnect struct {
	provider     string
	actions      []string
	credentialID authgate.CredentialID
	// missingScopes, when known, are exactly what the link asks for.
	missingScopes []string
	why           string
}

func (n *needConnect) Error() string { return n.why }

// asNeedConnect turns a token or provider failure that only the user can
// fix into a needConnect (nil otherwise).
func asNeedConnect(err error, d *toolDef, cred authgate.CredentialID) *needConnect {
	var ae *authgate.Error
	if !errors.As(err, &ae) {
		return nil
	}
	switch ae.Class {
	case authgate.ClassReauthRequired, authgate.ClassInsufficientScope:
	default:
		if ae.Status != http.StatusNotFound || ae.CredentialID != "" && ae.CredentialID != cred {
			return nil
		}
		// The credential was deleted between listing and use.
		cred = ""
	}
	n := &needConnect{provider: d.provider, actions: d.actions, credentialID: cred, why: ae.Detail}
	if ae.Class == authgate.ClassInsufficientScope {
		n.missingScopes = ae.MissingScopes
	}
	return n
}

// connectResult answers a call that needs the user: a URL elicitation to a
// client that declared it (and a watch that notifies when the link is
// completed), else a tool result with isError and the agent hint.
func (s *server) connectResult(ctx context.Context, req *mcp.CallToolRequest, n *needConnect) (*mcp.CallToolResult, error) {
	p, err := s.provider(ctx, n.provider)
	if err != nil {
		return nil, err
	}
	cr := authgate.ConnectSessionRequest{UserID: s.cfg.UserID, Provider: n.provider, CredentialID: n.credentialID, Actions: n.actions}
	if len(n.missingScopes) > 0 && n.credentialID != "" {
		// Incremental: ask for exactly the missing scopes (plus the
		// provider's identity scopes), for the same account. A reconnect
		// of the credential would ask again for all it holds; the
		// callback lands on the same credential either way (same user,
		// provider and account), and Google adds the grant to the ones
		// it has (include_granted_scopes).
		c, err := s.cfg.Client.Credential(ctx, n.credentialID)
		if err != nil {
			return nil, fmt.Errorf("read credential: %w", err)
		}
		cr.CredentialID, cr.Actions, cr.Scopes = "", nil, n.missingScopes
		cr.ExpectedAccount, cr.LoginHint = c.Account.Subject, c.Account.Email
	}
	cs, err := s.cfg.Client.CreateConnectSession(ctx, cr)
	if err != nil {
		return nil, fmt.Errorf("create connect link: %w", err)
	}
	name := p.DisplayName
	if name == "" {
		name = p.Name
	}
	verb := "connect"
	if n.credentialID != "" {
		verb = "reconnect"
	}
	what := "to let this tool " + strings.Join(n.actions, ", ")
	if len(n.missingScopes) > 0 {
		what = "to grant " + strings.Join(n.missingScopes, ", ")
	}
	msg := fmt.Sprintf("Please %s your %s account %s: open the link and approve.", verb, name, what)
	s.cfg.Logger.Info("tool call needs the user", slog.String("tool", req.Params.Name), slog.String("provider", n.provider),
		slog.String("connect_session", cs.ID), slog.String("credential_id", string(n.credentialID)), slog.Any("missing_scopes", n.missingScopes))
	if urlElicitation(req.Session) {
		s.watch(req.Session, cs)
		return nil, mcp.URLElicitationRequiredError([]*mcp.ElicitParams{{Mode: "url", Message: msg, URL: cs.ConnectURL, ElicitationID: cs.ID}})
	}
	hint := fmt.Sprintf("%s Ask the user to open %s and then call %s again.", msg, cs.ConnectURL, req.Params.Name)
	body := map[string]any{
		"error":              "needs_connect",
		"agent_hint":         hint,
		"connect_url":        cs.ConnectURL,
		"connect_session_id": cs.ID,
		"provider":           n.provider,
		"scopes":             cs.Scopes,
	}
	if n.credentialID != "" {
		body["credential_id"] = n.credentialID
	}
	return &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: hint}}, StructuredContent: body}, nil
}

// urlElicitation reports whether the client declared URL-mode elicitation.
func urlElicitation(ss *mcp.ServerSession) bool {
	if ss == nil {
		return false
	}
	ip := ss.InitializeParams()
	return ip != nil && ip.Capabilities != nil && ip.Capabilities.Elicitation != nil && ip.Capabilities.Elicitation.URL != nil
}

// watch waits for the connect session to end and, when it stored a
// credential, tells the client (notifications/elicitation/complete) so that
// it retries. It stops when the link expires or the MCP session ends.
func (s *server) watch(ss *mcp.ServerSession, cs authgate.ConnectSession) {
	s.mu.Lock()
	if s.watching[cs.ID] {
		s.mu.Unlock()
		return
	}
	s.watching[cs.ID] = true
	s.mu.Unlock()
	ctx, cancel := context.WithDeadline(context.Background(), cs.ExpiresAt.Add(time.Minute))
	go func() {
		<-func() <-chan struct{} {
			done := make(chan struct{})
			go func() { ss.Wait(); close(done) }()
			return done
		}()
		cancel()
	}()
	go func() {
		defer cancel()
		defer func() {
			s.mu.Lock()
			delete(s.watching, cs.ID)
			s.mu.Unlock()
		}()
		// The change feed wakes the watcher when the callback stores the
		// credential; the link's outcome is recorded just after that commit,
		// so a wake-up can read it still pending. A slow backstop tick
		// (four poll intervals) catches that case instead of waiting for a
		// credential change that will not come.
		every := s.cfg.PollInterval
		if s.cfg.Changes != nil {
			every *= 4
		}
		t := time.NewTicker(every)
		defer t.Stop()
		tick := t.C
		for {
			var changed <-chan struct{}
			if s.cfg.Changes != nil {
				changed = s.cfg.Changes.Next()
			}
			st, err := s.cfg.Client.ConnectSessionStatus(ctx, cs.ID)
			// The broker reports a link whose callback is still exchanging
			// the code as expired (used, no outcome yet): before the link's
			// expiry that is not final, so keep watching.
			final := err == nil && st.State != authgate.ConnectStatePending &&
				(st.State != authgate.ConnectStateExpired || !time.Now().Before(st.ExpiresAt))
			if final {
				if st.State == authgate.ConnectStateConnected || st.State == authgate.ConnectStatePartial {
					if err := ss.NotifyElicitationComplete(ctx, &mcp.ElicitationCompleteParams{ElicitationID: cs.ID}); err != nil {
						s.cfg.Logger.Warn("notify elicitation complete", slog.String("connect_session", cs.ID), slog.String("error", err.Error()))
					}
				}
				s.cfg.Logger.Info("connect link ended", slog.String("connect_session", cs.ID), slog.String("state", st.State))
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-tick:
			case <-changed:
			}
		}
	}()
}

// classify asks authgate's classifier about a provider answer.
func (s *server) classify(ctx context.Context, d *toolDef, pe *authgate.ProviderError) authgate.Classification {
	hdr := map[string]string{}
	if pe.HasRetryAfter {
		hdr["Retry-After"] = strconv.Itoa(int(pe.RetryAfter / time.Second))
	}
	if pe.BearerError != "" {
		v := fmt.Sprintf("Bearer error=%q", pe.BearerError)
		if pe.BearerScope != "" {
			v += fmt.Sprintf(", scope=%q", pe.BearerScope)
		}
		hdr["WWW-Authenticate"] = v
	}
	c, err := s.cfg.Client.Classify(ctx, authgate.ClassifyRequest{Provider: d.provider, Operation: string(authgate.ProviderOpAPI), Status: pe.Status, Headers: hdr, Body: string(pe.Body)})
	if err != nil {
		return authgate.Classification{Class: authgate.ClassTransient, Policy: "retry", Message: pe.Error()}
	}
	return c
}

// needsUser reports a class only the user can fix, by connecting again.
func needsUser(c authgate.Class) bool {
	return c == authgate.ClassReauthRequired || c == authgate.ClassInsufficientScope
}

// providerFailure is a provider answer classified by authgate: a tool
// error with the class and the fix, or a connect the user must make.
func (s *server) providerFailure(ctx context.Context, d *toolDef, pe *authgate.ProviderError) (*mcp.CallToolResult, *needConnect) {
	c := s.classify(ctx, d, pe)
	if needsUser(c.Class) {
		return nil, &needConnect{provider: d.provider, actions: d.actions, missingScopes: c.MissingScopes, why: c.Message}
	}
	body := map[string]any{"error": "provider_error", "class": c.Class, "policy": c.Policy, "fix": c.Message, "provider": d.provider, "status": pe.Status}
	if c.RetryAfter != nil {
		body["retry_after_seconds"] = *c.RetryAfter
	}
	if len(c.MissingScopes) > 0 {
		body["missing_scopes"] = c.MissingScopes
	}
	if pe.RequestID != "" {
		body["request_id"] = pe.RequestID
	}
	text := fmt.Sprintf("%s answered %d (class %s, policy %s). %s", d.provider, pe.Status, c.Class, c.Policy, c.Message)
	return &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: text}}, StructuredContent: body}, nil
}

// refusal is an *authgate.Error that is the caller's to fix (a bad
// argument, a wrong MIME type): a tool error with its class.
func refusal(ae *authgate.Error) *mcp.CallToolResult {
	body := map[string]any{"error": string(ae.Class), "class": ae.Class, "fix": ae.Detail}
	if ae.AgentHint != "" {
		body["agent_hint"] = ae.AgentHint
	}
	if ae.ReconnectURL != "" {
		body["reconnect_url"] = ae.ReconnectURL
	}
	text := fmt.Sprintf("%s: %s", ae.Class, ae.Detail)
	return &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: text}}, StructuredContent: body}
}

// success is a tool's answer: JSON text and the same as structured content.
func success(out any) (*mcp.CallToolResult, error) {
	b, err := json.Marshal(out)
	if err != nil {
		return nil, err
	}
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: string(b)}}, StructuredContent: json.RawMessage(b)}, nil
}

// idempotencyKey derives a write's key from the request: tenant key, user,
// tool and arguments (canonical JSON), or the caller's own key.
func idempotencyKey(apiKey, user, tool string, args any, own string) string {
	h := sha256.New()
	k := sha256.Sum256([]byte(apiKey))
	b, _ := json.Marshal(args)
	fmt.Fprintf(h, "%x\x00%s\x00%s\x00", k, user, tool)
	if own != "" {
		fmt.Fprintf(h, "own\x00%s", own)
	} else {
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))
}
