// Package oauthcore is the authorization-server machinery every emulated
// provider shares: registered clients, authorization codes with PKCE, grants
// per (client, account), access tokens, refresh tokens with optional rotation,
// token families with reuse detection, and per-grant refresh-token issuance
// limits. It decides what is valid; it never writes a response: each provider
// package renders the outcome in its own wire format, so the bytes stay
// faithful to the real provider.
//
// It is part of the sandbox and, like all of it, must never import authgate's
// internal packages: the emulator encodes the providers independently so that
// it and the product cannot share a bug.
package oauthcore

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// Clock tells the time; the sandbox injects it so tests control expiry.
type Clock interface{ Now() time.Time }

// Config is one provider's token policy.
type Config struct {
	Provider string
	// AccessTTL is how long access tokens live (0: they never expire).
	AccessTTL time.Duration
	// RotateRefresh issues a new refresh token on every refresh and retires
	// the presented one.
	RotateRefresh bool
	// ReuseDetection revokes the whole token family when a retired refresh
	// token is presented again after GracePeriod (RFC 9700 §4.14.2).
	ReuseDetection bool
	GracePeriod    time.Duration
	// IssuanceLimit caps live refresh tokens per (client, account); issuing
	// one more silently invalidates the oldest (Google: 100). 0: no limit.
	IssuanceLimit int
	// CodeTTL is how long an authorization code stays redeemable (default 10 min).
	CodeTTL time.Duration
	// Token prefixes make tokens look like the provider's.
	AccessPrefix, RefreshPrefix, CodePrefix string
	// LabelPrefixes overrides the access and refresh prefixes per token
	// label (Slack: "bot" → xoxe.xoxb-1-, "user" → xoxe.xoxp-1-).
	LabelPrefixes map[string][2]string
	// TokenBytes is the random length of tokens (default 32).
	TokenBytes int
	Clock      Clock
	// Seed, when non-zero, makes every generated token deterministic.
	Seed uint64
}

// Kind names why the engine refused something; providers map kinds to bodies.
type Kind int

const (
	KindClientUnknown Kind = iota + 1
	KindClientSecret
	KindRedirectMismatch
	KindCodeUnknown
	KindCodeExpired
	KindCodeUsed
	KindCodeWrongClient
	KindVerifierMissing
	KindVerifierNotNeeded
	KindVerifierInvalid
	KindRefreshUnknown
	KindRefreshRevoked // revoked, expired, or pushed out by the issuance limit
	KindRefreshReused  // a retired token presented again: the family is now revoked
	KindRefreshWrongClient
	KindTokenUnknown
	KindTokenRevoked
	KindTokenExpired
)

// Error is a refusal with its kind.
type Error struct {
	Kind Kind
	Msg  string
}

func (e *Error) Error() string { return e.Msg }

func fail(k Kind, format string, args ...any) *Error {
	return &Error{Kind: k, Msg: fmt.Sprintf(format, args...)}
}

// KindOf returns err's kind, or 0.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return 0
}

// Client is a registered OAuth client.
type Client struct {
	ID, Secret, Name string
	RedirectURIs     []string
	// AnyLoopbackRedirect accepts any http://127.0.0.1, [::1] or localhost
	// redirect URI (the sandbox's default clients, so a zero-config authgate
	// on any port can use them). Registered clients match exactly.
	AnyLoopbackRedirect bool
	// Options carries provider-specific settings (e.g. Slack token rotation).
	Options map[string]string
}

// RedirectAllowed reports whether uri may receive this client's codes:
// exact string match (RFC 9700 §4.1.3), or any loopback URI for default clients.
func (c *Client) RedirectAllowed(uri string) bool {
	if slices.Contains(c.RedirectURIs, uri) {
		return true
	}
	if !c.AnyLoopbackRedirect {
		return false
	}
	u, err := url.Parse(uri)
	if err != nil || u.Scheme != "http" && u.Scheme != "https" {
		return false
	}
	h := u.Hostname()
	return h == "127.0.0.1" || h == "::1" || h == "localhost"
}

