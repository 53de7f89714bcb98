// Package slacksim emulates Slack's OAuth v2 install flow, token rotation
// and the Web API methods authgate's connector uses, as recorded in
// shared/reference/providers.md §4: oauth.v2.access with a bot token and an
// authed_user token; rotating tokens (expires_in 43200, refresh tokens used
// once); Web API errors as HTTP 200 {"ok":false,"error":…} (missing_scope
// with needed/provided, not_authed, invalid_auth, token_revoked,
// token_expired, channel_not_found, not_in_channel); HTTP 429 with
// {"ok":false,"error":"ratelimited"} and Retry-After; and the X-OAuth-Scopes
// and X-Accepted-OAuth-Scopes headers on every Web API response.
//
// Choices where the reference is silent (§9): every sandbox Slack app has
// token rotation on; PKCE is accepted but not required; rotating a refresh
// token also retires the access token it came with; injected 5xx answers
// carry {"ok":false,"error":"fatal_error"}; an admin policy answers
// ekm_access_denied. Like all of the sandbox it must never import authgate's
// internal packages.
package slacksim

import (
	"cmp"
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/authgate/authgate/sandbox/fault"
	"github.com/authgate/authgate/sandbox/oauthcore"
)

// Provider is this emulator's name in the admin API.
const Provider = "slack"

// Default client credentials (any loopback redirect URI).
const (
	DefaultClientID     = "1234567890123.9876543210987"
	DefaultClientSecret = "sandboxslackclientsecret00000000"
	DefaultWorkspace    = "Sandbox Team"
)

// Options configures the emulator.
type Options struct {
	Clock  oauthcore.Clock
	Faults *fault.Registry
	Seed   uint64
}

// Sim is the Slack emulator.
type Sim struct {
	core   *oauthcore.Server
	faults *fault.Registry
	clock  oauthcore.Clock

	mu    sync.Mutex
	teams map[string]*team // by name
	byID  map[string]*team
	seq   int64
}

type team struct {
	ID, Name, Domain string
	users            map[string]string // email → user id
	emails           map[string]string // user id → email
	channels         []*channel
}

type channel struct {
	ID, Name  string
	Private   bool
	BotMember bool
	Messages  int
}

// New returns the emulator with its default client.
func New(o Options) *Sim {
	s := &Sim{faults: o.Faults, clock: o.Clock, teams: map[string]*team{}, byID: map[string]*team{}}
	s.core = oauthcore.New(oauthcore.Config{Provider: Provider, AccessTTL: 12 * time.Hour, RotateRefresh: true, Clock: o.Clock, Seed: o.Seed,
		LabelPrefixes: map[string][2]string{"bot": {"xoxe.xoxb-1-", "xoxe-1-"}, "user": {"xoxe.xoxp-1-", "xoxe-1-"}}, CodePrefix: "", TokenBytes: 36})
	s.core.RegisterClient(oauthcore.Client{ID: DefaultClientID, Secret: DefaultClientSecret, Name: "authgate sandbox app", AnyLoopbackRedirect: true})
	return s
}

// Core is the authorization-server state.
func (s *Sim) Core() *oauthcore.Server { return s.core }

// Name is the provider name.
func (s *Sim) Name() string { return Provider }

func (s *Sim) providerNow() time.Time { return s.clock.Now().Add(s.faults.ClockOffset(Provider)) }

var idEnc = base32.StdEncoding.WithPadding(base32.NoPadding)

// slackID derives a Slack-shaped id: a type letter and 10 upper-case characters.
func slackID(kind string, parts ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return kind + strings.ToUpper(idEnc.EncodeToString(sum[:8]))[:10]
}

func (s *Sim) teamLocked(name string) *team {
	if name == "" {
		name = DefaultWorkspace
	}
	if t, ok := s.teams[name]; ok {
		return t
	}
	domain := strings.ToLower(strings.Join(strings.Fields(name), "-"))
	t := &team{ID: slackID("T", name), Name: name, Domain: domain, users: map[string]string{}, emails: map[string]string{}}
	t.channels = []*channel{
		{ID: slackID("C", name, "general"), Name: "general", BotMember: true},
		{ID: slackID("C", name, "random"), Name: "random"},
		{ID: slackID("C", name, "private-ops"), Name: "private-ops", Private: true},
	}
	s.teams[name] = t
	s.byID[t.ID] = t
	return t
}

func (t *team) user(email string) string {
	email = strings.ToLower(strings.TrimSpace(email))
	if id, ok := t.users[email]; ok {
		return id
	}
	id := slackID("U", t.ID, email)
	t.users[email] = id
	t.emails[id] = email
	return id
}

