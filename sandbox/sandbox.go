// Package sandbox is authgate's provider emulator: Google (OAuth/OIDC, Drive,
// Docs), Notion, Slack and a generic rotating OAuth2/OIDC server, each under
// its own prefix on one listener (/sandbox/google/…, /sandbox/notion/…,
// /sandbox/slack/…, /sandbox/oidc/…), with a control API under
// /sandbox/admin/… to register clients, preset consent, inject faults and
// read counters. `authgate sandbox` serves it alone; `authgate serve` mounts
// it when no real provider is configured; tests use it through this package.
//
// It is a product feature, not a mock: each emulator copies the real
// provider's status codes, JSON bodies, headers and token lifetimes from
// shared/reference/providers.md. It keeps everything in memory, is safe for
// concurrent use, and is deterministic when seeded. It must never import
// authgate's internal packages (a structure test keeps it so): the emulator
// encodes the providers independently, so it and the product cannot share a
// bug and cancel each other out.
package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/authgate/authgate/sandbox/fault"
	"github.com/authgate/authgate/sandbox/googlesim"
	"github.com/authgate/authgate/sandbox/notionsim"
	"github.com/authgate/authgate/sandbox/oauthcore"
	"github.com/authgate/authgate/sandbox/oauthsim"
	"github.com/authgate/authgate/sandbox/slacksim"
)

// Re-exported names, so callers need only this package.
type (
	// Fault is one injected fault.
	Fault = fault.Spec
	// Consent presets the authorization endpoint's answer.
	Consent = oauthcore.Preset
	// Counters are one provider's request counters.
	Counters = oauthcore.Stats
)

// Clock tells the sandbox's time.
type Clock = oauthcore.Clock

type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }

// Options configures a sandbox. The zero value is a working sandbox.
type Options struct {
	// Clock replaces the wall clock (token expiry, codes, rate limits).
	Clock Clock
	// Seed makes generated tokens and ids deterministic when non-zero.
	Seed uint64
	// GoogleAccessTTL overrides Google's 3599 s access-token lifetime.
	GoogleAccessTTL time.Duration
	// GoogleIssuanceLimit overrides Google's 100 live refresh tokens per client+account.
	GoogleIssuanceLimit int
	// OIDCAccessTTL overrides the rotating server's 1 h access-token lifetime.
	OIDCAccessTTL time.Duration
	// OIDCGracePeriod lets a rotated refresh token be reused briefly (default 0).
	OIDCGracePeriod time.Duration
	// AdminHosts are host names, besides loopback ones, whose Host header
	// the admin API answers (a sandbox deliberately served on a public
	// address). Every other Host is refused: DNS rebinding.
	AdminHosts []string
	// NotionRateLimit is Notion's average requests per second per install
	// (default 3, burst NotionBurst, default 10); negative disables it.
	NotionRateLimit float64
	NotionBurst     int
}

// provider is one emulated provider.
type provider interface {
	Name() string
	Core() *oauthcore.Server
	Register(mux *http.ServeMux)
	ApplyFault(fault.Spec) error
}

// Sandbox is a running emulator.
type Sandbox struct {
	// The last state SaveFile wrote (AutoSave skips unchanged states).
	saveMu    sync.Mutex
	saved     []byte
	savedPath string
	faults    *fault.Registry
	providers map[string]provider
	order     []string
	google    *googlesim.Sim
	notion    *notionsim.Sim
	slack     *slacksim.Sim
	oidc      *oauthsim.Sim
	mux       *http.ServeMux
	admin     []string
}

// New builds a sandbox with every provider and its default client.
func New(o Options) *Sandbox {
	if o.Clock == nil {
		o.Clock = wallClock{}
	}
	s := &Sandbox{faults: &fault.Registry{}, providers: map[string]provider{}, mux: http.NewServeMux(), admin: o.AdminHosts}
	s.google = googlesim.New(googlesim.Options{Clock: o.Clock, Faults: s.faults, Seed: o.Seed, AccessTTL: o.GoogleAccessTTL, IssuanceLimit: o.GoogleIssuanceLimit})
	s.notion = notionsim.New(notionsim.Options{Clock: o.Clock, Faults: s.faults, Seed: o.Seed, RateLimit: o.NotionRateLimit, Burst: o.NotionBurst})
	s.slack = slacksim.New(slacksim.Options{Clock: o.Clock, Faults: s.faults, Seed: o.Seed})
	s.oidc = oauthsim.New(oauthsim.Options{Clock: o.Clock, Faults: s.faults, Seed: o.Seed, AccessTTL: o.OIDCAccessTTL, GracePeriod: o.OIDCGracePeriod})
	for _, p := range []provider{s.google, s.notion, s.slack, s.oidc} {
		s.providers[p.Name()] = p
		s.order = append(s.order, p.Name())
		p.Register(s.mux)
	}
	s.registerAdmin()
	return s
}

