// Package oauthsim emulates a standards-following OAuth 2.0 / OpenID Connect
// server that rotates refresh tokens the strict way (Ory Hydra, reference
// §6.1): every refresh returns a new refresh token and retires the old one
// together with its access token; presenting a retired refresh token again
// revokes the whole token family, newest tokens included (RFC 9700 §4.14.2).
// Refresh tokens are issued only when offline_access (or offline) is granted.
// Errors follow RFC 6749 §5.2 (token endpoint), RFC 6750 §3 (the protected
// resource at /api/me) and RFC 7009 (revocation answers 200 even for unknown
// tokens). Its issuer is <base>/sandbox/oidc, discoverable both the OIDC way
// and the RFC 8414 way.
//
// It is a naive multi-process refresher's worst enemy, which is the point.
// Like all of the sandbox it must never import authgate's internal packages.
package oauthsim

import (
	"cmp"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/authgate/authgate/sandbox/fault"
	"github.com/authgate/authgate/sandbox/oauthcore"
)

// Provider is this emulator's name in the admin API.
const Provider = "oidc"

// Default client credentials (any loopback redirect URI).
const (
	DefaultClientID     = "sandbox-oidc-client"
	DefaultClientSecret = "sandbox-oidc-client-secret"
)

// fositeInvalidGrant is the RFC 6749 description fosite prefixes to its hints.
const fositeInvalidGrant = "The provided authorization grant (e.g., authorization code, resource owner credentials) or refresh token is invalid, expired, revoked, does not match the redirection URI used in the authorization request, or was issued to another client."

// Options configures the emulator.
type Options struct {
	Clock  oauthcore.Clock
	Faults *fault.Registry
	Seed   uint64
	// AccessTTL is the access-token lifetime (default 1 h; expires_in reports
	// one second less, as Hydra does).
	AccessTTL time.Duration
	// GracePeriod lets a just-rotated refresh token be reused briefly and get
	// the same new pair (default 0: Hydra's default).
	GracePeriod time.Duration
}

// Sim is the rotating server.
type Sim struct {
	core   *oauthcore.Server
	faults *fault.Registry
	clock  oauthcore.Clock
}

// New returns the emulator with its default client.
func New(o Options) *Sim {
	if o.AccessTTL == 0 {
		o.AccessTTL = time.Hour
	}
	s := &Sim{faults: o.Faults, clock: o.Clock}
	s.core = oauthcore.New(oauthcore.Config{
		Provider: Provider, AccessTTL: o.AccessTTL, RotateRefresh: true, ReuseDetection: true, GracePeriod: o.GracePeriod,
		Clock: o.Clock, Seed: o.Seed, AccessPrefix: "ory_at_", RefreshPrefix: "ory_rt_", CodePrefix: "ory_ac_",
	})
	s.core.RegisterClient(oauthcore.Client{ID: DefaultClientID, Secret: DefaultClientSecret, Name: "authgate sandbox app", AnyLoopbackRedirect: true})
	return s
}

// Core is the authorization-server state.
func (s *Sim) Core() *oauthcore.Server { return s.core }

// Name is the provider name.
func (s *Sim) Name() string { return Provider }

func (s *Sim) providerNow() time.Time { return s.clock.Now().Add(s.faults.ClockOffset(Provider)) }

// Register mounts the routes.
func (s *Sim) Register(mux *http.ServeMux) {
	p := "/sandbox/oidc"
	mux.HandleFunc("GET "+p+"/.well-known/openid-configuration", s.discovery)
	mux.HandleFunc("GET /.well-known/oauth-authorization-server"+p, s.discovery) // RFC 8414 §3: inserted before the path
	mux.HandleFunc("GET "+p+"/.well-known/oauth-authorization-server", s.discovery)
	mux.HandleFunc("GET "+p+"/oauth2/auth", s.authorize)
	mux.HandleFunc("POST "+p+"/oauth2/consent", s.consent)
	mux.HandleFunc("POST "+p+"/oauth2/token", s.token)
	mux.HandleFunc("POST "+p+"/oauth2/revoke", s.revoke)
	mux.HandleFunc("POST "+p+"/oauth2/introspect", s.introspect)
	mux.HandleFunc("GET "+p+"/userinfo", s.userinfo)
	mux.HandleFunc("GET "+p+"/.well-known/jwks.json", s.jwks)
	mux.HandleFunc("GET "+p+"/api/me", s.apiMe)
}

func issuer(r *http.Request) string { return oauthcore.BaseURL(r) + "/sandbox/oidc" }

