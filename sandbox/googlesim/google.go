// Package googlesim emulates Google's OAuth 2.0 / OpenID Connect server and
// the slice of Drive v3 and Docs v1 that authgate's connectors use, down to
// the status codes, JSON error bodies and headers recorded in
// shared/reference/providers.md (§1, §2). Where the reference marks a fact as
// unconfirmed, the choice made here is noted at the code that makes it.
//
// Behaviours that matter for long-running agents: access tokens live 3599 s;
// a refresh token comes back only with access_type=offline and only on the
// first consent of a client+account (or with prompt=consent); refresh tokens
// do not rotate; each client+account holds at most 100 live refresh tokens
// and issuing another silently kills the oldest; include_granted_scopes
// merges earlier grants; drive.file sees only files the app created.
//
// Like all of the sandbox it must never import authgate's internal packages.
package googlesim

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/authgate/authgate/sandbox/fault"
	"github.com/authgate/authgate/sandbox/oauthcore"
)

// Provider is this emulator's name in the admin API.
const Provider = "google"

// Scope URLs.
const (
	ScopePrefix          = "https://www.googleapis.com/auth/"
	ScopeEmail           = ScopePrefix + "userinfo.email"
	ScopeProfile         = ScopePrefix + "userinfo.profile"
	ScopeDrive           = ScopePrefix + "drive"
	ScopeDriveFile       = ScopePrefix + "drive.file"
	ScopeDriveReadonly   = ScopePrefix + "drive.readonly"
	ScopeDriveMetadataRO = ScopePrefix + "drive.metadata.readonly"
	ScopeDriveMetadata   = ScopePrefix + "drive.metadata"
	ScopeDriveAppdata    = ScopePrefix + "drive.appdata"
	ScopeDocuments       = ScopePrefix + "documents"
	ScopeDocumentsRO     = ScopePrefix + "documents.readonly"
)

// MIME types.
const (
	MimeDoc    = "application/vnd.google-apps.document"
	MimeFolder = "application/vnd.google-apps.folder"
)

// Default client credentials: fixed so a zero-config authgate and users'
// scripts can use them; the client accepts any loopback redirect URI.
const (
	DefaultClientID     = "sandbox-google-client.apps.googleusercontent.com"
	DefaultClientSecret = "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"
)

// Options configures the emulator.
type Options struct {
	Clock  oauthcore.Clock
	Faults *fault.Registry
	Seed   uint64
	// AccessTTL is the access-token lifetime (default 3599 s, what Google reports).
	AccessTTL time.Duration
	// IssuanceLimit is the live refresh tokens per client+account (default 100).
	IssuanceLimit int
}

// Sim is the Google emulator.
type Sim struct {
	core   *oauthcore.Server
	faults *fault.Registry
	clock  oauthcore.Clock

	mu       sync.Mutex
	accounts map[string]*Account // by email
	bySub    map[string]*Account
	files    map[string]*file
	seq      uint64
}

// Account is a sandbox Google account, derived from its email.
type Account struct {
	Email, Sub, Name, GivenName, FamilyName string
	// Domain is the Workspace domain (the `hd` claim); "" for consumer accounts.
	Domain string
}

// New returns the emulator with its default client registered.
func New(o Options) *Sim {
	if o.AccessTTL == 0 {
		o.AccessTTL = 3599 * time.Second
	}
	if o.IssuanceLimit == 0 {
		o.IssuanceLimit = 100
	}
	s := &Sim{faults: o.Faults, clock: o.Clock, accounts: map[string]*Account{}, bySub: map[string]*Account{}, files: map[string]*file{}}
	s.core = oauthcore.New(oauthcore.Config{
		Provider: Provider, AccessTTL: o.AccessTTL, IssuanceLimit: o.IssuanceLimit, Clock: o.Clock, Seed: o.Seed,
		AccessPrefix: "ya29.a0", RefreshPrefix: "1//0g", CodePrefix: "4/0A", TokenBytes: 48,
	})
	s.core.RegisterClient(oauthcore.Client{ID: DefaultClientID, Secret: DefaultClientSecret, Name: "authgate sandbox app", AnyLoopbackRedirect: true})
	return s
}

// Core is the emulator's authorization-server state.
func (s *Sim) Core() *oauthcore.Server { return s.core }

// Name is the provider name.
func (s *Sim) Name() string { return Provider }

