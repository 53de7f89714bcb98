// Package gate owns the run ledger's rules: the run state machine (every
// transition validated and written with its timeline entry in one
// transaction), preflight at run start, step gates, step idempotency
// (completing twice records once), block on auth and resume of every run
// blocked on a credential once it is active again.
//
// It speaks no HTTP and calls no provider itself: the checks that need one
// (live identity, scopes against actions, target access) come through the
// small Preflighter interface the connectors implement. It must never hand
// out tokens or decide what a provider's answer means (refresh and classify
// do), and never change a run's state without its timeline entry.
package gate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/internal/clock"
	"github.com/authgate/authgate/internal/storage"
)

// ErrInvalidTransition is the cause of the *authgate.Error (class conflict)
// returned for a state change the state machine does not allow.
var ErrInvalidTransition = errors.New("invalid run state transition")

// transitions is SPEC §3's run state machine. A run that fails preflight
// leaves pending for blocked_on_auth or failed before any step runs.
var transitions = map[authgate.RunState][]authgate.RunState{
	authgate.RunStatePending:       {authgate.RunStateRunning, authgate.RunStateBlockedOnAuth, authgate.RunStateFailed, authgate.RunStateCanceled},
	authgate.RunStateRunning:       {authgate.RunStateBlockedOnAuth, authgate.RunStateSucceeded, authgate.RunStateFailed, authgate.RunStateCanceled},
	authgate.RunStateBlockedOnAuth: {authgate.RunStateRunning, authgate.RunStateFailed, authgate.RunStateCanceled},
}

// CanTransition reports whether a run may go from one state to another.
func CanTransition(from, to authgate.RunState) bool {
	return slices.Contains(transitions[from], to)
}

// Preflighter runs the checks of one binding that need its provider: a
// cheap live identity call, granted scopes against the run's actions, and
// access to the declared targets. The connectors implement it; without one
// the gate checks only what storage knows (principal and status).
type Preflighter interface {
	Preflight(ctx context.Context, in PreflightInput) []authgate.PreflightCheck
}

// PreflightInput is one binding of a run being created.
type PreflightInput struct {
	Binding    string
	Credential *storage.Credential
	Actions    []string
	Targets    json.RawMessage
}

// Config wires a Gate.
type Config struct {
	Store storage.Store
	Clock clock.Clock // clock.Real{} when nil
	// Preflight, when set, runs the provider checks of each binding whose
	// credential is active.
	Preflight Preflighter
	// OnTransition, when set, runs inside the transaction of every run
	// state change, after the run and its entry are written (webhook
	// deliveries are enqueued there, so they commit with the change). An
	// error rolls the change back.
	OnTransition func(ctx context.Context, q storage.Queries, r *storage.Run, from authgate.RunState) error
}

// Gate applies the run rules to one store.
type Gate struct {
	store        storage.Store
	clock        clock.Clock
	preflight    Preflighter
	onTransition func(ctx context.Context, q storage.Queries, r *storage.Run, from authgate.RunState) error
}

// New returns a Gate.
func New(cfg Config) *Gate {
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	return &Gate{store: cfg.Store, clock: cfg.Clock, preflight: cfg.Preflight, onTransition: cfg.OnTransition}
}

// authClasses are the failures only the user can fix by reconnecting (or
// having an admin allow the app): they block a run rather than fail it.
var authClasses = []authgate.Class{authgate.ClassReauthRequired, authgate.ClassInsufficientScope, authgate.ClassAdminPolicy}

// IsAuthClass reports whether c blocks a run (blocked_on_auth) rather than
// failing it.
func IsAuthClass(c authgate.Class) bool { return slices.Contains(authClasses, c) }

// CreateParams describes a run to start.
type CreateParams struct {
	TenantID authgate.TenantID
	UserID   string
	Workflow string
	Bindings map[string]authgate.CredentialID
	Actions  []string
	Targets  json.RawMessage
}