func (s *Sim) discovery(w http.ResponseWriter, r *http.Request) {
	iss := issuer(r)
	oauthcore.SetDate(w, s.providerNow())
	oauthcore.WriteJSON(w, http.StatusOK, map[string]any{
		"issuer": iss, "authorization_endpoint": iss + "/oauth2/auth", "token_endpoint": iss + "/oauth2/token",
		"revocation_endpoint": iss + "/oauth2/revoke", "userinfo_endpoint": iss + "/userinfo", "jwks_uri": iss + "/.well-known/jwks.json",
		"introspection_endpoint":   iss + "/oauth2/introspect",
		"response_types_supported": []string{"code"}, "grant_types_supported": []string{"authorization_code", "refresh_token"},
		"subject_types_supported": []string{"public"}, "id_token_signing_alg_values_supported": []string{"RS256"},
		"scopes_supported":                           []string{"openid", "offline_access", "offline", "profile", "email"},
		"token_endpoint_auth_methods_supported":      []string{"client_secret_basic", "client_secret_post"},
		"code_challenge_methods_supported":           []string{"plain", "S256"},
		"revocation_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post"},
	}, "")
}

func (s *Sim) jwks(w http.ResponseWriter, r *http.Request) {
	oauthcore.SetDate(w, s.providerNow())
	oauthcore.WriteJSON(w, http.StatusOK, oauthcore.JWKS(), "")
}

// subject derives a stable subject from an email.
func subject(email string) string { return "user:" + strings.ToLower(strings.TrimSpace(email)) }

func (s *Sim) authorize(w http.ResponseWriter, r *http.Request) {
	oauthcore.SetDate(w, s.providerNow())
	ar, ok := s.core.StartAuthorize(w, r, oauthcore.AuthorizeOptions{Provider: "OIDC",
		UnknownClient: oauthcore.PageError{Status: http.StatusUnauthorized, Code: "invalid_client", Message: "Client authentication failed (e.g., unknown client, no client authentication included, or unsupported authentication method)."},
		BadRedirect:   oauthcore.PageError{Status: http.StatusBadRequest, Code: "invalid_request", Message: "The 'redirect_uri' parameter does not match any of the OAuth 2.0 Client's pre-registered redirect urls."}})
	if !ok {
		return
	}
	q, client := ar.Params, ar.Client
	back := func(v url.Values) { ar.Back(w, r, v) }
	if q.Get("response_type") != "code" {
		back(url.Values{"error": {"unsupported_response_type"}, "error_description": {"The authorization server does not support obtaining a token using this method."}})
		return
	}
	if len(q.Get("state")) < 8 {
		back(url.Values{"error": {"invalid_state"}, "error_description": {"The state is missing or does not have enough characters and is therefore considered too weak. Request parameter 'state' must be at least be 8 characters long to ensure sufficient entropy."}})
		return
	}
	if p, ok := s.core.CurrentPreset(); ok {
		if p.Deny {
			back(url.Values{"error": {"access_denied"}, "error_description": {"The resource owner or authorization server denied the request."}})
			return
		}
		requested := strings.Fields(q.Get("scope"))
		granted := requested
		if p.GrantedScopes != nil {
			granted = nil
			for _, sc := range requested {
				if slices.Contains(p.GrantedScopes, sc) {
					granted = append(granted, sc)
				}
			}
		}
		s.finish(w, r, q, client, p.Account, granted, time.Duration(p.AccessTokenTTLSeconds)*time.Second)
		return
	}
	oauthcore.RenderConsent(w, oauthcore.ConsentPage{Provider: "OIDC", ClientName: client.Name, Action: "/sandbox/oidc/oauth2/consent",
		PendingID: s.core.SavePending(q), Account: q.Get("login_hint"), Scopes: strings.Fields(q.Get("scope"))})
}

func (s *Sim) consent(w http.ResponseWriter, r *http.Request) {
	oauthcore.SetDate(w, s.providerNow())
	c, ok := s.core.ReadConsent(w, r, oauthcore.ConsentOptions{Provider: "OIDC", DenyDescription: "The resource owner or authorization server denied the request."})
	if !ok {
		return
	}
	var granted []string
	for _, sc := range strings.Fields(c.Params.Get("scope")) {
		if slices.Contains(c.Form["scope"], sc) {
			granted = append(granted, sc)
		}
	}
	s.finish(w, r, c.Params, c.Client, c.Account, granted, 0)
}

