package mcpserver

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/internal/clock"
)

// UserHeader names the end user when the user_id query parameter does not.
const UserHeader = "X-Authgate-User"

// sessionHeader is the streamable-HTTP transport's session id header.
const sessionHeader = "Mcp-Session-Id"

// Caller is who an API key is, as the MCP endpoint needs it.
type Caller struct {
	// Key names the key stably (tenant and key id); sessions and their
	// caps are per key.
	Key string
	// User is the end user a user key is bound to ("" for other keys).
	User string
}

// HTTPConfig is the streamable-HTTP endpoint serve mounts at /mcp.
type HTTPConfig struct {
	// Authenticate resolves an Authorization header to its caller; an error
	// refuses the request with 401.
	Authenticate func(ctx context.Context, authorization string) (Caller, error)
	// API is authgate's own HTTP API: the tools call it in process with
	// the caller's key, so they see exactly what that key sees.
	API http.Handler
	// PublicURL, when set, is this server's public address: the 401's
	// WWW-Authenticate names the protected-resource metadata under it.
	PublicURL func() string
	// IdleTimeout closes a session that has had no request for this long
	// (default DefaultIdleTimeout).
	IdleTimeout time.Duration
	// MaxSessionsPerKey caps the open sessions of one API key (default
	// DefaultMaxSessionsPerKey); at the cap, a new session closes the key's
	// longest-idle one.
	MaxSessionsPerKey int
	// Clock decides idleness (default the wall clock).
	Clock clock.Clock
	// Transport, PollInterval, Writes and Logger are as in Config.
	Transport    http.RoundTripper
	PollInterval time.Duration
	Writes       *Writes
	Changes      *Changes
	Logger       *slog.Logger
}

// Session defaults: an agent that pauses for half an hour reconnects (MCP
// clients do so by themselves on a 404 for their session); a hundred open
// sessions is far more than one agent configuration opens.
const (
	DefaultIdleTimeout       = 30 * time.Minute
	DefaultMaxSessionsPerKey = 100
)

// HTTPHandler serves MCP over streamable HTTP: the tenant API key as a
// Bearer token, the end user from ?user_id= or the X-Authgate-User header
// (a user key's own user when it names none; another is refused). A session
// stays bound to the key and user that opened it (the SDK refuses another
// principal on its session id). Sessions close when idle for IdleTimeout
// (Sweep, run by Run) and when their key opens one past its cap.
type HTTPHandler struct {
	cfg    HTTPConfig
	authed http.Handler

	mu       sync.Mutex
	servers  map[string]*mcp.Server // per (key, user): what getServer hands the SDK
	sessions map[string]*session    // open sessions by id
	perKey   map[string]int
	// opening counts, per key, the session-opening requests makeRoom let
	// through that have not finished: a slot each, so that a burst of
	// concurrent opens cannot all pass the cap before any is registered.
	opening map[string]int
}

// session is an open MCP session as the handler tracks it.
type session struct {
	id     string
	caller string // the SDK's per-session principal: key and user
	key    string
	last   time.Time // the last request's start or end
	active int       // requests in progress
}

// closeSession marks a request the handler makes to the SDK itself to end
// a session; only code in this process can put it in a context.
type closeSession struct{}

// Handler returns the /mcp handler; call Run to close idle sessions.
func Handler(hc HTTPConfig) *HTTPHandler {
	if hc.Writes == nil {
		hc.Writes = NewWrites(time.Hour)
	}
	hc.Logger = cmp.Or(hc.Logger, slog.New(slog.DiscardHandler))
	hc.IdleTimeout = cmp.Or(hc.IdleTimeout, DefaultIdleTimeout)
	hc.MaxSessionsPerKey = cmp.Or(hc.MaxSessionsPerKey, DefaultMaxSessionsPerKey)
	if hc.Clock == nil {
		hc.Clock = clock.Real{}
	}
	h := &HTTPHandler{cfg: hc, servers: map[string]*mcp.Server{}, sessions: map[string]*session{}, perKey: map[string]int{}, opening: map[string]int{}}
	sdk := mcp.NewStreamableHTTPHandler(h.getServer, &mcp.StreamableHTTPOptions{Logger: hc.Logger})
	verify := func(ctx context.Context, _ string, r *http.Request) (*auth.TokenInfo, error) {
		if ti, ok := ctx.Value(closeSession{}).(*auth.TokenInfo); ok {
			return ti, nil
		}
		if ti, ok := ctx.Value(tokenInfoKey{}).(*auth.TokenInfo); ok {
			return ti, nil // ServeHTTP authenticated this request already
		}
		return nil, auth.ErrInvalidToken
	}
	h.authed = auth.RequireBearerToken(verify, &auth.RequireBearerTokenOptions{AllowMissingExpiration: true})(sdk)
	return h
}

