package gate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/internal/storage"
)

// change is one state change and what its timeline entry says.
type change struct {
	To      authgate.RunState
	Kind    authgate.RunEntryKind
	Binding string
	Class   authgate.Class
	Reason  string
	// Blocked is the run's blocked info when To is blocked_on_auth.
	Blocked storage.RunBlocked
}

// transition moves r (read in this transaction) to ch.To and appends the
// entry, on q: the state and its entry commit together or not at all.
func (g *Gate) transition(ctx context.Context, q storage.Queries, r *storage.Run, ch change) error {
	if !CanTransition(r.State, ch.To) {
		return authgate.Errorf(authgate.ClassConflict, "run %s is %s and cannot become %s", r.ID, r.State, ch.To).
			WithCause(fmt.Errorf("%w: %s → %s", ErrInvalidTransition, r.State, ch.To))
	}
	from := r.State
	now := g.clock.Now()
	r.State, r.UpdatedAt, r.Blocked = ch.To, now, storage.RunBlocked{}
	if ch.To == authgate.RunStateBlockedOnAuth {
		r.Blocked = ch.Blocked
	}
	if err := q.RunUpdateCAS(ctx, r); err != nil {
		return fmt.Errorf("run %s: %w", r.ID, err)
	}
	var details json.RawMessage
	if ch.Blocked.ReconnectURL != "" {
		details, _ = json.Marshal(map[string]string{"reconnect_url": ch.Blocked.ReconnectURL, "credential_id": string(ch.Blocked.CredentialID)})
	}
	if err := q.RunEntryInsert(ctx, &storage.RunEntry{TenantID: r.TenantID, RunID: r.ID, At: now, Kind: ch.Kind,
		FromState: from, ToState: ch.To, Binding: ch.Binding, Class: ch.Class, Reason: ch.Reason, Details: details}); err != nil {
		return err
	}
	if g.onTransition != nil {
		return g.onTransition(ctx, q, r, from)
	}
	return nil
}

// change reads a run in its own transaction (locking it where the backend
// does) and applies fn's change to it.
func (g *Gate) change(ctx context.Context, tenant authgate.TenantID, id authgate.RunID, fn func(q storage.Queries, r *storage.Run) (change, error)) (*storage.Run, error) {
	var out *storage.Run
	err := g.store.Tx(ctx, func(q storage.Queries) error {
		r, err := getRun(ctx, q, tenant, id)
		if err != nil {
			return err
		}
		ch, err := fn(q, r)
		if err != nil {
			return err
		}
		if err := g.transition(ctx, q, r, ch); err != nil {
			return err
		}
		out = r
		return nil
	})
	return out, err
}

func getRun(ctx context.Context, q storage.Queries, tenant authgate.TenantID, id authgate.RunID) (*storage.Run, error) {
	r, err := q.RunGetByID(ctx, storage.RunGetByIDParams{TenantID: tenant, ID: id})
	if errors.Is(err, storage.ErrNotFound) {
		return nil, authgate.Errorf(authgate.ClassNotFound, "no run %s", id).WithCause(err)
	}
	return r, err
}

// FinishParams ends a run.
type FinishParams struct {
	TenantID authgate.TenantID
	RunID    authgate.RunID
	State    authgate.RunState // succeeded, failed or canceled
	Reason   string
}

// Finish moves a run to a terminal state.
func (g *Gate) Finish(ctx context.Context, p FinishParams) (*storage.Run, error) {
	if !p.State.Terminal() {
		return nil, authgate.Errorf(authgate.ClassInvalidRequest, "%q is not a final run state", p.State)
	}
	return g.change(ctx, p.TenantID, p.RunID, func(storage.Queries, *storage.Run) (change, error) {
		return change{To: p.State, Kind: authgate.RunEntryStateChanged, Reason: p.Reason}, nil
	})
}

// BlockParams stops a run until its user reconnects a binding.
type BlockParams struct {
	TenantID     authgate.TenantID
	RunID        authgate.RunID
	Binding      string
	Class        authgate.Class
	Reason       string
	ReconnectURL string
	// SeenVersion is the credential's version when the failure was seen
	// (0: unknown). If the credential is active at a newer version by the
	// time the block would commit, it was reconnected or refreshed
	// meanwhile: the run is not blocked (see Block).
	SeenVersion int64
}

// errStillUsable rolls back a block whose credential became usable again.
var errStillUsable = errors.New("the credential is active again")

