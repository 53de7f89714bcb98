package refresh

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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
func (r *Refresher) apply(ctx context.Context, tenant authgate.TenantID, id authgate.CredentialID, l *vault.Loaded, out outcome, provider string) (authgate.Credential, error) {
	r.commits.Add(1)
	defer r.commits.Done()
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