// Grant is what one account granted one client. Scopes accumulate across
// authorizations (Google's include_granted_scopes reads them).
type Grant struct {
	ClientID, AccountID string
	Scopes              []string
	// AccessTTL overrides the provider's lifetime for tokens of this grant.
	AccessTTL time.Duration
	refresh   []*RefreshToken // live ones, oldest first (issuance limit)
}

// Access is a live access token's facts.
type Access struct {
	Value     string
	ClientID  string
	AccountID string
	Scopes    []string
	IssuedAt  time.Time
	ExpiresAt time.Time // zero: never
	// Label distinguishes token kinds a provider issues side by side (Slack bot/user).
	Label   string
	revoked bool
	grant   *Grant
	family  *family
}

// RefreshToken is a refresh token's facts.
type RefreshToken struct {
	Value     string
	ClientID  string
	AccountID string
	Scopes    []string
	Label     string
	IssuedAt  time.Time
	retiredAt time.Time // set when rotated away
	revoked   bool
	grant     *Grant
	family    *family
	successor *Issued
}

type family struct {
	revoked bool
	access  []*Access
	refresh []*RefreshToken
}

// Code is an authorization code waiting to be exchanged.
type Code struct {
	Value, ClientID, RedirectURI, AccountID string
	Scopes                                  []string
	Challenge, ChallengeMethod              string
	// IssueRefresh says whether the exchange returns a refresh token (the
	// provider decides: offline access, first consent, prompt=consent, …).
	IssueRefresh bool
	// Label is copied to the tokens (Slack: "bot").
	Label string
	// Extra carries provider data to the exchange (nonce, user scopes, …).
	Extra     map[string]string
	expiresAt time.Time
	used      bool
	issued    *Issued
}

// Issued is the outcome of an exchange or refresh.
type Issued struct {
	Access  *Access
	Refresh *RefreshToken // nil when none was issued
	// ExpiresIn is the lifetime to report (0: do not report one).
	ExpiresIn time.Duration
	Grant     *Grant
	Code      *Code // for exchanges
}

// Server is one provider's authorization server state. Safe for concurrent use.
type Server struct {
	cfg Config

	mu      sync.Mutex
	rng     *mrand.ChaCha8
	clients map[string]*Client
	grants  map[[2]string]*Grant
	codes   map[string]*Code
	access  map[string]*Access
	refresh map[string]*RefreshToken
	preset  *Preset
	pending map[string]*Pending

	stats counters
}

// New returns an empty server.
func New(cfg Config) *Server {
	if cfg.CodeTTL == 0 {
		cfg.CodeTTL = 10 * time.Minute
	}
	if cfg.TokenBytes == 0 {
		cfg.TokenBytes = 32
	}
	s := &Server{cfg: cfg, clients: map[string]*Client{}, grants: map[[2]string]*Grant{}, codes: map[string]*Code{},
		access: map[string]*Access{}, refresh: map[string]*RefreshToken{}}
	if cfg.Seed != 0 {
		var seed [32]byte
		h := sha256.Sum256([]byte(fmt.Sprintf("%s/%d", cfg.Provider, cfg.Seed)))
		copy(seed[:], h[:])
		s.rng = mrand.NewChaCha8(seed)
	}
	return s
}

// Config returns the server's configuration.
func (s *Server) Config() Config { return s.cfg }

func (s *Server) now() time.Time { return s.cfg.Clock.Now() }

// Random returns n random bytes: seeded when the sandbox is, else crypto/rand.
func (s *Server) Random(n int) []byte {
	b := make([]byte, n)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.randomLocked(b)
	return b
}

func (s *Server) randomLocked(b []byte) {
	if s.rng != nil {
		_, _ = s.rng.Read(b)
		return
	}
	_, _ = rand.Read(b)
}

