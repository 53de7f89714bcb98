package refresh

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/internal/clock"
	"github.com/authgate/authgate/internal/storage"
)

// Promises on providers that revoke the previous access token on refresh
// (catalog: revokes_access_token_on_refresh; Ory Hydra and other fosite
// servers, the sandbox oidc).
//
// There a refresh kills the token every earlier caller holds, so "valid for
// N more seconds" holds only if no refresh is sent while a promise on the
// current token runs. Every promise is therefore recorded before it is made:
// the credential's promise horizon (storage.CredentialPromise, one row,
// shared by every process) is the latest moment anyone was told the token
// lives to. The hot path makes no write: a process pushes the horizon a chunk
// past what its caller needs and serves from memory until time catches up.
//
// A flight that must refresh first seals the horizon (it stops growing) and
// waits, holding the lease, until the database's clock passes it. Meanwhile
// a caller whose window ends before the sealed horizon still gets the current
// token; one whose window crosses it waits for the flight and gets the new
// token, unless its own deadline comes first: then it gets the current token
// at once with min_valid_met false and the time it really has left. Windows
// stay capped at half the token lifetime, so no wait exceeds that.
//
// Nothing here runs for providers that do not revoke: their cost is one
// boolean on the hot path.

// promiseState is this process's copy of a credential's promise horizon.
type promiseState struct {
	fp      string
	version int64
	horizon time.Time // database time
	sealed  bool
	// offset is the database's clock minus this process's when last read:
	// local now + offset compares with horizon.
	offset time.Duration
}

// promiseChunk is how far past a caller's need the horizon is pushed, so a
// busy credential costs one write per chunk of time, not one per request.
// It is also the most a refresh can wait beyond the longest real promise.
func promiseChunk(lifetime time.Duration) time.Duration {
	return min(max(lifetime/10, 100*time.Millisecond), 5*time.Second)
}

// deadlineMargin is what a caller's deadline must leave after the planned
// refresh for the refresh itself; a shorter deadline gets the current token.
const deadlineMargin = 500 * time.Millisecond

// keepsPromises reports whether s's token is one whose promises must be
// recorded (a revoking provider, a token with a known expiry).
func keepsPromises(s *snapshot) bool {
	return s.provider.RevokesAccessTokenOnRefresh && s.token.ExpiresAt != nil && s.cred.AccessTokenFingerprint != ""
}

// promiseFor returns this process's copy of the horizon of s's token, or nil.
func promiseFor(e *entry, s *snapshot) *promiseState {
	ps := e.promise.Load()
	if ps == nil || ps.fp != s.cred.AccessTokenFingerprint {
		return nil
	}
	return ps
}

// covered reports, without I/O, whether a promise of window from now on s's
// token is already inside the recorded horizon.
func covered(e *entry, s *snapshot, now time.Time, window time.Duration) bool {
	ps := promiseFor(e, s)
	return ps != nil && !now.Add(ps.offset).Add(window).After(ps.horizon)
}

// deathOf is when s's token stops working as far as this process knows: its
// expiry, or the sealed horizon at which a refresh will revoke it.
func deathOf(e *entry, s *snapshot) time.Time {
	end := *s.token.ExpiresAt
	if ps := promiseFor(e, s); ps != nil && ps.sealed {
		end = earliest(end, ps.horizon.Add(-ps.offset))
	}
	return end
}

// cutShort reports whether a planned refresh (a sealed horizon) ends s's
// token before need has run from now: the flight must fetch the next one.
func cutShort(e *entry, s *snapshot, now time.Time, need time.Duration) bool {
	return keepsPromises(s) && deathOf(e, s).Sub(now) < need
}

// notePromise keeps what the store returned as this process's copy.
func (r *Refresher) notePromise(e *entry, p storage.CredentialPromise, offset time.Duration) *promiseState {
	ps := &promiseState{fp: p.AccessFP, version: p.Version, horizon: p.Horizon, sealed: p.Sealed, offset: offset}
	e.promise.Store(ps)
	return ps
}

// promiseNow is the time promises are compared in across processes: the
// database's (indoubt.go's dbNow), with the offset of this process's clock
// from it (database minus local).
func (r *Refresher) promiseNow(ctx context.Context) (now time.Time, offset time.Duration, err error) {
	t, err := r.dbNow(ctx)
	if err != nil {
		return time.Time{}, 0, err
	}
	return t, time.Duration(r.offset.Load()), nil
}

