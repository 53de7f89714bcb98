package gate_test

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/internal/clock"
	"github.com/authgate/authgate/internal/gate"
	"github.com/authgate/authgate/internal/storage"
	"github.com/authgate/authgate/internal/storage/pgtest"
	"github.com/authgate/authgate/internal/storage/sqlitestore"
)

var t0 = time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)

// eachBackend runs fn on a fresh SQLite file and, when
// AUTHGATE_TEST_POSTGRES is set, on a fresh PostgreSQL schema.
func eachBackend(t *testing.T, fn func(t *testing.T, s storage.Store)) {
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		s, err := sqlitestore.Open(context.Background(), filepath.Join(t.TempDir(), "authgate.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		fn(t, s)
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		s := pgtest.Open(t)
		fn(t, s)
	})
}

// fixture is one tenant with user u1's Google and Notion credentials and
// user u2's Google credential, over a gate on a fake clock.
type fixture struct {
	s                  storage.Store
	g                  *gate.Gate
	clk                *clock.Fake
	tenant             authgate.TenantID
	google, notion, u2 *storage.Credential
}

func newFixture(t *testing.T, s storage.Store, pf gate.Preflighter) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{s: s, clk: clock.NewFake(t0), tenant: authgate.NewTenantID()}
	f.g = gate.New(gate.Config{Store: s, Clock: f.clk, Preflight: pf})
	if err := s.TenantInsert(ctx, storage.Tenant{ID: f.tenant, Name: "acme-" + string(f.tenant), CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	cred := func(user, provider string) *storage.Credential {
		c := &storage.Credential{ID: authgate.NewCredentialID(), Slot: storage.Slot{TenantID: f.tenant, UserID: user, Provider: provider, Subject: user + "-" + provider},
			Status: authgate.CredentialStatusActive, Version: 1, CreatedAt: t0, UpdatedAt: t0}
		if err := s.CredentialInsert(ctx, c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	f.google, f.notion, f.u2 = cred("u1", "google"), cred("u1", "notion"), cred("u2", "google")
	return f
}

func (f *fixture) create(t *testing.T) (*storage.Run, []authgate.PreflightCheck) {
	t.Helper()
	r, checks, err := f.g.Create(context.Background(), gate.CreateParams{TenantID: f.tenant, UserID: "u1", Workflow: "demo",
		Bindings: map[string]authgate.CredentialID{"google": f.google.ID, "notion": f.notion.ID}, Actions: []string{"docs.create", "notion.write"},
		Targets: json.RawMessage(`{"notion_database":"db1"}`)})
	if err != nil {
		t.Fatal(err)
	}
	return r, checks
}

// setStatus changes a credential's status as the vault would.
func (f *fixture) setStatus(t *testing.T, c *storage.Credential, status authgate.CredentialStatus, reason authgate.StatusReason) {
	t.Helper()
	cur, err := f.s.CredentialGetByID(context.Background(), storage.CredentialGetByIDParams{TenantID: f.tenant, ID: c.ID})
	if err != nil {
		t.Fatal(err)
	}
	cur.Status, cur.StatusReason = status, reason
	if err := f.s.CredentialUpdateCAS(context.Background(), cur); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) timeline(t *testing.T, id authgate.RunID) []storage.RunEntry {
	t.Helper()
	es, err := f.s.RunEntryList(context.Background(), storage.RunEntryListParams{TenantID: f.tenant, RunID: id})
	if err != nil {
		t.Fatal(err)
	}
	return es
}

func kinds(es []storage.RunEntry) []string {
	var out []string
	for _, e := range es {
		s := string(e.Kind)
		if e.ToState != "" {
			s += ":" + string(e.ToState)
		}
		out = append(out, s)
	}
	return out
}

func wantClass(t *testing.T, err error, c authgate.Class) *authgate.Error {
	t.Helper()
	var ae *authgate.Error
	if !errors.As(err, &ae) || ae.Class != c {
		t.Fatalf("err = %v; want class %s", err, c)
	}
	return ae
}

func TestCanTransition(t *testing.T) {
	t.Parallel()
	all := []authgate.RunState{authgate.RunStatePending, authgate.RunStateRunning, authgate.RunStateSucceeded, authgate.RunStateFailed, authgate.RunStateCanceled, authgate.RunStateBlockedOnAuth}
	allowed := map[[2]authgate.RunState]bool{
		{authgate.RunStatePending, authgate.RunStateRunning}: true, {authgate.RunStatePending, authgate.RunStateBlockedOnAuth}: true,
		{authgate.RunStatePending, authgate.RunStateFailed}: true, {authgate.RunStatePending, authgate.RunStateCanceled}: true,
		{authgate.RunStateRunning, authgate.RunStateBlockedOnAuth}: true, {authgate.RunStateRunning, authgate.RunStateSucceeded}: true,
		{authgate.RunStateRunning, authgate.RunStateFailed}: true, {authgate.RunStateRunning, authgate.RunStateCanceled}: true,
		{authgate.RunStateBlockedOnAuth, authgate.RunStateRunning}: true, {authgate.RunStateBlockedOnAuth, authgate.RunStateFailed}: true,
		{authgate.RunStateBlockedOnAuth, authgate.RunStateCanceled}: true,
	}
	for _, from := range all {
		for _, to := range all {
			if got := gate.CanTransition(from, to); got != allowed[[2]authgate.RunState{from, to}] {
				t.Errorf("CanTransition(%s, %s) = %v", from, to, got)
			}
		}
	}
}

// TestRunLifecycle: preflight passes, steps are gated and completed, the run
// is blocked and resumed, and finishes; every state change is in the
// timeline, and a finished run takes no more changes.
func TestRunLifecycle(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, s storage.Store) {
		ctx := context.Background()
		f := newFixture(t, s, nil)
		r, checks := f.create(t)
		if r.State != authgate.RunStateRunning || len(checks) != 4 {
			t.Fatalf("created %s with %d checks; want running with 4", r.State, len(checks))
		}
		res, err := f.g.StepGate(ctx, gate.StepGateParams{TenantID: f.tenant, RunID: r.ID, Key: "list", IdempotencyKey: "i1"})
		if err != nil || res.Completed || res.Step.Attempts != 1 {
			t.Fatalf("gate = %+v, %v", res, err)
		}
		if _, _, err := f.g.StepComplete(ctx, gate.StepCompleteParams{TenantID: f.tenant, RunID: r.ID, Key: "list", IdempotencyKey: "i1", Output: json.RawMessage(`{"files":3}`)}); err != nil {
			t.Fatal(err)
		}
		if _, err := f.g.Block(ctx, gate.BlockParams{TenantID: f.tenant, RunID: r.ID, Binding: "notion", Class: authgate.ClassInsufficientScope, Reason: "missing insert_content", ReconnectURL: "https://ag/c/1"}); err != nil {
			t.Fatal(err)
		}
		if _, err := f.g.Block(ctx, gate.BlockParams{TenantID: f.tenant, RunID: r.ID, Binding: "slack", Class: authgate.ClassReauthRequired}); err == nil {
			t.Fatal("Block accepted a binding the run does not have")
		}
		if _, err := f.g.Resume(ctx, gate.ResumeParams{TenantID: f.tenant, RunID: r.ID, Reason: "reconnected"}); err != nil {
			t.Fatal(err)
		}
		if _, err := f.g.Resume(ctx, gate.ResumeParams{TenantID: f.tenant, RunID: r.ID}); !errors.Is(err, gate.ErrInvalidTransition) {
			t.Fatalf("resume of a running run = %v; want ErrInvalidTransition", err)
		}
		done, err := f.g.Finish(ctx, gate.FinishParams{TenantID: f.tenant, RunID: r.ID, State: authgate.RunStateSucceeded, Reason: "all steps done"})
		if err != nil || done.State != authgate.RunStateSucceeded {
			t.Fatalf("Finish = %+v, %v", done, err)
		}
		_, err = f.g.Finish(ctx, gate.FinishParams{TenantID: f.tenant, RunID: r.ID, State: authgate.RunStateCanceled})
		wantClass(t, err, authgate.ClassConflict)
		if !errors.Is(err, gate.ErrInvalidTransition) {
			t.Fatalf("cancel of a finished run = %v; want ErrInvalidTransition", err)
		}
		_, err = f.g.StepGate(ctx, gate.StepGateParams{TenantID: f.tenant, RunID: r.ID, Key: "more", IdempotencyKey: "i9"})
		wantClass(t, err, authgate.ClassConflict)

		want := []string{"created:pending", "preflight", "state_changed:running", "gate", "step_completed", "blocked:blocked_on_auth", "resumed:running", "state_changed:succeeded"}
		if got := kinds(f.timeline(t, r.ID)); !slices.Equal(got, want) {
			t.Fatalf("timeline %v; want %v", got, want)
		}
		// Other tenants see nothing.
		_, err = f.g.Resume(ctx, gate.ResumeParams{TenantID: authgate.NewTenantID(), RunID: r.ID})
		wantClass(t, err, authgate.ClassNotFound)
	})
}

// TestCreateWrongPrincipal: binding another user's (or tenant's, or no)
// credential creates nothing.
func TestCreateWrongPrincipal(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, s storage.Store) {
		ctx := context.Background()
		f := newFixture(t, s, nil)
		for _, cred := range []authgate.CredentialID{f.u2.ID, authgate.NewCredentialID()} {
			_, _, err := f.g.Create(ctx, gate.CreateParams{TenantID: f.tenant, UserID: "u1", Workflow: "demo", Bindings: map[string]authgate.CredentialID{"google": cred}})
			wantClass(t, err, authgate.ClassWrongPrincipal)
		}
		_, _, err := f.g.Create(ctx, gate.CreateParams{TenantID: authgate.NewTenantID(), UserID: "u1", Workflow: "demo", Bindings: map[string]authgate.CredentialID{"google": f.google.ID}})
		wantClass(t, err, authgate.ClassWrongPrincipal)
		if runs, _ := s.RunList(ctx, storage.RunListParams{TenantID: f.tenant}); len(runs) != 0 {
			t.Fatalf("%d runs created", len(runs))
		}
	})
}