// Handler serves every provider and the admin API. Mount it at the root of
// a listener: its routes are /sandbox/… (and the RFC 8414 metadata path
// /.well-known/oauth-authorization-server/sandbox/oidc).
func (s *Sandbox) Handler() http.Handler { return s.mux }

// ProviderNames lists the emulated providers, in the order they are served.
var ProviderNames = []string{googlesim.Provider, notionsim.Provider, slacksim.Provider, oauthsim.Provider}

// DefaultCredentials returns the fixed id and secret of a provider's default
// client: the same in every sandbox process, so several authgate processes
// can share one standalone sandbox.
func DefaultCredentials(provider string) (id, secret string, ok bool) {
	switch provider {
	case googlesim.Provider:
		return googlesim.DefaultClientID, googlesim.DefaultClientSecret, true
	case notionsim.Provider:
		return notionsim.DefaultClientID, notionsim.DefaultClientSecret, true
	case slacksim.Provider:
		return slacksim.DefaultClientID, slacksim.DefaultClientSecret, true
	case oauthsim.Provider:
		return oauthsim.DefaultClientID, oauthsim.DefaultClientSecret, true
	}
	return "", "", false
}

// Google returns the Google emulator (tests inspect its Drive).
func (s *Sandbox) Google() *googlesim.Sim { return s.google }

// OIDC is the rotating OAuth2/OIDC server.
func (s *Sandbox) OIDC() *oauthsim.Sim { return s.oidc }

// Notion returns the Notion emulator (tests look up seeded page ids).
func (s *Sandbox) Notion() *notionsim.Sim { return s.notion }

// Slack returns the Slack emulator (tests look up seeded channel ids).
func (s *Sandbox) Slack() *slacksim.Sim { return s.slack }

// Providers lists the emulated providers.
func (s *Sandbox) Providers() []string { return append([]string(nil), s.order...) }

func (s *Sandbox) provider(name string) (provider, error) {
	p, ok := s.providers[name]
	if !ok {
		return nil, fmt.Errorf("unknown provider %q (one of %v)", name, s.order)
	}
	return p, nil
}

// Client is a registered OAuth client as the admin API shows it.
type Client struct {
	Provider     string   `json:"provider"`
	ClientID     string   `json:"client_id"`
	ClientSecret string   `json:"client_secret"`
	Name         string   `json:"name,omitempty"`
	RedirectURIs []string `json:"redirect_uris"`
	// AnyLoopbackRedirect: the client accepts any loopback redirect URI
	// (the default clients); registered clients match exactly.
	AnyLoopbackRedirect bool `json:"any_loopback_redirect,omitempty"`
}

// RegisterClient registers a new OAuth client with the provider. Its
// redirect URIs are compared by exact string match.
func (s *Sandbox) RegisterClient(providerName string, redirectURIs []string, name string) (Client, error) {
	p, err := s.provider(providerName)
	if err != nil {
		return Client{}, err
	}
	if len(redirectURIs) == 0 || len(redirectURIs) > maxRedirectURIs {
		return Client{}, fmt.Errorf("redirect_uris must list 1 to %d URIs", maxRedirectURIs)
	}
	for _, u := range redirectURIs {
		if len(u) > 2048 {
			return Client{}, errors.New("a redirect URI is longer than 2048 bytes")
		}
	}
	if len(name) > 200 {
		return Client{}, errors.New("name is longer than 200 bytes")
	}
	if name == "" {
		name = "sandbox client"
	}
	if n := len(p.Core().Clients()); n >= maxClients {
		return Client{}, errTooMany{fmt.Sprintf("%s already has %d clients, the sandbox's limit; restart it to start over", providerName, n)}
	}
	c := p.Core().RegisterClient(oauthcore.Client{RedirectURIs: redirectURIs, Name: name})
	return clientView(providerName, *c), nil
}