// Block makes a run blocked_on_auth on the credential bound as Binding, with
// its timeline entry, in one transaction. That transaction re-reads the
// credential (locking it where the backend does), so a block and a
// reconnect of the same credential are ordered: a reconnect committed
// first shows as an active credential at a version newer than SeenVersion,
// and the run is returned unblocked (still running: the caller retries the
// step); a reconnect committed after finds this run blocked and resumes it.
// Either way no run stays blocked on a usable credential.
func (g *Gate) Block(ctx context.Context, p BlockParams) (*storage.Run, error) {
	r, err := g.change(ctx, p.TenantID, p.RunID, func(q storage.Queries, r *storage.Run) (change, error) {
		cred, ok := r.Bindings[p.Binding]
		if !ok {
			return change{}, authgate.Errorf(authgate.ClassInvalidRequest, "run %s has no binding %q", r.ID, p.Binding)
		}
		if p.SeenVersion != 0 && r.State != authgate.RunStateBlockedOnAuth {
			c, err := q.CredentialGetByID(ctx, storage.CredentialGetByIDParams{TenantID: p.TenantID, ID: cred})
			if err != nil {
				return change{}, fmt.Errorf("block on %s: %w", cred, err)
			}
			if c.Status == authgate.CredentialStatusActive && c.Version != p.SeenVersion {
				return change{}, errStillUsable
			}
		}
		return change{To: authgate.RunStateBlockedOnAuth, Kind: authgate.RunEntryBlocked, Binding: p.Binding, Class: p.Class, Reason: p.Reason,
			Blocked: storage.RunBlocked{Binding: p.Binding, CredentialID: cred, Class: p.Class, Reason: p.Reason, ReconnectURL: p.ReconnectURL}}, nil
	})
	if errors.Is(err, errStillUsable) {
		return getRun(ctx, g.store, p.TenantID, p.RunID)
	}
	return r, err
}

// ResumeParams names a blocked run to resume.
type ResumeParams struct {
	TenantID authgate.TenantID
	RunID    authgate.RunID
	Reason   string
}

// Resume makes a blocked run running again with a resumed entry.
func (g *Gate) Resume(ctx context.Context, p ResumeParams) (*storage.Run, error) {
	return g.change(ctx, p.TenantID, p.RunID, func(_ storage.Queries, r *storage.Run) (change, error) {
		return resumed(r, p.Reason)
	})
}

func resumed(r *storage.Run, reason string) (change, error) {
	if r.State != authgate.RunStateBlockedOnAuth {
		return change{}, authgate.Errorf(authgate.ClassConflict, "run %s is %s, not blocked_on_auth", r.ID, r.State).WithCause(ErrInvalidTransition)
	}
	return change{To: authgate.RunStateRunning, Kind: authgate.RunEntryResumed, Binding: r.Blocked.Binding, Reason: reason}, nil
}

// ResumeBlockedOnParams names a credential that is usable again.
type ResumeBlockedOnParams struct {
	TenantID     authgate.TenantID
	CredentialID authgate.CredentialID
	Reason       string
}

// ResumeBlockedOn resumes every run blocked on a credential, each in its
// own transaction, and returns their ids. The credential must be active:
// a reconnect refused (another account: identity_mismatch) resumes nothing.
// A run resumed or changed meanwhile by someone else is skipped, so calling
// it twice resumes each run once.
func (g *Gate) ResumeBlockedOn(ctx context.Context, p ResumeBlockedOnParams) ([]authgate.RunID, error) {
	c, err := g.store.CredentialGetByID(ctx, storage.CredentialGetByIDParams{TenantID: p.TenantID, ID: p.CredentialID})
	if err != nil {
		return nil, fmt.Errorf("resume on %s: %w", p.CredentialID, err)
	}
	if c.Status != authgate.CredentialStatusActive {
		return nil, authgate.Errorf(authgate.ClassReauthRequired, "credential %s is %s (%s): nothing resumes", c.ID, c.Status, c.StatusReason)
	}
	var ids []authgate.RunID
	var after authgate.RunID
	for {
		page, err := g.store.RunListBlockedOn(ctx, storage.RunListBlockedOnParams{TenantID: p.TenantID, CredentialID: p.CredentialID, AfterID: after, Limit: 100})
		if err != nil {
			return ids, fmt.Errorf("resume on %s: %w", p.CredentialID, err)
		}
		for _, r := range page {
			after = r.ID
			_, err := g.change(ctx, p.TenantID, r.ID, func(_ storage.Queries, r *storage.Run) (change, error) {
				if r.State != authgate.RunStateBlockedOnAuth || r.Blocked.CredentialID != p.CredentialID {
					return change{}, errSkip
				}
				return resumed(r, p.Reason)
			})
			if errors.Is(err, errSkip) {
				continue
			}
			if err != nil {
				return ids, fmt.Errorf("resume %s: %w", r.ID, err)
			}
			ids = append(ids, r.ID)
		}
		if len(page) < 100 {
			return ids, nil
		}
	}
}

// errSkip rolls back a transaction that found nothing to do.
var errSkip = errors.New("skip")