// checker is a Preflighter with fixed answers per binding.
type checker map[string][]authgate.PreflightCheck

func (c checker) Preflight(_ context.Context, in gate.PreflightInput) []authgate.PreflightCheck {
	return c[in.Binding]
}

// TestPreflight: every problem is reported together; an auth class blocks
// the run with its reconnect link, any other class fails it, before any
// step.
func TestPreflight(t *testing.T) {
	t.Parallel()
	scope := authgate.PreflightCheck{Binding: "google", Check: "scopes", Status: authgate.PreflightFailed, Class: authgate.ClassInsufficientScope,
		Detail: "missing documents", ReconnectURL: "https://ag/c/scopes", MissingScopes: []string{"https://www.googleapis.com/auth/documents"}}
	shared := authgate.PreflightCheck{Binding: "notion", Check: "target", Status: authgate.PreflightFailed, Class: authgate.ClassNotSharedOrNotFound,
		Detail: "database db1 is not shared with the integration", Fix: "share it"}
	eachBackend(t, func(t *testing.T, s storage.Store) {
		ctx := context.Background()
		t.Run("auth blocks", func(t *testing.T) {
			f := newFixture(t, s, checker{"google": {scope}})
			r, checks := f.create(t)
			if r.State != authgate.RunStateBlockedOnAuth || r.Blocked.CredentialID != f.google.ID || r.Blocked.ReconnectURL != "https://ag/c/scopes" || r.Blocked.Class != authgate.ClassInsufficientScope {
				t.Fatalf("run = %+v", r)
			}
			if len(checks) != 5 {
				t.Fatalf("%d checks; want principal+status for both and the scope check", len(checks))
			}
			_, err := f.g.StepGate(ctx, gate.StepGateParams{TenantID: f.tenant, RunID: r.ID, Key: "list", IdempotencyKey: "i1"})
			if ae := wantClass(t, err, authgate.ClassBlockedOnAuth); ae.ReconnectURL != "https://ag/c/scopes" || ae.CredentialID != f.google.ID || ae.AgentHint == "" {
				t.Fatalf("blocked problem = %+v", ae)
			}
			if steps, _ := s.StepList(ctx, storage.StepListParams{TenantID: f.tenant, RunID: r.ID}); len(steps) != 0 {
				t.Fatalf("a blocked run recorded %d steps", len(steps))
			}
		})
		t.Run("other fails, all reported", func(t *testing.T) {
			f := newFixture(t, s, checker{"google": {scope}, "notion": {shared}})
			r, checks := f.create(t)
			if r.State != authgate.RunStateFailed || len(checks) != 6 {
				t.Fatalf("run %s with %d checks; want failed with 6", r.State, len(checks))
			}
			want := []string{"created:pending", "preflight", "state_changed:failed"}
			if got := kinds(f.timeline(t, r.ID)); !slices.Equal(got, want) {
				t.Fatalf("timeline %v; want %v", got, want)
			}
		})
		t.Run("status known to storage", func(t *testing.T) {
			f := newFixture(t, s, checker{"google": {scope}}) // not asked: the credential is not active
			f.setStatus(t, f.google, authgate.CredentialStatusReauthRequired, authgate.StatusReasonInvalidGrant)
			r, checks := f.create(t)
			if r.State != authgate.RunStateBlockedOnAuth || r.Blocked.Class != authgate.ClassReauthRequired || len(checks) != 4 {
				t.Fatalf("run %+v, %d checks", r, len(checks))
			}
		})
	})
}