// ChannelID returns a seeded channel's id ("general", "random",
// "private-ops") in a team ("" for the default one).
func (s *Sim) ChannelID(teamName, name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.teamLocked(teamName).channels {
		if c.Name == name {
			return c.ID
		}
	}
	return ""
}

// MessageCount is how many messages were posted to a channel of a team
// ("" for the default one) — what tests count side effects with.
func (s *Sim) MessageCount(teamName, name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.teamLocked(teamName).channels {
		if c.Name == name {
			return c.Messages
		}
	}
	return 0
}

// account ids in the engine are "<team id>|<user id>".
func accountID(teamID, userID string) string { return teamID + "|" + userID }

func splitAccount(a string) (teamID, userID string) {
	teamID, userID, _ = strings.Cut(a, "|")
	return
}

func (s *Sim) emailOf(account string) string {
	teamID, userID := splitAccount(account)
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.byID[teamID]; ok {
		return t.emails[userID]
	}
	return ""
}

// Register mounts the routes under /sandbox/slack/.
func (s *Sim) Register(mux *http.ServeMux) {
	p := "/sandbox/slack"
	mux.HandleFunc("GET "+p+"/oauth/v2/authorize", s.authorize)
	mux.HandleFunc("POST "+p+"/oauth/v2/consent", s.consent)
	mux.HandleFunc("POST "+p+"/api/oauth.v2.access", s.access)
	for name, m := range methods {
		mux.HandleFunc(p+"/api/"+name, s.webAPI(name, m))
	}
}

func splitScopes(s string) []string {
	var out []string
	for _, x := range strings.Split(s, ",") {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}

func (s *Sim) authorize(w http.ResponseWriter, r *http.Request) {
	oauthcore.SetDate(w, s.providerNow())
	ar, ok := s.core.StartAuthorize(w, r, oauthcore.AuthorizeOptions{Provider: "Slack",
		UnknownClient: oauthcore.PageError{Status: http.StatusBadRequest, Code: "invalid_client_id", Message: "This app's client ID is invalid."},
		BadRedirect:   oauthcore.PageError{Status: http.StatusBadRequest, Code: "bad_redirect_uri", Message: "The redirect_uri doesn't match what's configured for this app."}})
	if !ok {
		return
	}
	q, client := ar.Params, ar.Client
	if len(splitScopes(q.Get("scope"))) == 0 && len(splitScopes(q.Get("user_scope"))) == 0 {
		oauthcore.ErrorPage(w, http.StatusBadRequest, "Slack", "invalid_scope", "No scopes were requested.")
		return
	}
	if p, ok := s.core.CurrentPreset(); ok {
		if p.Deny {
			ar.Back(w, r, url.Values{"error": {"access_denied"}})
			return
		}
		bot := splitScopes(q.Get("scope"))
		if p.GrantedScopes != nil {
			bot = oauthcore.Intersect(bot, p.GrantedScopes)
		}
		s.finish(w, r, q, client, p.Account, p.Workspace, bot, splitScopes(q.Get("user_scope")), time.Duration(p.AccessTokenTTLSeconds)*time.Second)
		return
	}
	// Slack installs are all or nothing: the scopes are listed, not ticked.
	oauthcore.RenderConsent(w, oauthcore.ConsentPage{Provider: "Slack", ClientName: client.Name, Action: "/sandbox/slack/oauth/v2/consent",
		PendingID: s.core.SavePending(q), AskWorkspace: true, Workspace: DefaultWorkspace,
		FixedScopes: append(splitScopes(q.Get("scope")), prefixed("user: ", splitScopes(q.Get("user_scope")))...)})
}

func prefixed(p string, s []string) []string {
	out := make([]string, len(s))
	for i, x := range s {
		out[i] = p + x
	}
	return out
}

func (s *Sim) consent(w http.ResponseWriter, r *http.Request) {
	oauthcore.SetDate(w, s.providerNow())
	c, ok := s.core.ReadConsent(w, r, oauthcore.ConsentOptions{Provider: "Slack", RequireEmail: true})
	if !ok {
		return
	}
	s.finish(w, r, c.Params, c.Client, c.Account, c.Form.Get("workspace"), splitScopes(c.Params.Get("scope")), splitScopes(c.Params.Get("user_scope")), 0)
}

func (s *Sim) finish(w http.ResponseWriter, r *http.Request, q url.Values, client *oauthcore.Client, email, teamName string, bot, user []string, ttl time.Duration) {
	s.mu.Lock()
	t := s.teamLocked(teamName)
	uid := t.user(email)
	s.mu.Unlock()
	code := s.core.IssueCode(oauthcore.CodeParams{ClientID: client.ID, RedirectURI: q.Get("redirect_uri"), AccountID: accountID(t.ID, uid),
		GrantScopes: append(slices.Clone(bot), user...), TokenScopes: bot, IssueRefresh: true, Label: "bot", AccessTTL: ttl,
		Challenge: q.Get("code_challenge"), ChallengeMethod: cmp.Or(q.Get("code_challenge_method"), "plain"),
		Extra: map[string]string{"user_scope": strings.Join(user, ","), "email": strings.ToLower(email)}})
	v := url.Values{"code": {code.Value}}
	if st := q.Get("state"); st != "" {
		v.Set("state", st)
	}
	oauthcore.RedirectWith(w, r, q.Get("redirect_uri"), v)
}

// reply writes a Web API answer: HTTP 200 unless status says otherwise.
func (s *Sim) reply(w http.ResponseWriter, status int, body any) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("x-slack-req-id", fmt.Sprintf("%x", s.core.Random(16)))
	oauthcore.SetDate(w, s.providerNow())
	oauthcore.WriteJSON(w, status, body, "")
}

