package refresh

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/internal/catalog"
	"github.com/authgate/authgate/internal/storage"
	"github.com/authgate/authgate/internal/vault"
)

// flight is one credential's trip to the database, and to the provider when
// the stored token will not do. Waiters read its result once done is closed.
type flight struct {
	done      chan struct{}
	tenant    authgate.TenantID
	minValid  time.Duration
	proactive bool
	rejected  string

	snap      *snapshot
	refreshed bool
	err       error
}

// rejectCooldown is how old a token must be before a report that the
// provider rejected it triggers a refresh.
const rejectCooldown = 2 * time.Second

// maxRounds bounds how often one caller waits for a flight whose result did
// not suit it (another tenant's, a shorter window, a token it was told is
// rejected).
const maxRounds = 4

// slow serves a request through the credential's flight.
func (r *Refresher) slow(ctx context.Context, req Request) (*Token, error) {
	if !req.ID.Valid() {
		return nil, authgate.Errorf(authgate.ClassInvalidRequest, "%q is not a credential id (they look like cred_ followed by 26 letters and digits)", truncate(string(req.ID), 64))
	}
	e := r.entryFor(req.ID)
	// Never make one tenant wait on another tenant's flight: how long the
	// answer takes would tell it the id exists and is being refreshed. The
	// credential's owner is checked first, by a plain read.
	e.mu.Lock()
	foreign := e.flight != nil && e.flight.tenant != req.TenantID
	e.mu.Unlock()
	if s := e.snap.Load(); foreign || (s != nil && s.tenant != req.TenantID) {
		if _, err := r.cfg.Vault.Get(ctx, req.TenantID, req.ID); err != nil {
			return nil, err
		}
	}
	var last *snapshot // what the previous round's flight read
	lastRefreshed := false
	for range maxRounds {
		// Providers that revoke the previous access token: promise.go.
		if t, err, done := r.promiseFirst(ctx, e, last, req, lastRefreshed); done {
			return t, err
		}
		f, err := r.flightFor(e, req)
		if err != nil {
			return nil, err
		}
		select {
		case <-ctx.Done():
			if t := r.lateAnswer(ctx, e, last, req); t != nil {
				return t, nil // promise.go: a deadline ran out on a revoking provider
			}
			return nil, ctx.Err()
		case <-f.done:
		}
		if f.tenant != req.TenantID {
			continue // not ours to read: fly our own
		}
		if f.err != nil {
			return nil, f.err
		}
		if t, err, done := r.serve(e, f.snap, req, true, f.refreshed); done {
			return t, err
		}
		last, lastRefreshed = f.snap, f.refreshed
	}
	e2 := authgate.Errorf(authgate.ClassTransient, "could not settle on a token for %s; try again", req.ID)
	e2.CredentialID, e2.RetryAfter = req.ID, authgate.Duration(time.Second)
	return nil, e2
}

// flightFor joins the credential's flight or starts one.
func (r *Refresher) flightFor(e *entry, req Request) (*flight, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.flight != nil {
		return e.flight, nil
	}
	r.closeMu.RLock()
	defer r.closeMu.RUnlock()
	if r.closed.Load() {
		e := authgate.Errorf(authgate.ClassTransient, "authgate is shutting down; ask again")
		e.CredentialID, e.RetryAfter = req.ID, authgate.Duration(time.Second)
		return nil, e
	}
	f := &flight{done: make(chan struct{}), tenant: req.TenantID, minValid: req.MinValid, proactive: req.Proactive, rejected: req.RejectedFingerprint}
	e.flight = f
	r.flights.Add(1)
	go r.fly(e, f, req.ID)
	return f, nil
}

// flightBudget bounds a whole flight: lease waits, attempts and backoff.
func (r *Refresher) flightBudget() time.Duration {
	return time.Duration(r.cfg.MaxAttempts)*(r.cfg.CallTimeout+r.cfg.MaxBackoff) + r.cfg.MaxRetryAfter
}

// fly runs a flight on a context of its own: no caller can cancel the work
// others wait for, and Close waits for it to commit.
func (r *Refresher) fly(e *entry, f *flight, id authgate.CredentialID) {
	defer r.flights.Done()
	ctx, cancel := context.WithTimeout(context.Background(), r.flightBudget())
	defer cancel()
	f.snap, f.refreshed, f.err = r.flightBody(ctx, e, f, id)
	e.mu.Lock()
	e.flight = nil
	e.mu.Unlock()
	close(f.done)
}