// Create checks every binding and records the run: running if every check
// passed, blocked_on_auth if an auth class failed (Blocked names the first),
// failed otherwise, with its timeline, in one transaction. A binding to a
// credential of another tenant or user creates nothing (wrong_principal).
// All checks are reported, failed or not.
func (g *Gate) Create(ctx context.Context, p CreateParams) (*storage.Run, []authgate.PreflightCheck, error) {
	if p.Workflow == "" || p.UserID == "" || len(p.Bindings) == 0 {
		return nil, nil, authgate.Errorf(authgate.ClassInvalidRequest, "a run needs a workflow, a user_id and at least one binding")
	}
	if len(p.Targets) > 0 && !json.Valid(p.Targets) {
		return nil, nil, authgate.Errorf(authgate.ClassInvalidRequest, "targets is not valid JSON")
	}
	bindings := sortedKeys(p.Bindings)
	creds := make(map[string]*storage.Credential, len(bindings))
	for _, b := range bindings {
		c, err := g.store.CredentialGetByID(ctx, storage.CredentialGetByIDParams{TenantID: p.TenantID, ID: p.Bindings[b]})
		if errors.Is(err, storage.ErrNotFound) || err == nil && c.UserID != p.UserID {
			return nil, nil, authgate.Errorf(authgate.ClassWrongPrincipal,
				"binding %q names credential %s, which does not belong to user %q of this tenant", b, p.Bindings[b], p.UserID)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("preflight %s: %w", b, err)
		}
		creds[b] = c
	}
	var checks []authgate.PreflightCheck
	for _, b := range bindings {
		c := creds[b]
		checks = append(checks, authgate.PreflightCheck{Binding: b, Check: "principal", Status: authgate.PreflightOK})
		st := statusCheck(b, c)
		checks = append(checks, st)
		if st.Status == authgate.PreflightOK && g.preflight != nil {
			checks = append(checks, g.preflight.Preflight(ctx, PreflightInput{Binding: b, Credential: c, Actions: p.Actions, Targets: p.Targets})...)
		}
	}

	now := g.clock.Now()
	r := &storage.Run{ID: authgate.NewRunID(), TenantID: p.TenantID, UserID: p.UserID, Workflow: p.Workflow, Bindings: p.Bindings,
		Actions: p.Actions, Targets: p.Targets, State: authgate.RunStatePending, CreatedAt: now, UpdatedAt: now, Version: 1}
	ch := preflightOutcome(checks, p.Bindings)
	err := g.store.Tx(ctx, func(q storage.Queries) error {
		if err := q.RunInsert(ctx, r); err != nil {
			return err
		}
		if err := q.RunEntryInsert(ctx, &storage.RunEntry{TenantID: r.TenantID, RunID: r.ID, At: now, Kind: authgate.RunEntryCreated, ToState: r.State}); err != nil {
			return err
		}
		details, err := json.Marshal(map[string]any{"checks": checks})
		if err != nil {
			return err
		}
		if err := q.RunEntryInsert(ctx, &storage.RunEntry{TenantID: r.TenantID, RunID: r.ID, At: now, Kind: authgate.RunEntryPreflight, Reason: ch.Reason, Details: details}); err != nil {
			return err
		}
		if ch.To == authgate.RunStateBlockedOnAuth {
			// As in Block: a reconnect that committed while the checks ran
			// leaves nothing to wait for.
			c, err := q.CredentialGetByID(ctx, storage.CredentialGetByIDParams{TenantID: p.TenantID, ID: ch.Blocked.CredentialID})
			if err != nil {
				return err
			}
			if seen := creds[ch.Blocked.Binding]; c.Status == authgate.CredentialStatusActive && c.Version != seen.Version {
				ch = change{To: authgate.RunStateRunning, Kind: authgate.RunEntryStateChanged, Reason: "credential " + string(c.ID) + " was reconnected during preflight"}
			}
		}
		return g.transition(ctx, q, r, ch)
	})
	if err != nil {
		return nil, nil, fmt.Errorf("create run: %w", err)
	}
	return r, checks, nil
}

// statusCheck is what storage knows of a credential's health.
func statusCheck(binding string, c *storage.Credential) authgate.PreflightCheck {
	if c.Status == authgate.CredentialStatusActive {
		return authgate.PreflightCheck{Binding: binding, Check: "status", Status: authgate.PreflightOK}
	}
	return authgate.PreflightCheck{Binding: binding, Check: "status", Status: authgate.PreflightFailed, Class: authgate.ClassReauthRequired,
		Detail: fmt.Sprintf("credential %s is %s (%s)", c.ID, c.Status, c.StatusReason),
		Fix:    "ask the user to reconnect " + c.Provider}
}

// preflightOutcome picks the state a run leaves pending for, and the
// timeline entry that says why.
func preflightOutcome(checks []authgate.PreflightCheck, bindings map[string]authgate.CredentialID) change {
	var firstAuth, firstOther *authgate.PreflightCheck
	for i := range checks {
		c := &checks[i]
		if c.Status != authgate.PreflightFailed {
			continue
		}
		if IsAuthClass(c.Class) && firstAuth == nil {
			firstAuth = c
		} else if !IsAuthClass(c.Class) && firstOther == nil {
			firstOther = c
		}
	}
	switch {
	case firstOther != nil:
		// Reconnecting would not fix it: the run fails before any step.
		return change{To: authgate.RunStateFailed, Kind: authgate.RunEntryStateChanged, Binding: firstOther.Binding, Class: firstOther.Class,
			Reason: "preflight failed: " + firstOther.Check + ": " + firstOther.Detail}
	case firstAuth != nil:
		return change{To: authgate.RunStateBlockedOnAuth, Kind: authgate.RunEntryBlocked, Binding: firstAuth.Binding, Class: firstAuth.Class,
			Reason: "preflight: " + firstAuth.Check + ": " + firstAuth.Detail,
			Blocked: storage.RunBlocked{Binding: firstAuth.Binding, CredentialID: bindings[firstAuth.Binding], Class: firstAuth.Class,
				Reason: firstAuth.Detail, ReconnectURL: firstAuth.ReconnectURL}}
	}
	return change{To: authgate.RunStateRunning, Kind: authgate.RunEntryStateChanged, Reason: "preflight passed"}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