// slackError is Slack's error body, "ok" first as Slack writes it.
type slackError struct {
	OK       bool   `json:"ok"`
	Error    string `json:"error"`
	Needed   string `json:"needed,omitempty"`
	Provided string `json:"provided,omitempty"`
}

func errBody(code string) slackError { return slackError{Error: code} }

func missingScope(needed string, provided []string) slackError {
	return slackError{Error: "missing_scope", Needed: needed, Provided: scopesHeader(provided)}
}

// access is oauth.v2.access: the code exchange and the refresh grant.
func (s *Sim) access(w http.ResponseWriter, r *http.Request) {
	s.core.CountTokenRequest()
	if err := r.ParseForm(); err != nil {
		s.reply(w, 200, errBody("invalid_arguments"))
		return
	}
	id, secret, _ := oauthcore.ClientCredentials(r)
	if id == "" {
		s.reply(w, 200, errBody("invalid_client_id"))
		return
	}
	client, err := s.core.AuthenticateClient(id, secret)
	switch oauthcore.KindOf(err) {
	case oauthcore.KindClientUnknown:
		s.reply(w, 200, errBody("invalid_client_id"))
		return
	case oauthcore.KindClientSecret:
		s.reply(w, 200, errBody("bad_client_secret"))
		return
	}
	grant := cmp.Or(r.PostForm.Get("grant_type"), "authorization_code")
	account := ""
	if t, ok := s.core.PeekRefresh(r.PostForm.Get("refresh_token")); ok {
		account = s.emailOf(t.AccountID)
	} else if c, ok := s.core.PeekCode(r.PostForm.Get("code")); ok {
		account = c.Extra["email"]
	}
	switch grant {
	case "authorization_code":
		s.core.CountExchange()
	case "refresh_token":
		s.core.CountRefresh(r.PostForm.Get("refresh_token"))
	}
	if s.requestFaults(w, r, account, fault.TargetToken) {
		return
	}
	switch grant {
	case "authorization_code":
		s.exchange(w, r, client)
	case "refresh_token":
		s.refresh(w, r, client, account)
	default:
		s.reply(w, 200, errBody("invalid_grant_type"))
	}
}

func (s *Sim) exchange(w http.ResponseWriter, r *http.Request, client *oauthcore.Client) {
	if r.PostForm.Get("code") == "" {
		s.reply(w, 200, errBody("invalid_arguments"))
		return
	}
	iss, err := s.core.Exchange(oauthcore.ExchangeParams{ClientID: client.ID, Code: r.PostForm.Get("code"), RedirectURI: r.PostForm.Get("redirect_uri"), Verifier: r.PostForm.Get("code_verifier")})
	switch oauthcore.KindOf(err) {
	case 0:
	case oauthcore.KindRedirectMismatch:
		s.reply(w, 200, errBody("bad_redirect_uri"))
		return
	default:
		s.reply(w, 200, errBody("invalid_code"))
		return
	}
	teamID, userID := splitAccount(iss.Access.AccountID)
	s.mu.Lock()
	t := s.byID[teamID]
	s.mu.Unlock()
	authed := map[string]any{"id": userID}
	if us := splitScopes(iss.Code.Extra["user_scope"]); len(us) > 0 {
		ut := s.core.IssueAlongside(iss.Grant, us, "user", true)
		authed = map[string]any{"id": userID, "scope": strings.Join(ut.Access.Scopes, ","), "access_token": ut.Access.Value, "token_type": "user",
			"refresh_token": ut.Refresh.Value, "expires_in": int64(ut.ExpiresIn / time.Second)}
	}
	out := map[string]any{"ok": true, "app_id": appID(client.ID), "authed_user": authed, "team": map[string]any{"id": t.ID, "name": t.Name},
		"enterprise": nil, "is_enterprise_install": false}
	if len(iss.Access.Scopes) > 0 {
		out["scope"] = strings.Join(iss.Access.Scopes, ",")
		out["token_type"] = "bot"
		out["access_token"] = iss.Access.Value
		out["bot_user_id"] = botUserID(client.ID, teamID)
		out["refresh_token"] = iss.Refresh.Value
		out["expires_in"] = int64(iss.ExpiresIn / time.Second)
	}
	s.reply(w, 200, out)
}

