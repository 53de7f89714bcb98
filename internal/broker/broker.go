// Package broker is the client side of OAuth done right for each provider:
// connect sessions whose state is single-use, expiring and bound to the
// session, PKCE verifiers kept server-side (sealed), authorization URLs with
// each provider's quirks (Google offline access and include_granted_scopes,
// prompt=consent only when no refresh token is held; Notion owner=user; Slack
// comma-separated scopes), the code exchange, identity capture, the scope
// diff (requested, granted, required by the actions), storage of the result
// with its events, and provider-side revocation.
//
// It must never log or return a token, code, state or verifier: only their
// fingerprints.
package broker

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"golang.org/x/oauth2"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/internal/catalog"
	"github.com/authgate/authgate/internal/classify"
	"github.com/authgate/authgate/internal/clock"
	"github.com/authgate/authgate/internal/httprec"
	"github.com/authgate/authgate/internal/returnurl"
	"github.com/authgate/authgate/internal/secret"
	"github.com/authgate/authgate/internal/storage"
	"github.com/authgate/authgate/internal/vault"
)

// Providers looks up catalog entries.
type Providers interface {
	Get(name string) (*catalog.Provider, bool)
}

// Config configures a Broker.
type Config struct {
	Store     storage.Store
	Vault     *vault.Vault
	Keys      vault.Keys
	Providers Providers
	Clock     clock.Clock
	Logger    *slog.Logger
	Transport http.RoundTripper
	// PublicURL is where users' browsers reach authgate (connect links and
	// the OAuth callback).
	PublicURL func() string
	// ReturnURLAllowList holds URL prefixes any tenant's connect session may
	// send the user back to (server-wide); each tenant adds its own list, and
	// loopback URLs are always allowed.
	ReturnURLAllowList []string
	// TenantReturnURLs reads a tenant's own allow-list.
	TenantReturnURLs func(ctx context.Context, tenant authgate.TenantID) ([]string, error)
	// SessionTTL is how long a connect link works (default 15 minutes).
	SessionTTL time.Duration
	// SessionRetention is how long a finished or expired session stays
	// readable (GET /v1/connect-sessions/{id}) before it is pruned
	// (default 24 hours).
	SessionRetention time.Duration
	// SecureCookies marks the browser-binding cookie Secure (public URL is https).
	SecureCookies bool
	// OnExchange observes code exchanges (metrics): provider and outcome.
	OnExchange func(provider, outcome string)
}

// Broker runs connect flows. Safe for concurrent use.
type Broker struct {
	cfg   Config
	rules []returnurl.Rule
	// lastPrune is when this process last pruned old sessions (unix nanos).
	lastPrune atomic.Int64
}

// New returns a broker.
func New(cfg Config) *Broker {
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Transport == nil {
		cfg.Transport = http.DefaultTransport
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 15 * time.Minute
	}
	if cfg.SessionRetention <= 0 {
		cfg.SessionRetention = 24 * time.Hour
	}
	// The server validates the list at start-up; an entry that still does
	// not parse here allows nothing.
	b := &Broker{cfg: cfg}
	for _, raw := range cfg.ReturnURLAllowList {
		if r, err := returnurl.ParseRule(raw); err == nil {
			b.rules = append(b.rules, r)
		}
	}
	return b
}

// CallbackPath is where providers redirect back to.
const CallbackPath = "/oauth/callback"

func (b *Broker) callbackURL() string {
	return strings.TrimRight(b.cfg.PublicURL(), "/") + CallbackPath
}

// SessionParams starts a connect flow.
type SessionParams struct {
	TenantID authgate.TenantID
	UserID   string
	Provider string
	// Actions the credential must allow; their scopes are requested.
	Actions []string
	// Scopes are requested in addition.
	Scopes []string
	// CredentialID makes this a reconnect of that credential.
	CredentialID authgate.CredentialID
	LoginHint    string
	ReturnURL    string
	ForceConsent bool
	// ExpectedAccount names the provider account the app expects: an email,
	// a Workspace domain or a provider subject. Another account is refused
	// with identity_mismatch.
	ExpectedAccount string
}

// Session is a created connect session.
type Session struct {
	ID         string
	ConnectURL string
	ExpiresAt  time.Time
	Provider   string
	Scopes     []string
	// ExpectedAccount echoes the request ("" accepts any account).
	ExpectedAccount string
}

