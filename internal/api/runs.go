package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/internal/gate"
	"github.com/authgate/authgate/internal/refresh"
	"github.com/authgate/authgate/internal/runs"
	"github.com/authgate/authgate/internal/storage"
	"github.com/authgate/authgate/internal/tenancy"
)

// Body caps of the run routes: a step's output is its checkpoint (a few ids
// and links), a failure carries a capped provider body.
const (
	maxRunBody    = 64 << 10
	maxOutputBody = 256 << 10
	// expensiveMinValid is how long a token handed to an expensive step
	// stays valid.
	expensiveMinValid = 15 * time.Minute
)

func (a *API) createRun(w http.ResponseWriter, r *http.Request, p tenancy.Principal) error {
	var b authgate.RunCreateRequest
	if err := decodeJSON(w, r, maxRunBody, &b); err != nil {
		return err
	}
	if len(b.Bindings) > 20 || len(b.Actions) > 100 {
		return authgate.Errorf(authgate.ClassInvalidRequest, "at most 20 bindings and 100 actions")
	}
	if err := decodeTargets(b.Targets); err != nil {
		return err
	}
	if string(bytes.TrimSpace(b.Targets)) == "null" {
		b.Targets = nil // "targets": null is no targets, stored as none
	}
	if err := a.knownActions(b.Actions); err != nil {
		return err
	}
	user, err := p.User(b.UserID)
	if err != nil {
		return err
	}
	for _, id := range b.Bindings {
		// To a user key another user's credential is missing, not
		// someone else's (which is what wrong_principal would say).
		if err := a.ownCredential(r.Context(), p, id); err != nil {
			return err
		}
	}
	run, checks, err := a.gate.Create(r.Context(), gate.CreateParams{TenantID: p.TenantID, UserID: user, Workflow: b.Workflow,
		Bindings: b.Bindings, Actions: b.Actions, Targets: b.Targets})
	if err != nil {
		return err
	}
	out, err := a.publicRun(r.Context(), run, false)
	if err != nil {
		return err
	}
	out.Preflight = checks
	a.execute(run)
	return writeJSON(w, http.StatusCreated, out)
}

func (a *API) getRun(w http.ResponseWriter, r *http.Request, p tenancy.Principal) error {
	run, err := a.readRun(r.Context(), p, r.PathValue("id"))
	if err != nil {
		return err
	}
	out, err := a.publicRun(r.Context(), run, true)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, out)
}

func (a *API) listRuns(w http.ResponseWriter, r *http.Request, p tenancy.Principal) error {
	q, err := query(r, "state", "user_id", "after", "limit")
	if err != nil {
		return err
	}
	limit, err := intParam(q, "limit", 1, 1000)
	if err != nil {
		return err
	}
	if limit == 0 {
		limit = 100
	}
	state := authgate.RunState(q.Get("state"))
	if state != "" && !state.Valid() {
		return authgate.Errorf(authgate.ClassInvalidRequest, "state must be pending, running, blocked_on_auth, succeeded, failed or canceled")
	}
	user, err := p.User(q.Get("user_id"))
	if err != nil {
		return err
	}
	runs, err := a.store.RunList(r.Context(), storage.RunListParams{TenantID: p.TenantID, State: state, UserID: user,
		AfterID: authgate.RunID(q.Get("after")), Limit: int(limit) + 1})
	if err != nil {
		return err
	}
	page := authgate.RunPage{Runs: []authgate.Run{}}
	if len(runs) > int(limit) {
		runs = runs[:limit]
		page.NextAfter = runs[len(runs)-1].ID
	}
	for _, run := range runs {
		out, err := a.publicRun(r.Context(), run, false)
		if err != nil {
			return err
		}
		page.Runs = append(page.Runs, out)
	}
	return writeJSON(w, http.StatusOK, page)
}

func (a *API) cancelRun(w http.ResponseWriter, r *http.Request, p tenancy.Principal) error {
	return a.finish(w, r, p, authgate.RunFinishRequest{State: authgate.RunStateCanceled, Reason: "canceled by " + p.Actor()})
}

