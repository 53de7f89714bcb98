package broker

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/internal/catalog"
	"github.com/authgate/authgate/internal/storage"
)

var (
	errLinkDead        = authgate.Errorf(authgate.ClassInvalidRequest, "this connect link expired or was already used; ask the app for a new one")
	errOpenedElsewhere = authgate.Errorf(authgate.ClassForbidden, "this connect link was already opened in another browser; ask the app for a new one")
	errOtherBrowser    = authgate.Errorf(authgate.ClassForbidden, "this sign-in was started in another browser; finish it there, or ask the app for a new connect link")
)

// CookieName is the browser-binding cookie of one connect session: one per
// session, so two flows in one browser do not overwrite each other.
func CookieName(sessionID string) string { return "ag_connect_" + sessionID }

func hashBrowser(tok string) []byte {
	sum := sha256.Sum256([]byte("authgate/browser\x00" + tok))
	return sum[:]
}

// boundTo reports whether cookie is the one the session was bound to.
func boundTo(s *storage.ConnectSession, cookie string) bool {
	return len(s.BrowserHash) > 0 && cookie != "" && subtle.ConstantTimeCompare(s.BrowserHash, hashBrowser(cookie)) == 1
}

// wantsIDToken reports whether the provider issues verifiable ID tokens for
// these scopes.
func wantsIDToken(p *catalog.Provider, scopes []string) bool {
	return (p.Kind == catalog.KindGoogle || p.Kind == catalog.KindOIDC) && p.Issuer != "" && p.JWKSURL != "" && slices.Contains(scopes, "openid")
}

// verifyIDToken checks the ID token of an OIDC exchange with go-oidc:
// signature against the provider's JWKS, issuer, audience (our client id),
// expiry (our clock), then our nonce and that its subject is userinfo's.
func (b *Broker) verifyIDToken(ctx context.Context, p *catalog.Provider, tok *oauth2.Token, nonce, subject string) error {
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return errors.New("token response has no id_token")
	}
	hc, _ := ctx.Value(oauth2.HTTPClient).(*http.Client)
	if hc != nil {
		ctx = oidc.ClientContext(ctx, hc)
	}
	v := oidc.NewVerifier(p.Issuer, oidc.NewRemoteKeySet(ctx, p.JWKSURL), &oidc.Config{ClientID: p.ClientID, Now: b.cfg.Clock.Now})
	idt, err := v.Verify(ctx, raw)
	if err != nil {
		return fmt.Errorf("verify id token: %w", err)
	}
	if nonce == "" || subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(nonce)) != 1 {
		return errors.New("id token nonce does not match the one sent")
	}
	if idt.Subject != subject {
		return fmt.Errorf("id token subject %q is not userinfo's %q", idt.Subject, subject)
	}
	return nil
}

// matches reports whether the signed-in account is the expected one: its
// email, its Workspace domain (Google hd; Slack/Notion workspace) or its
// provider subject.
func (id identity) matches(expected string) bool {
	switch {
	case strings.Contains(expected, "@"):
		return id.email != "" && id.emailVerified && asciiFold(id.email) == asciiFold(expected)
	case id.subject == expected:
		return true
	case id.workspace != "" && id.workspace == expected:
		return true
	}
	return id.domain != "" && id.domainVerified && asciiFold(id.domain) == asciiFold(expected)
}