// sealedSecrets is the JSON sealed into a session row (an internal
// encoding, not a wire type).

type sealedSecrets struct {
	State    string `json:"s"`
	Verifier string `json:"v"`
	Nonce    string `json:"n,omitempty"`
}

var idEnc = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

func random(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

func hashState(state string) []byte {
	sum := sha256.Sum256([]byte("authgate/state\x00" + state))
	return sum[:]
}

func sessionAD(id string) []byte { return vault.SessionAssociatedData(id) }

// CreateSession validates the request and stores a connect session.
func (b *Broker) CreateSession(ctx context.Context, p SessionParams) (Session, error) {
	prov, ok := b.cfg.Providers.Get(p.Provider)
	if !ok {
		return Session{}, authgate.Errorf(authgate.ClassInvalidRequest, "unknown provider %q", p.Provider)
	}
	if p.UserID == "" || len(p.UserID) > 255 {
		return Session{}, authgate.Errorf(authgate.ClassInvalidRequest, "user_id is required (at most 255 bytes)")
	}
	// The same rule the vault applies when the flow stores the credential:
	// checked here, a bad id fails now instead of after the user consented.
	for field, v := range map[string]string{"user_id": p.UserID, "login_hint": p.LoginHint, "expected_account": p.ExpectedAccount} {
		if !utf8.ValidString(v) || strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			return Session{}, authgate.Errorf(authgate.ClassInvalidRequest, "%s must be printable UTF-8 text", field)
		}
	}
	scopes, err := prov.ScopesFor(p.Actions)
	if err != nil {
		return Session{}, authgate.Errorf(authgate.ClassInvalidRequest, "%s", err.Error())
	}
	scopes = append(scopes, prov.Scopes...)
	for _, s := range p.Scopes {
		if s == "" || strings.ContainsAny(s, " ,\t\n") {
			return Session{}, authgate.Errorf(authgate.ClassInvalidRequest, "scopes must be single scope strings")
		}
		scopes = append(scopes, s)
	}
	force := p.ForceConsent
	if p.CredentialID != "" {
		c, err := b.cfg.Vault.Get(ctx, p.TenantID, p.CredentialID)
		if err != nil {
			return Session{}, err
		}
		if c.UserID != p.UserID || c.Provider != p.Provider {
			return Session{}, authgate.Errorf(authgate.ClassInvalidRequest, "credential %s belongs to user %s and provider %s", c.ID, c.UserID, c.Provider)
		}
		scopes = append(scopes, c.GrantedScopes...)
		if p.LoginHint == "" {
			p.LoginHint = c.Account.Email
		}
		force = force || !c.HasRefreshToken
	} else if !force {
		// Re-consent burns Google's refresh-token issuance limit: ask for it
		// only when we hold no refresh token for this user at this provider.
		held, err := b.holdsRefreshToken(ctx, p)
		if err != nil {
			return Session{}, err
		}
		force = !held
	}
	slices.Sort(scopes)
	scopes = slices.Compact(scopes)
	if p.ReturnURL != "" {
		if err := b.checkReturnURL(ctx, p.TenantID, p.ReturnURL); err != nil {
			return Session{}, authgate.Errorf(authgate.ClassInvalidRequest, "%s", err.Error())
		}
	}
	if len(p.ExpectedAccount) > 255 || strings.ContainsAny(p.ExpectedAccount, " \t\r\n") {
		return Session{}, authgate.Errorf(authgate.ClassInvalidRequest, "expected_account must be one email, domain or subject (at most 255 bytes)")
	}
	if p.LoginHint == "" && strings.Contains(p.ExpectedAccount, "@") {
		p.LoginHint = p.ExpectedAccount
	}
	now := b.cfg.Clock.Now().UTC().Truncate(time.Microsecond)
	b.pruneSometimes(ctx, now)
	if p.CredentialID != "" {
		if s, ok := b.reusable(ctx, p, scopes, force, now); ok {
			return b.sessionView(s), nil
		}
	}
	id := "cs_" + idEnc.EncodeToString(random(16))
	st := sealedSecrets{State: base64.RawURLEncoding.EncodeToString(random(32)), Verifier: oauth2.GenerateVerifier()}
	if wantsIDToken(prov, scopes) {
		st.Nonce = base64.RawURLEncoding.EncodeToString(random(24))
	}
	secrets, err := json.Marshal(st)
	if err != nil {
		return Session{}, fmt.Errorf("create connect session: %w", err)
	}
	s := &storage.ConnectSession{ID: id, TenantID: p.TenantID, UserID: p.UserID, Provider: p.Provider, CredentialID: p.CredentialID,
		RequestedScopes: scopes, Actions: p.Actions, LoginHint: p.LoginHint, ReturnURL: p.ReturnURL, ForceConsent: force,
		StateHash: hashState(st.State), Verifier: b.cfg.Keys.Seal(secrets, sessionAD(id)), CreatedAt: now, ExpiresAt: now.Add(b.cfg.SessionTTL),
		ExpectedAccount: p.ExpectedAccount}
	if err := b.cfg.Store.ConnectSessionInsert(ctx, s); err != nil {
		return Session{}, fmt.Errorf("create connect session: %w", err)
	}
	return b.sessionView(s), nil
}