func (s *Server) tokenLocked(prefix string) string {
	b := make([]byte, s.cfg.TokenBytes)
	s.randomLocked(b)
	return prefix + base64.RawURLEncoding.EncodeToString(b)
}

// RegisterClient adds a client. An empty ID or Secret is generated.
func (s *Server) RegisterClient(c Client) *Client {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.ID == "" {
		c.ID = s.tokenLocked("")[:24]
	}
	if c.Secret == "" {
		c.Secret = s.tokenLocked("")
	}
	cc := c
	s.clients[c.ID] = &cc
	return &cc
}

// Clients lists registered clients, ordered by id.
func (s *Server) Clients() []Client {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Client, 0, len(s.clients))
	for _, c := range s.clients {
		out = append(out, *c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Client returns a registered client or KindClientUnknown.
func (s *Server) Client(id string) (*Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.clients[id]
	if !ok {
		return nil, fail(KindClientUnknown, "client %q not found", id)
	}
	cc := *c
	return &cc, nil
}

// AuthenticateClient checks a client's credentials.
func (s *Server) AuthenticateClient(id, secret string) (*Client, error) {
	c, err := s.Client(id)
	if err != nil {
		return nil, err
	}
	if secret != c.Secret {
		return nil, fail(KindClientSecret, "client secret does not match")
	}
	return c, nil
}

// GrantFor returns a copy of the live grant of account to client, if any.
func (s *Server) GrantFor(clientID, accountID string) (Grant, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.grants[[2]string{clientID, accountID}]
	if !ok {
		return Grant{}, false
	}
	return Grant{ClientID: g.ClientID, AccountID: g.AccountID, Scopes: slices.Clone(g.Scopes), AccessTTL: g.AccessTTL}, true
}

// HasLiveRefresh reports whether the account holds a live refresh token for client.
func (s *Server) HasLiveRefresh(clientID, accountID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.grants[[2]string{clientID, accountID}]
	return ok && len(g.refresh) > 0
}

// CodeParams describes an approved authorization.
type CodeParams struct {
	ClientID, RedirectURI, AccountID string
	// GrantScopes are added to the grant; TokenScopes go on the tokens.
	GrantScopes, TokenScopes   []string
	Challenge, ChallengeMethod string
	IssueRefresh               bool
	AccessTTL                  time.Duration // 0: provider default
	Label                      string
	Extra                      map[string]string
}

// IssueCode records an approved authorization and returns its code. The
// grant's scopes grow by p.GrantScopes at once: consent happened now.
func (s *Server) IssueCode(p CodeParams) *Code {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.grantLocked(p.ClientID, p.AccountID)
	g.Scopes = union(g.Scopes, p.GrantScopes)
	if p.AccessTTL > 0 {
		g.AccessTTL = p.AccessTTL
	}
	c := &Code{Value: s.tokenLocked(s.cfg.CodePrefix), ClientID: p.ClientID, RedirectURI: p.RedirectURI, AccountID: p.AccountID,
		Scopes: normalize(p.TokenScopes), Challenge: p.Challenge, ChallengeMethod: p.ChallengeMethod, IssueRefresh: p.IssueRefresh,
		Label: p.Label, Extra: p.Extra, expiresAt: s.now().Add(s.cfg.CodeTTL)}
	s.codes[c.Value] = c
	return c
}

func (s *Server) grantLocked(clientID, accountID string) *Grant {
	k := [2]string{clientID, accountID}
	g, ok := s.grants[k]
	if !ok {
		g = &Grant{ClientID: clientID, AccountID: accountID}
		s.grants[k] = g
	}
	return g
}

// ExchangeParams is a code exchange as the token endpoint received it.
type ExchangeParams struct {
	ClientID, Code, RedirectURI, Verifier string
	// RedirectRequired: the redirect_uri must be present and match (RFC 6749 §4.1.3).
	RedirectRequired bool
}

// PeekCode returns the code's facts without redeeming it (providers need the
// account before deciding on faults).
func (s *Server) PeekCode(code string) (Code, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.codes[code]
	if !ok {
		return Code{}, false
	}
	return *c, true
}

// Exchange redeems an authorization code.
func (s *Server) Exchange(p ExchangeParams) (*Issued, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.codes[p.Code]
	switch {
	case !ok:
		return nil, fail(KindCodeUnknown, "unknown authorization code")
	case c.ClientID != p.ClientID:
		return nil, fail(KindCodeWrongClient, "code was issued to another client")
	case c.used:
		// A replayed code revokes what it issued (RFC 6749 §4.1.2).
		if c.issued != nil {
			s.revokeFamilyLocked(c.issued.Access.family)
		}
		return nil, fail(KindCodeUsed, "code was already redeemed")
	case s.now().After(c.expiresAt):
		return nil, fail(KindCodeExpired, "code expired")
	case (p.RedirectRequired || p.RedirectURI != "") && p.RedirectURI != c.RedirectURI:
		return nil, fail(KindRedirectMismatch, "redirect_uri differs from the authorization request's")
	}
	if c.Challenge == "" && p.Verifier != "" {
		return nil, fail(KindVerifierNotNeeded, "code_verifier sent for a code issued without a challenge")
	}
	if c.Challenge != "" {
		if p.Verifier == "" {
			return nil, fail(KindVerifierMissing, "missing code verifier")
		}
		if !VerifierMatches(p.Verifier, c.Challenge, c.ChallengeMethod) {
			return nil, fail(KindVerifierInvalid, "invalid code verifier")
		}
	}
	c.used = true
	g := s.grantLocked(c.ClientID, c.AccountID)
	f := &family{}
	iss := &Issued{Grant: g, Code: c}
	iss.Access, iss.ExpiresIn = s.newAccessLocked(g, f, c.Scopes, c.Label)
	if c.IssueRefresh {
		iss.Refresh = s.newRefreshLocked(g, f, c.Scopes, c.Label)
	}
	c.issued = iss
	return iss, nil
}

// IssueAlongside issues a second, independent token pair under the same
// grant as an exchange (Slack's user token next to its bot token).
func (s *Server) IssueAlongside(g *Grant, scopes []string, label string, refresh bool) *Issued {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := &family{}
	iss := &Issued{Grant: g}
	iss.Access, iss.ExpiresIn = s.newAccessLocked(g, f, normalize(scopes), label)
	if refresh {
		iss.Refresh = s.newRefreshLocked(g, f, normalize(scopes), label)
	}
	return iss
}

// VerifierMatches checks a PKCE verifier against its challenge (RFC 7636).
func VerifierMatches(verifier, challenge, method string) bool {
	if len(verifier) < 43 || len(verifier) > 128 || strings.IndexFunc(verifier, func(r rune) bool {
		return !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '_' || r == '~')
	}) >= 0 {
		return false
	}
	if method == "plain" {
		return verifier == challenge
	}
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:]) == challenge
}