func (a *API) finishRun(w http.ResponseWriter, r *http.Request, p tenancy.Principal) error {
	var b authgate.RunFinishRequest
	if err := decodeJSON(w, r, maxRunBody, &b); err != nil {
		return err
	}
	if b.State != authgate.RunStateSucceeded && b.State != authgate.RunStateFailed {
		return authgate.Errorf(authgate.ClassInvalidRequest, "state must be succeeded or failed (cancel has its own route)")
	}
	return a.finish(w, r, p, b)
}

func (a *API) finish(w http.ResponseWriter, r *http.Request, p tenancy.Principal, b authgate.RunFinishRequest) error {
	run, err := a.readRun(r.Context(), p, r.PathValue("id"))
	if err != nil {
		return err
	}
	run, err = a.runs.Finish(r.Context(), gate.FinishParams{TenantID: p.TenantID, RunID: run.ID, State: b.State, Reason: truncate(b.Reason, 500)})
	if err != nil {
		return err
	}
	out, err := a.publicRun(r.Context(), run, true)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, out)
}

// knownActions refuses an action no configured provider has: a typo would
// otherwise escape the scope checks.
func (a *API) knownActions(actions []string) error {
	if a.providers == nil {
		return nil
	}
	for _, act := range actions {
		known := false
		for _, n := range a.providers.Names() {
			if p, ok := a.providers.Get(n); ok && len(p.KnownActions([]string{act})) == 1 {
				known = true
				break
			}
		}
		if !known {
			e := authgate.Errorf(authgate.ClassInvalidRequest, "no provider has the action %q", act)
			e.Errors = []authgate.FieldError{{Field: "actions", Message: fmt.Sprintf("unknown action %q", act)}}
			return e
		}
	}
	return nil
}

// gateStep lets a step run: the tokens of every binding, valid for the
// safety window, or the step's recorded output if it completed before, or
// 409 blocked_on_auth.
func (a *API) gateStep(w http.ResponseWriter, r *http.Request, p tenancy.Principal) error {
	var b authgate.StepGateRequest
	if err := decodeJSON(w, r, maxRunBody, &b); err != nil {
		return err
	}
	ctx := r.Context()
	run, err := a.readRun(ctx, p, r.PathValue("id"))
	if err != nil {
		return err
	}
	minValid := refresh.DefaultMinValid
	if b.Expensive {
		minValid = expensiveMinValid
	}
	// The tokens first: a binding that cannot give one blocks the run
	// before the step is let through (never half-complete).
	var tokens map[string]authgate.StepToken
	fps := map[string]string{}
	if run.State == authgate.RunStateRunning {
		if done, err := a.store.StepGet(ctx, storage.StepGetParams{TenantID: p.TenantID, RunID: run.ID, Key: b.Key}); err != nil || done.Status != authgate.StepStatusCompleted {
			tokens = map[string]authgate.StepToken{}
			for _, bind := range sortedBindings(run) {
				seen, actions := a.actionsFor(ctx, p, run.Bindings[bind], b.Actions)
				t, err := a.refresher.Token(ctx, refresh.Request{TenantID: p.TenantID, ID: run.Bindings[bind], MinValid: minValid, Actions: actions})
				if err != nil {
					return a.runs.BlockOnTokenError(ctx, run, bind, seen, err)
				}
				tokens[bind] = authgate.StepToken{AccessToken: t.AccessToken.Reveal(), ExpiresAt: t.ExpiresAt}
				fps[bind] = t.AccessToken.Fingerprint()
			}
		}
	}
	res, err := a.gate.StepGate(ctx, gate.StepGateParams{TenantID: p.TenantID, RunID: run.ID, Key: b.Key, Actions: b.Actions,
		IdempotencyKey: b.IdempotencyKey, CredentialFingerprints: fps})
	if err != nil {
		return err
	}
	out := authgate.StepGateResponse{Step: publicStep(res.Step), Completed: res.Completed}
	if !res.Completed {
		out.Tokens = tokens
	}
	return writeJSON(w, http.StatusOK, out)
}

// actionsFor keeps the step's actions the binding's provider knows (the
// refresher refuses a token whose grant misses one of them), and returns
// the credential's version before the token is asked for.
func (a *API) actionsFor(ctx context.Context, p tenancy.Principal, id authgate.CredentialID, actions []string) (int64, []string) {
	c, err := a.vault.Get(ctx, p.TenantID, id)
	if err != nil {
		return 0, nil
	}
	if a.providers == nil {
		return c.Version, nil
	}
	prov, ok := a.providers.Get(c.Provider)
	if !ok {
		return c.Version, nil
	}
	return c.Version, prov.KnownActions(actions)
}