// AccountFor returns (creating on first use) the account with this email.
// Gmail addresses are consumer accounts; any other domain is a Workspace
// domain, which is what admin policies apply to.
func (s *Sim) AccountFor(email string) *Account {
	email = strings.ToLower(strings.TrimSpace(email))
	s.mu.Lock()
	defer s.mu.Unlock()
	if a, ok := s.accounts[email]; ok {
		return a
	}
	local, domain, _ := strings.Cut(email, "@")
	sum := sha256.Sum256([]byte("google/" + email))
	// Google subjects are long decimal numbers.
	sub := fmt.Sprintf("1%010d%010d", binary.BigEndian.Uint64(sum[:8])%10000000000, binary.BigEndian.Uint64(sum[8:16])%10000000000)
	given := titleCase(strings.FieldsFunc(local, func(r rune) bool { return r == '.' || r == '_' || r == '-' || r == '+' }))
	a := &Account{Email: email, Sub: sub, GivenName: firstOr(given, "Sandbox"), FamilyName: "User", Name: firstOr(given, "Sandbox") + " User"}
	if domain != "gmail.com" && domain != "googlemail.com" {
		a.Domain = domain
	}
	s.accounts[email] = a
	s.bySub[sub] = a
	s.seedFilesLocked(a)
	return a
}

func (s *Sim) accountBySub(sub string) *Account {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bySub[sub]
}

func titleCase(parts []string) []string {
	out := make([]string, len(parts))
	for i, p := range parts {
		if p != "" {
			out[i] = strings.ToUpper(p[:1]) + p[1:]
		}
	}
	return out
}

func firstOr(s []string, def string) string {
	if len(s) == 0 || s[0] == "" {
		return def
	}
	return s[0]
}

// Accounts lists the emails of known accounts.
func (s *Sim) Accounts() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.accounts))
	for e := range s.accounts {
		out = append(out, e)
	}
	sort.Strings(out)
	return out
}

func (s *Sim) now() time.Time { return s.clock.Now() }

// providerNow is the provider's own clock: the sandbox clock plus any
// injected offset (used for Date headers and iat/exp claims).
func (s *Sim) providerNow() time.Time { return s.now().Add(s.faults.ClockOffset(Provider)) }

// Register mounts the emulator's routes under /sandbox/google/.
func (s *Sim) Register(mux *http.ServeMux) {
	p := "/sandbox/google"
	mux.HandleFunc("GET "+p+"/.well-known/openid-configuration", s.discovery)
	mux.HandleFunc("GET "+p+"/o/oauth2/v2/auth", s.authorize)
	mux.HandleFunc("GET "+p+"/o/oauth2/auth", s.authorize) // the older URL x/oauth2's google.Endpoint uses
	mux.HandleFunc("POST "+p+"/o/oauth2/v2/consent", s.consent)
	mux.HandleFunc("POST "+p+"/token", s.token)
	mux.HandleFunc("POST "+p+"/revoke", s.revoke)
	mux.HandleFunc("GET "+p+"/v1/userinfo", s.userinfo)
	mux.HandleFunc("GET "+p+"/oauth2/v3/userinfo", s.userinfo)
	mux.HandleFunc("GET "+p+"/tokeninfo", s.tokeninfo)
	mux.HandleFunc("POST "+p+"/tokeninfo", s.tokeninfo)
	mux.HandleFunc("GET "+p+"/oauth2/v3/certs", s.certs)
	s.registerDrive(mux, p)
	s.registerDocs(mux, p)
}

func issuer(r *http.Request) string { return oauthcore.BaseURL(r) + "/sandbox/google" }