func (s *Server) ttlFor(g *Grant) time.Duration {
	if g.AccessTTL > 0 {
		return g.AccessTTL
	}
	return s.cfg.AccessTTL
}

func (s *Server) newAccessLocked(g *Grant, f *family, scopes []string, label string) (*Access, time.Duration) {
	now := s.now()
	prefix := s.cfg.AccessPrefix
	if p, ok := s.cfg.LabelPrefixes[label]; ok {
		prefix = p[0]
	}
	a := &Access{Value: s.tokenLocked(prefix), ClientID: g.ClientID, AccountID: g.AccountID, Scopes: slices.Clone(scopes),
		IssuedAt: now, Label: label, grant: g, family: f}
	ttl := s.ttlFor(g)
	if ttl > 0 {
		a.ExpiresAt = now.Add(ttl)
	}
	s.access[a.Value] = a
	f.access = append(f.access, a)
	return a, ttl
}

func (s *Server) newRefreshLocked(g *Grant, f *family, scopes []string, label string) *RefreshToken {
	prefix := s.cfg.RefreshPrefix
	if p, ok := s.cfg.LabelPrefixes[label]; ok {
		prefix = p[1]
	}
	r := &RefreshToken{Value: s.tokenLocked(prefix), ClientID: g.ClientID, AccountID: g.AccountID, Scopes: slices.Clone(scopes),
		Label: label, IssuedAt: s.now(), grant: g, family: f}
	s.refresh[r.Value] = r
	f.refresh = append(f.refresh, r)
	g.refresh = append(g.refresh, r)
	if lim := s.cfg.IssuanceLimit; lim > 0 && len(g.refresh) > lim {
		// The oldest stops working, without warning.
		for _, old := range g.refresh[:len(g.refresh)-lim] {
			old.revoked = true
		}
		g.refresh = slices.Clone(g.refresh[len(g.refresh)-lim:])
	}
	return r
}

