// Package workflow runs a Go workflow under authgate's run gates: ordered
// steps, each declaring the provider actions it performs, each gated before
// it runs (tokens valid for the safety window, or the run stops
// blocked_on_auth), each completed exactly once with its checkpoint. When a
// credential needs its user the runner stops cleanly with ErrBlockedOnAuth
// and the reconnect link; after the reconnect, Resume continues after the
// last completed step and never re-runs one.
//
// It talks to authgate through the API interface: *authgate.Client over
// HTTP, or the same client on an in-process handler (InProcess). It must
// never import authgate's internals, keep a token beyond one step, or run a
// step the gate did not let through.
package workflow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"time"

	"golang.org/x/oauth2"

	"github.com/authgate/authgate"
)

// API is what the runner needs of authgate; *authgate.Client implements it.
// (Six methods, one per run route: splitting them would only scatter one
// contract.)
type API interface {
	CreateRun(ctx context.Context, req authgate.RunCreateRequest) (authgate.Run, error)
	Run(ctx context.Context, id authgate.RunID) (authgate.Run, error)
	GateStep(ctx context.Context, id authgate.RunID, req authgate.StepGateRequest) (authgate.StepGateResponse, error)
	CompleteStep(ctx context.Context, id authgate.RunID, key string, req authgate.StepCompleteRequest) (authgate.Step, error)
	FailStep(ctx context.Context, id authgate.RunID, key string, req authgate.StepFailRequest) (authgate.StepFailResponse, error)
	FinishRun(ctx context.Context, id authgate.RunID, req authgate.RunFinishRequest) (authgate.Run, error)
}

var _ API = (*authgate.Client)(nil)

// InProcess is an authgate client that calls handler directly (authgate
// embedded in this process: server.Handler()), with no network between.
func InProcess(handler http.Handler, apiKey string) *authgate.Client {
	c := authgate.NewClient("http://authgate.in-process", apiKey)
	c.HTTPClient = &http.Client{Transport: handlerTransport{handler}}
	return c
}

type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, r)
	return rec.Result(), nil
}

// Step is one step of a workflow.
type Step struct {
	// Key names the step in the run (unique in the workflow).
	Key string
	// Actions are the catalog actions the step performs ("docs.documents.create").
	Actions []string
	// Expensive asks for tokens valid longer (15 minutes).
	Expensive bool
	// Do performs the step and returns its checkpoint (JSON-encoded). It
	// must be safe to run again after a crash before its checkpoint was
	// recorded: pass s.IdempotencyKey to providers that take one, or look
	// before writing.
	Do func(ctx context.Context, s *StepContext) (any, error)
}

// Workflow is ordered steps.
type Workflow struct {
	Name  string
	Steps []Step
}

// StepContext is what a step gets: authenticated token sources per binding
// and the checkpoints of the steps before it.
type StepContext struct {
	RunID authgate.RunID
	Key   string
	// IdempotencyKey is the same on every attempt of this step of this run.
	IdempotencyKey string
	// Attempt counts the gates of this step (1 the first time).
	Attempt int
	// Recovering says an earlier attempt may have written before it
	// stopped (a crash, a lost answer): a step whose provider takes no
	// idempotency key looks before it writes. An attempt after a provider
	// refusal this runner saw is not recovering.
	Recovering bool
	// Targets are the run's declared targets.
	Targets     json.RawMessage
	tokens      map[string]authgate.StepToken
	checkpoints map[string]json.RawMessage
}

// TokenSource is the gated token of a binding, valid for the step.
func (s *StepContext) TokenSource(binding string) oauth2.TokenSource {
	t := s.tokens[binding]
	tok := &oauth2.Token{AccessToken: t.AccessToken, TokenType: "Bearer"}
	if t.ExpiresAt != nil {
		tok.Expiry = *t.ExpiresAt
	}
	return oauth2.StaticTokenSource(tok)
}

// Checkpoint decodes the checkpoint of an earlier step into v.
func (s *StepContext) Checkpoint(key string, v any) error {
	raw, ok := s.checkpoints[key]
	if !ok {
		return fmt.Errorf("workflow: no checkpoint for step %q", key)
	}
	return json.Unmarshal(raw, v)
}

