// Package catalog holds the OAuth providers authgate knows as data, not code:
// endpoints, client authentication, PKCE, how to ask for offline access and
// forced consent, whether refresh tokens rotate, and which scopes allow which
// action. The built-in entries live in providers.yaml; users add their own
// (generic OAuth2 or OIDC, discovered via RFC 8414 / OpenID metadata) in a
// YAML file. It must never hold tokens or talk to providers beyond discovery.
//
// YAML parsing uses go.yaml.in/yaml/v3, the YAML organisation's maintained
// continuation of gopkg.in/yaml.v3: the standard library has no YAML.
package catalog

import (
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync/atomic"

	"go.yaml.in/yaml/v3"
)

//go:embed providers.yaml
var builtin []byte

// Kind says which provider-specific code paths apply (identity, token shape).
type Kind string

const (
	KindGoogle Kind = "google"
	KindNotion Kind = "notion"
	KindSlack  Kind = "slack"
	KindOIDC   Kind = "oidc"   // generic, discovered from an issuer
	KindOAuth2 Kind = "oauth2" // generic, explicit endpoints
)

// Provider is one catalog entry.
type Provider struct {
	Name        string `yaml:"name"`
	DisplayName string `yaml:"display_name"`
	Kind        Kind   `yaml:"kind"`
	Issuer      string `yaml:"issuer"`

	AuthorizationURL string `yaml:"authorization_url"`
	TokenURL         string `yaml:"token_url"`
	RevocationURL    string `yaml:"revocation_url"`
	// IntrospectionURL is the RFC 7662 endpoint (optional). The refresher
	// asks it whether a refresh token is still live before presenting one
	// that a crashed process may already have used.
	IntrospectionURL string `yaml:"introspection_url"`
	UserinfoURL      string `yaml:"userinfo_url"`
	// JWKSURL holds the keys that sign the provider's ID tokens; with
	// Issuer it lets the broker verify them (empty: none are verified).
	JWKSURL      string            `yaml:"jwks_url"`
	SandboxPaths map[string]string `yaml:"sandbox_paths"`
	// APIURLs are the base URLs of the provider's APIs the connectors call
	// (google: drive, docs; notion; slack), by name; with the sandbox on,
	// sandbox_paths' "api.<name>" replaces each.
	APIURLs map[string]string `yaml:"api_urls"`

	// ClientAuth is "basic" (client_secret_basic) or "post" (client_secret_post).
	ClientAuth           string `yaml:"client_auth"`
	PKCE                 bool   `yaml:"pkce"`
	RotatesRefreshTokens bool   `yaml:"rotates_refresh_tokens"`
	// RevokesAccessTokenOnRefresh is true for providers that kill the
	// previous access token the moment they answer a refresh (Ory Hydra and
	// other fosite servers; the sandbox oidc). There the refresher never
	// sends a refresh before every token it promised has run its window.
	RevokesAccessTokenOnRefresh bool `yaml:"revokes_access_token_on_refresh"`
	// AccessTokensExpire is false for providers whose access tokens have no
	// lifetime (Notion); default true.
	AccessTokensExpire *bool  `yaml:"access_tokens_expire"`
	ScopeSeparator     string `yaml:"scope_separator"`
	// TokenTimeoutSeconds bounds one call to the token endpoint (default:
	// the refresher's, 30 s). Keep it long: on a provider that rotates
	// refresh tokens, a refresh that times out is never retried with the
	// same refresh token, so a short timeout turns a slow provider into a
	// quarantined credential.
	TokenTimeoutSeconds int `yaml:"token_timeout_seconds"`

	DefaultScopes      []string            `yaml:"default_scopes"`
	OfflineParams      map[string]string   `yaml:"offline_params"`
	AuthorizeParams    map[string]string   `yaml:"authorize_params"`
	ForceConsentParams map[string]string   `yaml:"force_consent_params"`
	Actions            map[string][]string `yaml:"actions"`
	// ScopeEquivalents names, per scope, the other names the provider
	// grants it under (Google answers a request for "email" with
	// ".../auth/userinfo.email"). Every scope comparison goes through
	// HasScope, which reads it.
	ScopeEquivalents map[string][]string `yaml:"scope_equivalents"`

	ClientID     string `yaml:"client_id"`
	ClientSecret string `yaml:"client_secret"`
	// Scopes are requested on every connect (user entries).
	Scopes []string `yaml:"scopes"`
	// Sandbox is set when the endpoints point at the built-in sandbox.
	Sandbox bool `yaml:"-"`
}