// PeekRefresh returns a refresh token's facts without using it.
func (s *Server) PeekRefresh(token string) (RefreshToken, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.refresh[token]
	if !ok {
		return RefreshToken{}, false
	}
	return *r, true
}

// RefreshActive reports whether presenting token now would be answered with
// new tokens (RFC 7662 "active"): known, issued to clientID, not revoked and
// not retired (or retired within the grace period).
func (s *Server) RefreshActive(clientID, token string) (RefreshToken, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.refresh[token]
	if !ok || r.ClientID != clientID || r.revoked || r.family.revoked {
		return RefreshToken{}, false
	}
	if !r.retiredAt.IsZero() && (s.cfg.GracePeriod == 0 || s.now().Sub(r.retiredAt) > s.cfg.GracePeriod || r.successor == nil) {
		return RefreshToken{}, false
	}
	return *r, true
}

// Refresh uses a refresh token. With rotation the presented token retires
// and a new one comes back; presenting a retired token again (after the grace
// period) revokes its whole family when reuse detection is on.
func (s *Server) Refresh(clientID, token string) (*Issued, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.refresh[token]
	if !ok {
		return nil, fail(KindRefreshUnknown, "unknown refresh token")
	}
	if r.ClientID != clientID {
		return nil, fail(KindRefreshWrongClient, "refresh token was issued to another client")
	}
	if r.revoked || r.family.revoked {
		return nil, fail(KindRefreshRevoked, "refresh token revoked or expired")
	}
	now := s.now()
	if !r.retiredAt.IsZero() {
		if s.cfg.GracePeriod > 0 && now.Sub(r.retiredAt) <= s.cfg.GracePeriod && r.successor != nil {
			return r.successor, nil
		}
		if s.cfg.ReuseDetection {
			s.revokeFamilyLocked(r.family)
			return nil, fail(KindRefreshReused, "refresh token was already used; its family is revoked")
		}
		return nil, fail(KindRefreshRevoked, "refresh token was already used")
	}
	g := r.grant
	scopes := Intersect(r.Scopes, g.Scopes) // a dropped scope stays dropped
	iss := &Issued{Grant: g}
	if s.cfg.RotateRefresh {
		// Rotation starts the new pair in the same family; the old access
		// token stops working too (as Hydra does).
		for _, a := range r.family.access {
			a.revoked = true
		}
		iss.Access, iss.ExpiresIn = s.newAccessLocked(g, r.family, scopes, r.Label)
		iss.Refresh = s.newRefreshLocked(g, r.family, scopes, r.Label)
		r.retiredAt = now
		r.successor = iss
		g.refresh = slices.DeleteFunc(g.refresh, func(x *RefreshToken) bool { return x == r })
	} else {
		iss.Access, iss.ExpiresIn = s.newAccessLocked(g, r.family, scopes, r.Label)
	}
	return iss, nil
}