// TestStepIdempotency: completing a step twice, even at once, records the
// first output once; a later gate of that step returns it instead of
// running the step again.
func TestStepIdempotency(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, s storage.Store) {
		ctx := context.Background()
		f := newFixture(t, s, nil)
		r, _ := f.create(t)
		gateP := gate.StepGateParams{TenantID: f.tenant, RunID: r.ID, Key: "create-doc", IdempotencyKey: "doc-1", CredentialFingerprints: map[string]string{"google": "fp1"}}
		if _, err := f.g.StepGate(ctx, gateP); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		var firsts int
		outs := map[string]bool{}
		for i := range 8 {
			wg.Go(func() {
				st, first, err := f.g.StepComplete(ctx, gate.StepCompleteParams{TenantID: f.tenant, RunID: r.ID, Key: "create-doc", IdempotencyKey: "doc-1",
					Output: json.RawMessage(`{"doc":"d` + string(rune('0'+i)) + `"}`)})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				defer mu.Unlock()
				if first {
					firsts++
				}
				outs[string(st.Output)] = true
			})
		}
		wg.Wait()
		if firsts != 1 || len(outs) != 1 {
			t.Fatalf("%d first completions, outputs %v; want 1 and one output", firsts, outs)
		}
		res, err := f.g.StepGate(ctx, gateP)
		if err != nil || !res.Completed || !outs[string(res.Step.Output)] || res.Step.Attempts != 1 {
			t.Fatalf("gate of a completed step = %+v, %v; want its output, no new attempt", res, err)
		}
		_, _, err = f.g.StepComplete(ctx, gate.StepCompleteParams{TenantID: f.tenant, RunID: r.ID, Key: "create-doc", IdempotencyKey: "other"})
		wantClass(t, err, authgate.ClassConflict)
		_, _, err = f.g.StepComplete(ctx, gate.StepCompleteParams{TenantID: f.tenant, RunID: r.ID, Key: "never", IdempotencyKey: "x"})
		wantClass(t, err, authgate.ClassNotFound)

		n := 0
		for _, e := range f.timeline(t, r.ID) {
			if e.Kind == authgate.RunEntryStepCompleted {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("%d step_completed entries; want 1", n)
		}
		// A failed attempt is retried with the same key; the timeline says so.
		if _, err := f.g.StepGate(ctx, gate.StepGateParams{TenantID: f.tenant, RunID: r.ID, Key: "post", IdempotencyKey: "p-1"}); err != nil {
			t.Fatal(err)
		}
		if failed, err := f.g.StepFail(ctx, gate.StepFailParams{TenantID: f.tenant, RunID: r.ID, Key: "post", Class: authgate.ClassRateLimited, Reason: "429"}); err != nil || !failed {
			t.Fatalf("StepFail = %v, %v", failed, err)
		}
		res, err = f.g.StepGate(ctx, gate.StepGateParams{TenantID: f.tenant, RunID: r.ID, Key: "post", IdempotencyKey: "p-1"})
		if err != nil || res.Step.Attempts != 2 || res.Step.Status != authgate.StepStatusStarted {
			t.Fatalf("retry gate = %+v, %v", res, err)
		}
	})
}