// Catalog is the set of usable providers. It is immutable after Load.
type Catalog struct {
	providers map[string]*Provider
}

// Get returns a provider by name.
func (c *Catalog) Get(name string) (*Provider, bool) {
	p, ok := c.providers[name]
	return p, ok
}

// Names lists the providers, sorted.
func (c *Catalog) Names() []string {
	return slices.Sorted(maps.Keys(c.providers))
}

// Credentials are a provider's client id and secret from configuration.
type Credentials struct{ ClientID, ClientSecret string }

// Options tells Load where things are.
type Options struct {
	// SandboxBase is the public base URL of the mounted sandbox (e.g.
	// "http://127.0.0.1:8080"); built-in providers without real credentials
	// point there, with SandboxClients' credentials.
	SandboxBase    string
	SandboxClients map[string]Credentials
	// Real holds configured credentials per built-in provider: a provider
	// listed here uses its real endpoints.
	Real map[string]Credentials
	// UserFile is a YAML file of additional providers (AUTHGATE_PROVIDERS_FILE).
	UserFile string
	// Discover fetches an issuer's metadata (for oidc user entries).
	Discover func(issuer string) (Metadata, error)
}

// Metadata is the part of RFC 8414 / OpenID discovery authgate uses.
type Metadata struct {
	Issuer                            string   `json:"issuer"`
	AuthorizationEndpoint             string   `json:"authorization_endpoint"`
	TokenEndpoint                     string   `json:"token_endpoint"`
	RevocationEndpoint                string   `json:"revocation_endpoint"`
	IntrospectionEndpoint             string   `json:"introspection_endpoint"`
	UserinfoEndpoint                  string   `json:"userinfo_endpoint"`
	JWKSURI                           string   `json:"jwks_uri"`
	CodeChallengeMethodsSupported     []string `json:"code_challenge_methods_supported"`
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported"`
}

var namePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

type file struct {
	Providers []Provider `yaml:"providers"`
}

