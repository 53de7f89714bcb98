// Package refresh hands callers an access token valid for at least N more
// seconds, or a precise reason why it cannot.
//
// A refresh is single-flight per credential inside a process (one provider
// call however many goroutines ask) and across processes sharing the store (a
// lease on the credential row, taken by compare-and-swap, outlives the
// provider call). Waiters re-read the stored token instead of refreshing
// again. New tokens — a rotated refresh token above all — are committed before
// anyone sees them, and a write lands only if the refresh token it used is
// still the stored one. invalid_grant is a state change, never a retry, unless
// the stored token moved meanwhile (a race lost, not a revocation); 5xx,
// timeouts and 429 are retried with full-jitter backoff honouring
// Retry-After. The provider's Date header measures clock skew.
//
// It must never log or return a refresh token, and never let one impatient
// caller cancel a refresh others wait for.
package refresh

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/sync/singleflight"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/internal/catalog"
	"github.com/authgate/authgate/internal/classify"
	"github.com/authgate/authgate/internal/clock"
	"github.com/authgate/authgate/internal/httprec"
	"github.com/authgate/authgate/internal/secret"
	"github.com/authgate/authgate/internal/storage"
	"github.com/authgate/authgate/internal/vault"
)

// Observer receives one observation per provider refresh call (metrics).
type Observer interface {
	Refresh(provider, outcome string, d time.Duration)
}

// Config configures a Refresher. Zero durations take the defaults.
type Config struct {
	Store storage.Store
	Vault *vault.Vault
	// Providers resolves a credential's provider (the catalog).
	Providers interface {
		Get(name string) (*catalog.Provider, bool)
	}
	Clock  clock.Clock
	Logger *slog.Logger
	// Transport carries provider calls (default http.DefaultTransport).
	Transport http.RoundTripper
	Observer  Observer
	// Holder names this process in leases (default host-pid-random).
	Holder string
	// LeaseTTL bounds how long one process may hold a refresh (default 30s);
	// CallTimeout bounds one provider call and is always shorter (default 10s).
	LeaseTTL    time.Duration
	CallTimeout time.Duration
	// MaxAttempts bounds provider calls per refresh (default 4).
	MaxAttempts int
	// BaseBackoff and MaxBackoff shape full-jitter backoff (250ms, 5s);
	// a Retry-After beyond MaxRetryAfter (30s) ends the refresh with it.
	BaseBackoff, MaxBackoff, MaxRetryAfter time.Duration
	// Sleep waits between attempts and while another process holds the
	// lease (default: a timer). Tests replace it to observe waits.
	Sleep func(ctx context.Context, d time.Duration) error
	// SkewWarn is the clock offset that logs a warning (default 30s).
	SkewWarn time.Duration
}

// Refresher is safe for concurrent use.
type Refresher struct {
	cfg Config
	sf  singleflight.Group
	// touched remembers when this process last recorded each credential's
	// use, so a burst of requests writes last_used_at at most once a minute.
	touched sync.Map // authgate.CredentialID → time.Time
}

// touchEvery is the precision of last_used_at.
const touchEvery = time.Minute

// touch records that a token was served.
func (r *Refresher) touch(ctx context.Context, id authgate.CredentialID) {
	now := r.cfg.Clock.Now()
	if last, ok := r.touched.Load(id); ok && now.Sub(last.(time.Time)) < touchEvery {
		return
	}
	r.touched.Store(id, now)
	if err := r.cfg.Store.CredentialTouch(ctx, storage.CredentialTouchParams{ID: id, At: now.UTC(), Before: now.Add(-touchEvery)}); err != nil {
		r.cfg.Logger.Warn("record credential use", slog.String("credential_id", string(id)), slog.String("error", err.Error()))
	}
}

// New returns a refresher.
func New(cfg Config) *Refresher {
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Transport == nil {
		cfg.Transport = http.DefaultTransport
	}
	if cfg.Holder == "" {
		host, _ := os.Hostname()
		b := make([]byte, 4)
		_, _ = crand.Read(b)
		cfg.Holder = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b))
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.LeaseTTL, 30*time.Second)
	def(&cfg.CallTimeout, 10*time.Second)
	if cfg.CallTimeout >= cfg.LeaseTTL {
		cfg.CallTimeout = cfg.LeaseTTL / 3
	}
	def(&cfg.BaseBackoff, 250*time.Millisecond)
	def(&cfg.MaxBackoff, 5*time.Second)
	def(&cfg.MaxRetryAfter, 30*time.Second)
	def(&cfg.SkewWarn, 30*time.Second)
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 4
	}
	if cfg.Sleep == nil {
		cfg.Sleep = sleep
	}
	return &Refresher{cfg: cfg}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Request asks for a token.