// ErrBlockedOnAuth is what a runner stopped on a credential returns
// (errors.Is); the *BlockedError carries the reconnect link.
var ErrBlockedOnAuth = errors.New("workflow: run blocked on auth")

// BlockedError is a run stopped until its user reconnects a credential.
type BlockedError struct {
	RunID   authgate.RunID
	Blocked authgate.RunBlocked
}

func (e *BlockedError) Error() string {
	return fmt.Sprintf("workflow: run %s is blocked on auth (%s: %s); reconnect at %s", e.RunID, e.Blocked.Binding, e.Blocked.Class, e.Blocked.ReconnectURL)
}

// Is makes errors.Is(err, ErrBlockedOnAuth) true.
func (e *BlockedError) Is(target error) bool { return target == ErrBlockedOnAuth }

// ReconnectURL is the link the user opens to unblock the run.
func (e *BlockedError) ReconnectURL() string { return e.Blocked.ReconnectURL }

// Runner runs one workflow through an API.
type Runner struct {
	API      API
	Workflow Workflow
	// MaxAttempts bounds the attempts of one step that the provider asks to
	// retry (default 5).
	MaxAttempts int
	// Sleep waits before a retry (default: a timer honouring ctx); tests
	// pass one that returns at once.
	Sleep func(ctx context.Context, d time.Duration) error
}

// Start creates a run of the workflow (every binding preflighted) and runs
// it to the end, or until it blocks.
func (r *Runner) Start(ctx context.Context, req authgate.RunCreateRequest) (authgate.Run, error) {
	req.Workflow = r.Workflow.Name
	if len(req.Actions) == 0 {
		for _, s := range r.Workflow.Steps {
			req.Actions = append(req.Actions, s.Actions...)
		}
	}
	run, err := r.API.CreateRun(ctx, req)
	if err != nil {
		return run, err
	}
	if run.State == authgate.RunStateFailed {
		for _, c := range run.Preflight {
			if c.Status != authgate.PreflightOK {
				return run, fmt.Errorf("workflow: run %s failed preflight: %s %s (%s): %s %s", run.ID, c.Binding, c.Check, c.Class, c.Detail, c.Fix)
			}
		}
	}
	return r.Resume(ctx, run.ID)
}

// Resume continues a run after its last completed step: what a reconnect,
// a restart or a crash leaves. A completed step is never run again; its
// recorded checkpoint is used.
func (r *Runner) Resume(ctx context.Context, id authgate.RunID) (authgate.Run, error) {
	run, err := r.API.Run(ctx, id)
	if err != nil {
		return run, err
	}
	switch run.State {
	case authgate.RunStateBlockedOnAuth:
		return run, &BlockedError{RunID: id, Blocked: *run.Blocked}
	case authgate.RunStateFailed, authgate.RunStateCanceled:
		return run, fmt.Errorf("workflow: run %s is %s", id, run.State)
	case authgate.RunStateSucceeded:
		return run, nil
	}
	checkpoints := map[string]json.RawMessage{}
	for _, s := range r.Workflow.Steps {
		if err := r.step(ctx, run, s, checkpoints); err != nil {
			var be *BlockedError
			if errors.As(err, &be) || ctx.Err() != nil {
				if cur, rerr := r.API.Run(ctx, id); rerr == nil {
					if be != nil && cur.Blocked != nil {
						be.Blocked = *cur.Blocked
					}
					run = cur
				}
				return run, err
			}
			cur, ferr := r.API.FinishRun(ctx, id, authgate.RunFinishRequest{State: authgate.RunStateFailed, Reason: err.Error()})
			if ferr != nil {
				// authgate is unreachable: the run stays as it was, and
				// Resume continues it later.
				return run, errors.Join(err, ferr)
			}
			return cur, err
		}
	}
	return r.API.FinishRun(ctx, id, authgate.RunFinishRequest{State: authgate.RunStateSucceeded})
}