type tokenInfoKey struct{}

// maxServers bounds the per-(key, user) servers kept for callers that have
// no open session.
const maxServers = 1024

func (h *HTTPHandler) getServer(r *http.Request) *mcp.Server {
	ti := auth.TokenInfoFromContext(r.Context())
	if ti == nil {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if s, ok := h.servers[ti.UserID]; ok {
		return s
	}
	key, _ := ti.Extra["key"].(string)
	user, _ := ti.Extra["user"].(string)
	c := &authgate.Client{BaseURL: "http://authgate.internal", APIKey: key, HTTPClient: &http.Client{Transport: handlerTransport{h.cfg.API}}}
	s, err := New(Config{Client: c, UserID: user, Transport: h.cfg.Transport, PollInterval: h.cfg.PollInterval, Writes: h.cfg.Writes, Changes: h.cfg.Changes, Logger: h.cfg.Logger})
	if err != nil {
		return nil
	}
	if len(h.servers) >= maxServers {
		// Servers of (key, user) pairs that never opened a session.
		live := map[string]bool{}
		for _, o := range h.sessions {
			live[o.caller] = true
		}
		for k := range h.servers {
			if !live[k] {
				delete(h.servers, k)
			}
		}
	}
	h.servers[ti.UserID] = s
	return s
}

// ServeHTTP authenticates, binds the end user, keeps the per-key cap and
// tracks each session's last request for the idle timeout.
func (h *HTTPHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	authz := r.Header.Get("Authorization")
	caller, err := h.cfg.Authenticate(r.Context(), authz)
	if err != nil {
		h.unauthorized(w, authz != "")
		return
	}
	user := endUser(r)
	switch {
	case caller.User != "" && user == "":
		user = caller.User
	case caller.User != "" && user != caller.User:
		mcpProblem(w, http.StatusForbidden, authgate.ClassForbidden, fmt.Sprintf("this API key acts only for user %q; leave user_id out or name that user", caller.User))
		return
	case strings.TrimSpace(user) == "":
		mcpProblem(w, http.StatusBadRequest, authgate.ClassInvalidRequest, "name the end user: /mcp?user_id=… or the "+UserHeader+" header (or use a user API key, which names its own)")
		return
	}
	_, token, _ := strings.Cut(strings.TrimSpace(authz), " ")
	ti := &auth.TokenInfo{UserID: caller.Key + "\x00" + user, Extra: map[string]any{"key": strings.TrimSpace(token), "user": user}}
	r = r.WithContext(context.WithValue(r.Context(), tokenInfoKey{}, ti))

	id := r.Header.Get(sessionHeader)
	if id == "" {
		if r.Method == http.MethodPost {
			if !h.makeRoom(caller.Key) {
				w.Header().Set("Retry-After", "1")
				mcpProblem(w, http.StatusTooManyRequests, authgate.ClassRateLimited, fmt.Sprintf("this API key has %d MCP sessions in use; close one (DELETE with its Mcp-Session-Id) or wait", h.cfg.MaxSessionsPerKey))
				return
			}
			defer h.opened(caller.Key)
		}
		rec := &newSession{ResponseWriter: w, h: h, caller: ti.UserID, key: caller.Key}
		h.authed.ServeHTTP(rec, r)
		return
	}
	if h.begin(id, ti.UserID) {
		defer h.end(id)
	}
	rw := &deleted{ResponseWriter: w}
	h.authed.ServeHTTP(rw, r)
	if r.Method == http.MethodDelete && rw.status == http.StatusNoContent {
		h.forget(id)
	}
}

// unauthorized answers 401 with a Bearer challenge (RFC 6750) that points
// at the protected-resource metadata (RFC 9728), as the MCP authorization
// spec asks. The metadata names no authorization server: authgate issues
// no OAuth tokens for /mcp, so a client sends a configured API key.
func (h *HTTPHandler) unauthorized(w http.ResponseWriter, sentKey bool) {
	challenge := `Bearer realm="authgate"`
	if sentKey {
		challenge += `, error="invalid_token"`
	}
	if h.cfg.PublicURL != nil {
		if pub := strings.TrimRight(h.cfg.PublicURL(), "/"); pub != "" {
			challenge += fmt.Sprintf(", resource_metadata=%q", pub+ResourceMetadataPath)
		}
	}
	w.Header().Set("WWW-Authenticate", challenge)
	mcpProblem(w, http.StatusUnauthorized, authgate.ClassUnauthorized, "send an authgate API key as 'Authorization: Bearer ag_…' (a user key for an agent's configuration)")
}

// mcpProblem writes an RFC 9457 problem, as the rest of the API does.
func mcpProblem(w http.ResponseWriter, status int, class authgate.Class, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"type": class, "title": http.StatusText(status), "status": status, "detail": detail, "instance": "/mcp"})
}