// LookupAccess validates an access token at a resource server.
func (s *Server) LookupAccess(token string) (Access, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.access[token]
	if !ok {
		return Access{}, fail(KindTokenUnknown, "unknown access token")
	}
	if a.revoked || a.family.revoked {
		return *a, fail(KindTokenRevoked, "access token revoked")
	}
	if !a.ExpiresAt.IsZero() && !s.now().Before(a.ExpiresAt) {
		return *a, fail(KindTokenExpired, "access token expired")
	}
	out := *a
	out.Scopes = Intersect(a.Scopes, a.grant.Scopes)
	return out, nil
}

// Revoke revokes the token's whole family (an access token takes its refresh
// token with it, RFC 7009 §2.1). It reports whether the token was known.
func (s *Server) Revoke(token string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a, ok := s.access[token]; ok {
		s.revokeFamilyLocked(a.family)
		return true
	}
	if r, ok := s.refresh[token]; ok {
		s.revokeFamilyLocked(r.family)
		return true
	}
	return false
}

func (s *Server) revokeFamilyLocked(f *family) {
	f.revoked = true
	for _, r := range f.refresh {
		r.revoked = true
		if g := r.grant; g != nil {
			g.refresh = slices.DeleteFunc(g.refresh, func(x *RefreshToken) bool { return x == r })
		}
	}
	for _, a := range f.access {
		a.revoked = true
	}
}

// RevokeGrant removes account's grant to client (or to every client when
// clientID is ""): all its tokens die and the next consent starts afresh.
func (s *Server) RevokeGrant(clientID, accountID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for k, g := range s.grants {
		if g.AccountID != accountID || (clientID != "" && g.ClientID != clientID) {
			continue
		}
		n++
		delete(s.grants, k)
		for _, a := range s.access {
			if a.grant == g {
				a.revoked = true
			}
		}
		for _, r := range s.refresh {
			if r.grant == g {
				r.revoked = true
			}
		}
	}
	return n
}

// ExpireAccess makes every live access token of account (all accounts when
// "") expire now.
func (s *Server) ExpireAccess(accountID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	n := 0
	for _, a := range s.access {
		if (accountID == "" || a.AccountID == accountID) && (a.ExpiresAt.IsZero() || a.ExpiresAt.After(now)) {
			a.ExpiresAt = now
			n++
		}
	}
	return n
}

// DropScope removes scope from account's grants: live tokens lose it at
// once and refreshes no longer return it.
func (s *Server) DropScope(accountID, scope string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, g := range s.grants {
		if (accountID == "" || g.AccountID == accountID) && slices.Contains(g.Scopes, scope) {
			g.Scopes = slices.DeleteFunc(g.Scopes, func(x string) bool { return x == scope })
			n++
		}
	}
	return n
}

func normalize(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return slices.Compact(out)
}

func union(a, b []string) []string { return normalize(append(slices.Clone(a), b...)) }

