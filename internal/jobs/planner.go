package jobs

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"time"

	"github.com/riverqueue/river"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/internal/clock"
	"github.com/authgate/authgate/internal/refresh"
	"github.com/authgate/authgate/internal/storage"
)

// Planner keeps credentials healthy ahead of need: it schedules a
// proactive refresh for every credential bound to an unfinished run before
// its access token leaves the safety window, and a health check of every
// idle active credential once per sweep interval, spread over the interval.
// Refreshes and checks of one provider are at least 1/rate apart across
// every instance (the next free slot per provider is a row, updated in the
// transaction that inserts the jobs).
type Planner struct {
	Store storage.Store
	Queue *Queue
	Clock clock.Clock
	// Tokens refreshes (the refresher).
	Tokens interface {
		Token(ctx context.Context, req refresh.Request) (*refresh.Token, error)
	}
	// Identity is the cheap live check (verify.Verifier.Health): a token
	// (refreshed only if it has under a minute left) and the provider's
	// identity call with it. answered is false when the provider has no
	// identity call; rejected is the fingerprint of an access token the
	// provider refused. Optional: without it every check is a refresh.
	Identity func(ctx context.Context, tenant authgate.TenantID, id authgate.CredentialID) (answered bool, rejected string, err error)
	// Rotates tells whether a provider rotates refresh tokens (the
	// catalog's rotates_refresh_tokens); nil: none does.
	Rotates func(provider string) bool
	// Safety is the window a token must never be inside unrefreshed
	// (refresh.DefaultMinValid); Lead is how long before entering it the
	// refresh is scheduled (default 4 min: room to retry and to absorb a
	// burst at the provider's rate).
	Safety, Lead time.Duration
	// Horizon is how far ahead each pass plans (default 3 plan intervals).
	Horizon time.Duration
	// SweepInterval is the period within which each idle credential is
	// checked once.
	SweepInterval time.Duration
	// Rate is refreshes plus checks per second per provider (default 10).
	Rate   func(provider string) float64
	Logger *slog.Logger
}

func (p *Planner) defaults() {
	if p.Clock == nil {
		p.Clock = clock.Real{}
	}
	if p.Safety <= 0 {
		p.Safety = refresh.DefaultMinValid
	}
	if p.Lead <= 0 {
		p.Lead = 4 * time.Minute
	}
	if p.Horizon <= 0 {
		p.Horizon = 3 * PlanInterval
	}
	if p.SweepInterval <= 0 {
		p.SweepInterval = 24 * time.Hour
	}
	if p.Rate == nil {
		p.Rate = func(string) float64 { return 10 }
	}
	if p.Logger == nil {
		p.Logger = slog.New(slog.DiscardHandler)
	}
}

func (p *Planner) gap(provider string) time.Duration {
	r := p.Rate(provider)
	if r <= 0 {
		r = 10
	}
	return time.Duration(float64(time.Second) / r)
}

// Slot is the pure core of planning: the time a refresh or check of a
// provider due at want runs, given the provider's next free slot, and the
// slot after it. Never before now, never before the free slot.
func Slot(now, want, free time.Time, gap time.Duration) (at, next time.Time) {
	at = want
	if at.Before(now) {
		at = now
	}
	if at.Before(free) {
		at = free
	}
	return at, at.Add(gap)
}

// pageSize bounds one planning transaction.
const pageSize = 500

// Plan schedules, in pages of one transaction each, the refreshes and
// checks due within the horizon. Planning twice schedules nothing twice:
// a refresh job is unique per (credential, token expiry), a check moves the
// credential's next check on in the transaction that enqueues it.
func (p *Planner) Plan(ctx context.Context) error {
	p.defaults()
	now := p.Clock.Now()
	if err := p.planRefreshes(ctx, now); err != nil {
		return fmt.Errorf("plan refreshes: %w", err)
	}
	if err := p.planChecks(ctx, now); err != nil {
		return fmt.Errorf("plan checks: %w", err)
	}
	return nil
}