type Request struct {
	TenantID authgate.TenantID
	ID       authgate.CredentialID
	// MinValid is how long the token must stay valid (default 5 minutes).
	MinValid time.Duration
	// Actions the caller is about to perform; missing scopes are refused.
	Actions []string
}

// Token is an access token ready to use.
type Token struct {
	CredentialID authgate.CredentialID
	Provider     string
	AccessToken  secret.Secret
	TokenType    string
	ExpiresAt    *time.Time
	Scopes       []string
	// Refreshed says whether this call refreshed (for logs and tests).
	Refreshed bool
}

// DefaultMinValid is the safety window when the caller names none.
const DefaultMinValid = 5 * time.Minute

// Token returns an access token valid for at least req.MinValid.
func (r *Refresher) Token(ctx context.Context, req Request) (*Token, error) {
	if req.MinValid <= 0 {
		req.MinValid = DefaultMinValid
	}
	l, err := r.cfg.Vault.LoadAccess(ctx, req.TenantID, req.ID)
	if err != nil {
		return nil, err
	}
	p, err := r.provider(l)
	if err != nil {
		return nil, err
	}
	if err := checkUsable(l); err != nil {
		return nil, err
	}
	missing, err := p.Missing(req.Actions, l.GrantedScopes)
	if err != nil {
		return nil, authgate.Errorf(authgate.ClassInvalidRequest, "%s", err.Error())
	}
	if len(missing) > 0 {
		e := authgate.Errorf(authgate.ClassInsufficientScope, "%s did not grant %s, which the requested actions need. Reconnect with those permissions.", p.DisplayName, strings.Join(missing, ", "))
		e.CredentialID, e.MissingScopes = l.ID, missing
		return nil, e
	}
	if r.fresh(l, p, req.MinValid) {
		r.touch(ctx, l.ID)
		return tokenOf(l, false), nil
	}
	// Callers asking for the same window share one flight; a caller with a
	// longer window runs its own, which the lease orders after any other
	// refresh so it re-reads first and refreshes only if still needed.
	key := string(req.TenantID) + "/" + string(req.ID) + "/" + req.MinValid.String()
	ch := r.sf.DoChan(key, func() (any, error) {
		// The shared refresh outlives any one caller's context.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.LeaseTTL*3)
		defer cancel()
		return r.refresh(fctx, req, p)
	})
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case res := <-ch:
		if res.Err != nil {
			return nil, res.Err
		}
		t := res.Val.(*Token)
		if t.ExpiresAt != nil && t.ExpiresAt.Sub(r.cfg.Clock.Now()) < req.MinValid {
			return nil, authgate.Errorf(authgate.ClassInvalidRequest, "%s issues tokens valid until %s; min_valid_seconds %d cannot be met", p.DisplayName, t.ExpiresAt.UTC().Format(time.RFC3339), int(req.MinValid.Seconds()))
		}
		r.touch(ctx, t.CredentialID)
		return t, nil
	}
}

func (r *Refresher) provider(l *vault.Loaded) (*catalog.Provider, error) {
	if r.cfg.Providers == nil {
		return nil, authgate.Errorf(authgate.ClassClientMisconfigured, "no providers are configured")
	}
	p, ok := r.cfg.Providers.Get(l.Provider)
	if !ok {
		return nil, authgate.Errorf(authgate.ClassClientMisconfigured, "provider %q is not configured on this server", l.Provider)
	}
	return p, nil
}

func checkUsable(l *vault.Loaded) error {
	switch l.Status {
	case authgate.CredentialStatusActive:
		return nil
	case authgate.CredentialStatusRevoked:
		e := authgate.Errorf(authgate.ClassReauthRequired, "this %s connection was disconnected; connect it again to continue", l.Provider)
		e.CredentialID = l.ID
		return e
	}
	e := authgate.Errorf(authgate.ClassReauthRequired, "the %s connection needs the user to reconnect (%s)", l.Provider, l.StatusReason)
	e.CredentialID = l.ID
	return e
}