// Intersect keeps the elements of a that are also in b, in a's order.
func Intersect(a, b []string) []string {
	var out []string
	for _, x := range a {
		if slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

// Fingerprint is the first 10 hex digits of a token's SHA-256, for counters.
func Fingerprint(token string) string {
	sum := sha256.Sum256([]byte(token))
	return fmt.Sprintf("%x", sum[:5])
}

// Stats are the counters tests read to prove what happened ("exactly one refresh").
type Stats struct {
	TokenRequests int64 `json:"token_requests"`
	CodeExchanges int64 `json:"code_exchanges"`
	Refreshes     int64 `json:"refreshes"`
	ReuseDetected int64 `json:"reuse_detected"`
	APIRequests   int64 `json:"api_requests"`
	// RefreshesByToken counts refresh requests per presented refresh token,
	// keyed by its fingerprint (first 10 hex digits of its SHA-256).
	RefreshesByToken map[string]int64 `json:"refreshes_by_token"`
}

type counters struct {
	mu sync.Mutex
	s  Stats
}

// Count is the server's counter set.
func (s *Server) count(fn func(st *Stats)) {
	s.stats.mu.Lock()
	fn(&s.stats.s)
	s.stats.mu.Unlock()
}

// CountTokenRequest counts one request to the token endpoint.
func (s *Server) CountTokenRequest() { s.count(func(st *Stats) { st.TokenRequests++ }) }

// CountExchange counts one authorization-code exchange attempt.
func (s *Server) CountExchange() { s.count(func(st *Stats) { st.CodeExchanges++ }) }

// CountRefresh counts one refresh attempt with the given refresh token.
func (s *Server) CountRefresh(token string) {
	s.count(func(st *Stats) {
		st.Refreshes++
		if st.RefreshesByToken == nil {
			st.RefreshesByToken = map[string]int64{}
		}
		st.RefreshesByToken[Fingerprint(token)]++
	})
}

// CountReuse counts one detected refresh-token reuse.
func (s *Server) CountReuse() { s.count(func(st *Stats) { st.ReuseDetected++ }) }

// CountAPI counts one API request.
func (s *Server) CountAPI() { s.count(func(st *Stats) { st.APIRequests++ }) }

// Stats returns a copy of the counters.
func (s *Server) Stats() Stats {
	s.stats.mu.Lock()
	defer s.stats.mu.Unlock()
	out := s.stats.s
	out.RefreshesByToken = map[string]int64{}
	for k, v := range s.stats.s.RefreshesByToken {
		out.RefreshesByToken[k] = v
	}
	return out
}

// ResetStats zeroes the counters.
func (s *Server) ResetStats() {
	s.stats.mu.Lock()
	s.stats.s = Stats{}
	s.stats.mu.Unlock()
}

// Preset makes the authorization endpoint answer at once, without a page, as
// Account with this grant (the admin API's consent).
type Preset struct {
	Account       string   `json:"account"`
	GrantedScopes []string `json:"granted_scopes,omitempty"` // nil: everything requested
	Deny          bool     `json:"deny,omitempty"`
	Workspace     string   `json:"workspace,omitempty"`
	// AccessTokenTTLSeconds sets the lifetime of every access token issued or
	// refreshed under grants made this way.
	AccessTokenTTLSeconds int `json:"access_token_ttl_seconds,omitempty"`
}

// SetPreset installs (or with nil clears) the consent preset.
func (s *Server) SetPreset(p *Preset) {
	s.mu.Lock()
	s.preset = p
	s.mu.Unlock()
}

// CurrentPreset returns the preset, if one is set.
func (s *Server) CurrentPreset() (Preset, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.preset == nil {
		return Preset{}, false
	}
	return *s.preset, true
}

// Pending is an authorization request waiting for the user on the consent page.
type Pending struct {
	ID        string
	Params    url.Values
	expiresAt time.Time
}

// SavePending stores an authorization request for the consent page and
// returns its id (valid for CodeTTL).
func (s *Server) SavePending(params url.Values) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := s.tokenLocked("")
	if s.pending == nil {
		s.pending = map[string]*Pending{}
	}
	now := s.now()
	if len(s.pending) >= MaxPending {
		// Sweep only when full (a sweep per insert made floods quadratic),
		// then drop the oldest: a local test fixture must not grow without
		// bound because something fetched its authorize URL in a loop.
		var oldest string
		for k, p := range s.pending {
			if now.After(p.expiresAt) {
				delete(s.pending, k)
			} else if oldest == "" || p.expiresAt.Before(s.pending[oldest].expiresAt) {
				oldest = k
			}
		}
		if len(s.pending) >= MaxPending && oldest != "" {
			delete(s.pending, oldest)
		}
	}
	s.pending[id] = &Pending{ID: id, Params: params, expiresAt: now.Add(s.cfg.CodeTTL)}
	return id
}

// PendingCount is how many authorization requests wait at a consent page.
func (s *Server) PendingCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pending)
}

// MaxPending bounds the authorization requests waiting at a consent page.
const MaxPending = 1000

// TakePending removes and returns a pending authorization request.
func (s *Server) TakePending(id string) (url.Values, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.pending[id]
	if !ok || s.now().After(p.expiresAt) {
		return nil, false
	}
	delete(s.pending, id)
	return p.Params, true
}