// asciiFold lower-cases ASCII letters only: strings.EqualFold would also
// equate the Kelvin sign with "k" and the long s with "s".
func asciiFold(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// finish records how a flow ended, for GET /v1/connect-sessions/{id}.
func (b *Broker) finish(ctx context.Context, id string, res *Result, err error) {
	p := storage.ConnectSessionFinishParams{ID: id}
	var ce *CallbackError
	switch {
	case err == nil && len(res.Missing) > 0:
		p.Outcome, p.CredentialID, p.Missing = storage.ConnectOutcomePartial, res.Credential.ID, res.Missing
	case err == nil:
		p.Outcome, p.CredentialID = storage.ConnectOutcomeConnected, res.Credential.ID
	case errors.As(err, &ce) && ce.Outcome == OutcomeCanceled:
		p.Outcome, p.ErrorClass, p.ErrorCode = storage.ConnectOutcomeCanceled, string(ce.Problem.Class), ce.Code
	case errors.As(err, &ce):
		p.Outcome, p.ErrorClass, p.ErrorCode, p.CredentialID = storage.ConnectOutcomeError, string(ce.Problem.Class), ce.Code, ce.Problem.CredentialID
	default:
		p.Outcome, p.ErrorClass = storage.ConnectOutcomeError, string(authgate.ClassInternal)
	}
	// The session is consumed whatever happens here; a lost outcome only
	// leaves it reading "pending" until it expires.
	if ferr := b.cfg.Store.ConnectSessionFinish(context.WithoutCancel(ctx), p); ferr != nil {
		b.cfg.Logger.Warn("record connect outcome", slog.String("connect_session", id), slog.String("error", ferr.Error()))
	}
}

// SessionStatus is what an app reads back about one of its connect
// sessions: the authenticated answer to the hints on its return URL.
type SessionStatus struct {
	ID            string
	State         string
	Provider      string
	UserID        string
	CredentialID  authgate.CredentialID
	MissingScopes []string
	ErrorClass    string
	ErrorCode     string
	ExpiresAt     time.Time
	Opened        bool
}

// Status reads a tenant's connect session: pending, connected, partial,
// canceled, error or expired.
func (b *Broker) Status(ctx context.Context, tenant authgate.TenantID, id string) (SessionStatus, error) {
	s, err := b.cfg.Store.ConnectSessionGet(ctx, id)
	if errors.Is(err, storage.ErrNotFound) || err == nil && s.TenantID != tenant {
		return SessionStatus{}, authgate.Errorf(authgate.ClassNotFound, "no connect session %s", id)
	}
	if err != nil {
		return SessionStatus{}, err
	}
	st := SessionStatus{ID: s.ID, Provider: s.Provider, UserID: s.UserID, CredentialID: s.OutcomeCredentialID, MissingScopes: nonNil(s.MissingScopes),
		ErrorClass: s.ErrorClass, ErrorCode: s.ErrorCode, ExpiresAt: s.ExpiresAt, Opened: !s.OpenedAt.IsZero(), State: string(s.Outcome)}
	if st.State == "" {
		// Used without an outcome yet: the callback is exchanging the code
		// right now (pending), unless that began long enough ago that the
		// process must have stopped mid-flow (expired).
		st.State = "pending"
		now := b.cfg.Clock.Now()
		if !now.Before(s.ExpiresAt) || (!s.UsedAt.IsZero() && now.Sub(s.UsedAt) > callbackGrace) {
			st.State = "expired"
		}
	}
	return st, nil
}

// reusable finds an unopened reconnect link for the same credential and
// request that still has at least half its life: every refused token
// request asks for a reconnect link, and must not mint a session each time.
func (b *Broker) reusable(ctx context.Context, p SessionParams, scopes []string, force bool, now time.Time) (*storage.ConnectSession, bool) {
	ss, err := b.cfg.Store.ConnectSessionListReusable(ctx, storage.ConnectSessionListReusableParams{TenantID: p.TenantID, CredentialID: p.CredentialID,
		Until: now.Add(b.cfg.SessionTTL / 2), Limit: 10})
	if err != nil {
		return nil, false
	}
	for _, s := range ss {
		if s.UserID == p.UserID && s.Provider == p.Provider && slices.Equal(s.RequestedScopes, scopes) && slices.Equal(nonNil(s.Actions), nonNil(p.Actions)) &&
			s.ReturnURL == p.ReturnURL && s.LoginHint == p.LoginHint && s.ForceConsent == force && s.ExpectedAccount == p.ExpectedAccount {
			return s, true
		}
	}
	return nil, false
}

// callbackGrace is how long a callback may take to exchange the code and
// read the identity before a used session without an outcome counts as
// abandoned.
const callbackGrace = 2 * time.Minute

// pruneEvery bounds how often one process prunes.
const pruneEvery = time.Minute

// pruneSometimes deletes sessions that expired more than SessionRetention
// ago, at most once a minute per process and a bounded batch at a time.
func (b *Broker) pruneSometimes(ctx context.Context, now time.Time) {
	last := b.lastPrune.Load()
	if last != 0 && now.Sub(time.Unix(0, last)) < pruneEvery || !b.lastPrune.CompareAndSwap(last, now.UnixNano()) {
		return
	}
	n, err := b.cfg.Store.ConnectSessionDeleteExpired(ctx, storage.ConnectSessionDeleteExpiredParams{Before: now.Add(-b.cfg.SessionRetention), Limit: 1000})
	if err != nil {
		b.cfg.Logger.Warn("prune connect sessions", slog.String("error", err.Error()))
		return
	}
	if n > 0 {
		b.cfg.Logger.Info("pruned expired connect sessions", slog.Int64("deleted", n))
	}
}

// SecureCookies reports whether binding cookies must be Secure (https).
func (b *Broker) SecureCookies() bool { return b.cfg.SecureCookies }

// TTL is how long a connect link works.
func (b *Broker) TTL() time.Duration { return b.cfg.SessionTTL }