// fresh reports whether the stored access token is good for minValid more.
func (r *Refresher) fresh(l *vault.Loaded, p *catalog.Provider, minValid time.Duration) bool {
	if l.AccessToken.IsZero() {
		return false
	}
	if l.AccessTokenExpiresAt == nil {
		return !p.Expires()
	}
	return l.AccessTokenExpiresAt.Sub(r.cfg.Clock.Now()) >= minValid
}

func tokenOf(l *vault.Loaded, refreshed bool) *Token {
	typ := l.TokenType
	if typ == "" || strings.EqualFold(typ, "bearer") || typ == "bot" || typ == "user" {
		typ = "Bearer"
	}
	return &Token{CredentialID: l.ID, Provider: l.Provider, AccessToken: l.AccessToken, TokenType: typ, ExpiresAt: l.AccessTokenExpiresAt, Scopes: l.GrantedScopes, Refreshed: refreshed}
}

// refresh runs once per credential at a time in this process.
func (r *Refresher) refresh(ctx context.Context, req Request, p *catalog.Provider) (*Token, error) {
	wait := 10 * time.Millisecond
	for {
		l, err := r.cfg.Vault.Load(ctx, req.TenantID, req.ID)
		if err != nil {
			return nil, err
		}
		if err := checkUsable(l); err != nil {
			return nil, err
		}
		if r.fresh(l, p, req.MinValid) {
			return tokenOf(l, false), nil
		}
		lease := storage.CredentialLeaseParams{ID: req.ID, Holder: r.cfg.Holder, Now: r.cfg.Clock.Now(), Until: r.cfg.Clock.Now().Add(r.cfg.LeaseTTL)}
		got, err := r.cfg.Store.CredentialLeaseAcquire(ctx, lease)
		if err != nil {
			return nil, fmt.Errorf("refresh %s: lease: %w", req.ID, err)
		}
		if !got {
			// Another process is refreshing: wait, then re-read its result.
			if err := r.cfg.Sleep(ctx, wait); err != nil {
				return nil, authgate.Errorf(authgate.ClassTransient, "timed out waiting for another refresh of %s", req.ID).WithCause(err)
			}
			wait = min(wait*2, 200*time.Millisecond)
			continue
		}
		t, again, err := r.refreshHolding(ctx, req, p)
		// Release on a context that is not done, so a lease never outlives
		// its work by more than a failed release.
		if rerr := r.cfg.Store.CredentialLeaseRelease(context.WithoutCancel(ctx), lease); rerr != nil {
			r.cfg.Logger.Warn("release refresh lease", slog.String("credential_id", string(req.ID)), slog.String("error", rerr.Error()))
		}
		if again {
			continue
		}
		return t, err
	}
}