func (s *Sim) finish(w http.ResponseWriter, r *http.Request, q url.Values, client *oauthcore.Client, email string, granted []string, ttl time.Duration) {
	if s.faults.AdminBlocked(Provider, email, domainOf(email)) {
		v := url.Values{"error": {"access_denied"}, "error_description": {"The resource owner or authorization server denied the request. Access is restricted by policy."}}
		if st := q.Get("state"); st != "" {
			v.Set("state", st)
		}
		oauthcore.RedirectWith(w, r, q.Get("redirect_uri"), v)
		return
	}
	code := s.core.IssueCode(oauthcore.CodeParams{
		ClientID: client.ID, RedirectURI: q.Get("redirect_uri"), AccountID: subject(email), GrantScopes: granted, TokenScopes: granted,
		Challenge: q.Get("code_challenge"), ChallengeMethod: cmp.Or(q.Get("code_challenge_method"), "plain"),
		IssueRefresh: slices.Contains(granted, "offline_access") || slices.Contains(granted, "offline"),
		AccessTTL:    ttl, Extra: map[string]string{"nonce": q.Get("nonce"), "email": strings.ToLower(email)},
	})
	v := url.Values{"code": {code.Value}, "scope": {strings.Join(granted, " ")}}
	if st := q.Get("state"); st != "" {
		v.Set("state", st)
	}
	oauthcore.RedirectWith(w, r, q.Get("redirect_uri"), v)
}

func domainOf(email string) string {
	_, d, _ := strings.Cut(email, "@")
	return d
}

func (s *Sim) tokenError(w http.ResponseWriter, status int, code, description string) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	oauthcore.SetDate(w, s.providerNow())
	body := map[string]any{"error": code, "error_description": description}
	oauthcore.WriteJSON(w, status, body, "")
}

func (s *Sim) token(w http.ResponseWriter, r *http.Request) {
	s.core.CountTokenRequest()
	if err := r.ParseForm(); err != nil {
		s.tokenError(w, http.StatusBadRequest, "invalid_request", "The request is missing a required parameter, includes an invalid parameter value, includes a parameter more than once, or is otherwise malformed.")
		return
	}
	id, secret, basic := oauthcore.ClientCredentials(r)
	client, err := s.core.AuthenticateClient(id, secret)
	if err != nil {
		if basic {
			w.Header().Set("WWW-Authenticate", `Basic realm="sandbox-oidc"`)
		}
		s.tokenError(w, http.StatusUnauthorized, "invalid_client", "Client authentication failed (e.g., unknown client, no client authentication included, or unsupported authentication method).")
		return
	}
	account := ""
	grant := r.PostForm.Get("grant_type")
	if grant == "refresh_token" {
		if t, ok := s.core.PeekRefresh(r.PostForm.Get("refresh_token")); ok {
			account = strings.TrimPrefix(t.AccountID, "user:")
		}
	} else if c, ok := s.core.PeekCode(r.PostForm.Get("code")); ok {
		account = c.Extra["email"]
	}
	switch grant {
	case "authorization_code":
		s.core.CountExchange()
	case "refresh_token":
		s.core.CountRefresh(r.PostForm.Get("refresh_token"))
	}
	d := s.faults.Decide(Provider, account, fault.TargetToken)
	oauthcore.Sleep(r.Context(), d.Latency)
	if d.RateLimited {
		w.Header().Set("Retry-After", strconv.Itoa(d.RetryAfter))
		s.tokenError(w, http.StatusTooManyRequests, "temporarily_unavailable", "The authorization server is currently unable to handle the request due to a temporary overloading or maintenance of the server.")
		return
	}
	if d.ServerError != 0 {
		s.tokenError(w, d.ServerError, "server_error", "The authorization server encountered an unexpected condition that prevented it from fulfilling the request.")
		return
	}
	switch grant {
	case "authorization_code":
		iss, err := s.core.Exchange(oauthcore.ExchangeParams{ClientID: client.ID, Code: r.PostForm.Get("code"), RedirectURI: r.PostForm.Get("redirect_uri"), Verifier: r.PostForm.Get("code_verifier"), RedirectRequired: true})
		if err != nil {
			hint := "The authorization code is invalid or has expired."
			switch oauthcore.KindOf(err) {
			case oauthcore.KindCodeUsed:
				hint = "The authorization code has already been used."
			case oauthcore.KindRedirectMismatch:
				hint = "The 'redirect_uri' from this request does not match the one from the authorize request."
			case oauthcore.KindVerifierMissing, oauthcore.KindVerifierInvalid, oauthcore.KindVerifierNotNeeded:
				hint = "The PKCE code challenge did not match the code verifier."
			}
			s.tokenError(w, http.StatusBadRequest, "invalid_grant", fositeInvalidGrant+" "+hint)
			return
		}
		s.writeTokens(w, r, client.ID, iss, iss.Code.Extra["nonce"])
	case "refresh_token":
		rt := r.PostForm.Get("refresh_token")
		if s.faults.TakeInvalidGrant(Provider, account) {
			s.tokenError(w, http.StatusBadRequest, "invalid_grant", fositeInvalidGrant+" The refresh token expired.")
			return
		}
		iss, err := s.core.Refresh(client.ID, rt)
		switch oauthcore.KindOf(err) {
		case 0:
			s.writeTokens(w, r, client.ID, iss, "")
		case oauthcore.KindRefreshReused:
			s.core.CountReuse()
			s.tokenError(w, http.StatusBadRequest, "invalid_grant", fositeInvalidGrant+" The refresh token was already used.")
		case oauthcore.KindRefreshWrongClient:
			s.tokenError(w, http.StatusBadRequest, "invalid_grant", fositeInvalidGrant+" The OAuth 2.0 Client ID from this request does not match the ID during the initial token issuance.")
		default:
			s.tokenError(w, http.StatusBadRequest, "invalid_grant", fositeInvalidGrant+" The refresh token is malformed or not valid.")
		}
	case "":
		s.tokenError(w, http.StatusBadRequest, "invalid_request", "The request is missing a required parameter, includes an invalid parameter value, includes a parameter more than once, or is otherwise malformed. Request parameter 'grant_type' is missing")
	default:
		s.tokenError(w, http.StatusBadRequest, "unsupported_grant_type", "The authorization grant type is not supported by the authorization server.")
	}
}

