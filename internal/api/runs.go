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
	"github.com/authgate/authgate/internal/classify"
	"github.com/authgate/authgate/internal/gate"
	"github.com/authgate/authgate/internal/refresh"
	"github.com/authgate/authgate/internal/storage"
	"github.com/authgate/authgate/internal/tenancy"
	"github.com/authgate/authgate/internal/vault"
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
	run, checks, err := a.gate.Create(r.Context(), gate.CreateParams{TenantID: p.TenantID, UserID: b.UserID, Workflow: b.Workflow,
		Bindings: b.Bindings, Actions: b.Actions, Targets: b.Targets})
	if err != nil {
		return err
	}
	out, err := a.publicRun(r.Context(), run, false)
	if err != nil {
		return err
	}
	out.Preflight = checks
	a.runChanged(r.Context(), run)
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
	runs, err := a.store.RunList(r.Context(), storage.RunListParams{TenantID: p.TenantID, State: state, UserID: q.Get("user_id"),
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
	run, err = a.gate.Finish(r.Context(), gate.FinishParams{TenantID: p.TenantID, RunID: run.ID, State: b.State, Reason: truncate(b.Reason, 500)})
	if err != nil {
		return err
	}
	a.runChanged(r.Context(), run)
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
				before, actions := a.actionsFor(ctx, p, run.Bindings[bind], b.Actions)
				t, err := a.refresher.Token(ctx, refresh.Request{TenantID: p.TenantID, ID: run.Bindings[bind], MinValid: minValid, Actions: actions})
				if err != nil {
					a.flagged(ctx, p, run.Bindings[bind], before)
					return a.blockOnTokenError(ctx, p, run, bind, err)
				}
				tokens[bind] = authgate.StepToken{AccessToken: t.AccessToken.Reveal(), ExpiresAt: t.ExpiresAt}
				fps[bind] = t.AccessToken.Fingerprint()
			}
		}
	}
	res, err := a.gate.StepGate(ctx, gate.StepGateParams{TenantID: p.TenantID, RunID: run.ID, Key: b.Key, Actions: b.Actions,
		IdempotencyKey: b.IdempotencyKey, CredentialFingerprints: fps})
	if err != nil {
		var ae *authgate.Error
		if errors.As(err, &ae) && ae.Class == authgate.ClassBlockedOnAuth && run.State == authgate.RunStateRunning {
			if blocked, gerr := a.store.RunGetByID(ctx, storage.RunGetByIDParams{TenantID: p.TenantID, ID: run.ID}); gerr == nil {
				a.runChanged(ctx, blocked)
			}
		}
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
// the credential's status before the token is asked for.
func (a *API) actionsFor(ctx context.Context, p tenancy.Principal, id authgate.CredentialID, actions []string) (authgate.CredentialStatus, []string) {
	c, err := a.vault.Get(ctx, p.TenantID, id)
	if err != nil || a.providers == nil {
		return "", nil
	}
	prov, ok := a.providers.Get(c.Provider)
	if !ok {
		return c.Status, nil
	}
	return c.Status, prov.KnownActions(actions)
}

// flagged reports credential.reauth_required when a credential that was
// active before a call is not any more.
func (a *API) flagged(ctx context.Context, p tenancy.Principal, id authgate.CredentialID, before authgate.CredentialStatus) {
	if before != authgate.CredentialStatusActive {
		return
	}
	if c, err := a.vault.Get(ctx, p.TenantID, id); err == nil && c.Status == authgate.CredentialStatusReauthRequired {
		a.notifyCredential(ctx, c, authgate.WebhookEventCredentialReauthRequired)
	}
}

// blockOnTokenError blocks the run when a binding's token needs the user,
// and answers 409 blocked_on_auth; other token errors pass through.
func (a *API) blockOnTokenError(ctx context.Context, p tenancy.Principal, run *storage.Run, binding string, err error) error {
	var ae *authgate.Error
	if !errors.As(err, &ae) || !gate.IsAuthClass(ae.Class) {
		return err
	}
	link := a.reconnectFor(ctx, p.TenantID, run.Bindings[binding], ae.MissingScopes)
	blocked, berr := a.block(ctx, gate.BlockParams{TenantID: p.TenantID, RunID: run.ID, Binding: binding, Class: ae.Class, Reason: ae.Detail, ReconnectURL: link})
	if berr != nil {
		return berr
	}
	return gate.BlockedError(blocked)
}

// block blocks a run and reports it; a run a concurrent request blocked
// first is returned as it is, without a second report.
func (a *API) block(ctx context.Context, bp gate.BlockParams) (*storage.Run, error) {
	blocked, err := a.gate.Block(ctx, bp)
	if err == nil {
		a.runChanged(ctx, blocked)
		return blocked, nil
	}
	if errors.Is(err, gate.ErrInvalidTransition) {
		if cur, gerr := a.store.RunGetByID(ctx, storage.RunGetByIDParams{TenantID: bp.TenantID, ID: bp.RunID}); gerr == nil && cur.State == authgate.RunStateBlockedOnAuth {
			return cur, nil
		}
	}
	return nil, err
}

// reconnectFor is a reconnect link for a credential asking for scopes (nil:
// what it had); "" when none can be made.
func (a *API) reconnectFor(ctx context.Context, tenant authgate.TenantID, id authgate.CredentialID, scopes []string) string {
	if a.broker == nil {
		return ""
	}
	c, err := a.vault.Get(ctx, tenant, id)
	if err != nil {
		return ""
	}
	link, err := a.reconnectLink(ctx, tenant, c, scopes)
	if err != nil {
		a.log.WarnContext(ctx, "create reconnect session", "credential_id", string(id), "error", err.Error())
		return ""
	}
	return link
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

// failStep classifies the provider's answer to a step and applies its
// policy: a 401 at the API is one coalesced refresh (the step retries with
// the new token) and blocks only if that refresh fails; the auth classes
// block the run and flag the credential; rate_limited and transient retry
// after a while; anything else fails the step.
func (a *API) failStep(w http.ResponseWriter, r *http.Request, p tenancy.Principal) error {
	var b authgate.StepFailRequest
	if err := decodeJSON(w, r, maxOutputBody, &b); err != nil {
		return err
	}
	ctx := r.Context()
	run, err := a.readRun(ctx, p, r.PathValue("id"))
	if err != nil {
		return err
	}
	key := r.PathValue("key")
	credID, ok := run.Bindings[b.Binding]
	if !ok {
		return authgate.Errorf(authgate.ClassInvalidRequest, "run %s has no binding %q", run.ID, b.Binding)
	}
	if b.Status < 100 || b.Status > 599 {
		return authgate.Errorf(authgate.ClassInvalidRequest, "status must be an HTTP status code")
	}
	st, err := a.store.StepGet(ctx, storage.StepGetParams{TenantID: p.TenantID, RunID: run.ID, Key: key})
	if err != nil {
		return authgate.Errorf(authgate.ClassNotFound, "step %q was never gated", key).WithCause(err)
	}
	cred, err := a.vault.Get(ctx, p.TenantID, credID)
	if err != nil {
		return err
	}
	h := http.Header{}
	for k, v := range b.Headers {
		h.Set(k, v)
	}
	res := classify.Classify(classify.Parse(classify.Input{Provider: cred.Provider, Operation: classify.OpAPI, Status: b.Status, Header: h, Body: []byte(b.Body), Now: a.clock.Now()}))
	out := authgate.StepFailResponse{Class: res.Class, Message: res.Message, RunState: run.State}

	if b.Status == http.StatusUnauthorized && res.Class == authgate.ClassReauthRequired {
		// The provider refused the token the gate handed out: one refresh,
		// shared by every step that reports the same token.
		_, terr := a.refresher.Token(ctx, refresh.Request{TenantID: p.TenantID, ID: credID, RejectedFingerprint: st.CredentialFingerprints[b.Binding]})
		if terr == nil {
			out.Outcome = authgate.StepFailRetry
			return writeJSON(w, http.StatusOK, out)
		}
		var ae *authgate.Error
		if errors.As(terr, &ae) {
			res.Class, res.MissingScopes, out.Class, out.Message = ae.Class, ae.MissingScopes, ae.Class, ae.Detail
		}
		if !gate.IsAuthClass(res.Class) {
			out.Outcome, out.RetryAfterSeconds = authgate.StepFailRetry, 1
			return writeJSON(w, http.StatusOK, out)
		}
	} else if gate.IsAuthClass(res.Class) {
		reason := map[authgate.Class]authgate.StatusReason{authgate.ClassReauthRequired: authgate.StatusReasonRevoked,
			authgate.ClassInsufficientScope: authgate.StatusReasonScopeRemoved, authgate.ClassAdminPolicy: authgate.StatusReasonAdminPolicy}[res.Class]
		err := a.refresher.WithLease(ctx, p.TenantID, credID, func(ctx context.Context) error {
			_, err := a.vault.MarkReauthRequired(ctx, p.TenantID, credID, reason, nil)
			return err
		})
		if err != nil && !errors.Is(err, vault.ErrStale) {
			return err
		}
		a.flagged(ctx, p, credID, cred.Status)
	}

	switch {
	case gate.IsAuthClass(res.Class):
		if _, err := a.gate.StepFail(ctx, gate.StepFailParams{TenantID: p.TenantID, RunID: run.ID, Key: key, Class: res.Class, Reason: res.Message}); err != nil {
			return err
		}
		scopes := res.MissingScopes
		link := a.reconnectFor(ctx, p.TenantID, credID, scopes)
		blocked, err := a.block(ctx, gate.BlockParams{TenantID: p.TenantID, RunID: run.ID, Binding: b.Binding, Class: res.Class, Reason: res.Message, ReconnectURL: link})
		if err != nil {
			return err
		}
		out.Outcome, out.RunState = authgate.StepFailBlocked, blocked.State
		pb := publicBlocked(blocked)
		out.Blocked = pb
	case res.Class == authgate.ClassRateLimited || res.Class == authgate.ClassTransient:
		out.Outcome = authgate.StepFailRetry
		out.RetryAfterSeconds = max(1, int64((res.RetryAfter+time.Second-1)/time.Second))
	default:
		if _, err := a.gate.StepFail(ctx, gate.StepFailParams{TenantID: p.TenantID, RunID: run.ID, Key: key, Class: res.Class, Reason: res.Message}); err != nil {
			return err
		}
		out.Outcome = authgate.StepFailFailed
	}
	return writeJSON(w, http.StatusOK, out)
}

// readRun reads a run of the caller's tenant: another tenant's run is
// indistinguishable from a missing one.
func (a *API) readRun(ctx context.Context, p tenancy.Principal, id string) (*storage.Run, error) {
	run, err := a.store.RunGetByID(ctx, storage.RunGetByIDParams{TenantID: p.TenantID, ID: authgate.RunID(id)})
	if errors.Is(err, storage.ErrNotFound) {
		return nil, authgate.Errorf(authgate.ClassNotFound, "no run %s", id).WithCause(err)
	}
	return run, err
}

// runChanged reports a run's new state to the tenant's webhooks: blocked
// and finished (resumed is reported where a reconnect resumes it).
func (a *API) runChanged(ctx context.Context, run *storage.Run) {
	switch {
	case run.State == authgate.RunStateBlockedOnAuth:
		a.notifyRun(ctx, run, authgate.WebhookEventRunBlockedOnAuth)
	case run.State.Terminal():
		a.notifyRun(ctx, run, authgate.WebhookEventRunFinished)
	}
}

func (a *API) notifyRun(ctx context.Context, run *storage.Run, typ authgate.WebhookEventType) {
	if a.webhooks == nil {
		return
	}
	out, err := a.publicRun(ctx, run, false)
	if err == nil {
		err = a.webhooks.Notify(ctx, run.TenantID, typ, out)
	}
	if err != nil {
		a.log.WarnContext(ctx, "store webhook", "run_id", string(run.ID), "event", string(typ), "error", err.Error())
	}
}

func (a *API) notifyCredential(ctx context.Context, c authgate.Credential, typ authgate.WebhookEventType) {
	if a.webhooks == nil {
		return
	}
	if err := a.webhooks.Notify(ctx, c.TenantID, typ, c); err != nil {
		a.log.WarnContext(ctx, "store webhook", "credential_id", string(c.ID), "event", string(typ), "error", err.Error())
	}
}

// publicRun is a run as the API shows it; full adds steps and timeline.
func (a *API) publicRun(ctx context.Context, run *storage.Run, full bool) (authgate.Run, error) {
	out := authgate.Run{ID: run.ID, TenantID: run.TenantID, UserID: run.UserID, Workflow: run.Workflow, Bindings: run.Bindings,
		Actions: nonNil(run.Actions), Targets: run.Targets, State: run.State, Blocked: publicBlocked(run), CreatedAt: run.CreatedAt, UpdatedAt: run.UpdatedAt}
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

func publicBlocked(run *storage.Run) *authgate.RunBlocked {
	if run.State != authgate.RunStateBlockedOnAuth {
		return nil
	}
	b := run.Blocked
	return &authgate.RunBlocked{Binding: b.Binding, CredentialID: b.CredentialID, Class: b.Class, Reason: b.Reason, ReconnectURL: b.ReconnectURL}
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

// credentialActive resumes every run blocked on c once it is active again
// (a reconnect through the broker, an import). A reconnect refused for
// another account never gets here, and a credential still unusable resumes
// nothing. A failure is logged, not answered: the reconnect itself worked,
// and the next reconnect or gate tries again.
func (a *API) credentialActive(ctx context.Context, c authgate.Credential, reconnected bool) {
	if a.gate == nil || c.Status != authgate.CredentialStatusActive {
		return
	}
	ids, err := a.gate.ResumeBlockedOn(ctx, gate.ResumeBlockedOnParams{TenantID: c.TenantID, CredentialID: c.ID, Reason: "credential " + string(c.ID) + " reconnected"})
	if err != nil {
		a.log.WarnContext(ctx, "resume blocked runs", "credential_id", string(c.ID), "error", err.Error())
	}
	if reconnected {
		a.notifyCredential(ctx, c, authgate.WebhookEventCredentialReconnected)
	}
	for _, id := range ids {
		if run, err := a.store.RunGetByID(ctx, storage.RunGetByIDParams{TenantID: c.TenantID, ID: id}); err == nil {
			a.notifyRun(ctx, run, authgate.WebhookEventRunResumed)
			a.execute(run)
		}
	}
}