// ResourceMetadataPath is where the protected-resource metadata of /mcp is
// served (RFC 9728 §3.1: the well-known prefix, then the resource's path).
const ResourceMetadataPath = "/.well-known/oauth-protected-resource/mcp"

// ResourceMetadata serves RFC 9728 metadata for /mcp: the resource and how
// to present a token (the Authorization header). No authorization_servers:
// there is no OAuth server to discover; the token is an authgate API key.
func ResourceMetadata(publicURL func() string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pub := strings.TrimRight(publicURL(), "/")
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Access-Control-Allow-Origin", "*")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"resource":                 pub + "/mcp",
			"resource_name":            "authgate connectors (MCP)",
			"bearer_methods_supported": []string{"header"},
			"resource_documentation":   pub + "/v1/openapi.json",
		})
	})
}

// makeRoom keeps key under its cap before it opens a session, and holds a
// slot for it until opened is called: at the cap (open sessions and opens
// in progress), the key's longest-idle session is closed; if every one is
// busy, false. The check, the choice of the session to close and the slot
// are taken under one lock, so concurrent opens cannot overshoot the cap
// nor two of them count the closing of one session.
func (h *HTTPHandler) makeRoom(key string) bool {
	h.mu.Lock()
	if h.perKey[key]+h.opening[key] < h.cfg.MaxSessionsPerKey {
		h.opening[key]++
		h.mu.Unlock()
		return true
	}
	var oldest *session
	for _, s := range h.sessions {
		if s.key == key && s.active == 0 && (oldest == nil || s.last.Before(oldest.last)) {
			oldest = s
		}
	}
	if oldest == nil {
		h.mu.Unlock()
		return false
	}
	h.forgetLocked(oldest.id)
	h.opening[key]++
	h.mu.Unlock()
	h.cfg.Logger.Info("mcp session closed: key at its session cap", slog.String("session", oldest.id), slog.Int("cap", h.cfg.MaxSessionsPerKey))
	h.close(oldest)
	return true
}

// opened releases the slot makeRoom held for a session-opening request
// (the session, if one was opened, is counted in perKey by now).
func (h *HTTPHandler) opened(key string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.opening[key]--; h.opening[key] <= 0 {
		delete(h.opening, key)
	}
}

// Sweep closes every session idle for IdleTimeout or longer, by the
// configured clock, and returns how many it closed.
func (h *HTTPHandler) Sweep() int {
	now := h.cfg.Clock.Now()
	var idle []*session
	h.mu.Lock()
	for _, s := range h.sessions {
		if s.active == 0 && now.Sub(s.last) >= h.cfg.IdleTimeout {
			idle = append(idle, s)
		}
	}
	h.mu.Unlock()
	for _, s := range idle {
		h.close(s)
	}
	if len(idle) > 0 {
		h.cfg.Logger.Info("mcp sessions closed: idle", slog.Int("closed", len(idle)), slog.Duration("idle_timeout", h.cfg.IdleTimeout))
	}
	return len(idle)
}

// Run sweeps idle sessions every tick until ctx ends, then closes them all.
// The ticker only sets the pace; Sweep decides by the configured clock.
func (h *HTTPHandler) Run(ctx context.Context, tick time.Duration) {
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			h.CloseAll()
			return
		case <-t.C:
			h.Sweep()
		}
	}
}