// needsRefresh decides for the flight's own request.
func (r *Refresher) needsRefresh(e *entry, s *snapshot, f *flight) bool {
	if f.rejected != "" {
		return s.cred.AccessTokenFingerprint == f.rejected
	}
	if s.token.AccessToken.IsZero() {
		return true
	}
	if s.token.ExpiresAt == nil {
		return unknownExpiryNeedsRefresh(s)
	}
	now := r.now()
	need := s.need(f.minValid, f.proactive)
	return s.token.ExpiresAt.Sub(now) < need || cutShort(e, s, now, need)
}

func (r *Refresher) flightBody(ctx context.Context, e *entry, f *flight, id authgate.CredentialID) (*snapshot, bool, error) {
	for {
		e.mu.Lock()
		gen, changed, quarantine := e.gen, e.changedChan(), e.quarantine
		e.mu.Unlock()
		epoch := r.epoch.Load()
		l, err := r.cfg.Vault.LoadAccess(ctx, f.tenant, id)
		if err != nil {
			return nil, false, err
		}
		p, err := r.provider(l.Provider)
		if err != nil {
			return nil, false, err
		}
		s := r.remember(e, gen, epoch, l.Credential, l.AccessToken, p)
		if l.Status != authgate.CredentialStatusActive || !r.needsRefresh(e, s, f) {
			return s, false, nil
		}
		now := r.now()
		if now.Before(quarantine) {
			return nil, false, inDoubt(id, p, quarantine.Sub(now))
		}
		if f.rejected != "" && l.LastRefreshedAt != nil && now.Sub(*l.LastRefreshedAt) < rejectCooldown {
			// A token fetched a moment ago and already "rejected" is more
			// likely a caller's bug (or the provider's propagation delay)
			// than a revocation; refreshing on every such report would let
			// one broken worker rotate the credential in a loop.
			ae := authgate.Errorf(authgate.ClassTransient, "the %s token reported rejected was fetched %s ago; ask again shortly (if the provider keeps rejecting fresh tokens, check the API call and its scopes)",
				p.DisplayName, now.Sub(*l.LastRefreshedAt).Round(time.Millisecond))
			ae.CredentialID, ae.RetryAfter = id, authgate.Duration(time.Second)
			return nil, false, ae
		}
		if !l.HasRefreshToken {
			return r.noRefreshToken(ctx, f, id, p)
		}
		// Leases are compared with the database's time (indoubt.go).
		dbNow, err := r.dbNow(ctx)
		if err != nil {
			return nil, false, fmt.Errorf("refresh %s: %w", id, err)
		}
		if l.LeaseHolder != "" && l.LeaseExpiresAt.After(dbNow) {
			left := l.LeaseExpiresAt.Sub(dbNow)
			if left > 2*r.cfg.LeaseTTL {
				// Only a quarantine holds a lease this long.
				return nil, false, inDoubt(id, p, left)
			}
			if err := r.waitChange(ctx, changed, left); err != nil {
				return nil, false, err
			}
			continue
		}
		// A lease that expired without being released belonged to a flight
		// that stopped (a crash, a kill -9, a quarantine running out): its
		// request may have reached the provider and rotated the token.
		orphan := l.LeaseHolder != ""
		if _, err := r.priorSend(ctx, l, p, ""); err != nil {
			return nil, false, err // a refresh sent by a stopped flight may still land
		}
		holder := r.cfg.Holder + "/" + nonce()
		got, err := r.cfg.Store.CredentialLeaseAcquire(ctx, storage.CredentialLeaseParams{ID: id, Holder: holder, Now: dbNow, Until: dbNow.Add(r.cfg.LeaseTTL)})
		if err != nil {
			return nil, false, fmt.Errorf("refresh %s: lease: %w", id, err)
		}
		if !got {
			if err := r.waitChange(ctx, changed, r.cfg.LeaseTTL); err != nil {
				return nil, false, err
			}
			continue
		}
		s, refreshed, again, err := r.holding(ctx, e, f, id, p, holder, orphan)
		if again {
			continue
		}
		return s, refreshed, err
	}
}