// TestResumeBlockedOn: a reconnect resumes every run blocked on that
// credential, once, and nothing else; a credential still needing its user
// (a reconnect refused for another account) resumes nothing.
func TestResumeBlockedOn(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, s storage.Store) {
		ctx := context.Background()
		f := newFixture(t, s, nil)
		var onGoogle []authgate.RunID
		for range 3 {
			r, _ := f.create(t)
			onGoogle = append(onGoogle, r.ID)
		}
		other, _ := f.create(t)

		// Google is revoked: the next gate of each run blocks it.
		f.setStatus(t, f.google, authgate.CredentialStatusReauthRequired, authgate.StatusReasonRevoked)
		for _, id := range onGoogle {
			_, err := f.g.StepGate(ctx, gate.StepGateParams{TenantID: f.tenant, RunID: id, Key: "append", IdempotencyKey: "a-" + string(id)})
			wantClass(t, err, authgate.ClassBlockedOnAuth)
		}
		if _, err := f.g.Block(ctx, gate.BlockParams{TenantID: f.tenant, RunID: other.ID, Binding: "notion", Class: authgate.ClassReauthRequired, Reason: "invalid_grant"}); err != nil {
			t.Fatal(err)
		}

		// A refused reconnect leaves it reauth_required: nothing resumes.
		f.setStatus(t, f.google, authgate.CredentialStatusReauthRequired, authgate.StatusReasonIdentityMismatch)
		ids, err := f.g.ResumeBlockedOn(ctx, gate.ResumeBlockedOnParams{TenantID: f.tenant, CredentialID: f.google.ID, Reason: "reconnected"})
		wantClass(t, err, authgate.ClassReauthRequired)
		if len(ids) != 0 {
			t.Fatalf("resumed %v on a refused reconnect", ids)
		}

		f.setStatus(t, f.google, authgate.CredentialStatusActive, authgate.StatusReasonNone)
		f.clk.Advance(time.Minute)
		ids, err = f.g.ResumeBlockedOn(ctx, gate.ResumeBlockedOnParams{TenantID: f.tenant, CredentialID: f.google.ID, Reason: "reconnected"})
		if err != nil || len(ids) != 3 {
			t.Fatalf("ResumeBlockedOn = %v, %v; want the 3 runs blocked on google", ids, err)
		}
		for _, id := range onGoogle {
			r, _ := s.RunGetByID(ctx, storage.RunGetByIDParams{TenantID: f.tenant, ID: id})
			es := f.timeline(t, id)
			last := es[len(es)-1]
			if r.State != authgate.RunStateRunning || r.Blocked != (storage.RunBlocked{}) || last.Kind != authgate.RunEntryResumed || last.Reason != "reconnected" || !last.At.Equal(t0.Add(time.Minute)) {
				t.Fatalf("run %s after resume: %+v, last entry %+v", id, r, last)
			}
		}
		if r, _ := s.RunGetByID(ctx, storage.RunGetByIDParams{TenantID: f.tenant, ID: other.ID}); r.State != authgate.RunStateBlockedOnAuth {
			t.Fatalf("the run blocked on notion is %s", r.State)
		}
		again, err := f.g.ResumeBlockedOn(ctx, gate.ResumeBlockedOnParams{TenantID: f.tenant, CredentialID: f.google.ID, Reason: "reconnected"})
		if err != nil || len(again) != 0 {
			t.Fatalf("second ResumeBlockedOn = %v, %v; want nothing", again, err)
		}
	})
}