func appID(clientID string) string             { return slackID("A", clientID) }
func botUserID(clientID, teamID string) string { return slackID("U", "bot", clientID, teamID) }
func botID(clientID, teamID string) string     { return slackID("B", "bot", clientID, teamID) }
func (s *Sim) teamByID(id string) *team        { s.mu.Lock(); defer s.mu.Unlock(); return s.byID[id] }
func itoa(n int64) string                      { return strconv.FormatInt(n, 10) }
func scopesHeader(scopes []string) string      { return strings.Join(scopes, ",") }
func acceptedHeader(m method) string           { return strings.Join(m.accepted, ",") }
func hasAny(have []string, want ...string) bool {
	for _, w := range want {
		if slices.Contains(have, w) {
			return true
		}
	}
	return false
}

func (s *Sim) refresh(w http.ResponseWriter, r *http.Request, client *oauthcore.Client, account string) {
	rt := r.PostForm.Get("refresh_token")
	if rt == "" {
		s.reply(w, 200, errBody("invalid_arguments"))
		return
	}
	if s.faults.TakeInvalidGrant(Provider, account) {
		s.reply(w, 200, errBody("invalid_refresh_token"))
		return
	}
	iss, err := s.core.Refresh(client.ID, rt)
	if err != nil {
		s.reply(w, 200, errBody("invalid_refresh_token"))
		return
	}
	teamID, userID := splitAccount(iss.Access.AccountID)
	t := s.teamByID(teamID)
	out := map[string]any{"ok": true, "app_id": appID(client.ID), "scope": strings.Join(iss.Access.Scopes, ","), "token_type": iss.Access.Label,
		"access_token": iss.Access.Value, "refresh_token": iss.Refresh.Value, "expires_in": int64(iss.ExpiresIn / time.Second),
		"team": map[string]any{"id": t.ID, "name": t.Name}, "enterprise": nil, "is_enterprise_install": false}
	if iss.Access.Label == "bot" {
		out["bot_user_id"] = botUserID(client.ID, teamID)
	} else {
		out["user_id"] = userID
	}
	s.reply(w, 200, out)
}

// requestFaults applies injected latency, rate limits and server errors.
func (s *Sim) requestFaults(w http.ResponseWriter, r *http.Request, account, target string) bool {
	d := s.faults.Decide(Provider, account, target)
	oauthcore.Sleep(r.Context(), d.Latency)
	switch {
	case d.RateLimited:
		w.Header().Set("Retry-After", strconv.Itoa(d.RetryAfter))
		s.reply(w, http.StatusTooManyRequests, errBody("ratelimited"))
		return true
	case d.ServerError != 0:
		s.reply(w, d.ServerError, errBody("fatal_error"))
		return true
	}
	return false
}

// ApplyFault applies a stateful fault to account's tokens.
func (s *Sim) ApplyFault(f fault.Spec) error {
	var accounts []string
	s.mu.Lock()
	for _, t := range s.teams {
		for email, uid := range t.users {
			if f.Account == "" || email == strings.ToLower(f.Account) {
				accounts = append(accounts, accountID(t.ID, uid))
			}
		}
	}
	s.mu.Unlock()
	switch f.Fault {
	case fault.Unshare:
		return s.unshareChannel(f.Resource)
	case fault.Revoke, fault.ExpireAccessTokens, fault.DropScope:
	default:
		return nil
	}
	for _, a := range accounts {
		switch f.Fault {
		case fault.Revoke:
			s.core.RevokeGrant("", a)
		case fault.ExpireAccessTokens:
			s.core.ExpireAccess(a)
		case fault.DropScope:
			s.core.DropScope(a, f.Scope)
		}
	}
	return nil
}

// unshareChannel removes the app's bot from a channel.
func (s *Sim) unshareChannel(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.teams {
		for _, c := range t.channels {
			if c.ID == id {
				c.BotMember = false
				return nil
			}
		}
	}
	return fmt.Errorf("no channel %q", id)
}
