package refresh

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/internal/vault"
)

// CommitObserver, when the Observer implements it, counts attempts to store
// a refresh result that the database refused and that are retried.
type CommitObserver interface {
	RefreshCommitRetry(provider string)
}

// commitAttemptTimeout bounds one attempt to store a refresh result, so that
// a database that swallows packets costs one attempt, not the whole budget.
const commitAttemptTimeout = 10 * time.Second

// apply commits a successful refresh. The provider has already rotated: the
// answer in hand is the only copy of the new refresh token, so a database
// that fails (unreachable, locked, restarting) is retried for a whole flight
// budget from now, whatever the flight's callers do and through a graceful
// shutdown (Close waits for it), while the flight keeps renewing its lease
// and its in-doubt record keeps takeovers from presenting the old token.
//
// Once stored, the in-doubt record (g) is cleared: the stored refresh token
// moved on, unless the provider did not rotate this time, and then the
// record must not make the next refresh wait.
func (r *Refresher) apply(ctx context.Context, tenant authgate.TenantID, id authgate.CredentialID, l *vault.Loaded, out outcome, provider string, g *sendGuard) (authgate.Credential, error) {
	r.commits.add()
	defer r.commits.done()
	upd := vault.Refreshed{
		UsedRefreshFP: l.RefreshToken.Fingerprint(), AccessToken: out.access, ExpiresAt: out.expiresAt, RefreshToken: out.refresh,
		Scopes: out.scopes, ClockSkew: out.skew, SkewKnown: out.skewKnown, RequestID: out.requestID, HTTPStatus: out.status, Actor: "refresher",
	}
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.flightBudget())
	defer cancel()
	start := r.cfg.Clock.Now()
	wait := 50 * time.Millisecond
	var err error
	for attempt := 1; ; attempt++ {
		actx, acancel := context.WithTimeout(bctx, commitAttemptTimeout)
		var c authgate.Credential
		c, err = r.cfg.Vault.ApplyRefresh(actx, tenant, id, upd)
		acancel()
		if err == nil || errors.Is(err, vault.ErrStale) {
			if err == nil && g != nil {
				g.settled(ctx)
			}
			if attempt > 1 && err == nil {
				r.cfg.Logger.Warn("refreshed tokens stored after the database came back", slog.String("credential_id", string(id)),
					slog.Int("attempts", attempt), slog.Duration("after", r.cfg.Clock.Now().Sub(start).Round(time.Millisecond)))
			}
			return c, err
		}
		var ae *authgate.Error
		if errors.As(err, &ae) && ae.Class != authgate.ClassInternal {
			break
		}
		if co, ok := r.cfg.Observer.(CommitObserver); ok {
			co.RefreshCommitRetry(provider)
		}
		// One line when it starts failing, then one every ten attempts.
		if attempt == 1 || attempt%10 == 0 {
			r.cfg.Logger.Error("store refreshed tokens: the database refused; retrying with the answer kept", slog.String("credential_id", string(id)),
				slog.Int("attempt", attempt), slog.Duration("retrying_for", r.cfg.Clock.Now().Sub(start).Round(time.Millisecond)), slog.String("error", err.Error()))
		}
		if sleep(bctx, wait) != nil {
			break
		}
		wait = min(wait*2, time.Second)
	}
	r.cfg.Logger.Error("refreshed tokens could not be stored within the flight budget; the rotated refresh token is lost", slog.String("credential_id", string(id)),
		slog.String("refresh_token_fp", l.RefreshToken.Fingerprint()), slog.String("error", err.Error()))
	return authgate.Credential{}, fmt.Errorf("refresh %s: store: %w", id, err)
}

// pendingCommits counts refresh answers not yet stored. Close waits for it
// to reach zero; unlike a WaitGroup, adding while someone waits is fine.
type pendingCommits struct {
	mu   sync.Mutex
	n    int
	idle chan struct{} // closed when n drops to zero
}

func (c *pendingCommits) add() {
	c.mu.Lock()
	if c.n == 0 {
		c.idle = make(chan struct{})
	}
	c.n++
	c.mu.Unlock()
}

func (c *pendingCommits) done() {
	c.mu.Lock()
	c.n--
	if c.n == 0 {
		close(c.idle)
	}
	c.mu.Unlock()
}

// zero is closed once no answer is waiting to be stored.
func (c *pendingCommits) zero() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == 0 {
		ch := make(chan struct{})
		close(ch)
		return ch
	}
	return c.idle
}