func inDoubt(id authgate.CredentialID, p *catalog.Provider, left time.Duration) error {
	e := authgate.Errorf(authgate.ClassTransient, "a refresh of this %s connection may still be landing at the provider; it is not retried with the same refresh token until it cannot (that would revoke the connection). Ask again later.", p.DisplayName)
	e.CredentialID, e.RetryAfter = id, authgate.Duration(max(left.Round(time.Second), time.Second))
	return e
}

// waitChange waits for the credential's row to change (the change feed) or
// for d (capped, so a lost notification costs at most one poll period).
func (r *Refresher) waitChange(ctx context.Context, changed <-chan struct{}, d time.Duration) error {
	d = min(max(d, 5*time.Millisecond), 250*time.Millisecond)
	if !r.live.Load() {
		d = min(d, 50*time.Millisecond)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-changed:
	case <-t.C:
	case <-ctx.Done():
		return authgate.Errorf(authgate.ClassTransient, "timed out waiting for another refresh").WithCause(ctx.Err())
	}
	return nil
}

func (r *Refresher) noRefreshToken(ctx context.Context, f *flight, id authgate.CredentialID, p *catalog.Provider) (*snapshot, bool, error) {
	// A refused token that never expires (Notion) was revoked: no refresh
	// token would have saved it. Elsewhere the missing refresh token is the
	// cause to fix (reconnect with offline access).
	reason := authgate.StatusReasonNoRefreshToken
	if f.rejected != "" && !p.Expires() {
		reason = authgate.StatusReasonRevoked
	}
	c, err := r.cfg.Vault.MarkReauthRequired(ctx, f.tenant, id, reason, nil)
	if err != nil {
		return nil, false, err
	}
	msg := "the %s connection has no refresh token and its access token expired; reconnect to continue"
	if f.rejected != "" {
		msg = "the %s connection's access token was rejected by the provider and there is no refresh token; reconnect to continue"
	}
	e := authgate.Errorf(authgate.ClassReauthRequired, msg, p.DisplayName)
	e.CredentialID = c.ID
	return nil, false, e
}