// Load builds the catalog: built-in providers (real when configured, else
// pointed at the sandbox when one is mounted, else left out) plus the
// user's file. A bad user file is an error naming the entry and field.
func Load(o Options) (*Catalog, error) {
	var b file
	if err := yaml.Unmarshal(builtin, &b); err != nil {
		return nil, fmt.Errorf("built-in catalog: %w", err)
	}
	c := &Catalog{providers: map[string]*Provider{}}
	for i := range b.Providers {
		p := b.Providers[i]
		if creds, ok := o.Real[p.Name]; ok && p.Kind != KindOIDC {
			p.ClientID, p.ClientSecret = creds.ClientID, creds.ClientSecret
		} else if o.SandboxBase != "" {
			creds := o.SandboxClients[p.Name]
			p.ClientID, p.ClientSecret, p.Sandbox = creds.ClientID, creds.ClientSecret, true
			base := strings.TrimRight(o.SandboxBase, "/") + "/sandbox/" + p.Name
			p.Issuer = base
			p.AuthorizationURL = base + p.SandboxPaths["authorization_url"]
			p.TokenURL = base + p.SandboxPaths["token_url"]
			p.RevocationURL = base + p.SandboxPaths["revocation_url"]
			if p.SandboxPaths["userinfo_url"] != "" {
				p.UserinfoURL = base + p.SandboxPaths["userinfo_url"]
			}
			if p.SandboxPaths["jwks_url"] != "" {
				p.JWKSURL = base + p.SandboxPaths["jwks_url"]
			}
			if p.SandboxPaths["introspection_url"] != "" {
				p.IntrospectionURL = base + p.SandboxPaths["introspection_url"]
			}
			apis := map[string]string{}
			for name := range p.APIURLs {
				if sp, ok := p.SandboxPaths["api."+name]; ok {
					apis[name] = base + sp
				}
			}
			p.APIURLs = apis
		} else {
			continue
		}
		c.providers[p.Name] = &p
	}
	if o.UserFile != "" {
		if err := c.loadUser(o); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// ProviderNames lists the provider names known without contacting
// anyone: the built-in entries and the names in the providers file (when
// given). The CLI checks a --provider flag against it.
func ProviderNames(userFile string) ([]string, error) {
	var b file
	if err := yaml.Unmarshal(builtin, &b); err != nil {
		return nil, fmt.Errorf("built-in catalog: %w", err)
	}
	if userFile != "" {
		data, err := os.ReadFile(userFile)
		if err != nil {
			return nil, fmt.Errorf("providers file: %w", err)
		}
		var f file
		if err := yaml.Unmarshal(data, &f); err != nil {
			return nil, fmt.Errorf("providers file %s: %w", userFile, err)
		}
		b.Providers = append(b.Providers, f.Providers...)
	}
	var out []string
	for _, p := range b.Providers {
		out = append(out, p.Name)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

func (c *Catalog) loadUser(o Options) error {
	data, err := os.ReadFile(o.UserFile)
	if err != nil {
		return fmt.Errorf("providers file: %w", err)
	}
	var f file
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return fmt.Errorf("providers file %s: %w", o.UserFile, err)
	}
	for i := range f.Providers {
		p := f.Providers[i]
		bad := func(field, msg string) error {
			name := p.Name
			if name == "" {
				name = fmt.Sprintf("#%d", i+1)
			}
			return fmt.Errorf("providers file %s: entry %s: %s %s", o.UserFile, name, field, msg)
		}
		switch {
		case !namePattern.MatchString(p.Name):
			return bad("name", "must be 1-64 of a-z 0-9 _ -")
		case c.providers[p.Name] != nil && !c.providers[p.Name].Sandbox:
			return bad("name", "is already defined")
		case p.ClientID == "":
			return bad("client_id", "is required")
		case p.ClientSecret == "":
			return bad("client_secret", "is required")
		}
		if p.ClientAuth == "" {
			p.ClientAuth = "basic"
		}
		if p.ClientAuth != "basic" && p.ClientAuth != "post" {
			return bad("client_auth", "must be basic or post")
		}
		if p.ScopeSeparator == "" {
			p.ScopeSeparator = " "
		}
		switch p.Kind {
		case KindOIDC:
			if err := checkURL(p.Issuer); err != nil {
				return bad("issuer", err.Error())
			}
			if o.Discover == nil {
				return bad("issuer", "cannot be discovered here")
			}
			md, err := o.Discover(p.Issuer)
			if err != nil {
				return bad("issuer", "discovery failed: "+err.Error())
			}
			if strings.TrimRight(md.Issuer, "/") != strings.TrimRight(p.Issuer, "/") {
				return bad("issuer", fmt.Sprintf("metadata names issuer %q (RFC 8414 §3.3 requires a match)", md.Issuer))
			}
			p.AuthorizationURL, p.TokenURL, p.RevocationURL, p.UserinfoURL = md.AuthorizationEndpoint, md.TokenEndpoint, md.RevocationEndpoint, md.UserinfoEndpoint
			p.JWKSURL = md.JWKSURI
			if p.IntrospectionURL == "" {
				p.IntrospectionURL = md.IntrospectionEndpoint
			}
			p.PKCE = slices.Contains(md.CodeChallengeMethodsSupported, "S256")
			if len(md.TokenEndpointAuthMethodsSupported) > 0 && !slices.Contains(md.TokenEndpointAuthMethodsSupported, "client_secret_"+p.ClientAuth) {
				p.ClientAuth = strings.TrimPrefix(md.TokenEndpointAuthMethodsSupported[0], "client_secret_")
			}
		case KindOAuth2:
			for field, v := range map[string]string{"authorization_url": p.AuthorizationURL, "token_url": p.TokenURL} {
				if err := checkURL(v); err != nil {
					return bad(field, err.Error())
				}
			}
			if p.RevocationURL != "" {
				if err := checkURL(p.RevocationURL); err != nil {
					return bad("revocation_url", err.Error())
				}
			}
			if p.IntrospectionURL != "" {
				if err := checkURL(p.IntrospectionURL); err != nil {
					return bad("introspection_url", err.Error())
				}
			}
		default:
			return bad("kind", "must be oidc (with issuer) or oauth2 (with authorization_url and token_url)")
		}
		if len(p.DefaultScopes) == 0 {
			p.DefaultScopes = p.Scopes
		}
		for action, scopes := range p.Actions {
			if action == "" || len(scopes) == 0 {
				return bad("actions", fmt.Sprintf("action %q needs at least one scope", action))
			}
		}
		c.providers[p.Name] = &p
	}
	return nil
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return errors.New("must be an absolute http(s) URL")
	}
	return nil
}

// UnknownActionError names an action the provider has no scopes for.
type UnknownActionError struct{ Provider, Action string }

func (e *UnknownActionError) Error() string {
	return fmt.Sprintf("provider %s has no action %q", e.Provider, e.Action)
}

// ScopesFor returns the scopes to request for actions: the first
// alternative of each, plus the provider's default scopes, sorted.
func (p *Provider) ScopesFor(actions []string) ([]string, error) {
	out := slices.Clone(p.DefaultScopes)
	for _, a := range actions {
		alts, ok := p.Actions[a]
		if !ok {
			return nil, &UnknownActionError{Provider: p.Name, Action: a}
		}
		if len(alts) > 0 {
			out = append(out, alts[0])
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// Missing returns, for each action not allowed by granted, the scope to ask
// for (its first alternative), sorted and de-duplicated.
func (p *Provider) Missing(actions, granted []string) ([]string, error) {
	var out []string
	for _, a := range actions {
		alts, ok := p.Actions[a]
		if !ok {
			return nil, &UnknownActionError{Provider: p.Name, Action: a}
		}
		if len(alts) == 0 || slices.ContainsFunc(alts, func(s string) bool { return p.HasScope(granted, s) }) {
			continue
		}
		out = append(out, alts[0])
	}
	sort.Strings(out)
	return slices.Compact(out), nil
}

// HasScope reports whether granted holds scope under any of the names the
// provider grants it under: the one comparison of scopes (doctor, verify,
// preflight, the broker's scope diff and the token route all use it).
func (p *Provider) HasScope(granted []string, scope string) bool {
	if slices.Contains(granted, scope) {
		return true
	}
	for _, alt := range p.ScopeEquivalents[scope] {
		if slices.Contains(granted, alt) {
			return true
		}
	}
	return false
}

// Ungranted returns the scopes of want that granted does not hold (by
// HasScope), in want's order.
func (p *Provider) Ungranted(want, granted []string) []string {
	var out []string
	for _, s := range want {
		if !p.HasScope(granted, s) {
			out = append(out, s)
		}
	}
	return out
}

// APIURL returns the base URL of one of the provider's APIs ("" if none).
func (p *Provider) APIURL(name string) string { return p.APIURLs[name] }

// Expires reports whether the provider's access tokens expire; when they do,
// an access token without a known expiry is treated as expired.
func (p *Provider) Expires() bool { return p.AccessTokensExpire == nil || *p.AccessTokensExpire }

// SplitScopes parses a provider's scope string.
func (p *Provider) SplitScopes(s string) []string {
	var out []string
	for _, x := range strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == ',' }) {
		out = append(out, x)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// JoinScopes formats scopes the provider's way.
func (p *Provider) JoinScopes(s []string) string { return strings.Join(s, p.ScopeSeparator) }

// Holder is a catalog that can be swapped atomically (the public URL of a
// server listening on port 0 is known only after it listens).
type Holder struct{ p atomic.Pointer[Catalog] }

// Set replaces the catalog.
func (h *Holder) Set(c *Catalog) { h.p.Store(c) }

// Get returns a provider by name.
func (h *Holder) Get(name string) (*Provider, bool) {
	c := h.p.Load()
	if c == nil {
		return nil, false
	}
	return c.Get(name)
}

// Names lists the providers.
func (h *Holder) Names() []string {
	c := h.p.Load()
	if c == nil {
		return nil
	}
	return c.Names()
}

// HTTPDiscover fetches OpenID Connect discovery, then RFC 8414 metadata.
func HTTPDiscover(hc *http.Client) func(issuer string) (Metadata, error) {
	return func(issuer string) (Metadata, error) {
		u, err := url.Parse(strings.TrimRight(issuer, "/"))
		if err != nil {
			return Metadata{}, err
		}
		candidates := []string{u.String() + "/.well-known/openid-configuration",
			u.Scheme + "://" + u.Host + "/.well-known/oauth-authorization-server" + u.Path}
		var last error
		for _, c := range candidates {
			resp, err := hc.Get(c)
			if err != nil {
				last = err
				continue
			}
			var md Metadata
			err = json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&md)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || err != nil || md.TokenEndpoint == "" {
				last = fmt.Errorf("%s: HTTP %d", c, resp.StatusCode)
				continue
			}
			return md, nil
		}
		return Metadata{}, last
	}
}

// KnownActions keeps the actions this provider has, in order: a run
// declares the actions of all its bindings together.
func (p *Provider) KnownActions(actions []string) []string {
	var out []string
	for _, a := range actions {
		if _, ok := p.Actions[a]; ok {
			out = append(out, a)
		}
	}
	return out
}