func (r *Runner) step(ctx context.Context, run authgate.Run, s Step, checkpoints map[string]json.RawMessage) error {
	idem := string(run.ID) + ":" + s.Key
	max := r.MaxAttempts
	if max == 0 {
		max = 5
	}
	refused := false // the previous attempt got a provider's refusal
	for attempt := 1; ; attempt++ {
		g, err := r.API.GateStep(ctx, run.ID, authgate.StepGateRequest{Key: s.Key, Actions: s.Actions, IdempotencyKey: idem, Expensive: s.Expensive})
		if err != nil {
			return blocked(run.ID, err)
		}
		if g.Completed {
			checkpoints[s.Key] = g.Step.Output
			return nil
		}
		sc := &StepContext{RunID: run.ID, Key: s.Key, IdempotencyKey: idem, Attempt: g.Step.Attempts, Recovering: g.Step.Attempts > 1 && !refused, Targets: run.Targets, tokens: g.Tokens, checkpoints: checkpoints}
		out, err := s.Do(ctx, sc)
		if err == nil {
			raw, err := json.Marshal(out)
			if err != nil {
				return fmt.Errorf("step %s: encode checkpoint: %w", s.Key, err)
			}
			st, err := r.API.CompleteStep(ctx, run.ID, s.Key, authgate.StepCompleteRequest{IdempotencyKey: idem, Output: raw})
			if err != nil {
				return fmt.Errorf("step %s: complete: %w", s.Key, err)
			}
			checkpoints[s.Key] = st.Output
			return nil
		}
		var pe *authgate.ProviderError
		if !errors.As(err, &pe) || pe.Status == 0 {
			return fmt.Errorf("step %s: %w", s.Key, err)
		}
		res, ferr := r.API.FailStep(ctx, run.ID, s.Key, failRequest(bindingOf(pe, run), pe))
		if ferr != nil {
			return fmt.Errorf("step %s: %w (reporting it: %v)", s.Key, err, ferr)
		}
		switch res.Outcome {
		case authgate.StepFailBlocked:
			return &BlockedError{RunID: run.ID, Blocked: *res.Blocked}
		case authgate.StepFailRetry:
			refused = true
			if attempt >= max {
				return fmt.Errorf("step %s: gave up after %d attempts: %w", s.Key, attempt, err)
			}
			if err := r.sleep(ctx, time.Duration(res.RetryAfterSeconds)*time.Second); err != nil {
				return err
			}
		default:
			return fmt.Errorf("step %s: %s: %w", s.Key, res.Message, err)
		}
	}
}

func (r *Runner) sleep(ctx context.Context, d time.Duration) error {
	if r.Sleep != nil {
		return r.Sleep(ctx, d)
	}
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// blocked turns a gate's blocked_on_auth problem into a *BlockedError.
func blocked(id authgate.RunID, err error) error {
	var ae *authgate.Error
	if errors.As(err, &ae) && ae.Class == authgate.ClassBlockedOnAuth {
		return &BlockedError{RunID: id, Blocked: authgate.RunBlocked{CredentialID: ae.CredentialID, Class: ae.Class, Reason: ae.Detail, ReconnectURL: ae.ReconnectURL}}
	}
	return err
}

// bindingOf finds the binding whose provider answered.
func bindingOf(pe *authgate.ProviderError, run authgate.Run) string {
	if _, ok := run.Bindings[pe.Provider]; ok {
		return pe.Provider
	}
	for b := range run.Bindings {
		return b
	}
	return ""
}

// failRequest is the provider's answer as the fail route takes it.
func failRequest(binding string, pe *authgate.ProviderError) authgate.StepFailRequest {
	h := map[string]string{}
	if pe.HasRetryAfter {
		h["Retry-After"] = strconv.FormatInt(int64(pe.RetryAfter/time.Second), 10)
	}
	if pe.BearerError != "" {
		h["WWW-Authenticate"] = fmt.Sprintf(`Bearer error=%q, scope=%q`, pe.BearerError, pe.BearerScope)
	}
	if pe.RequestID != "" {
		h["X-Request-Id"] = pe.RequestID
	}
	return authgate.StepFailRequest{Binding: binding, Status: pe.Status, Headers: h, Body: string(pe.Body)}
}
