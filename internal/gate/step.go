package gate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/internal/storage"
)

// StepGateParams asks whether a step may run now.
type StepGateParams struct {
	TenantID       authgate.TenantID
	RunID          authgate.RunID
	Key            string
	Actions        []string
	IdempotencyKey string
	// CredentialFingerprints records, per binding, the token the caller
	// will hand the step (the refresher supplies them).
	CredentialFingerprints map[string]string
}

// StepGateResult is a gate's answer: the step as recorded, and whether it
// was completed before (then Step.Output is its checkpoint and it must not
// run again).
type StepGateResult struct {
	Step      *storage.Step
	Completed bool
}

// StepGate lets a step of a running run go ahead, recording the attempt and
// a gate entry in one transaction. A step completed before answers with its
// output and records nothing. A run blocked on auth answers with an
// *authgate.Error of class blocked_on_auth carrying the reconnect link; a
// bound credential that storage already knows is unusable blocks the run
// first (SPEC: a run never half-completes because of auth).
func (g *Gate) StepGate(ctx context.Context, p StepGateParams) (StepGateResult, error) {
	if p.Key == "" || p.IdempotencyKey == "" {
		return StepGateResult{}, authgate.Errorf(authgate.ClassInvalidRequest, "a step needs a key and an idempotency_key")
	}
	if done, err := g.store.StepGet(ctx, storage.StepGetParams{TenantID: p.TenantID, RunID: p.RunID, Key: p.Key}); err == nil && done.Status == authgate.StepStatusCompleted {
		if done.IdempotencyKey != p.IdempotencyKey {
			return StepGateResult{}, authgate.Errorf(authgate.ClassConflict, "step %q was completed with another idempotency key", p.Key)
		}
		return StepGateResult{Step: done, Completed: true}, nil
	}
	if err := g.blockOnUnusable(ctx, p.TenantID, p.RunID); err != nil {
		return StepGateResult{}, err
	}
	var res StepGateResult
	err := g.store.Tx(ctx, func(q storage.Queries) error {
		r, err := getRun(ctx, q, p.TenantID, p.RunID)
		if err != nil {
			return err
		}
		if err := runnable(r); err != nil {
			return err
		}
		now := g.clock.Now()
		st, err := q.StepStart(ctx, storage.StepStartParams{TenantID: p.TenantID, RunID: p.RunID, Key: p.Key, Actions: p.Actions,
			IdempotencyKey: p.IdempotencyKey, CredentialFingerprints: p.CredentialFingerprints, At: now})
		if err != nil {
			return stepErr(p.Key, err)
		}
		res = StepGateResult{Step: st, Completed: st.Status == authgate.StepStatusCompleted}
		if res.Completed {
			return nil
		}
		return q.RunEntryInsert(ctx, &storage.RunEntry{TenantID: r.TenantID, RunID: r.ID, At: now, Kind: authgate.RunEntryGate, StepKey: p.Key,
			Reason: fmt.Sprintf("attempt %d", st.Attempts)})
	})
	return res, err
}

// runnable refuses a gate on a run that is not running.
func runnable(r *storage.Run) error {
	switch r.State {
	case authgate.RunStateRunning:
		return nil
	case authgate.RunStateBlockedOnAuth:
		return BlockedError(r)
	}
	return authgate.Errorf(authgate.ClassConflict, "run %s is %s: no step may run", r.ID, r.State)
}

// BlockedError is the problem a gate answers for a blocked run.
func BlockedError(r *storage.Run) *authgate.Error {
	e := authgate.Errorf(authgate.ClassBlockedOnAuth, "run %s waits for the user to reconnect %s: %s", r.ID, r.Blocked.Binding, r.Blocked.Reason)
	e.CredentialID, e.ReconnectURL = r.Blocked.CredentialID, r.Blocked.ReconnectURL
	e.AgentHint = "Ask the user to open the reconnect link; the run continues by itself afterwards. Do not retry before that."
	return e
}