func clientView(provider string, c oauthcore.Client) Client {
	return Client{Provider: provider, ClientID: c.ID, ClientSecret: c.Secret, Name: c.Name, RedirectURIs: nonNil(c.RedirectURIs), AnyLoopbackRedirect: c.AnyLoopbackRedirect}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// Clients lists every provider's clients.
func (s *Sandbox) Clients() []Client {
	var out []Client
	for _, name := range s.order {
		for _, c := range s.providers[name].Core().Clients() {
			out = append(out, clientView(name, c))
		}
	}
	return out
}

// DefaultClient returns a provider's built-in client.
func (s *Sandbox) DefaultClient(providerName string) (Client, error) {
	p, err := s.provider(providerName)
	if err != nil {
		return Client{}, err
	}
	for _, c := range p.Core().Clients() {
		if c.AnyLoopbackRedirect {
			return clientView(providerName, c), nil
		}
	}
	return Client{}, fmt.Errorf("%s has no default client", providerName)
}

// SetConsent makes the provider's authorization endpoint answer at once as
// c.Account with c's grant, until ClearConsent.
func (s *Sandbox) SetConsent(providerName string, c Consent) error {
	p, err := s.provider(providerName)
	if err != nil {
		return err
	}
	if c.Account == "" && !c.Deny {
		return errors.New("account is required (an email)")
	}
	if c.AccessTokenTTLSeconds < 0 {
		return errors.New("access_token_ttl_seconds cannot be negative")
	}
	p.Core().SetPreset(&c)
	return nil
}

// ConsentPreset is one provider's consent preset, as GET
// /sandbox/admin/consent lists it.
type ConsentPreset struct {
	Provider string `json:"provider"`
	Consent
}

// Consents lists the consent presets in force, by provider name: while one
// is set, every connect to that provider completes as its account, so a
// forgotten preset must be visible.
func (s *Sandbox) Consents() []ConsentPreset {
	out := []ConsentPreset{}
	for _, name := range slices.Sorted(maps.Keys(s.providers)) {
		if c, ok := s.providers[name].Core().CurrentPreset(); ok {
			out = append(out, ConsentPreset{Provider: name, Consent: c})
		}
	}
	return out
}

// ClearConsent removes the provider's consent preset ("" for all).
func (s *Sandbox) ClearConsent(providerName string) error {
	if providerName == "" {
		for _, p := range s.providers {
			p.Core().SetPreset(nil)
		}
		return nil
	}
	p, err := s.provider(providerName)
	if err != nil {
		return err
	}
	p.Core().SetPreset(nil)
	return nil
}

// InjectFault applies or arms one fault.
func (s *Sandbox) InjectFault(f Fault) error {
	p, err := s.provider(f.Provider)
	if err != nil {
		return err
	}
	if err := f.Validate(); err != nil {
		return err
	}
	if len(s.faults.List()) >= maxFaults {
		return errTooMany{fmt.Sprintf("%d faults are armed, the sandbox's limit; DELETE /sandbox/admin/faults first", maxFaults)}
	}
	if err := p.ApplyFault(f); err != nil {
		return err
	}
	s.faults.Add(f)
	return nil
}

// ClearFaults removes armed faults of a provider ("" for all). Stateful
// faults already applied (revoke, expire, drop_scope, unshare) stay applied,
// as they would at the real provider.
func (s *Sandbox) ClearFaults(providerName string) { s.faults.Clear(providerName) }

// Faults lists the armed faults.
func (s *Sandbox) Faults() []fault.Active { return s.faults.List() }

// Counters returns every provider's counters.
func (s *Sandbox) Counters() map[string]Counters {
	out := map[string]Counters{}
	for name, p := range s.providers {
		out[name] = p.Core().Stats()
	}
	return out
}

// ResetCounters zeroes every provider's counters.
func (s *Sandbox) ResetCounters() {
	for _, p := range s.providers {
		p.Core().ResetStats()
	}
}

func (s *Sandbox) registerAdmin() {
	mux := http.NewServeMux()
	s.mux.Handle("/sandbox/admin/", s.guardAdmin(mux))
	s.registerAdminRoutes(mux)
}

func (s *Sandbox) registerAdminRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /sandbox/admin/providers", s.adminProviders)
	mux.HandleFunc("GET /sandbox/admin/clients", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"clients": s.Clients()})
	})
	mux.HandleFunc("POST /sandbox/admin/clients", s.adminRegisterClient)
	mux.HandleFunc("GET /sandbox/admin/consent", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"consents": s.Consents()})
	})
	mux.HandleFunc("POST /sandbox/admin/consent", s.adminConsent)
	mux.HandleFunc("DELETE /sandbox/admin/consent", func(w http.ResponseWriter, r *http.Request) {
		if err := s.ClearConsent(r.URL.Query().Get("provider")); err != nil {
			problem(w, http.StatusBadRequest, err.Error())
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /sandbox/admin/faults", s.adminFault)
	mux.HandleFunc("GET /sandbox/admin/faults", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"faults": s.Faults()})
	})
	mux.HandleFunc("DELETE /sandbox/admin/faults", func(w http.ResponseWriter, r *http.Request) {
		s.ClearFaults(r.URL.Query().Get("provider"))
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /sandbox/admin/counters", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, s.Counters()) })
	mux.HandleFunc("DELETE /sandbox/admin/counters", func(w http.ResponseWriter, r *http.Request) {
		s.ResetCounters()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("/sandbox/admin/", func(w http.ResponseWriter, r *http.Request) {
		problem(w, http.StatusNotFound, fmt.Sprintf("no admin route %s %s", r.Method, r.URL.Path))
	})
}

// adminProviders describes each provider's endpoints and default client, so
// a script can configure its OAuth library from one call.
func (s *Sandbox) adminProviders(w http.ResponseWriter, r *http.Request) {
	base := oauthcore.BaseURL(r)
	out := []map[string]any{}
	for _, name := range s.order {
		c, _ := s.DefaultClient(name)
		out = append(out, map[string]any{"name": name, "endpoints": endpoints(base, name), "default_client": c})
	}
	sort.Slice(out, func(i, j int) bool { return out[i]["name"].(string) < out[j]["name"].(string) })
	writeJSON(w, http.StatusOK, map[string]any{"providers": out})
}

// endpoints lists a provider's main URLs.
func endpoints(base, name string) map[string]string {
	p := base + "/sandbox/" + name
	switch name {
	case "google":
		return map[string]string{"issuer": p, "discovery": p + "/.well-known/openid-configuration", "authorization": p + "/o/oauth2/v2/auth", "token": p + "/token",
			"revocation": p + "/revoke", "userinfo": p + "/v1/userinfo", "drive": p + "/drive/v3/", "docs": p + "/"}
	case "oidc":
		return map[string]string{"issuer": p, "discovery": p + "/.well-known/openid-configuration", "authorization": p + "/oauth2/auth", "token": p + "/oauth2/token",
			"revocation": p + "/oauth2/revoke", "userinfo": p + "/userinfo", "api": p + "/api/me"}
	case "notion":
		return map[string]string{"authorization": p + "/v1/oauth/authorize", "token": p + "/v1/oauth/token", "revocation": p + "/v1/oauth/revoke", "api": p + "/v1/"}
	case "slack":
		return map[string]string{"authorization": p + "/oauth/v2/authorize", "token": p + "/api/oauth.v2.access", "api": p + "/api/"}
	}
	return map[string]string{}
}

// decodeStrict reads one JSON object, refusing unknown fields.
func decodeStrict(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		problem(w, http.StatusBadRequest, "body must be one JSON object with known fields: "+err.Error())
		return false
	}
	return true
}

func (s *Sandbox) adminRegisterClient(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Provider     string   `json:"provider"`
		RedirectURIs []string `json:"redirect_uris"`
		Name         string   `json:"name"`
	}
	if !decodeStrict(w, r, &body) {
		return
	}
	c, err := s.RegisterClient(body.Provider, body.RedirectURIs, body.Name)
	if err != nil {
		problem(w, statusOf(err), err.Error())
		return
	}
	writeJSON(w, http.StatusCreated, c)
}

func (s *Sandbox) adminConsent(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Provider string `json:"provider"`
		Consent
	}
	if !decodeStrict(w, r, &body) {
		return
	}
	if err := s.SetConsent(body.Provider, body.Consent); err != nil {
		problem(w, http.StatusBadRequest, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, body)
}

func (s *Sandbox) adminFault(w http.ResponseWriter, r *http.Request) {
	var f Fault
	if !decodeStrict(w, r, &f) {
		return
	}
	if err := s.InjectFault(f); err != nil {
		problem(w, statusOf(err), err.Error())
		return
	}
	writeJSON(w, http.StatusCreated, f)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Cache-Control", "no-store")
	oauthcore.WriteJSON(w, status, v, "  ")
}

// problem writes an RFC 9457 problem for admin API misuse.
func problem(w http.ResponseWriter, status int, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	typ := "invalid_request"
	switch status {
	case http.StatusNotFound:
		typ = "not_found"
	case http.StatusForbidden:
		typ = "forbidden"
	case http.StatusUnsupportedMediaType:
		typ = "unsupported_media_type"
	case http.StatusInsufficientStorage:
		typ = "limit_reached"
	}
	oauthcore.WriteJSON(w, status, map[string]any{"type": typ, "title": http.StatusText(status), "status": status, "detail": detail}, "  ")
}