// holding refreshes while holding the lease. again asks the caller to start
// over (the stored credential moved under us).
func (r *Refresher) holding(ctx context.Context, e *entry, f *flight, id authgate.CredentialID, p *catalog.Provider, holder string, orphan bool) (s *snapshot, refreshed, again bool, err error) {
	lease := storage.CredentialLeaseParams{ID: id, Holder: holder}
	keep := false // a quarantine keeps the lease past this function
	stop := r.renew(lease)
	defer func() {
		stop()
		if !keep {
			if rerr := r.cfg.Store.CredentialLeaseRelease(context.WithoutCancel(ctx), lease); rerr != nil {
				r.cfg.Logger.Warn("release refresh lease", slog.String("credential_id", string(id)), slog.String("error", rerr.Error()))
			}
		}
	}()
	e.mu.Lock()
	gen := e.gen
	e.mu.Unlock()
	epoch := r.epoch.Load()
	// Re-read under the lease: another process may have refreshed between
	// our read and our lease.
	l, err := r.cfg.Vault.Load(ctx, f.tenant, id)
	if err != nil {
		return nil, false, false, err
	}
	s = r.remember(e, gen, epoch, l.Credential, l.AccessToken, p)
	if l.Status != authgate.CredentialStatusActive || !r.needsRefresh(e, s, f) {
		return s, false, false, nil
	}
	if l.RefreshToken.IsZero() {
		return nil, false, true, nil // flightBody handles it
	}
	// Another flight's in-doubt record for this refresh token: wait out its
	// deadline, then introspect before presenting (indoubt.go).
	if prior, err := r.priorSend(ctx, l, p, holder); err != nil {
		return nil, false, false, err
	} else if prior {
		orphan = true
	}
	// A provider that revokes the previous access token: wait for promises
	// (promise.go); the refresh then gets a budget of its own.
	var budgetDone context.CancelFunc
	if ctx, budgetDone, again, err = r.keepPromises(ctx, e, f, s); again || err != nil {
		return nil, false, again, err
	}
	defer budgetDone()
	if orphan && p.RotatesRefreshTokens && p.IntrospectionURL != "" {
		// Ask before presenting: if the stopped flight's refresh landed, the
		// stored refresh token is retired and presenting it would revoke the
		// whole family (the new tokens went down with that process).
		active, ierr := r.introspect(ctx, p, l.RefreshToken)
		switch {
		case ierr != nil:
			r.cfg.Logger.Warn("introspection before taking over a stopped refresh failed; refreshing anyway", slog.String("credential_id", string(id)), slog.String("error", ierr.Error()))
		case !active:
			fail := vault.Failure{Class: authgate.ClassReauthRequired, ErrorCode: "refresh_token_inactive", Attempt: 0, RefreshFP: l.RefreshToken.Fingerprint(), Actor: "refresher",
				Description: "a refresh whose answer never reached the store (a process that stopped mid-refresh, or a provider that answered after the token timeout) already used this refresh token; not presented again (that would revoke the whole token family)"}
			c, err := r.cfg.Vault.MarkReauthRequired(ctx, f.tenant, id, authgate.StatusReasonInvalidGrant, &fail)
			if errors.Is(err, vault.ErrStale) {
				return nil, false, true, nil
			}
			if err != nil {
				return nil, false, false, err
			}
			ae := authgate.Errorf(authgate.ClassReauthRequired, "the %s connection's newest tokens never reached authgate (a process stopped mid-refresh, or the provider answered after the timeout); reconnect to continue", p.DisplayName)
			ae.CredentialID = c.ID
			return nil, false, false, ae
		}
	}
	for attempt := 1; ; attempt++ {
		var guard *sendGuard
		if p.RotatesRefreshTokens {
			guard = r.newSendGuard(id, holder, l.RefreshToken.Fingerprint(), p)
		}
		out := r.call(ctx, p, l, guard)
		if out.notSent {
			if out.leaseLost {
				return nil, false, true, nil // start over: someone else may hold it now
			}
			return nil, false, false, out.err
		}
		if out.err == nil {
			c, err := r.apply(ctx, f.tenant, id, l, out, p.Name, guard)
			if errors.Is(err, vault.ErrStale) {
				return nil, false, true, nil
			}
			if err != nil {
				return nil, false, false, err
			}
			e.mu.Lock()
			gen := e.gen
			e.mu.Unlock()
			return r.remember(e, gen, r.epoch.Load(), c, out.access, p), true, false, nil
		}
		cls := out.class
		fail := vault.Failure{Class: cls.Class, ErrorCode: cls.ErrorCode, HTTPStatus: out.status, RequestID: out.requestID, Attempt: attempt,
			RefreshFP: l.RefreshToken.Fingerprint(), Description: out.description, Actor: "refresher"}
		if out.inDoubt && p.RotatesRefreshTokens {
			// The provider may have rotated: the old refresh token must not
			// be presented again until the first request cannot land. Keep
			// the lease for that long so no process tries.
			fail.Description = "no answer to a refresh that may have reached the provider; not retried with the same refresh token"
			_ = r.cfg.Vault.RecordFailure(ctx, f.tenant, id, fail)
			now, derr := r.dbNow(context.WithoutCancel(ctx))
			if derr != nil {
				now = r.now()
			}
			until := now.Add(r.cfg.Quarantine)
			stop()
			lease.Now, lease.Until = now, until
			if ok, err := r.cfg.Store.CredentialLeaseRenew(context.WithoutCancel(ctx), lease); err == nil && ok {
				keep = true
			}
			e.mu.Lock()
			e.quarantine = until
			e.mu.Unlock()
			r.cfg.Logger.Warn("refresh in doubt at a rotating provider; quarantined", slog.String("credential_id", string(id)), slog.String("provider", p.Name),
				slog.Duration("quarantine", r.cfg.Quarantine), slog.String("refresh_token_fp", l.RefreshToken.Fingerprint()))
			return nil, false, false, inDoubt(id, p, r.cfg.Quarantine)
		}
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
			c, err := r.cfg.Vault.MarkReauthRequired(ctx, f.tenant, id, reason, &fail)
			if errors.Is(err, vault.ErrStale) {
				return nil, false, true, nil
			}
			if err != nil {
				return nil, false, false, err
			}
			ae := authgate.Errorf(cls.Class, "%s", cls.Message)
			ae.CredentialID = c.ID
			return nil, false, false, ae.WithCause(out.err)
		case authgate.ClassRateLimited, authgate.ClassTransient:
			_ = r.cfg.Vault.RecordFailure(ctx, f.tenant, id, fail)
			if cls.RetryAfter > r.cfg.MaxRetryAfter || attempt >= r.cfg.MaxAttempts {
				ae := authgate.Errorf(cls.Class, "%s", cls.Message)
				ae.CredentialID, ae.RetryAfter = id, authgate.Duration(max(cls.RetryAfter, time.Second))
				return nil, false, false, ae.WithCause(out.err)
			}
			if err := r.cfg.Sleep(ctx, max(cls.RetryAfter, r.backoff(attempt))); err != nil {
				return nil, false, false, authgate.Errorf(authgate.ClassTransient, "%s", cls.Message).WithCause(err)
			}
		default:
			_ = r.cfg.Vault.RecordFailure(ctx, f.tenant, id, fail)
			ae := authgate.Errorf(cls.Class, "%s", cls.Message)
			ae.CredentialID = id
			return nil, false, false, ae.WithCause(out.err)
		}
	}
}