func (p *Planner) planRefreshes(ctx context.Context, now time.Time) error {
	before := now.Add(p.Safety + p.Lead + p.Horizon)
	var afterExp time.Time
	var afterID authgate.CredentialID
	for {
		var page []*storage.Credential
		err := p.Store.Tx(ctx, func(q storage.Queries) error {
			var err error
			page, err = q.CredentialListBoundExpiring(ctx, storage.CredentialListBoundExpiringParams{Before: before, AfterExpiry: afterExp, AfterID: afterID, Limit: pageSize})
			if err != nil || len(page) == 0 {
				return err
			}
			free, err := q.RefreshSlotsGet(ctx)
			if err != nil {
				return err
			}
			moved := map[string]bool{}
			for _, c := range page {
				deadline := c.AccessTokenExpiresAt.Add(-p.Safety)
				at, next := Slot(now, deadline.Add(-p.Lead), free[c.Provider], p.gap(c.Provider))
				res, err := p.Queue.insertOne(ctx, q, RefreshArgs{TenantID: c.TenantID, CredentialID: c.ID, ExpiresAt: c.AccessTokenExpiresAt.Unix()},
					&river.InsertOpts{ScheduledAt: at})
				if err != nil {
					return err
				}
				if err := q.RefreshPlanned(ctx, c.ID, c.AccessTokenExpiresAt); err != nil {
					return err
				}
				if res { // newly planned: it takes the slot
					free[c.Provider], moved[c.Provider] = next, true
					if at.After(deadline) {
						p.Logger.WarnContext(ctx, "proactive refresh planned inside the safety window: the provider's rate is too low for the load",
							"credential_id", string(c.ID), "provider", c.Provider)
					}
				}
			}
			for prov := range moved {
				if err := q.RefreshSlotSet(ctx, prov, free[prov]); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil || len(page) < pageSize {
			return err
		}
		// The page is planned now, so the next read starts past it anyway;
		// the cursor only guards against a page that planned nothing new.
		last := page[len(page)-1]
		afterExp, afterID = last.AccessTokenExpiresAt, last.ID
	}
}

// spread is a credential's fixed offset within the sweep period, so checks
// of many credentials spread evenly and each keeps its own phase.
func spread(id authgate.CredentialID, period time.Duration) time.Duration {
	h := fnv.New64a()
	h.Write([]byte(id))
	return time.Duration(h.Sum64() % uint64(period))
}

func (p *Planner) planChecks(ctx context.Context, now time.Time) error {
	before := now.Add(p.Horizon)
	var after authgate.CredentialID
	for {
		var page []storage.CredentialCheckDue
		err := p.Store.Tx(ctx, func(q storage.Queries) error {
			var err error
			page, err = q.CredentialListCheckDue(ctx, storage.CredentialListCheckDueParams{Before: before, AfterID: after, Limit: pageSize})
			if err != nil || len(page) == 0 {
				return err
			}
			free, err := q.RefreshSlotsGet(ctx)
			if err != nil {
				return err
			}
			moved := map[string]bool{}
			for _, d := range page {
				due := d.NextCheckAt
				if due.IsZero() {
					due = now.Add(spread(d.ID, p.SweepInterval))
				}
				if due.After(before) { // first planned: its turn is later
					if err := q.CredentialCheckSchedule(ctx, storage.CredentialCheckScheduleParams{ID: d.ID, TenantID: d.TenantID, Next: due}); err != nil {
						return err
					}
					continue
				}
				at, next := Slot(now, due, free[d.Provider], p.gap(d.Provider))
				free[d.Provider], moved[d.Provider] = next, true
				if _, err := p.Queue.insertOne(ctx, q, CheckArgs{TenantID: d.TenantID, CredentialID: d.ID, Due: at.Unix()}, &river.InsertOpts{ScheduledAt: at}); err != nil {
					return err
				}
				nextCheck := due.Add(p.SweepInterval)
				for !nextCheck.After(now) {
					nextCheck = nextCheck.Add(p.SweepInterval)
				}
				if err := q.CredentialCheckSchedule(ctx, storage.CredentialCheckScheduleParams{ID: d.ID, TenantID: d.TenantID, Next: nextCheck}); err != nil {
					return err
				}
			}
			for prov := range moved {
				if err := q.RefreshSlotSet(ctx, prov, free[prov]); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil || len(page) < pageSize {
			return err
		}
		after = page[len(page)-1].ID
	}
}

// Refresh is a proactive refresh: the token is refreshed if it would not
// stay valid past the safety window plus the lead (a step may have
// refreshed it meanwhile: then nothing happens). A failure that needs the
// user has already made the credential reauth_required (with its webhook);
// the job is done. Other failures are retried by River.
func (p *Planner) Refresh(ctx context.Context, tenant authgate.TenantID, id authgate.CredentialID) error {
	p.defaults()
	_, err := p.Tokens.Token(ctx, refresh.Request{TenantID: tenant, ID: id, MinValid: p.Safety + p.Lead + time.Minute, Proactive: true})
	return settled(err)
}

// Check is one health check of an idle credential. On a provider that
// rotates refresh tokens it is a forced refresh: only a refresh proves the
// token family alive there, and it costs nothing the next refresh would not
// spend. Elsewhere it is the cheap identity call with the current token
// (Identity); a refresh happens only when that token has under a minute
// left (then the refresh is the check), when the provider refuses the
// token (a forced refresh with it as the rejected one: invalid_grant means
// revoked, success means only that access token had died), or when the
// provider has no identity call. A credential with no refresh token whose
// token is refused is reauth_required through the same refresher path.
// A revocation found makes the credential reauth_required with its reason
// through the refresher, whose state change enqueues the webhook once.
func (p *Planner) Check(ctx context.Context, tenant authgate.TenantID, id authgate.CredentialID) error {
	p.defaults()
	c, err := p.Store.CredentialGetByID(ctx, storage.CredentialGetByIDParams{TenantID: tenant, ID: id})
	if errors.Is(err, storage.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if c.Status != authgate.CredentialStatusActive {
		return nil
	}
	hasRefresh := !c.RefreshToken.IsZero()
	rotates := p.Rotates != nil && p.Rotates(c.Provider)
	// force: a refresh replacing the token whose fingerprint is reject.
	force, reject := false, c.AccessTokenFP
	if p.Identity == nil || (hasRefresh && rotates) {
		force = hasRefresh
	} else {
		answered, rejected, err := p.Identity(ctx, tenant, id)
		switch {
		case err != nil:
			return settled(err)
		case rejected != "":
			force, reject = true, rejected
		case !answered && hasRefresh:
			force = true
		}
	}
	if !force {
		return nil
	}
	_, err = p.Tokens.Token(ctx, refresh.Request{TenantID: tenant, ID: id, RejectedFingerprint: reject})
	return settled(err)
}

// settled drops the errors retrying cannot fix: those that need the user
// (the credential says so now) or are the caller's.
func settled(err error) error {
	var ae *authgate.Error
	if errors.As(err, &ae) {
		switch ae.Class {
		case authgate.ClassTransient, authgate.ClassRateLimited, authgate.ClassInternal:
			return err
		}
		return nil
	}
	return err
}

// insertOne inserts one job in q's transaction and reports whether it was
// inserted (false: a unique job with these args exists already).
func (q *Queue) insertOne(ctx context.Context, sq storage.Queries, args river.JobArgs, opts *river.InsertOpts) (bool, error) {
	res, err := q.insertResults(ctx, sq, []river.InsertManyParams{{Args: args, InsertOpts: opts}})
	if err != nil {
		return false, fmt.Errorf("enqueue: %w", err)
	}
	return len(res) == 1 && !res[0], nil
}