// blockOnUnusable blocks a running run whose bound credential storage
// already knows needs its user (reauth_required or revoked), before a step
// is let through.
func (g *Gate) blockOnUnusable(ctx context.Context, tenant authgate.TenantID, id authgate.RunID) error {
	r, err := g.store.RunGetByID(ctx, storage.RunGetByIDParams{TenantID: tenant, ID: id})
	if err != nil || r.State != authgate.RunStateRunning {
		return nil // the transaction reads it again and answers
	}
	for _, b := range sortedKeys(r.Bindings) {
		c, err := g.store.CredentialGetByID(ctx, storage.CredentialGetByIDParams{TenantID: tenant, ID: r.Bindings[b]})
		if err != nil {
			return fmt.Errorf("gate %s: %w", b, err)
		}
		if c.Status == authgate.CredentialStatusActive {
			continue
		}
		blocked, err := g.Block(ctx, BlockParams{TenantID: tenant, RunID: id, Binding: b, Class: authgate.ClassReauthRequired,
			Reason: fmt.Sprintf("credential %s is %s (%s)", c.ID, c.Status, c.StatusReason)})
		if err != nil {
			return err
		}
		return BlockedError(blocked)
	}
	return nil
}

// StepCompleteParams records a step's checkpoint.
type StepCompleteParams struct {
	TenantID       authgate.TenantID
	RunID          authgate.RunID
	Key            string
	IdempotencyKey string
	Output         json.RawMessage
}

// StepComplete records a step's output exactly once, with a step_completed
// entry; a repeat (a retried request, a worker restarted after the side
// effect) returns the first output and first=false. The checkpoint is kept
// whatever the run's state: work done is never lost.
func (g *Gate) StepComplete(ctx context.Context, p StepCompleteParams) (st *storage.Step, first bool, err error) {
	err = g.store.Tx(ctx, func(q storage.Queries) error {
		r, err := getRun(ctx, q, p.TenantID, p.RunID)
		if err != nil {
			return err
		}
		now := g.clock.Now()
		st, first, err = q.StepComplete(ctx, storage.StepCompleteParams{TenantID: p.TenantID, RunID: p.RunID, Key: p.Key,
			IdempotencyKey: p.IdempotencyKey, Output: p.Output, At: now})
		if err != nil || !first {
			return stepErr(p.Key, err)
		}
		return q.RunEntryInsert(ctx, &storage.RunEntry{TenantID: r.TenantID, RunID: r.ID, At: now, Kind: authgate.RunEntryStepCompleted, StepKey: p.Key})
	})
	if err != nil {
		return nil, false, err
	}
	return st, first, nil
}

// StepFailParams records why a step failed.
type StepFailParams struct {
	TenantID authgate.TenantID
	RunID    authgate.RunID
	Key      string
	Class    authgate.Class
	Reason   string
}

// StepFail marks a started step failed with a step_failed entry. A
// completed step stays completed (false). Whether the run blocks or fails
// too is the caller's call (Block, Finish), made from the class.
func (g *Gate) StepFail(ctx context.Context, p StepFailParams) (bool, error) {
	var failed bool
	err := g.store.Tx(ctx, func(q storage.Queries) error {
		r, err := getRun(ctx, q, p.TenantID, p.RunID)
		if err != nil {
			return err
		}
		now := g.clock.Now()
		if failed, err = q.StepFail(ctx, storage.StepFailParams{TenantID: p.TenantID, RunID: p.RunID, Key: p.Key, Class: p.Class, At: now}); err != nil || !failed {
			return stepErr(p.Key, err)
		}
		return q.RunEntryInsert(ctx, &storage.RunEntry{TenantID: r.TenantID, RunID: r.ID, At: now, Kind: authgate.RunEntryStepFailed, StepKey: p.Key,
			Class: p.Class, Reason: p.Reason})
	})
	return failed, err
}

// stepErr turns storage's answers about a step into API errors.
func stepErr(key string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, storage.ErrNotFound):
		return authgate.Errorf(authgate.ClassNotFound, "step %q was never gated", key).WithCause(err)
	case errors.Is(err, storage.ErrConflict):
		return authgate.Errorf(authgate.ClassConflict, "step %q: the idempotency key belongs to another step or this step has another", key).WithCause(err)
	}
	return err
}