func (s *Sim) writeTokens(w http.ResponseWriter, r *http.Request, clientID string, iss *oauthcore.Issued, nonce string) {
	out := map[string]any{
		"access_token": iss.Access.Value, "token_type": "bearer", "scope": strings.Join(iss.Access.Scopes, " "),
		"expires_in": int64(iss.ExpiresIn/time.Second) - 1,
	}
	if iss.Refresh != nil {
		out["refresh_token"] = iss.Refresh.Value
	}
	if slices.Contains(iss.Access.Scopes, "openid") {
		now := s.providerNow()
		claims := map[string]any{"iss": issuer(r), "aud": []string{clientID}, "sub": iss.Access.AccountID, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
			"at_hash": oauthcore.AtHash(iss.Access.Value), "auth_time": now.Unix()}
		if nonce != "" {
			claims["nonce"] = nonce
		}
		if slices.Contains(iss.Access.Scopes, "email") {
			claims["email"], claims["email_verified"] = strings.TrimPrefix(iss.Access.AccountID, "user:"), true
		}
		idt, err := oauthcore.SignJWT(claims)
		if err == nil {
			out["id_token"] = idt
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	oauthcore.SetDate(w, s.providerNow())
	oauthcore.WriteJSON(w, http.StatusOK, out, "")
}

// revoke follows RFC 7009: 200 whether or not the token was valid.
func (s *Sim) revoke(w http.ResponseWriter, r *http.Request) {
	oauthcore.SetDate(w, s.providerNow())
	if err := r.ParseForm(); err != nil {
		s.tokenError(w, http.StatusBadRequest, "invalid_request", "Malformed form.")
		return
	}
	id, secret, _ := oauthcore.ClientCredentials(r)
	if _, err := s.core.AuthenticateClient(id, secret); err != nil {
		s.tokenError(w, http.StatusUnauthorized, "invalid_client", "Client authentication failed (e.g., unknown client, no client authentication included, or unsupported authentication method).")
		return
	}
	s.core.Revoke(r.PostForm.Get("token"))
	w.WriteHeader(http.StatusOK)
}

// introspect is RFC 7662 for the client's own tokens: {"active":false} for
// anything unknown, foreign, revoked, expired or rotated away. (Hydra serves
// this on its admin port; the sandbox keeps one origin.) Asking never uses
// or retires a token.
func (s *Sim) introspect(w http.ResponseWriter, r *http.Request) {
	oauthcore.SetDate(w, s.providerNow())
	if err := r.ParseForm(); err != nil {
		s.tokenError(w, http.StatusBadRequest, "invalid_request", "Malformed form.")
		return
	}
	id, secret, _ := oauthcore.ClientCredentials(r)
	if _, err := s.core.AuthenticateClient(id, secret); err != nil {
		s.tokenError(w, http.StatusUnauthorized, "invalid_client", "Client authentication failed (e.g., unknown client, no client authentication included, or unsupported authentication method).")
		return
	}
	tok := r.PostForm.Get("token")
	if rt, ok := s.core.RefreshActive(id, tok); ok {
		oauthcore.WriteJSON(w, http.StatusOK, map[string]any{"active": true, "token_type": "refresh_token", "client_id": id,
			"scope": strings.Join(rt.Scopes, " "), "sub": subject(rt.AccountID), "iat": rt.IssuedAt.Unix()}, "")
		return
	}
	if a, err := s.core.LookupAccess(tok); err == nil && a.ClientID == id {
		oauthcore.WriteJSON(w, http.StatusOK, map[string]any{"active": true, "token_type": "access_token", "client_id": id,
			"scope": strings.Join(a.Scopes, " "), "sub": subject(a.AccountID), "exp": a.ExpiresAt.Unix()}, "")
		return
	}
	oauthcore.WriteJSON(w, http.StatusOK, map[string]any{"active": false}, "")
}

// resource authenticates a protected-resource call the RFC 6750 way.
func (s *Sim) resource(w http.ResponseWriter, r *http.Request, need string) (oauthcore.Access, bool) {
	s.core.CountAPI()
	oauthcore.SetDate(w, s.providerNow())
	tok := oauthcore.BearerToken(r)
	if tok == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="sandbox-oidc"`)
		w.WriteHeader(http.StatusUnauthorized)
		return oauthcore.Access{}, false
	}
	a, err := s.core.LookupAccess(tok)
	if err != nil {
		desc := "The access token is invalid"
		if oauthcore.KindOf(err) == oauthcore.KindTokenExpired {
			desc = "The access token expired"
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="sandbox-oidc", error="invalid_token", error_description="`+desc+`"`)
		oauthcore.WriteJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_token", "error_description": desc}, "")
		return oauthcore.Access{}, false
	}
	d := s.faults.Decide(Provider, strings.TrimPrefix(a.AccountID, "user:"), fault.TargetAPI)
	oauthcore.Sleep(r.Context(), d.Latency)
	if d.RateLimited {
		w.Header().Set("Retry-After", strconv.Itoa(d.RetryAfter))
		oauthcore.WriteJSON(w, http.StatusTooManyRequests, map[string]string{"error": "rate_limited"}, "")
		return oauthcore.Access{}, false
	}
	if d.ServerError != 0 {
		oauthcore.WriteJSON(w, d.ServerError, map[string]string{"error": "server_error"}, "")
		return oauthcore.Access{}, false
	}
	if need != "" && !slices.Contains(a.Scopes, need) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="sandbox-oidc", error="insufficient_scope", scope="`+need+`"`)
		oauthcore.WriteJSON(w, http.StatusForbidden, map[string]string{"error": "insufficient_scope", "error_description": "The request requires higher privileges than provided by the access token.", "scope": need}, "")
		return oauthcore.Access{}, false
	}
	return a, true
}

func (s *Sim) userinfo(w http.ResponseWriter, r *http.Request) {
	a, ok := s.resource(w, r, "openid")
	if !ok {
		return
	}
	out := map[string]any{"sub": a.AccountID}
	if slices.Contains(a.Scopes, "email") {
		out["email"], out["email_verified"] = strings.TrimPrefix(a.AccountID, "user:"), true
	}
	oauthcore.WriteJSON(w, http.StatusOK, out, "")
}

// apiMe is a protected resource for tests: it needs the "profile" scope.
func (s *Sim) apiMe(w http.ResponseWriter, r *http.Request) {
	a, ok := s.resource(w, r, "profile")
	if !ok {
		return
	}
	oauthcore.WriteJSON(w, http.StatusOK, map[string]any{"sub": a.AccountID, "scopes": a.Scopes, "client_id": a.ClientID}, "")
}

// ApplyFault applies a stateful fault.
func (s *Sim) ApplyFault(f fault.Spec) error {
	sub := ""
	if f.Account != "" {
		sub = subject(f.Account)
	}
	switch f.Fault {
	case fault.Revoke:
		if sub == "" {
			return errAllAccounts
		}
		s.core.RevokeGrant("", sub)
	case fault.ExpireAccessTokens:
		s.core.ExpireAccess(sub)
	case fault.DropScope:
		s.core.DropScope(sub, f.Scope)
	case fault.Unshare:
		return errUnsupported
	}
	return nil
}