func (a *API) completeStep(w http.ResponseWriter, r *http.Request, p tenancy.Principal) error {
	var b authgate.StepCompleteRequest
	if err := decodeJSON(w, r, maxOutputBody, &b); err != nil {
		return err
	}
	run, err := a.readRun(r.Context(), p, r.PathValue("id"))
	if err != nil {
		return err
	}
	st, _, err := a.gate.StepComplete(r.Context(), gate.StepCompleteParams{TenantID: p.TenantID, RunID: run.ID, Key: r.PathValue("key"),
		IdempotencyKey: b.IdempotencyKey, Output: b.Output})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, publicStep(st))
}

// failStep hands a step's report of a provider's answer to the run service.
func (a *API) failStep(w http.ResponseWriter, r *http.Request, p tenancy.Principal) error {
	var b authgate.StepFailRequest
	if err := decodeJSON(w, r, maxOutputBody, &b); err != nil {
		return err
	}
	run, err := a.readRun(r.Context(), p, r.PathValue("id"))
	if err != nil {
		return err
	}
	out, err := a.runs.StepFail(r.Context(), runs.StepFailParams{TenantID: p.TenantID, RunID: run.ID, Key: r.PathValue("key"), StepFailRequest: b})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, out)
}

// readRun reads a run of the caller's tenant (and, for a user key, of its
// user): another tenant's run is indistinguishable from a missing one.
func (a *API) readRun(ctx context.Context, p tenancy.Principal, id string) (*storage.Run, error) {
	run, err := a.store.RunGetByID(ctx, storage.RunGetByIDParams{TenantID: p.TenantID, ID: authgate.RunID(id)})
	if err == nil && !p.Owns(run.UserID) {
		// Another user's run is as invisible to a user key as another
		// tenant's run is to any key.
		err = storage.ErrNotFound
	}
	if errors.Is(err, storage.ErrNotFound) {
		return nil, authgate.Errorf(authgate.ClassNotFound, "no run %s", id).WithCause(err)
	}
	return run, err
}

// publicRun is a run as the API shows it; full adds steps and timeline.
func (a *API) publicRun(ctx context.Context, run *storage.Run, full bool) (authgate.Run, error) {
	out := runs.Public(run)
	if !full {
		return out, nil
	}
	steps, err := a.store.StepList(ctx, storage.StepListParams{TenantID: run.TenantID, RunID: run.ID})
	if err != nil {
		return out, fmt.Errorf("run %s steps: %w", run.ID, err)
	}
	out.Steps = []authgate.Step{}
	for _, s := range steps {
		out.Steps = append(out.Steps, publicStep(s))
	}
	out.Timeline = []authgate.RunEntry{}
	var after int64
	for {
		page, err := a.store.RunEntryList(ctx, storage.RunEntryListParams{TenantID: run.TenantID, RunID: run.ID, AfterSeq: after, Limit: 500})
		if err != nil {
			return out, fmt.Errorf("run %s timeline: %w", run.ID, err)
		}
		for _, e := range page {
			out.Timeline = append(out.Timeline, authgate.RunEntry{Seq: e.Seq, At: e.At, Kind: e.Kind, FromState: e.FromState, ToState: e.ToState,
				StepKey: e.StepKey, Binding: e.Binding, Class: e.Class, Reason: e.Reason})
			after = e.Seq
		}
		if len(page) < 500 {
			return out, nil
		}
	}
}

func publicStep(s *storage.Step) authgate.Step {
	out := authgate.Step{Key: s.Key, Actions: nonNil(s.Actions), IdempotencyKey: s.IdempotencyKey, Status: s.Status, Attempts: s.Attempts,
		CredentialFingerprints: s.CredentialFingerprints, ErrorClass: s.ErrorClass, Output: s.Output, StartedAt: s.StartedAt, UpdatedAt: s.UpdatedAt}
	if !s.CompletedAt.IsZero() {
		t := s.CompletedAt
		out.CompletedAt = &t
	}
	return out
}

func sortedBindings(run *storage.Run) []string {
	out := make([]string, 0, len(run.Bindings))
	for b := range run.Bindings {
		out = append(out, b)
	}
	slices.Sort(out)
	return out
}