// TestBlockRechecksCredential: a block whose credential was reconnected
// (active at a newer version than the failure saw) leaves the run running,
// so no run waits on a usable credential; a block on the version the
// failure saw, or on a credential that still needs its user, holds.
func TestBlockRechecksCredential(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, s storage.Store) {
		ctx := context.Background()
		f := newFixture(t, s, nil)
		r, _ := f.create(t)
		seen, err := s.CredentialGetByID(ctx, storage.CredentialGetByIDParams{TenantID: f.tenant, ID: f.google.ID})
		if err != nil {
			t.Fatal(err)
		}
		// The reconnect commits between the failure and the block.
		f.setStatus(t, f.google, authgate.CredentialStatusActive, authgate.StatusReasonNone)
		got, err := f.g.Block(ctx, gate.BlockParams{TenantID: f.tenant, RunID: r.ID, Binding: "google", Class: authgate.ClassInsufficientScope, Reason: "403", SeenVersion: seen.Version})
		if err != nil || got.State != authgate.RunStateRunning {
			t.Fatalf("block after a reconnect = %+v, %v; want the run left running", got, err)
		}
		if es := f.timeline(t, r.ID); es[len(es)-1].Kind == authgate.RunEntryBlocked {
			t.Fatalf("timeline records a block: %+v", es[len(es)-1])
		}
		cur, _ := s.CredentialGetByID(ctx, storage.CredentialGetByIDParams{TenantID: f.tenant, ID: f.google.ID})
		got, err = f.g.Block(ctx, gate.BlockParams{TenantID: f.tenant, RunID: r.ID, Binding: "google", Class: authgate.ClassInsufficientScope, Reason: "403", SeenVersion: cur.Version})
		if err != nil || got.State != authgate.RunStateBlockedOnAuth {
			t.Fatalf("block on the version seen = %+v, %v", got, err)
		}
		r2, _ := f.create(t)
		f.setStatus(t, f.google, authgate.CredentialStatusReauthRequired, authgate.StatusReasonRevoked)
		got, err = f.g.Block(ctx, gate.BlockParams{TenantID: f.tenant, RunID: r2.ID, Binding: "google", Class: authgate.ClassReauthRequired, Reason: "revoked", SeenVersion: seen.Version})
		if err != nil || got.State != authgate.RunStateBlockedOnAuth {
			t.Fatalf("block on a revoked credential = %+v, %v", got, err)
		}
	})
}