// refreshHolding refreshes while holding the lease. again asks the caller to
// start over (the stored credential moved under us).
func (r *Refresher) refreshHolding(ctx context.Context, req Request, p *catalog.Provider) (*Token, bool, error) {
	l, err := r.cfg.Vault.Load(ctx, req.TenantID, req.ID)
	if err != nil {
		return nil, false, err
	}
	if err := checkUsable(l); err != nil {
		return nil, false, err
	}
	if r.fresh(l, p, req.MinValid) {
		return tokenOf(l, false), false, nil
	}
	if l.RefreshToken.IsZero() {
		c, err := r.cfg.Vault.MarkReauthRequired(ctx, req.TenantID, req.ID, authgate.StatusReasonNoRefreshToken, nil)
		if err != nil {
			return nil, false, err
		}
		e := authgate.Errorf(authgate.ClassReauthRequired, "the %s connection has no refresh token and its access token expired; reconnect to continue", p.DisplayName)
		e.CredentialID = c.ID
		return nil, false, e
	}
	for attempt := 1; ; attempt++ {
		// Keep the lease for the whole attempt.
		now := r.cfg.Clock.Now()
		if ok, err := r.cfg.Store.CredentialLeaseAcquire(ctx, storage.CredentialLeaseParams{ID: req.ID, Holder: r.cfg.Holder, Now: now, Until: now.Add(r.cfg.LeaseTTL)}); err != nil || !ok {
			return nil, true, nil
		}
		out := r.call(ctx, p, l)
		if out.err == nil {
			c, err := r.cfg.Vault.ApplyRefresh(ctx, req.TenantID, req.ID, vault.Refreshed{
				UsedRefreshFP: l.RefreshToken.Fingerprint(), AccessToken: out.access, ExpiresAt: out.expiresAt, RefreshToken: out.refresh,
				Scopes: out.scopes, ClockSkew: out.skew, SkewKnown: out.skewKnown, RequestID: out.requestID, HTTPStatus: out.status, Actor: "refresher",
			})
			if errors.Is(err, vault.ErrStale) {
				return nil, true, nil
			}
			if err != nil {
				return nil, false, fmt.Errorf("refresh %s: store: %w", req.ID, err)
			}
			exp := timePtr(out.expiresAt)
			return &Token{CredentialID: c.ID, Provider: c.Provider, AccessToken: out.access, TokenType: tokenOf(l, true).TokenType, ExpiresAt: exp, Scopes: c.GrantedScopes, Refreshed: true}, false, nil
		}
		cls := out.class
		fail := vault.Failure{Class: cls.Class, ErrorCode: cls.ErrorCode, HTTPStatus: out.status, RequestID: out.requestID, Attempt: attempt,
			RefreshFP: l.RefreshToken.Fingerprint(), Description: out.description, Actor: "refresher"}
		switch cls.Class {
		case authgate.ClassReauthRequired, authgate.ClassAdminPolicy:
			reason := authgate.StatusReasonInvalidGrant
			if cls.Class == authgate.ClassAdminPolicy {
				reason = authgate.StatusReasonAdminPolicy
			} else if cls.ErrorCode == "token_revoked" || cls.ErrorCode == "access_denied" {
				reason = authgate.StatusReasonRevoked
			}
			// A race lost to another refresher is not a revocation: the
			// vault refuses when the stored refresh token is not the one
			// that failed, and we start over with the newer one.
			c, err := r.cfg.Vault.MarkReauthRequired(ctx, req.TenantID, req.ID, reason, &fail)
			if errors.Is(err, vault.ErrStale) {
				return nil, true, nil
			}
			if err != nil {
				return nil, false, err
			}
			e := authgate.Errorf(cls.Class, "%s", cls.Message)
			e.CredentialID = c.ID
			return nil, false, e.WithCause(out.err)
		case authgate.ClassRateLimited, authgate.ClassTransient:
			_ = r.cfg.Vault.RecordFailure(ctx, req.TenantID, req.ID, fail)
			if cls.RetryAfter > r.cfg.MaxRetryAfter || attempt >= r.cfg.MaxAttempts {
				e := authgate.Errorf(cls.Class, "%s", cls.Message)
				e.CredentialID, e.RetryAfter = req.ID, authgate.Duration(max(cls.RetryAfter, time.Second))
				return nil, false, e.WithCause(out.err)
			}
			if err := r.cfg.Sleep(ctx, max(cls.RetryAfter, r.backoff(attempt))); err != nil {
				return nil, false, authgate.Errorf(authgate.ClassTransient, "%s", cls.Message).WithCause(err)
			}
		default:
			_ = r.cfg.Vault.RecordFailure(ctx, req.TenantID, req.ID, fail)
			e := authgate.Errorf(cls.Class, "%s", cls.Message)
			e.CredentialID = req.ID
			return nil, false, e.WithCause(out.err)
		}
	}
}