// CloseAll closes every open session.
func (h *HTTPHandler) CloseAll() {
	h.mu.Lock()
	all := make([]*session, 0, len(h.sessions))
	for _, s := range h.sessions {
		all = append(all, s)
	}
	h.mu.Unlock()
	for _, s := range all {
		h.close(s)
	}
}

// Open reports the number of open sessions.
func (h *HTTPHandler) Open() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.sessions)
}

// close ends a session through the SDK's own DELETE path (which closes the
// session and its goroutines) and forgets it.
func (h *HTTPHandler) close(s *session) {
	ctx := context.WithValue(context.Background(), closeSession{}, &auth.TokenInfo{UserID: s.caller})
	req := httptest.NewRequestWithContext(ctx, http.MethodDelete, "/mcp", nil)
	req.Header.Set("Authorization", "Bearer internal")
	req.Header.Set(sessionHeader, s.id)
	h.authed.ServeHTTP(httptest.NewRecorder(), req)
	h.forget(s.id)
}

// forget drops a session (and its server, when it was the last session of
// its key and user).
func (h *HTTPHandler) forget(id string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.forgetLocked(id)
}

func (h *HTTPHandler) forgetLocked(id string) {
	s, ok := h.sessions[id]
	if !ok {
		return
	}
	delete(h.sessions, id)
	if h.perKey[s.key]--; h.perKey[s.key] <= 0 {
		delete(h.perKey, s.key)
	}
	for _, o := range h.sessions {
		if o.caller == s.caller {
			return
		}
	}
	delete(h.servers, s.caller)
}

// begin counts a request on session id as activity, and reports whether it
// did: only when caller (key and user) is the one that opened the session.
// Anyone else's request is refused by the SDK, and must not keep the
// session from its idle timeout nor shield it from its key's cap.
func (h *HTTPHandler) begin(id, caller string) bool {
	now := h.cfg.Clock.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	if s, ok := h.sessions[id]; ok && s.caller == caller {
		s.active++
		s.last = now
		return true
	}
	return false
}

func (h *HTTPHandler) end(id string) {
	now := h.cfg.Clock.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	if s, ok := h.sessions[id]; ok {
		s.active--
		s.last = now
	}
}

// newSession registers the session the SDK opens on this response (it
// names it in the Mcp-Session-Id response header).
type newSession struct {
	http.ResponseWriter
	h           *HTTPHandler
	caller, key string
	seen        bool
}

func (n *newSession) WriteHeader(code int) {
	if !n.seen {
		n.seen = true
		if id := n.Header().Get(sessionHeader); id != "" && code < 300 {
			now := n.h.cfg.Clock.Now()
			n.h.mu.Lock()
			if _, dup := n.h.sessions[id]; !dup {
				n.h.sessions[id] = &session{id: id, caller: n.caller, key: n.key, last: now}
				n.h.perKey[n.key]++
			}
			n.h.mu.Unlock()
		}
	}
	n.ResponseWriter.WriteHeader(code)
}

func (n *newSession) Write(b []byte) (int, error) {
	if !n.seen {
		n.WriteHeader(http.StatusOK)
	}
	return n.ResponseWriter.Write(b)
}

func (n *newSession) Unwrap() http.ResponseWriter { return n.ResponseWriter }

// Flush keeps server-sent events streaming through the wrapper.
func (n *newSession) Flush() {
	if f, ok := n.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// deleted records the status of a request on an existing session.
type deleted struct {
	http.ResponseWriter
	status int
}

func (d *deleted) WriteHeader(code int) {
	if d.status == 0 {
		d.status = code
	}
	d.ResponseWriter.WriteHeader(code)
}

func (d *deleted) Unwrap() http.ResponseWriter { return d.ResponseWriter }

func (d *deleted) Flush() {
	if f, ok := d.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func endUser(r *http.Request) string {
	if u := r.URL.Query().Get("user_id"); u != "" {
		return u
	}
	return r.Header.Get(UserHeader)
}

// handlerTransport answers the tools' API calls from the API handler in
// process: no socket, no dependence on the public URL being reachable from
// the server itself.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if t.h == nil {
		return nil, errors.New("mcpserver: no API handler")
	}
	r = r.Clone(r.Context())
	r.RemoteAddr = "127.0.0.1:0"
	r.RequestURI = r.URL.RequestURI()
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, r)
	return rec.Result(), nil
}