// renew keeps a lease alive until the returned stop is called (which waits
// for the renewer to exit, so nothing renews after a release).
func (r *Refresher) renew(lease storage.CredentialLeaseParams) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(max(r.cfg.LeaseTTL/4, time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			now, err := r.dbNow(ctx)
			if err != nil {
				r.cfg.Logger.Warn("refresh lease not renewed: no database clock", slog.String("credential_id", string(lease.ID)), slog.String("error", err.Error()))
				continue
			}
			l := lease
			l.Now, l.Until = now, now.Add(r.cfg.LeaseTTL)
			ok, err := r.cfg.Store.CredentialLeaseRenew(ctx, l)
			if ctx.Err() != nil {
				return
			}
			if err != nil || !ok {
				r.cfg.Logger.Warn("refresh lease lost while the provider call runs", slog.String("credential_id", string(lease.ID)), slog.String("error", errString(err)))
			}
		}
	}()
	var once bool
	return func() {
		if once {
			return
		}
		once = true
		cancel()
		<-done
	}
}

// backoff is full jitter: uniform in [0, min(max, base·2^attempt)).
func (r *Refresher) backoff(attempt int) time.Duration {
	ceiling := min(r.cfg.MaxBackoff, r.cfg.BaseBackoff<<min(attempt, 20))
	return time.Duration(rand.Int64N(int64(ceiling) + 1))
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// WithLease runs fn while holding id's refresh lease, so no refresh of it is
// in flight anywhere (disconnecting revokes the newest refresh token, not one
// a concurrent refresh is about to replace). It waits for the lease as a
// flight would, and drops this process's copy of the credential afterwards.
func (r *Refresher) WithLease(ctx context.Context, tenant authgate.TenantID, id authgate.CredentialID, fn func(ctx context.Context) error) error {
	if !id.Valid() {
		return authgate.Errorf(authgate.ClassInvalidRequest, "%q is not a credential id (they look like cred_ followed by 26 letters and digits)", truncate(string(id), 64))
	}
	if _, err := r.cfg.Vault.Get(ctx, tenant, id); err != nil {
		return err
	}
	e := r.entryFor(id)
	holder := r.cfg.Holder + "/" + nonce()
	for {
		e.mu.Lock()
		changed := e.changedChan()
		e.mu.Unlock()
		now, err := r.dbNow(ctx)
		if err != nil {
			return fmt.Errorf("lease %s: %w", id, err)
		}
		got, err := r.cfg.Store.CredentialLeaseAcquire(ctx, storage.CredentialLeaseParams{ID: id, Holder: holder, Now: now, Until: now.Add(r.cfg.LeaseTTL)})
		if err != nil {
			return fmt.Errorf("lease %s: %w", id, err)
		}
		if got {
			break
		}
		if err := r.waitChange(ctx, changed, r.cfg.LeaseTTL); err != nil {
			return err
		}
	}
	lease := storage.CredentialLeaseParams{ID: id, Holder: holder}
	stop := r.renew(lease)
	err := fn(ctx)
	stop()
	if rerr := r.cfg.Store.CredentialLeaseRelease(context.WithoutCancel(ctx), lease); rerr != nil {
		r.cfg.Logger.Warn("release lease", slog.String("credential_id", string(id)), slog.String("error", rerr.Error()))
	}
	r.invalidate(id)
	return err
}