// backoff is full jitter: uniform in [0, min(max, base·2^attempt)).
func (r *Refresher) backoff(attempt int) time.Duration {
	ceiling := min(r.cfg.MaxBackoff, r.cfg.BaseBackoff<<min(attempt, 20))
	return time.Duration(rand.Int64N(int64(ceiling) + 1))
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// outcome is one provider refresh call.
type outcome struct {
	access, refresh secret.Secret
	expiresAt       time.Time
	scopes          []string
	skew            time.Duration
	skewKnown       bool
	status          int
	requestID       string
	err             error
	class           classify.Result
	description     string
}

// call makes one refresh request with x/oauth2 and records the response.
func (r *Refresher) call(ctx context.Context, p *catalog.Provider, l *vault.Loaded) outcome {
	start := r.cfg.Clock.Now()
	rec := &httprec.Recorder{Base: r.cfg.Transport}
	cctx, cancel := context.WithTimeout(ctx, r.cfg.CallTimeout)
	defer cancel()
	cctx = context.WithValue(cctx, oauth2.HTTPClient, &http.Client{Transport: rec})
	style := oauth2.AuthStyleInHeader
	if p.ClientAuth == "post" {
		style = oauth2.AuthStyleInParams
	}
	cfg := &oauth2.Config{ClientID: p.ClientID, ClientSecret: p.ClientSecret, Endpoint: oauth2.Endpoint{TokenURL: p.TokenURL, AuthStyle: style}}
	sent := l.RefreshToken.Reveal()
	tok, err := cfg.TokenSource(cctx, &oauth2.Token{RefreshToken: sent, Expiry: time.Unix(1, 0)}).Token()
	received := r.cfg.Clock.Now()
	out := outcome{status: rec.Status, requestID: rec.RequestID()}
	out.skew, out.skewKnown = rec.ClockSkew(received)
	// Slack answers refresh failures with HTTP 200 {"ok":false}: a "success"
	// to x/oauth2 that is no token.
	if err == nil && (tok.AccessToken == "" || bytes.Contains(rec.Body, []byte(`"ok":false`))) {
		err = errors.New("provider answered without an access token")
	}
	outcomeName := "success"
	if err != nil {
		out.err = err
		if rec.Status == 0 {
			out.class = classify.Classify(classify.Input{Provider: p.Name, Operation: classify.OpRefresh, Status: 503, Header: http.Header{}, Now: received})
			out.description = "no response: " + err.Error()
		} else {
			out.class = classify.Classify(classify.Input{Provider: p.Name, Operation: classify.OpRefresh, Status: rec.Status, Header: rec.Header, Body: rec.Body, Now: received})
			out.description = descriptionOf(rec.Body)
		}
		outcomeName = string(out.class.Class)
	} else {
		out.access = secret.New(tok.AccessToken)
		if tok.RefreshToken != "" && tok.RefreshToken != sent {
			out.refresh = secret.New(tok.RefreshToken)
		}
		if tok.ExpiresIn > 0 {
			out.expiresAt = received.Add(time.Duration(tok.ExpiresIn) * time.Second).UTC().Truncate(time.Microsecond)
		}
		if s, ok := tok.Extra("scope").(string); ok && s != "" {
			out.scopes = p.SplitScopes(s)
		}
	}
	if r.cfg.Observer != nil {
		r.cfg.Observer.Refresh(p.Name, outcomeName, received.Sub(start))
	}
	attrs := []slog.Attr{
		slog.String("provider", p.Name), slog.String("credential_id", string(l.ID)), slog.String("user_id", l.UserID), slog.String("workspace_id", l.WorkspaceID),
		slog.String("refresh_token_fp", l.RefreshToken.Fingerprint()), slog.Int("http_status", out.status), slog.String("provider_request_id", out.requestID),
		slog.Float64("duration_ms", float64(received.Sub(start).Microseconds())/1000), slog.String("outcome", outcomeName),
	}
	if out.err != nil {
		attrs = append(attrs, slog.String("error", out.class.ErrorCode), slog.String("error_description", out.description))
	} else {
		attrs = append(attrs, slog.String("access_token_fp", out.access.Fingerprint()), slog.Bool("rotated", !out.refresh.IsZero()))
	}
	if out.skewKnown {
		attrs = append(attrs, slog.Float64("clock_skew_seconds", out.skew.Seconds()))
		if out.skew > r.cfg.SkewWarn || out.skew < -r.cfg.SkewWarn {
			r.cfg.Logger.LogAttrs(ctx, slog.LevelWarn, "provider clock skew", attrs...)
		}
	}
	level := slog.LevelInfo
	if out.err != nil {
		level = slog.LevelWarn
	}
	r.cfg.Logger.LogAttrs(ctx, level, "refresh", attrs...)
	return out
}

// descriptionOf extracts a provider's error description for the event log
// (never the whole body, which could echo a token).
func descriptionOf(body []byte) string {
	for _, key := range []string{`"error_description"`, `"message"`, `"error"`} {
		i := bytes.Index(body, []byte(key))
		if i < 0 {
			continue
		}
		rest := body[i+len(key):]
		j := bytes.IndexByte(rest, '"')
		if j < 0 {
			continue
		}
		rest = rest[j+1:]
		k := bytes.IndexByte(rest, '"')
		if k < 0 || k > 300 {
			continue
		}
		return string(rest[:k])
	}
	return ""
}
