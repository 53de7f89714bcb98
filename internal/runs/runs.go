// Package runs is the run service: it owns blocking a run on auth, resuming
// it, a step's failure report and finishing, on top of the gate's state
// machine, and what each of those must set off (webhook deliveries, resume
// jobs) inside the transaction of the change. HTTP, MCP and the in-process
// runner all call it; internal/api only decodes, calls and encodes.
//
// It talks to the outside through small ports: Tokens (the refresher),
// Reconnect (connect links), Notifier (webhooks) and Resumer (the job
// queue). It must never change a credential on a report about a token that
// is no longer the stored one, nor resume a run outside a transaction that
// re-reads it.
package runs

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/internal/classify"
	"github.com/authgate/authgate/internal/clock"
	"github.com/authgate/authgate/internal/gate"
	"github.com/authgate/authgate/internal/refresh"
	"github.com/authgate/authgate/internal/storage"
	"github.com/authgate/authgate/internal/vault"
)

// Tokens hands out tokens and serialises credential writes (the refresher).
type Tokens interface {
	Token(ctx context.Context, req refresh.Request) (*refresh.Token, error)
	WithLease(ctx context.Context, tenant authgate.TenantID, id authgate.CredentialID, fn func(ctx context.Context) error) error
}

var _ Tokens = (*refresh.Refresher)(nil)

// Notifier stores webhook deliveries of an event in the caller's
// transaction (worker.Webhooks).
type Notifier interface {
	NotifyTx(ctx context.Context, q storage.Queries, tenant authgate.TenantID, typ authgate.WebhookEventType, data any) error
}

// Resumer enqueues the resume of the runs blocked on a credential in the
// caller's transaction (the job queue).
type Resumer interface {
	EnqueueResumeTx(ctx context.Context, q storage.Queries, tenant authgate.TenantID, credential authgate.CredentialID, reason string) error
}

// Config wires a Service.
type Config struct {
	Store storage.Store
	Vault *vault.Vault
	Clock clock.Clock
	// Preflight runs the provider checks at run creation (optional).
	Preflight gate.Preflighter
	Tokens    Tokens
	// Reconnect makes a reconnect link for a credential asking for scopes
	// (nil: what it had); optional.
	Reconnect func(ctx context.Context, tenant authgate.TenantID, c authgate.Credential, scopes []string) (string, error)
	// Notify, when set, receives run and credential events.
	Notify Notifier
	// Resume, when set, is told about credentials usable again.
	Resume Resumer
	// Resumed, when set, is called after a run resumed (the server runs
	// its own workflows from there); it must not block.
	Resumed func(run *storage.Run)
	Logger  *slog.Logger
}

// Service is the run service.
type Service struct {
	cfg  Config
	gate *gate.Gate
}

// New returns a Service, with the gate it drives.
func New(cfg Config) *Service {
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Service{cfg: cfg}
	s.gate = gate.New(gate.Config{Store: cfg.Store, Clock: cfg.Clock, Preflight: cfg.Preflight, OnTransition: s.runTransitioned})
	return s
}

// Gate is the run state machine the service drives.
func (s *Service) Gate() *gate.Gate { return s.gate }

// Public is a run as the API shows it, without steps and timeline.
func Public(run *storage.Run) authgate.Run {
	return authgate.Run{ID: run.ID, TenantID: run.TenantID, UserID: run.UserID, Workflow: run.Workflow, Bindings: run.Bindings,
		Actions: nonNil(run.Actions), Targets: run.Targets, State: run.State, Blocked: PublicBlocked(run), CreatedAt: run.CreatedAt, UpdatedAt: run.UpdatedAt}
}