func (b *Broker) sessionView(s *storage.ConnectSession) Session {
	return Session{ID: s.ID, ConnectURL: strings.TrimRight(b.cfg.PublicURL(), "/") + "/connect/" + s.ID, ExpiresAt: s.ExpiresAt, Provider: s.Provider,
		Scopes: s.RequestedScopes, ExpectedAccount: s.ExpectedAccount}
}

func (b *Broker) holdsRefreshToken(ctx context.Context, p SessionParams) (bool, error) {
	creds, _, err := b.cfg.Vault.List(ctx, vault.ListParams{TenantID: p.TenantID, UserID: p.UserID, Provider: p.Provider, Limit: 1000})
	if err != nil {
		return false, err
	}
	for _, c := range creds {
		if c.HasRefreshToken && c.Status == authgate.CredentialStatusActive && (p.LoginHint == "" || strings.EqualFold(c.Account.Email, p.LoginHint)) {
			return true, nil
		}
	}
	return false, nil
}

// checkReturnURL matches by parsed origin and path segment (package
// returnurl), against the server-wide rules and the tenant's own.
func (b *Broker) checkReturnURL(ctx context.Context, tenant authgate.TenantID, raw string) error {
	rules := slices.Clone(b.rules)
	if b.cfg.TenantReturnURLs != nil {
		own, err := b.cfg.TenantReturnURLs(ctx, tenant)
		if err != nil {
			return err
		}
		for _, o := range own {
			if r, err := returnurl.ParseRule(o); err == nil {
				rules = append(rules, r)
			}
		}
	}
	return returnurl.Check(raw, rules)
}

func (b *Broker) openSecrets(s *storage.ConnectSession) (sealedSecrets, error) {
	pt, err := b.cfg.Keys.Open(s.Verifier, sessionAD(s.ID))
	if err != nil {
		return sealedSecrets{}, fmt.Errorf("connect session %s: %w", s.ID, err)
	}
	var st sealedSecrets
	return st, json.Unmarshal(pt, &st)
}

func (b *Broker) oauthConfig(p *catalog.Provider, scopes []string) *oauth2.Config {
	style := oauth2.AuthStyleInHeader
	if p.ClientAuth == "post" {
		style = oauth2.AuthStyleInParams
	}
	return &oauth2.Config{ClientID: p.ClientID, ClientSecret: p.ClientSecret, RedirectURL: b.callbackURL(), Scopes: scopes,
		Endpoint: oauth2.Endpoint{AuthURL: p.AuthorizationURL, TokenURL: p.TokenURL, AuthStyle: style}}
}

