// Package notionsim emulates Notion's public-integration OAuth and the API
// endpoints authgate's connector uses, as recorded in
// shared/reference/providers.md §3: HTTP Basic client authentication at the
// token endpoint, the token response's bot/workspace/owner fields, refresh
// tokens that rotate, the required Notion-Version header (2022-06-28 with
// databases/{id}/query; 2025-09-03 and later with data sources), the error
// envelope {"object":"error",…}, 404 object_not_found for anything not
// shared with the integration even though the token is valid, capabilities
// (read/update/insert content, read users) acting as scopes, and an average
// rate limit of three requests per second per integration.
//
// Choices where the reference is silent (§9): access tokens carry no
// expires_in and do not expire; the token endpoint accepts JSON and form
// bodies; token-endpoint errors use Notion's envelope; refreshing retires the
// old access token with the old refresh token; the version header is checked
// before the token. Like all of the sandbox it must never import authgate's
// internal packages.
package notionsim

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/authgate/authgate/sandbox/fault"
	"github.com/authgate/authgate/sandbox/oauthcore"
)

// Provider is this emulator's name in the admin API.
const Provider = "notion"

// Capabilities are Notion's integration capabilities; the sandbox grants
// them like scopes, so drop_scope and partial grants apply to them.
const (
	CapReadContent   = "read_content"
	CapUpdateContent = "update_content"
	CapInsertContent = "insert_content"
	CapReadUserEmail = "read_user_with_email"
)

// AllCapabilities is what an install grants by default.
var AllCapabilities = []string{CapInsertContent, CapReadContent, CapReadUserEmail, CapUpdateContent}

// Default client credentials (any loopback redirect URI).
const (
	DefaultClientID     = "1f0d872b-594c-80e4-a3c4-0037c5a1b7e1"
	DefaultClientSecret = "secret_sandboxNotionClientSecret0123456789abcd"
	// DefaultWorkspace is the workspace a consent without one installs into.
	DefaultWorkspace = "Sandbox Workspace"
)

// Versions the emulator answers.
const (
	Version2022 = "2022-06-28"
	Version2025 = "2025-09-03"
	Version2026 = "2026-03-11"
)

// Options configures the emulator.
type Options struct {
	Clock  oauthcore.Clock
	Faults *fault.Registry
	Seed   uint64
	// RateLimit is the average requests per second per integration install
	// (default 3); Burst the bucket size (default 10). Negative disables it.
	RateLimit float64
	Burst     int
}

// Sim is the Notion emulator.
type Sim struct {
	core   *oauthcore.Server
	faults *fault.Registry
	clock  oauthcore.Clock
	rate   float64
	burst  int

	mu         sync.Mutex
	workspaces map[string]*workspace // by name
	users      map[string]*user      // by email
	usersByID  map[string]*user
	bots       map[string]*bot    // by bot id (the token's account)
	objects    map[string]*object // pages and databases, by id
	seq        uint64
}

type user struct{ ID, Name, Email string }

type workspace struct {
	ID, Name string
	Members  []string // user ids
	Roots    []string // top-level object ids
}

// bot is one install of a client into a workspace by a user.
type bot struct {
	ID, ClientID, WorkspaceID, Workspace, OwnerID string
	Shared                                        map[string]bool
	tokens                                        float64
	last                                          time.Time
}

// object is a page or a database (with its one data source).
type object struct {
	ID, Kind, Title  string // Kind: "page" or "database"
	WorkspaceID      string
	ParentType       string // "workspace", "page_id", "database_id"
	ParentID         string
	DataSourceID     string // databases
	Properties       map[string]any
	Children         []map[string]any // blocks
	Created, Updated time.Time
	CreatedBy        string
}

// New returns the emulator with its default client.
func New(o Options) *Sim {
	if o.RateLimit == 0 {
		o.RateLimit = 3
	}
	if o.Burst == 0 {
		o.Burst = 10
	}
	s := &Sim{faults: o.Faults, clock: o.Clock, rate: o.RateLimit, burst: o.Burst,
		workspaces: map[string]*workspace{}, users: map[string]*user{}, usersByID: map[string]*user{}, bots: map[string]*bot{}, objects: map[string]*object{}}
	s.core = oauthcore.New(oauthcore.Config{Provider: Provider, RotateRefresh: true, Clock: o.Clock, Seed: o.Seed,
		AccessPrefix: "ntn_", RefreshPrefix: "nrt_", CodePrefix: "", TokenBytes: 33})
	s.core.RegisterClient(oauthcore.Client{ID: DefaultClientID, Secret: DefaultClientSecret, Name: "authgate sandbox app", AnyLoopbackRedirect: true})
	return s
}

// Core is the authorization-server state.
func (s *Sim) Core() *oauthcore.Server { return s.core }

// Name is the provider name.
func (s *Sim) Name() string { return Provider }