// PublicBlocked is why a blocked run waits (nil unless it is blocked).
func PublicBlocked(run *storage.Run) *authgate.RunBlocked {
	if run.State != authgate.RunStateBlockedOnAuth {
		return nil
	}
	b := run.Blocked
	return &authgate.RunBlocked{Binding: b.Binding, CredentialID: b.CredentialID, Class: b.Class, Reason: b.Reason, ReconnectURL: b.ReconnectURL}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// runTransitioned runs in every run transition's transaction: the event
// the tenant's webhooks get, once per transition.
func (s *Service) runTransitioned(ctx context.Context, q storage.Queries, r *storage.Run, from authgate.RunState) error {
	if s.cfg.Notify == nil {
		return nil
	}
	var typ authgate.WebhookEventType
	switch {
	case r.State == authgate.RunStateBlockedOnAuth:
		typ = authgate.WebhookEventRunBlockedOnAuth
	case from == authgate.RunStateBlockedOnAuth && r.State == authgate.RunStateRunning:
		typ = authgate.WebhookEventRunResumed
	case r.State.Terminal():
		typ = authgate.WebhookEventRunFinished
	default:
		return nil
	}
	return s.cfg.Notify.NotifyTx(ctx, q, r.TenantID, typ, Public(r))
}

// CredentialChanged runs in the transaction of every credential status
// change (vault.OnChange): whatever path found a revocation — the token
// route, the refresher, verify, MCP, a step's report, the health sweep —
// the tenant hears credential.reauth_required once; a credential usable
// again is announced (credential.reconnected) and every run blocked on it
// is resumed by a job that commits with it.
func (s *Service) CredentialChanged(ctx context.Context, q storage.Queries, ch vault.Change) error {
	c := ch.Credential
	if s.cfg.Notify != nil {
		switch {
		case c.Status == authgate.CredentialStatusReauthRequired && ch.From == authgate.CredentialStatusActive:
			if err := s.cfg.Notify.NotifyTx(ctx, q, c.TenantID, authgate.WebhookEventCredentialReauthRequired, c); err != nil {
				return err
			}
		case c.Status == authgate.CredentialStatusActive && ch.From != authgate.CredentialStatusActive && ch.Renewed:
			if err := s.cfg.Notify.NotifyTx(ctx, q, c.TenantID, authgate.WebhookEventCredentialReconnected, c); err != nil {
				return err
			}
		}
	}
	if c.Status == authgate.CredentialStatusActive && ch.Renewed && s.cfg.Resume != nil {
		// Also when it was active already: a run blocked on missing scopes
		// waits for exactly this re-consent.
		return s.cfg.Resume.EnqueueResumeTx(ctx, q, c.TenantID, c.ID, "credential "+string(c.ID)+" reconnected")
	}
	return nil
}

// ResumeBlockedOn resumes every run blocked on a credential that is usable
// again, each in its own transaction (with its run.resumed delivery). A
// credential that is not active resumes nothing and is not an error: the
// job that asked is done. Calling it twice resumes each run once.
func (s *Service) ResumeBlockedOn(ctx context.Context, tenant authgate.TenantID, credential authgate.CredentialID, reason string) error {
	ids, err := s.gate.ResumeBlockedOn(ctx, gate.ResumeBlockedOnParams{TenantID: tenant, CredentialID: credential, Reason: reason})
	var ae *authgate.Error
	if errors.As(err, &ae) && ae.Class == authgate.ClassReauthRequired {
		return nil
	}
	if errors.Is(err, storage.ErrNotFound) {
		return nil
	}
	for _, id := range ids {
		if s.cfg.Resumed == nil {
			break
		}
		if run, gerr := s.cfg.Store.RunGetByID(ctx, storage.RunGetByIDParams{TenantID: tenant, ID: id}); gerr == nil {
			s.cfg.Resumed(run)
		}
	}
	return err
}

// Finish ends a run (succeeded, failed or canceled).
func (s *Service) Finish(ctx context.Context, p gate.FinishParams) (*storage.Run, error) {
	return s.gate.Finish(ctx, p)
}

// Block blocks a run on one of its bindings (see gate.Block: a credential
// usable again by the time the block would commit leaves the run running).
// A run a concurrent request blocked first is returned as it is.
func (s *Service) Block(ctx context.Context, p gate.BlockParams) (*storage.Run, error) {
	blocked, err := s.gate.Block(ctx, p)
	if err == nil {
		return blocked, nil
	}
	if errors.Is(err, gate.ErrInvalidTransition) {
		if cur, gerr := s.cfg.Store.RunGetByID(ctx, storage.RunGetByIDParams{TenantID: p.TenantID, ID: p.RunID}); gerr == nil && cur.State == authgate.RunStateBlockedOnAuth {
			return cur, nil
		}
	}
	return nil, err
}

// reconnectFor is a reconnect link for a credential asking for scopes
// (nil: what it had); "" when none can be made.
func (s *Service) reconnectFor(ctx context.Context, tenant authgate.TenantID, id authgate.CredentialID, scopes []string) string {
	if s.cfg.Reconnect == nil {
		return ""
	}
	c, err := s.cfg.Vault.Get(ctx, tenant, id)
	if err != nil {
		return ""
	}
	link, err := s.cfg.Reconnect(ctx, tenant, c, scopes)
	if err != nil {
		s.cfg.Logger.WarnContext(ctx, "create reconnect session", "credential_id", string(id), "error", err.Error())
		return ""
	}
	return link
}

// BlockOnTokenError blocks run when the token of binding could not be had
// for a reason only the user can fix, and returns the blocked_on_auth
// problem; seen is the credential's version before the token was asked
// for. Other token errors pass through. A run left running (the credential
// became usable meanwhile) answers with a retry hint instead.
func (s *Service) BlockOnTokenError(ctx context.Context, run *storage.Run, binding string, seen int64, err error) error {
	var ae *authgate.Error
	if !errors.As(err, &ae) || !gate.IsAuthClass(ae.Class) {
		return err
	}
	link := s.reconnectFor(ctx, run.TenantID, run.Bindings[binding], ae.MissingScopes)
	blocked, berr := s.Block(ctx, gate.BlockParams{TenantID: run.TenantID, RunID: run.ID, Binding: binding, Class: ae.Class, Reason: ae.Detail,
		ReconnectURL: link, SeenVersion: seen})
	if berr != nil {
		return berr
	}
	if blocked.State != authgate.RunStateBlockedOnAuth {
		return authgate.Errorf(authgate.ClassTransient, "credential %s changed while the step was gated: gate the step again", run.Bindings[binding])
	}
	return gate.BlockedError(blocked)
}

// StepFailParams is a step's report of a provider's answer.
type StepFailParams struct {
	TenantID authgate.TenantID
	RunID    authgate.RunID
	Key      string
	authgate.StepFailRequest
}

// StepFail classifies the provider's answer to a step and applies its
// policy: a 401 at the API is one coalesced refresh (the step retries with
// the new token) and blocks only if that refresh fails; the auth classes
// flag the credential — only if the reported token is still the stored one
// — and block the run; rate_limited and transient retry after a while;
// anything else fails the step.
func (s *Service) StepFail(ctx context.Context, p StepFailParams) (authgate.StepFailResponse, error) {
	var out authgate.StepFailResponse
	run, err := s.cfg.Store.RunGetByID(ctx, storage.RunGetByIDParams{TenantID: p.TenantID, ID: p.RunID})
	if errors.Is(err, storage.ErrNotFound) {
		return out, authgate.Errorf(authgate.ClassNotFound, "no run %s", p.RunID).WithCause(err)
	}
	if err != nil {
		return out, err
	}
	credID, ok := run.Bindings[p.Binding]
	if !ok {
		return out, authgate.Errorf(authgate.ClassInvalidRequest, "run %s has no binding %q", run.ID, p.Binding)
	}
	if p.Status < 100 || p.Status > 599 {
		return out, authgate.Errorf(authgate.ClassInvalidRequest, "status must be an HTTP status code")
	}
	st, err := s.cfg.Store.StepGet(ctx, storage.StepGetParams{TenantID: p.TenantID, RunID: run.ID, Key: p.Key})
	if err != nil {
		return out, authgate.Errorf(authgate.ClassNotFound, "step %q was never gated", p.Key).WithCause(err)
	}
	cred, err := s.cfg.Vault.Get(ctx, p.TenantID, credID)
	if err != nil {
		return out, err
	}
	usedFP := p.TokenFingerprint
	if usedFP == "" {
		usedFP = st.CredentialFingerprints[p.Binding]
	}
	h := http.Header{}
	for k, v := range p.Headers {
		h.Set(k, v)
	}
	res := classify.Classify(classify.Parse(classify.Input{Provider: cred.Provider, Operation: classify.OpAPI, Status: p.Status, Header: h, Body: []byte(p.Body), Now: s.cfg.Clock.Now()}))
	out = authgate.StepFailResponse{Class: res.Class, Message: res.Message, RunState: run.State}

	if p.Status == http.StatusUnauthorized && res.Class == authgate.ClassReauthRequired {
		// The provider refused the token the step used: one refresh,
		// shared by every step that reports the same token (none when the
		// token was replaced since).
		_, terr := s.cfg.Tokens.Token(ctx, refresh.Request{TenantID: p.TenantID, ID: credID, RejectedFingerprint: usedFP})
		if terr == nil {
			out.Outcome = authgate.StepFailRetry
			return out, nil
		}
		var ae *authgate.Error
		if errors.As(terr, &ae) {
			res.Class, res.MissingScopes, out.Class, out.Message = ae.Class, ae.MissingScopes, ae.Class, ae.Detail
		}
		if !gate.IsAuthClass(res.Class) {
			out.Outcome, out.RetryAfterSeconds = authgate.StepFailRetry, 1
			return out, nil
		}
	} else if gate.IsAuthClass(res.Class) {
		reason := map[authgate.Class]authgate.StatusReason{authgate.ClassReauthRequired: authgate.StatusReasonRevoked,
			authgate.ClassInsufficientScope: authgate.StatusReasonScopeRemoved, authgate.ClassAdminPolicy: authgate.StatusReasonAdminPolicy}[res.Class]
		f := &vault.Failure{Class: res.Class, HTTPStatus: p.Status, AccessFP: usedFP, Actor: "step " + p.Key, Description: res.Message}
		if usedFP == "" {
			// No token on record for this step (it was gated before
			// tokens were recorded): judge by the one stored now.
			f.AccessFP = cred.AccessTokenFingerprint
		}
		err := s.cfg.Tokens.WithLease(ctx, p.TenantID, credID, func(ctx context.Context) error {
			_, err := s.cfg.Vault.MarkReauthRequired(ctx, p.TenantID, credID, reason, f)
			return err
		})
		if errors.Is(err, vault.ErrStale) {
			// A report about a token that was replaced (a reconnect or a
			// refresh since): the credential is not judged by it, and the
			// step simply runs again with the current token.
			out.Outcome, out.RetryAfterSeconds = authgate.StepFailRetry, 0
			out.Message = "the reported token is no longer the credential's: gate the step again for the current one"
			return out, nil
		}
		if err != nil {
			return out, err
		}
	}

	switch {
	case gate.IsAuthClass(res.Class):
		if _, err := s.gate.StepFail(ctx, gate.StepFailParams{TenantID: p.TenantID, RunID: run.ID, Key: p.Key, Class: res.Class, Reason: res.Message}); err != nil {
			return out, err
		}
		cur, err := s.cfg.Vault.Get(ctx, p.TenantID, credID)
		if err != nil {
			return out, err
		}
		link := s.reconnectFor(ctx, p.TenantID, credID, res.MissingScopes)
		blocked, err := s.Block(ctx, gate.BlockParams{TenantID: p.TenantID, RunID: run.ID, Binding: p.Binding, Class: res.Class, Reason: res.Message,
			ReconnectURL: link, SeenVersion: cur.Version})
		if err != nil {
			return out, err
		}
		if blocked.State != authgate.RunStateBlockedOnAuth {
			out.Outcome, out.RunState = authgate.StepFailRetry, blocked.State
			return out, nil
		}
		out.Outcome, out.RunState, out.Blocked = authgate.StepFailBlocked, blocked.State, PublicBlocked(blocked)
	case res.Class == authgate.ClassRateLimited || res.Class == authgate.ClassTransient:
		out.Outcome = authgate.StepFailRetry
		out.RetryAfterSeconds = max(1, int64((res.RetryAfter+time.Second-1)/time.Second))
	default:
		if _, err := s.gate.StepFail(ctx, gate.StepFailParams{TenantID: p.TenantID, RunID: run.ID, Key: p.Key, Class: res.Class, Reason: res.Message}); err != nil {
			return out, err
		}
		out.Outcome = authgate.StepFailFailed
	}
	return out, nil
}