// AuthorizeURL is where GET /connect/{id} sends the browser. The first
// browser to open the link gets a binding cookie (newCookie, to be set under
// CookieName(id)); from then on only a browser presenting it (cookie) may
// use the link or complete the flow.
func (b *Broker) AuthorizeURL(ctx context.Context, id, cookie string) (redirect, newCookie string, err error) {
	s, err := b.cfg.Store.ConnectSessionGet(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return "", "", authgate.Errorf(authgate.ClassNotFound, "no such connect link")
	}
	if err != nil {
		return "", "", err
	}
	now := b.cfg.Clock.Now()
	if !s.UsedAt.IsZero() || s.Outcome != "" || !now.Before(s.ExpiresAt) {
		return "", "", errLinkDead
	}
	if s.OpenedAt.IsZero() {
		tok := base64.RawURLEncoding.EncodeToString(random(32))
		switch err := b.cfg.Store.ConnectSessionOpen(ctx, storage.ConnectSessionOpenParams{ID: id, BrowserHash: hashBrowser(tok), Now: now}); {
		case err == nil:
			newCookie, s.BrowserHash = tok, hashBrowser(tok)
		case errors.Is(err, storage.ErrConflict):
			if s, err = b.cfg.Store.ConnectSessionGet(ctx, id); err != nil {
				return "", "", err
			}
		case errors.Is(err, storage.ErrNotFound):
			return "", "", errLinkDead
		default:
			return "", "", err
		}
	}
	if newCookie == "" && !boundTo(s, cookie) {
		return "", "", errOpenedElsewhere
	}
	p, ok := b.cfg.Providers.Get(s.Provider)
	if !ok {
		return "", "", authgate.Errorf(authgate.ClassClientMisconfigured, "provider %s is no longer configured", s.Provider)
	}
	st, err := b.openSecrets(s)
	if err != nil {
		return "", "", err
	}
	var opts []oauth2.AuthCodeOption
	opts = append(opts, oauth2.SetAuthURLParam("scope", p.JoinScopes(s.RequestedScopes)))
	for _, m := range []map[string]string{p.OfflineParams, p.AuthorizeParams} {
		for k, v := range m {
			opts = append(opts, oauth2.SetAuthURLParam(k, v))
		}
	}
	if s.ForceConsent {
		for k, v := range p.ForceConsentParams {
			opts = append(opts, oauth2.SetAuthURLParam(k, v))
		}
	}
	if s.LoginHint != "" && p.Kind == catalog.KindGoogle || s.LoginHint != "" && p.Kind == catalog.KindOIDC {
		opts = append(opts, oauth2.SetAuthURLParam("login_hint", s.LoginHint))
	}
	if p.PKCE {
		opts = append(opts, oauth2.S256ChallengeOption(st.Verifier))
	}
	if st.Nonce != "" {
		opts = append(opts, oauth2.SetAuthURLParam("nonce", st.Nonce))
	}
	return b.oauthConfig(p, s.RequestedScopes).AuthCodeURL(st.State, opts...), newCookie, nil
}

// Result is a completed connect flow.
type Result struct {
	Credential authgate.Credential
	Created    bool
	Requested  []string
	Granted    []string
	// Missing are scopes the session's actions need that were not granted:
	// a partial grant is stored, reported, and not success for those actions.
	Missing   []string
	ReturnURL string
	Provider  string
	SessionID string
}

// Outcomes of a connect flow that did not connect, as the return URL's
// status parameter and the session's outcome word say them.
const (
	// OutcomeCanceled: the user declined at the provider (Cancel). Not an
	// error of any credential: nothing changed.
	OutcomeCanceled = "canceled"
	OutcomeError    = "error"
)

// CallbackError is a connect flow that ended in an error the user should see.
type CallbackError struct {
	Problem *authgate.Error
	Code    string // the provider's error code (access_denied, …)
	// Outcome is OutcomeCanceled or OutcomeError; finish records it on the
	// session (GET /v1/connect-sessions/{id}).
	Outcome   string
	ReturnURL string
	Provider  string
	SessionID string // set once the session was consumed
}

// mismatchMessage names both accounts so the user can tell them apart, even
// when they share an email (a deleted and re-created account, another
// workspace): then the account ids and workspaces say which is which.
func mismatchMessage(mm *vault.IdentityMismatchError, provider string) string {
	want, got := mm.Expected, mm.Got
	if strings.EqualFold(want, got) {
		want = label(mm.Expected, mm.ExpectedSubject, mm.ExpectedWorkspace)
		got = label(mm.Got, mm.GotSubject, mm.GotWorkspace)
		return fmt.Sprintf("This connection belongs to %s, but you signed in to %s as %s: another account with the same email. Sign in with the account the connection was made with to reconnect it.", want, provider, got)
	}
	return fmt.Sprintf("This connection belongs to %s, but you signed in to %s as %s. Sign in with %s to reconnect it.", want, provider, got, want)
}