func (s *Sim) discovery(w http.ResponseWriter, r *http.Request) {
	iss := issuer(r)
	oauthcore.SetDate(w, s.providerNow())
	oauthcore.WriteJSON(w, http.StatusOK, map[string]any{
		"issuer":                                iss,
		"authorization_endpoint":                iss + "/o/oauth2/v2/auth",
		"token_endpoint":                        iss + "/token",
		"userinfo_endpoint":                     iss + "/v1/userinfo",
		"revocation_endpoint":                   iss + "/revoke",
		"jwks_uri":                              iss + "/oauth2/v3/certs",
		"response_types_supported":              []string{"code", "token", "id_token", "code token", "code id_token", "token id_token", "code token id_token", "none"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"scopes_supported":                      []string{"openid", "email", "profile"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_post", "client_secret_basic"},
		"claims_supported":                      []string{"aud", "email", "email_verified", "exp", "family_name", "given_name", "iat", "iss", "name", "picture", "sub"},
		"code_challenge_methods_supported":      []string{"plain", "S256"},
		"grant_types_supported":                 []string{"authorization_code", "refresh_token", "urn:ietf:params:oauth:grant-type:device_code", "urn:ietf:params:oauth:grant-type:jwt-bearer"},
	}, "  ")
}

func (s *Sim) certs(w http.ResponseWriter, r *http.Request) {
	oauthcore.SetDate(w, s.providerNow())
	oauthcore.WriteJSON(w, http.StatusOK, oauthcore.JWKS(), "  ")
}

// normalizeScopes maps the short identity scopes to the URLs Google reports.
func normalizeScopes(scopes []string) []string {
	out := make([]string, 0, len(scopes))
	for _, sc := range scopes {
		switch sc {
		case "email":
			sc = ScopeEmail
		case "profile":
			sc = ScopeProfile
		}
		out = append(out, sc)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// identityScope is granted without a checkbox: Google's consent lists it but
// granular consent cannot untick it.
func identityScope(sc string) bool { return sc == "openid" || sc == ScopeEmail || sc == ScopeProfile }

var knownScopes = []string{ScopeDrive, ScopeDriveFile, ScopeDriveReadonly, ScopeDriveMetadataRO, ScopeDriveMetadata, ScopeDriveAppdata,
	ScopeDocuments, ScopeDocumentsRO, ScopePrefix + "drive.photos.readonly", ScopePrefix + "drive.scripts", ScopePrefix + "drive.meet.readonly",
	ScopePrefix + "gmail.readonly", ScopePrefix + "gmail.send", ScopePrefix + "calendar", ScopePrefix + "calendar.readonly",
	ScopePrefix + "spreadsheets", ScopePrefix + "spreadsheets.readonly"}

func validScope(sc string) bool { return identityScope(sc) || slices.Contains(knownScopes, sc) }

// authorize is the authorization endpoint: it validates the request (errors
// about the client or redirect URI are shown on Google's own page and never
// reach the app), then answers from the admin consent preset or shows the
// consent page.
func (s *Sim) authorize(w http.ResponseWriter, r *http.Request) {
	oauthcore.SetDate(w, s.providerNow())
	ar, ok := s.core.StartAuthorize(w, r, oauthcore.AuthorizeOptions{Provider: "Google",
		UnknownClient: oauthcore.PageError{Status: http.StatusUnauthorized, Code: "invalid_client", Message: "The OAuth client was not found."},
		BadRedirect:   oauthcore.PageError{Status: http.StatusBadRequest, Code: "redirect_uri_mismatch", Message: "You can't sign in to this app because it doesn't comply with Google's OAuth 2.0 policy. If you're the app developer, register the redirect URI in the Google Cloud Console."}})
	if !ok {
		return
	}
	q, client := ar.Params, ar.Client
	back := func(v url.Values) { ar.Back(w, r, v) }
	if q.Get("response_type") != "code" {
		back(url.Values{"error": {"unsupported_response_type"}})
		return
	}
	requested := normalizeScopes(strings.Fields(q.Get("scope")))
	if len(requested) == 0 {
		oauthcore.ErrorPage(w, http.StatusBadRequest, "Google", "invalid_request", "Missing required parameter: scope")
		return
	}
	var valid, invalid []string
	for _, sc := range requested {
		if validScope(sc) {
			valid = append(valid, sc)
		} else {
			invalid = append(invalid, sc)
		}
	}
	if len(invalid) > 0 {
		oauthcore.ErrorPage(w, http.StatusBadRequest, "Google", "invalid_scope",
			fmt.Sprintf("Some requested scopes were invalid. {valid=[%s], invalid=[%s]}", strings.Join(valid, ", "), strings.Join(invalid, ", ")))
		return
	}
	if ch, m := q.Get("code_challenge"), q.Get("code_challenge_method"); ch != "" {
		if m != "" && m != "S256" && m != "plain" {
			back(url.Values{"error": {"invalid_request"}, "error_description": {"Invalid code_challenge_method"}})
			return
		}
		if len(ch) < 43 || len(ch) > 128 {
			back(url.Values{"error": {"invalid_request"}, "error_description": {"Invalid code_challenge"}})
			return
		}
	}
	prompts := strings.Fields(q.Get("prompt"))
	if slices.Contains(prompts, "none") {
		if len(prompts) > 1 {
			back(url.Values{"error": {"invalid_request"}})
			return
		}
		hint := q.Get("login_hint")
		if hint == "" {
			back(url.Values{"error": {"login_required"}})
			return
		}
		acct := s.AccountFor(hint)
		g, ok := s.core.GrantFor(client.ID, acct.Sub)
		if !ok || len(oauthcore.Intersect(requested, g.Scopes)) != len(requested) {
			back(url.Values{"error": {"consent_required"}})
			return
		}
		s.finish(w, r, q, client, acct, requested, 0)
		return
	}
	if p, ok := s.core.CurrentPreset(); ok {
		if p.Deny {
			back(url.Values{"error": {"access_denied"}})
			return
		}
		granted := requested
		if p.GrantedScopes != nil {
			granted = grantedSubset(requested, normalizeScopes(p.GrantedScopes))
		}
		s.finish(w, r, q, client, s.AccountFor(p.Account), granted, time.Duration(p.AccessTokenTTLSeconds)*time.Second)
		return
	}
	var fixed, optional []string
	for _, sc := range requested {
		if identityScope(sc) {
			fixed = append(fixed, sc)
		} else {
			optional = append(optional, sc)
		}
	}
	oauthcore.RenderConsent(w, oauthcore.ConsentPage{
		Provider: "Google", ClientName: client.Name, Action: "/sandbox/google/o/oauth2/v2/consent",
		PendingID: s.core.SavePending(q), Account: q.Get("login_hint"), Accounts: s.Accounts(),
		Scopes: optional, FixedScopes: fixed,
	})
}

// grantedSubset keeps the requested scopes the user granted; identity
// scopes are always granted.
func grantedSubset(requested, chosen []string) []string {
	var out []string
	for _, sc := range requested {
		if identityScope(sc) || slices.Contains(chosen, sc) {
			out = append(out, sc)
		}
	}
	return out
}

// consent receives the consent page's form.
func (s *Sim) consent(w http.ResponseWriter, r *http.Request) {
	oauthcore.SetDate(w, s.providerNow())
	c, ok := s.core.ReadConsent(w, r, oauthcore.ConsentOptions{Provider: "Google", RequireEmail: true})
	if !ok {
		return
	}
	requested := normalizeScopes(strings.Fields(c.Params.Get("scope")))
	s.finish(w, r, c.Params, c.Client, s.AccountFor(c.Account), grantedSubset(requested, c.Form["scope"]), 0)
}

// finish issues the code for an approved authorization and redirects back.
func (s *Sim) finish(w http.ResponseWriter, r *http.Request, q url.Values, client *oauthcore.Client, acct *Account, granted []string, ttl time.Duration) {
	if s.faults.AdminBlocked(Provider, acct.Email, acct.Domain) {
		// Google shows this on its own page; the app never hears of it.
		oauthcore.ErrorPage(w, http.StatusBadRequest, "Google", "admin_policy_enforced",
			"Access to your account data is restricted by policies within your organization. Please contact the administrator for your organization for more information.")
		return
	}
	prev, hadGrant := s.core.GrantFor(client.ID, acct.Sub)
	offline := q.Get("access_type") == "offline"
	forced := slices.Contains(strings.Fields(q.Get("prompt")), "consent")
	tokenScopes := granted
	if q.Get("include_granted_scopes") == "true" {
		tokenScopes = normalizeScopes(append(slices.Clone(granted), prev.Scopes...))
	}
	code := s.core.IssueCode(oauthcore.CodeParams{
		ClientID: client.ID, RedirectURI: q.Get("redirect_uri"), AccountID: acct.Sub,
		GrantScopes: granted, TokenScopes: tokenScopes,
		Challenge: q.Get("code_challenge"), ChallengeMethod: cmp.Or(q.Get("code_challenge_method"), methodFor(q.Get("code_challenge"))),
		// A refresh token only with offline access, and only on the first
		// consent of this client+account or when consent is forced.
		IssueRefresh: offline && (!hadGrant || forced),
		AccessTTL:    ttl,
		Extra:        map[string]string{"nonce": q.Get("nonce")},
	})
	params := url.Values{"code": {code.Value}, "scope": {strings.Join(tokenScopes, " ")}, "authuser": {"0"}, "prompt": {"consent"}}
	if st := q.Get("state"); st != "" {
		params.Set("state", st)
	}
	if acct.Domain != "" {
		params.Set("hd", acct.Domain)
	}
	oauthcore.RedirectWith(w, r, q.Get("redirect_uri"), params)
}

func methodFor(challenge string) string {
	if challenge == "" {
		return ""
	}
	return "plain" // RFC 7636 §4.3: the default method is plain
}

// ApplyFault applies a stateful fault for account (an email; "" for all).
func (s *Sim) ApplyFault(f fault.Spec) error {
	sub := ""
	if f.Account != "" {
		sub = s.AccountFor(f.Account).Sub
	}
	switch f.Fault {
	case fault.Revoke:
		if sub == "" {
			for _, e := range s.Accounts() {
				s.core.RevokeGrant("", s.AccountFor(e).Sub)
			}
			return nil
		}
		s.core.RevokeGrant("", sub)
	case fault.ExpireAccessTokens:
		s.core.ExpireAccess(sub)
	case fault.DropScope:
		sc := normalizeScopes([]string{f.Scope})[0]
		s.core.DropScope(sub, sc)
	case fault.Unshare:
		return s.unshareFile(f.Resource)
	}
	return nil
}