func (s *Sim) now() time.Time         { return s.clock.Now() }
func (s *Sim) providerNow() time.Time { return s.now().Add(s.faults.ClockOffset(Provider)) }

// uuid derives a stable UUID-shaped id.
func uuid(parts ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	h := fmt.Sprintf("%x", sum[:16])
	return h[0:8] + "-" + h[8:12] + "-4" + h[13:16] + "-a" + h[17:20] + "-" + h[20:32]
}

func (s *Sim) newIDLocked(kind string) string {
	s.seq++
	r := s.core.Random(8)
	return uuid(kind, fmt.Sprint(s.seq), string(r))
}

// normID accepts ids with or without dashes, as Notion does.
func normID(id string) string {
	h := strings.ReplaceAll(strings.ToLower(id), "-", "")
	if len(h) != 32 {
		return id
	}
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

func (s *Sim) userLocked(email string) *user {
	email = strings.ToLower(strings.TrimSpace(email))
	if u, ok := s.users[email]; ok {
		return u
	}
	local, _, _ := strings.Cut(email, "@")
	u := &user{ID: uuid("notion-user", email), Name: strings.ToUpper(local[:1]) + local[1:], Email: email}
	s.users[email] = u
	s.usersByID[u.ID] = u
	return u
}

// workspaceLocked returns (creating and seeding) a workspace by name.
func (s *Sim) workspaceLocked(name string) *workspace {
	if name == "" {
		name = DefaultWorkspace
	}
	if w, ok := s.workspaces[name]; ok {
		return w
	}
	w := &workspace{ID: uuid("notion-ws", name), Name: name}
	s.workspaces[name] = w
	now := s.now().UTC()
	add := func(o *object) *object {
		o.WorkspaceID, o.Created, o.Updated = w.ID, now, now
		s.objects[o.ID] = o
		if o.ParentType == "workspace" {
			w.Roots = append(w.Roots, o.ID)
		}
		return o
	}
	add(&object{ID: uuid(name, "roadmap"), Kind: "page", Title: "Roadmap", ParentType: "workspace",
		Children: []map[string]any{paragraph(uuid(name, "roadmap", "b1"), "Q3: ship the agent runner.", now)}})
	add(&object{ID: uuid(name, "notes"), Kind: "page", Title: "Meeting Notes", ParentType: "workspace"})
	db := add(&object{ID: uuid(name, "tasks"), Kind: "database", Title: "Tasks", ParentType: "workspace", DataSourceID: uuid(name, "tasks", "ds"),
		Properties: map[string]any{
			"Name":   map[string]any{"id": "title", "name": "Name", "type": "title", "title": map[string]any{}},
			"Status": map[string]any{"id": "s%3Ak", "name": "Status", "type": "select", "select": map[string]any{"options": []any{map[string]any{"name": "Todo", "color": "red"}, map[string]any{"name": "Done", "color": "green"}}}},
		}})
	for i, t := range []string{"Write the spec", "Review the PR"} {
		add(&object{ID: uuid(name, "task", fmt.Sprint(i)), Kind: "page", Title: t, ParentType: "database_id", ParentID: db.ID})
	}
	return w
}

// Register mounts the routes under /sandbox/notion/.
func (s *Sim) Register(mux *http.ServeMux) {
	p := "/sandbox/notion/v1"
	mux.HandleFunc("GET "+p+"/oauth/authorize", s.authorize)
	mux.HandleFunc("POST "+p+"/oauth/consent", s.consent)
	mux.HandleFunc("POST "+p+"/oauth/token", s.token)
	mux.HandleFunc("POST "+p+"/oauth/revoke", s.revoke)
	mux.HandleFunc("POST "+p+"/oauth/introspect", s.introspect)
	mux.HandleFunc("GET "+p+"/users/me", s.api(nil, s.usersMe))
	mux.HandleFunc("GET "+p+"/users", s.api([]string{CapReadUserEmail, "read_user_without_email"}, s.usersList))
	mux.HandleFunc("POST "+p+"/search", s.api([]string{CapReadContent}, s.search))
	mux.HandleFunc("GET "+p+"/databases/{id}", s.api([]string{CapReadContent}, s.databaseGet))
	mux.HandleFunc("POST "+p+"/databases/{id}/query", s.api([]string{CapReadContent}, s.databaseQuery))
	mux.HandleFunc("GET "+p+"/data_sources/{id}", s.api([]string{CapReadContent}, s.dataSourceGet))
	mux.HandleFunc("POST "+p+"/data_sources/{id}/query", s.api([]string{CapReadContent}, s.databaseQuery))
	mux.HandleFunc("POST "+p+"/pages", s.api([]string{CapInsertContent}, s.pageCreate))
	mux.HandleFunc("GET "+p+"/pages/{id}", s.api([]string{CapReadContent}, s.pageGet))
	mux.HandleFunc("PATCH "+p+"/blocks/{id}/children", s.api([]string{CapInsertContent}, s.blocksAppend))
	mux.HandleFunc("GET "+p+"/blocks/{id}/children", s.api([]string{CapReadContent}, s.blocksList))
}

// errBody is Notion's error envelope, in Notion's field order.
type errBody struct {
	Object    string `json:"object"`
	Status    int    `json:"status"`
	Code      string `json:"code"`
	Message   string `json:"message"`
	RequestID string `json:"request_id"`
}

func (s *Sim) requestID() string {
	b := s.core.Random(16)
	h := fmt.Sprintf("%x", b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// fail writes Notion's error envelope with its request id header.
func (s *Sim) fail(w http.ResponseWriter, status int, code, message string) {
	id := s.requestID()
	w.Header().Set("x-notion-request-id", id)
	oauthcore.SetDate(w, s.providerNow())
	oauthcore.WriteJSON(w, status, errBody{Object: "error", Status: status, Code: code, Message: message, RequestID: id}, "")
}

func (s *Sim) ok(w http.ResponseWriter, v map[string]any) {
	id := s.requestID()
	v["request_id"] = id
	w.Header().Set("x-notion-request-id", id)
	oauthcore.SetDate(w, s.providerNow())
	oauthcore.WriteJSON(w, http.StatusOK, v, "")
}

var serverErrors = map[int][2]string{
	500: {"internal_server_error", "Unexpected error occurred."},
	502: {"bad_gateway", "Bad Gateway"},
	503: {"service_unavailable", "Notion is unavailable, please try again later."},
	504: {"gateway_timeout", "Gateway Timeout"},
}

// requestFaults applies injected latency, rate limits and server errors.
func (s *Sim) requestFaults(w http.ResponseWriter, r *http.Request, account, target string) bool {
	d := s.faults.Decide(Provider, account, target)
	oauthcore.Sleep(r.Context(), d.Latency)
	switch {
	case d.RateLimited:
		w.Header().Set("Retry-After", fmt.Sprint(d.RetryAfter))
		s.fail(w, http.StatusTooManyRequests, "rate_limited", "You have been rate limited. Please try again in a few minutes.")
		return true
	case d.ServerError != 0:
		e, ok := serverErrors[d.ServerError]
		if !ok {
			e = serverErrors[500]
		}
		s.fail(w, d.ServerError, e[0], e[1])
		return true
	}
	return false
}

// ApplyFault applies a stateful fault to the installs owned by account.
func (s *Sim) ApplyFault(f fault.Spec) error {
	if f.Fault == fault.AdminPolicy {
		return fmt.Errorf("notion has no admin-policy error to emulate; use revoke or unshare")
	}
	if f.Fault == fault.Unshare {
		s.mu.Lock()
		defer s.mu.Unlock()
		id := normID(f.Resource)
		if _, ok := s.objects[id]; !ok {
			return fmt.Errorf("no page or database %q", f.Resource)
		}
		for _, b := range s.bots {
			if f.Account == "" || s.usersByID[b.OwnerID].Email == strings.ToLower(f.Account) {
				delete(b.Shared, id)
			}
		}
		return nil
	}
	for _, botID := range s.botsOf(f.Account) {
		switch f.Fault {
		case fault.Revoke:
			s.core.RevokeGrant("", botID)
		case fault.ExpireAccessTokens:
			s.core.ExpireAccess(botID)
		case fault.DropScope:
			s.core.DropScope(botID, f.Scope)
		}
	}
	return nil
}

func (s *Sim) botsOf(email string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for id, b := range s.bots {
		if email == "" || s.usersByID[b.OwnerID].Email == strings.ToLower(email) {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}

// ObjectID returns the id of a seeded page or database by title in a
// workspace ("" for the default one), for tests and scripts.
func (s *Sim) ObjectID(workspaceName, title string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.workspaceLocked(workspaceName)
	for _, o := range s.objects {
		if o.WorkspaceID == w.ID && o.Title == title {
			return o.ID
		}
	}
	return ""
}

func richText(s string) []any {
	return []any{map[string]any{"type": "text", "text": map[string]any{"content": s, "link": nil},
		"annotations": map[string]any{"bold": false, "italic": false, "strikethrough": false, "underline": false, "code": false, "color": "default"},
		"plain_text":  s, "href": nil}}
}

func paragraph(id, text string, at time.Time) map[string]any {
	return map[string]any{"object": "block", "id": id, "type": "paragraph", "created_time": at.Format(time.RFC3339), "has_children": false, "archived": false,
		"paragraph": map[string]any{"rich_text": richText(text), "color": "default"}}
}

func containsAny(have []string, want ...string) bool {
	for _, w := range want {
		if slices.Contains(have, w) {
			return true
		}
	}
	return false
}

func decodeJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 1<<20))
	return dec.Decode(v)
}