// extend records a promise of window from now on s's token: the horizon is
// pushed to now+window plus a chunk, never past the token's expiry.
// Concurrent callers of one process make one write between them.
// With read set it only reads the horizon every process recorded (pushing
// it to now at most, which promises nothing).
func (r *Refresher) extend(ctx context.Context, e *entry, s *snapshot, window time.Duration, read bool) (*promiseState, error) {
	e.promiseMu.Lock()
	defer e.promiseMu.Unlock()
	if !read && covered(e, s, r.cfg.Clock.Now(), window) {
		return promiseFor(e, s), nil
	}
	now, offset, err := r.promiseNow(ctx)
	if err != nil {
		return nil, err
	}
	until := now
	if !read {
		until = now.Add(window + promiseChunk(s.lifetime))
		if limit := s.token.ExpiresAt.Add(offset); until.After(limit) {
			until = latest(limit, now.Add(window))
		}
	}
	p, err := r.cfg.Store.CredentialPromiseExtend(ctx, storage.CredentialPromiseParams{ID: s.cred.ID, AccessFP: s.cred.AccessTokenFingerprint, Version: s.cred.Version, Until: until})
	if err != nil {
		return nil, fmt.Errorf("record the promise on %s: %w", s.cred.ID, err)
	}
	return r.notePromise(e, p, offset), nil
}

// promiseFirst answers a request for a revoking provider's token from s (the
// cached copy, or what the previous flight read) when it can, recording the
// promise first. done is false when the caller must wait for a flight: the
// token cannot cover its window, or a planned refresh will revoke it first.
func (r *Refresher) promiseFirst(ctx context.Context, e *entry, s *snapshot, req Request, refreshed bool) (t *Token, err error, done bool) {
	if s == nil {
		if s = e.snap.Load(); s == nil || s.epoch != r.epoch.Load() {
			// The lease taken for the refresh dropped the cached copy; the
			// token it will revoke still serves windows that end first.
			if s = e.pending.Load(); s == nil {
				return nil, nil, false
			}
		}
	}
	if s.tenant != req.TenantID || s.cred.Status != authgate.CredentialStatusActive || !keepsPromises(s) {
		return nil, nil, false
	}
	if req.RejectedFingerprint != "" && req.RejectedFingerprint == s.cred.AccessTokenFingerprint {
		return nil, nil, false
	}
	if len(req.Actions) > 0 {
		if err := missingScopes(s, req.Actions); err != nil {
			return nil, err, true
		}
	}
	now := r.cfg.Clock.Now()
	need := s.need(req.MinValid, req.Proactive)
	if deathOf(e, s).Sub(now) >= need || (refreshed && s.token.ExpiresAt.After(now)) {
		window := min(need, s.token.ExpiresAt.Sub(now))
		ps, err := r.extend(ctx, e, s, window, false)
		if err != nil {
			return nil, err, true
		}
		if ps.fp != s.cred.AccessTokenFingerprint {
			return nil, nil, false // a newer token exists: the flight reads it
		}
		// The write may have queued behind others: the promise runs from
		// the answer, not from the request.
		now = r.cfg.Clock.Now()
		if !now.Add(ps.offset).Add(window).After(ps.horizon) {
			r.touch(e, req.ID, now)
			return r.promised(s, ps, now, req, refreshed), nil, true
		}
		// Sealed short of this window: the token dies at the planned refresh.
	}
	return r.shortDeadline(ctx, e, s, req, now)
}

// promised is the answer for a token whose promise is recorded.
func (r *Refresher) promised(s *snapshot, ps *promiseState, now time.Time, req Request, refreshed bool) *Token {
	left := s.token.ExpiresAt.Sub(now)
	if left >= req.MinValid && !refreshed {
		return s.token
	}
	c := *s.token
	c.MinValidMet, c.Refreshed = left >= req.MinValid, refreshed
	if !c.MinValidMet {
		// What the caller can count on: the token lives to the horizon at
		// least (no refresh is sent before it), and not past its expiry.
		end := earliest(*s.token.ExpiresAt, ps.horizon.Add(-ps.offset))
		c.ExpiresAt = &end
	}
	return &c
}