func label(account, subject, workspace string) string {
	var extra []string
	if subject != "" && subject != account {
		extra = append(extra, "account id "+subject)
	}
	if workspace != "" {
		extra = append(extra, "workspace "+workspace)
	}
	if len(extra) == 0 {
		return account
	}
	return account + " (" + strings.Join(extra, ", ") + ")"
}

func (e *CallbackError) Error() string { return e.Problem.Error() }
func (e *CallbackError) Unwrap() error { return e.Problem }

// Callback completes a flow from the provider's redirect. cookie returns
// the browser's cookie of a given name: the flow completes only in the
// browser that opened the connect link.
func (b *Broker) Callback(ctx context.Context, q url.Values, cookie func(name string) string) (*Result, error) {
	state := q.Get("state")
	if state == "" {
		return nil, &CallbackError{Problem: authgate.Errorf(authgate.ClassInvalidRequest, "the sign-in response has no state; start again from the app")}
	}
	s, err := b.cfg.Store.ConnectSessionGetByState(ctx, hashState(state))
	if errors.Is(err, storage.ErrNotFound) {
		return nil, &CallbackError{Problem: authgate.Errorf(authgate.ClassInvalidRequest, "this sign-in response does not belong to any connect link; start again from the app")}
	}
	if err != nil {
		return nil, err
	}
	if !boundTo(s, cookie(CookieName(s.ID))) {
		// Not consumed: the browser that did open the link may still finish.
		b.cfg.Logger.Warn("connect callback from another browser refused", slog.String("connect_session", s.ID), slog.String("provider", s.Provider))
		return nil, &CallbackError{Problem: errOtherBrowser, Provider: s.Provider}
	}
	if err := b.cfg.Store.ConnectSessionConsume(ctx, s.ID, b.cfg.Clock.Now()); errors.Is(err, storage.ErrNotFound) {
		return nil, &CallbackError{Problem: errLinkDead, ReturnURL: s.ReturnURL, Provider: s.Provider}
	} else if err != nil {
		return nil, err
	}
	res, err := b.complete(ctx, q, s)
	b.finish(ctx, s.ID, res, err)
	var ce *CallbackError
	if res != nil {
		res.SessionID = s.ID
	} else if errors.As(err, &ce) {
		ce.SessionID = s.ID
	}
	return res, err
}