// shortDeadline serves the current token to a caller whose deadline ends
// before the refresh it would wait for can be sent (the horizon: nobody
// refreshes before it), with min_valid_met false and the time the token
// really has. Callers without a deadline, or with time to wait, go on to the
// flight.
func (r *Refresher) shortDeadline(ctx context.Context, e *entry, s *snapshot, req Request, now time.Time) (*Token, error, bool) {
	deadline, ok := ctx.Deadline()
	if !ok {
		return nil, nil, false
	}
	// The horizon as every process recorded it, not this process's copy: a
	// refresh waits for the latest promise anywhere.
	ps, err := r.extend(ctx, e, s, 0, true)
	if err != nil || ps.fp != s.cred.AccessTokenFingerprint {
		return nil, nil, false
	}
	now = r.cfg.Clock.Now() // the read may have queued behind writes
	// Context deadlines are wall-clock instants whatever clock authgate runs
	// on: measure the caller's budget with the wall clock.
	budget := deadline.Sub(clock.Real{}.Now())
	end := earliest(*s.token.ExpiresAt, ps.horizon.Add(-ps.offset))
	if !end.After(now) || budget >= end.Sub(now)+deadlineMargin {
		return nil, nil, false
	}
	r.touch(e, req.ID, now)
	c := *s.token
	c.MinValidMet, c.ExpiresAt = false, &end
	return &c, nil, true
}

// keepPromises runs under the lease just before a refresh of a revoking
// provider's token is sent: it seals the token's horizon and waits until the
// database's clock has passed it, so no promise on the token is broken. The
// lease is renewed meanwhile; the wait is at most the longest promise (half
// the token lifetime) plus one chunk. again is true when the stored promises
// belong to a newer token (the flight starts over). A refresh for a token a
// caller reported rejected does not wait: the provider already refuses it.
//
// The wait is bounded by the sealed horizon, not by the flight's budget (a
// default 5-minute window on hour-long tokens can mean minutes): after it,
// the refresh runs on a fresh budget, returned as ctx with its cancel.
func (r *Refresher) keepPromises(ctx context.Context, e *entry, f *flight, s *snapshot) (_ context.Context, cancel context.CancelFunc, again bool, err error) {
	noop := func() {}
	if !keepsPromises(s) {
		return ctx, noop, false, nil
	}
	now, offset, err := r.promiseNow(ctx)
	if err != nil {
		return ctx, noop, false, err
	}
	p, err := r.cfg.Store.CredentialPromiseSeal(ctx, storage.CredentialPromiseParams{ID: s.cred.ID, AccessFP: s.cred.AccessTokenFingerprint, Version: s.cred.Version, Until: now})
	if err != nil {
		return ctx, noop, false, fmt.Errorf("refresh %s: seal the promises: %w", s.cred.ID, err)
	}
	r.notePromise(e, p, offset)
	if p.AccessFP != s.cred.AccessTokenFingerprint {
		return ctx, noop, true, nil
	}
	wait := p.Horizon.Sub(now)
	if wait <= 0 || f.rejected != "" {
		return ctx, noop, false, nil
	}
	r.cfg.Logger.Debug("refresh waits for the promises on the current token", slog.String("credential_id", string(s.cred.ID)), slog.Duration("wait", wait))
	e.pending.Store(s)
	err = r.cfg.Sleep(context.WithoutCancel(ctx), wait)
	e.pending.Store(nil)
	if err != nil {
		return ctx, noop, false, authgate.Errorf(authgate.ClassTransient, "interrupted waiting for the promises on the current token to run out").WithCause(err)
	}
	ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), r.flightBudget())
	// The row may have moved while we waited (a reconnect): never present
	// a refresh token read before the wait if it is no longer the stored one.
	c, err := r.cfg.Vault.Get(ctx, f.tenant, s.cred.ID)
	if err != nil || c.Version != s.cred.Version {
		cancel()
		return ctx, noop, err == nil, err
	}
	return ctx, cancel, false, nil
}

func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func latest(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// lateAnswer is for a caller whose deadline ran out while it waited for a
// flight: on a revoking provider it still gets the current token, if that is
// alive and promised (min_valid_met false, expires_at when it really stops
// working), rather than an error. This process's copy of the horizon is a
// lower bound of the recorded one, so the end it reports holds.
func (r *Refresher) lateAnswer(ctx context.Context, e *entry, s *snapshot, req Request) *Token {
	if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return nil // the caller went away
	}
	if s == nil {
		if s = e.snap.Load(); s == nil {
			s = e.pending.Load()
		}
	}
	if s == nil || s.tenant != req.TenantID || s.cred.Status != authgate.CredentialStatusActive || !keepsPromises(s) ||
		req.RejectedFingerprint == s.cred.AccessTokenFingerprint {
		return nil
	}
	ps := promiseFor(e, s)
	if ps == nil {
		return nil
	}
	now := r.cfg.Clock.Now()
	end := earliest(*s.token.ExpiresAt, ps.horizon.Add(-ps.offset))
	if !end.After(now) {
		return nil
	}
	if len(req.Actions) > 0 && missingScopes(s, req.Actions) != nil {
		return nil
	}
	c := *s.token
	c.MinValidMet, c.ExpiresAt = false, &end
	return &c
}