// complete runs a consumed session's flow to its end.
func (b *Broker) complete(ctx context.Context, q url.Values, s *storage.ConnectSession) (*Result, error) {
	p, ok := b.cfg.Providers.Get(s.Provider)
	if !ok {
		return nil, &CallbackError{Problem: authgate.Errorf(authgate.ClassClientMisconfigured, "provider %s is no longer configured", s.Provider), ReturnURL: s.ReturnURL}
	}
	if pe := classify.FromCallback(p.Name, q); pe != nil {
		// The authorization step failed at the provider: the user declined,
		// or the provider refused (admin policy, org-internal app, testing
		// mode, bad client configuration). Nothing stored changes.
		cls := classify.Classify(pe)
		outcome := OutcomeError
		if pe.OAuthError == "access_denied" && cls.Class == authgate.ClassInsufficientScope {
			outcome = OutcomeCanceled
		}
		b.cfg.Logger.Info("authorization refused", slog.String("provider", p.Name), slog.String("connect_session", s.ID),
			slog.String("error", pe.OAuthError), slog.String("class", string(cls.Class)), slog.String("outcome", outcome))
		return nil, &CallbackError{Problem: authgate.Errorf(cls.Class, "%s", cls.Message), Code: cls.ErrorCode, Outcome: outcome, ReturnURL: s.ReturnURL, Provider: p.Name}
	}
	st, err := b.openSecrets(s)
	if err != nil {
		return nil, err
	}
	rec := &httprec.Recorder{Base: b.cfg.Transport}
	xctx := context.WithValue(ctx, oauth2.HTTPClient, &http.Client{Transport: rec, Timeout: 15 * time.Second})
	var opts []oauth2.AuthCodeOption
	if p.PKCE {
		opts = append(opts, oauth2.VerifierOption(st.Verifier))
	}
	received := b.cfg.Clock.Now()
	tok, err := b.oauthConfig(p, s.RequestedScopes).Exchange(xctx, q.Get("code"), opts...)
	// One parser for every provider's error shape, Slack's HTTP-200
	// {"ok":false} included.
	pe := classify.Parse(classify.Input{Provider: p.Name, Operation: classify.OpCodeExchange, Status: rec.Status, Header: rec.Header, Body: rec.Body, Now: received})
	if err == nil && (tok.AccessToken == "" || pe.Failed()) {
		err = pe
	}
	if err != nil {
		if rec.Status == 0 {
			pe.Cause = err
		}
		cls := classify.Classify(pe)
		b.observe(p.Name, string(cls.Class))
		b.cfg.Logger.Warn("code exchange", slog.String("provider", p.Name), slog.String("connect_session", s.ID), slog.Int("http_status", rec.Status),
			slog.String("error", cls.ErrorCode), slog.String("class", string(cls.Class)), slog.String("provider_request_id", pe.RequestID))
		return nil, &CallbackError{Problem: authgate.Errorf(cls.Class, "%s", cls.Message).WithCause(err), Code: cls.ErrorCode, Outcome: OutcomeError, ReturnURL: s.ReturnURL, Provider: p.Name}
	}
	b.observe(p.Name, "success")
	id, err := b.identity(xctx, p, tok)
	if err != nil {
		return nil, &CallbackError{Problem: authgate.Errorf(authgate.ClassTransient, "could not read who signed in at %s; try again", p.DisplayName).WithCause(err), ReturnURL: s.ReturnURL, Provider: p.Name}
	}
	if wantsIDToken(p, s.RequestedScopes) {
		if err := b.verifyIDToken(xctx, p, tok, st.Nonce, id.subject); err != nil {
			b.cfg.Logger.Warn("id token refused", slog.String("provider", p.Name), slog.String("connect_session", s.ID), slog.String("error", err.Error()))
			return nil, &CallbackError{Problem: authgate.Errorf(authgate.ClassInvalidRequest, "%s sent an ID token that does not check out; nothing was connected. Start again from the app.", p.DisplayName).WithCause(err),
				Code: "invalid_id_token", ReturnURL: s.ReturnURL, Provider: p.Name}
		}
	}
	if s.ExpectedAccount != "" && !id.matches(s.ExpectedAccount) {
		got := cmp.Or(id.email, id.subject)
		b.cfg.Logger.Warn("connect: unexpected account refused", slog.String("provider", p.Name), slog.String("connect_session", s.ID))
		return nil, &CallbackError{Problem: authgate.Errorf(authgate.ClassReauthRequired, "The app expects %s, but you signed in to %s as %s. Sign in with %s.",
			s.ExpectedAccount, p.DisplayName, got, s.ExpectedAccount), Code: "identity_mismatch", ReturnURL: s.ReturnURL, Provider: p.Name}
	}
	granted := s.RequestedScopes
	if sc, ok := tok.Extra("scope").(string); ok && sc != "" {
		granted = p.SplitScopes(sc)
	}
	var exp time.Time
	if tok.ExpiresIn > 0 {
		exp = received.Add(time.Duration(tok.ExpiresIn) * time.Second)
	}
	skew, skewKnown := rec.ClockSkew(received)
	if skewKnown && (skew > 30*time.Second || skew < -30*time.Second) {
		b.cfg.Logger.Warn("provider clock skew", slog.String("provider", p.Name), slog.Float64("clock_skew_seconds", skew.Seconds()))
	}
	cred, created, err := b.cfg.Vault.Import(ctx, vault.ImportParams{
		TenantID: s.TenantID, UserID: s.UserID, Provider: p.Name, WorkspaceID: id.workspace, Subject: id.subject, Email: id.email,
		AccountType: id.accountType, Domain: id.domain, Scopes: granted, RequestedScopes: s.RequestedScopes, TokenType: tok.TokenType,
		AccessToken: secret.New(tok.AccessToken), RefreshToken: secret.New(tok.RefreshToken), ExpiresAt: exp,
		Actor: "connect:" + s.ID, Source: "connect", ReconnectID: s.CredentialID, ClockSkew: skew, SkewKnown: skewKnown,
	})
	var mm *vault.IdentityMismatchError
	if errors.As(err, &mm) {
		e := authgate.Errorf(authgate.ClassReauthRequired, "%s", mismatchMessage(mm, p.DisplayName))
		e.CredentialID = mm.CredentialID
		return nil, &CallbackError{Problem: e, Code: "identity_mismatch", Outcome: OutcomeError, ReturnURL: s.ReturnURL, Provider: p.Name}
	}
	if err != nil {
		return nil, err
	}
	missing, _ := p.Missing(s.Actions, cred.GrantedScopes)
	b.cfg.Logger.Info("connected", slog.String("provider", p.Name), slog.String("credential_id", string(cred.ID)), slog.String("user_id", s.UserID),
		slog.String("workspace_id", id.workspace), slog.String("access_token_fp", cred.AccessTokenFingerprint), slog.String("refresh_token_fp", cred.RefreshTokenFingerprint),
		slog.Bool("created", created), slog.Any("missing_scopes", missing), slog.String("provider_request_id", rec.RequestID()))
	return &Result{Credential: cred, Created: created, Requested: s.RequestedScopes, Granted: cred.GrantedScopes, Missing: nonNil(missing), ReturnURL: s.ReturnURL, Provider: p.Name}, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func (b *Broker) observe(provider, outcome string) {
	if b.cfg.OnExchange != nil {
		b.cfg.OnExchange(provider, outcome)
	}
}

type identity struct {
	subject, email, workspace, domain string
	accountType                       authgate.AccountType
	// emailVerified and domainVerified say whether the provider vouches for
	// them; only vouched-for values can satisfy expected_account (a Slack
	// workspace name or an unverified OIDC email is whatever the signer
	// typed).
	emailVerified, domainVerified bool
}

// identity reads who signed in: Google and OIDC from userinfo, Notion and
// Slack from the token response.
func (b *Broker) identity(ctx context.Context, p *catalog.Provider, tok *oauth2.Token) (identity, error) {
	switch p.Kind {
	case catalog.KindNotion:
		var id identity
		id.workspace, _ = tok.Extra("workspace_id").(string)
		if owner, ok := tok.Extra("owner").(map[string]any); ok {
			if u, ok := owner["user"].(map[string]any); ok {
				id.subject, _ = u["id"].(string)
				if person, ok := u["person"].(map[string]any); ok {
					id.email, _ = person["email"].(string)
					id.emailVerified = id.email != "" // Notion accounts sign in by verified email
				}
			}
		}
		if id.subject == "" {
			id.subject, _ = tok.Extra("bot_id").(string) // a workspace-level install
		}
		id.accountType = authgate.AccountTypeWorkspace
		if id.subject == "" || id.workspace == "" {
			return id, errors.New("token response lacks owner or workspace_id")
		}
		return id, nil
	case catalog.KindSlack:
		var id identity
		if team, ok := tok.Extra("team").(map[string]any); ok {
			id.workspace, _ = team["id"].(string)
			id.domain, _ = team["name"].(string)
		}
		if u, ok := tok.Extra("authed_user").(map[string]any); ok {
			id.subject, _ = u["id"].(string)
		}
		id.accountType = authgate.AccountTypeWorkspace
		if id.subject == "" || id.workspace == "" {
			return id, errors.New("oauth.v2.access response lacks team or authed_user")
		}
		return id, nil
	}
	if p.UserinfoURL == "" {
		return identity{}, errors.New("provider has no userinfo endpoint")
	}
	hc, _ := ctx.Value(oauth2.HTTPClient).(*http.Client)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.UserinfoURL, nil)
	if err != nil {
		return identity{}, err
	}
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	resp, err := hc.Do(req)
	if err != nil {
		return identity{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return identity{}, fmt.Errorf("userinfo answered %d", resp.StatusCode)
	}
	var ui struct {
		Sub           string `json:"sub"`
		Email         string `json:"email"`
		EmailVerified any    `json:"email_verified"` // true, or "true" from some servers
		HD            string `json:"hd"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&ui); err != nil || ui.Sub == "" {
		return identity{}, fmt.Errorf("userinfo: no subject (%v)", err)
	}
	id := identity{subject: ui.Sub, email: ui.Email, domain: ui.HD, accountType: authgate.AccountTypeConsumer,
		emailVerified: ui.EmailVerified == true || ui.EmailVerified == "true",
		// Google's hd is the Workspace domain Google itself vouches for.
		domainVerified: p.Kind == catalog.KindGoogle && ui.HD != ""}
	if p.Kind != catalog.KindGoogle {
		id.accountType = authgate.AccountTypeUnknown
	} else if ui.HD != "" {
		id.accountType = authgate.AccountTypeWorkspace
	}
	return id, nil
}

// Revoke disconnects a credential: the provider's revocation endpoint first
// (where it has one; a failure there is recorded, not fatal), then the
// credential becomes revoked and its tokens are erased.
func (b *Broker) Revoke(ctx context.Context, tenant authgate.TenantID, id authgate.CredentialID, actor string) (authgate.Credential, error) {
	l, err := b.cfg.Vault.Load(ctx, tenant, id)
	var ae *authgate.Error
	if errors.As(err, &ae) && ae.Class == authgate.ClassInternal {
		// The tokens cannot be decrypted (a lost key): they cannot be
		// revoked at the provider, but they can still be erased here, which
		// is what disconnecting promises this side of the wire.
		b.cfg.Logger.Warn("disconnecting a credential whose tokens cannot be decrypted", slog.String("credential_id", string(id)), slog.String("error", err.Error()))
		return b.cfg.Vault.RevokeWith(ctx, tenant, id, actor, vault.RevokeOptions{ProviderError: "not revoked at the provider: " + err.Error()})
	}
	if err != nil {
		return authgate.Credential{}, err
	}
	opts := vault.RevokeOptions{}
	if p, ok := b.cfg.Providers.Get(l.Provider); ok && p.RevocationURL != "" && l.Status != authgate.CredentialStatusRevoked {
		tok := l.RefreshToken
		if tok.IsZero() {
			tok = l.AccessToken
		}
		if !tok.IsZero() {
			err := b.revokeAtProvider(ctx, p, tok, l.AccessToken)
			opts.ProviderCalled, opts.ProviderRevoked = true, err == nil
			if err != nil {
				opts.ProviderError = err.Error()
				b.cfg.Logger.Warn("provider revocation failed", slog.String("provider", p.Name), slog.String("credential_id", string(id)), slog.String("error", err.Error()))
			}
		}
	}
	return b.cfg.Vault.RevokeWith(ctx, tenant, id, actor, opts)
}

func (b *Broker) revokeAtProvider(ctx context.Context, p *catalog.Provider, tok, access secret.Secret) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var req *http.Request
	var err error
	switch p.Kind {
	case catalog.KindNotion:
		body, _ := json.Marshal(map[string]string{"token": tok.Reveal()})
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, p.RevocationURL, bytes.NewReader(body))
		if err == nil {
			req.Header.Set("Content-Type", "application/json")
			req.SetBasicAuth(url.QueryEscape(p.ClientID), url.QueryEscape(p.ClientSecret))
		}
	case catalog.KindSlack:
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, p.RevocationURL, nil)
		if err == nil {
			req.Header.Set("Authorization", "Bearer "+access.Reveal())
		}
	default:
		form := url.Values{"token": {tok.Reveal()}}
		if p.Kind != catalog.KindGoogle && p.ClientAuth == "post" {
			form.Set("client_id", p.ClientID)
			form.Set("client_secret", p.ClientSecret)
		}
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, p.RevocationURL, strings.NewReader(form.Encode()))
		if err == nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if p.Kind != catalog.KindGoogle && p.ClientAuth != "post" {
				req.SetBasicAuth(url.QueryEscape(p.ClientID), url.QueryEscape(p.ClientSecret))
			}
		}
	}
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: b.cfg.Transport}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	pe := classify.Parse(classify.Input{Provider: p.Name, Operation: classify.OpRevoke, Status: resp.StatusCode, Header: resp.Header, Body: body})
	if !pe.Failed() {
		return nil
	}
	// An already-dead token is as revoked as it gets (RFC 7009 §2.2 answers
	// 200 for it; some servers say invalid_token, Slack token_revoked).
	if pe.Code() == "invalid_token" || pe.SlackError == "token_revoked" || pe.SlackError == "invalid_auth" {
		return nil
	}
	return pe
}
