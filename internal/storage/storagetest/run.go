package storagetest

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/internal/keyring"
	"github.com/authgate/authgate/internal/storage"
)

// NewRun returns a pending run of tenant for user, binding cred as "google".
func NewRun(tenant authgate.TenantID, user string, cred authgate.CredentialID) *storage.Run {
	return &storage.Run{
		ID: authgate.NewRunID(), TenantID: tenant, UserID: user, Workflow: "demo",
		Bindings:  map[string]authgate.CredentialID{"google": cred},
		Actions:   []string{"drive.list", "docs.create"},
		Targets:   json.RawMessage(`{"folder":"f1", "b":[1,2]}`),
		State:     authgate.RunStatePending,
		CreatedAt: base, UpdatedAt: base, Version: 1,
	}
}

func mustRun(t *testing.T, s storage.Queries, r *storage.Run) {
	t.Helper()
	if err := s.RunInsert(context.Background(), r); err != nil {
		t.Fatalf("RunInsert: %v", err)
	}
}

func testRuns(t *testing.T, s storage.Store) {
	ctx := context.Background()
	tn, other := mustTenant(t, s, "acme"), mustTenant(t, s, "globex")
	c := newCredential(tn.ID, "u1")
	mustInsert(t, s, c)
	r := NewRun(tn.ID, "u1", c.ID)
	mustRun(t, s, r)
	if err := s.RunInsert(ctx, r); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("second RunInsert = %v; want ErrConflict", err)
	}
	got, err := s.RunGetByID(ctx, storage.RunGetByIDParams{TenantID: tn.ID, ID: r.ID})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(r, got); diff != "" {
		t.Fatalf("round trip (-want +got):\n%s", diff)
	}
	if _, err := s.RunGetByID(ctx, storage.RunGetByIDParams{TenantID: other.ID, ID: r.ID}); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("another tenant's RunGetByID = %v; want ErrNotFound", err)
	}
	if err := s.RunInsert(ctx, &storage.Run{ID: authgate.NewRunID(), TenantID: tn.ID, State: authgate.RunStatePending, Targets: json.RawMessage(`{x`)}); err == nil {
		t.Fatal("RunInsert accepted invalid targets JSON")
	}

	// Block, CAS, stale writer.
	stale := *got
	got.State = authgate.RunStateBlockedOnAuth
	got.Blocked = storage.RunBlocked{Binding: "google", CredentialID: c.ID, Class: authgate.ClassReauthRequired, Reason: "invalid_grant", ReconnectURL: "https://x/c/1"}
	got.UpdatedAt = base.Add(time.Minute)
	if err := s.RunUpdateCAS(ctx, got); err != nil || got.Version != 2 {
		t.Fatalf("RunUpdateCAS = %v, version %d; want nil, 2", err, got.Version)
	}
	stale.State = authgate.RunStateCanceled
	if err := s.RunUpdateCAS(ctx, &stale); !errors.Is(err, storage.ErrVersionConflict) {
		t.Fatalf("stale RunUpdateCAS = %v; want ErrVersionConflict", err)
	}
	missing := NewRun(tn.ID, "u1", c.ID)
	if err := s.RunUpdateCAS(ctx, missing); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("RunUpdateCAS of a missing run = %v; want ErrNotFound", err)
	}
	again, _ := s.RunGetByID(ctx, storage.RunGetByIDParams{TenantID: tn.ID, ID: r.ID})
	if diff := cmp.Diff(got, again); diff != "" {
		t.Fatalf("after CAS (-want +got):\n%s", diff)
	}

	// Blocked-on queries see only runs blocked on that credential, in that tenant.
	c2 := newCredential(tn.ID, "u2")
	mustInsert(t, s, c2)
	r2 := NewRun(tn.ID, "u2", c2.ID)
	r2.State, r2.Blocked = authgate.RunStateBlockedOnAuth, storage.RunBlocked{Binding: "google", CredentialID: c2.ID, Class: authgate.ClassReauthRequired}
	mustRun(t, s, r2)
	r3 := NewRun(tn.ID, "u1", c.ID) // running, binds c but is not blocked
	r3.State = authgate.RunStateRunning
	mustRun(t, s, r3)
	blocked, err := s.RunListBlockedOn(ctx, storage.RunListBlockedOnParams{TenantID: tn.ID, CredentialID: c.ID})
	if err != nil || len(blocked) != 1 || blocked[0].ID != r.ID {
		t.Fatalf("RunListBlockedOn(c) = %v, %v; want [%s]", blocked, err, r.ID)
	}
	if b, _ := s.RunListBlockedOn(ctx, storage.RunListBlockedOnParams{TenantID: other.ID, CredentialID: c.ID}); len(b) != 0 {
		t.Fatalf("another tenant sees %d blocked runs", len(b))
	}

	// List filters and pages in id order.
	all, err := s.RunList(ctx, storage.RunListParams{TenantID: tn.ID})
	if err != nil || len(all) != 3 {
		t.Fatalf("RunList = %d runs, %v; want 3", len(all), err)
	}
	for i := 1; i < len(all); i++ {
		if all[i-1].ID >= all[i].ID {
			t.Fatalf("RunList not in id order: %s, %s", all[i-1].ID, all[i].ID)
		}
	}
	if l, _ := s.RunList(ctx, storage.RunListParams{TenantID: tn.ID, State: authgate.RunStateBlockedOnAuth, UserID: "u2"}); len(l) != 1 || l[0].ID != r2.ID {
		t.Fatalf("RunList(blocked, u2) = %v", l)
	}
	if l, _ := s.RunList(ctx, storage.RunListParams{TenantID: tn.ID, AfterID: all[0].ID, Limit: 1}); len(l) != 1 || l[0].ID != all[1].ID {
		t.Fatalf("RunList page = %v", l)
	}
	if l, _ := s.RunList(ctx, storage.RunListParams{TenantID: other.ID}); len(l) != 0 {
		t.Fatalf("another tenant lists %d runs", len(l))
	}
}

// tenantRun makes a tenant "acme" with a run of user u1 on a credential.
func tenantRun(t *testing.T, s storage.Store) (storage.Tenant, *storage.Run) {
	t.Helper()
	tn := mustTenant(t, s, "acme")
	c := newCredential(tn.ID, "u1")
	mustInsert(t, s, c)
	r := NewRun(tn.ID, "u1", c.ID)
	mustRun(t, s, r)
	return tn, r
}

func testRunTimeline(t *testing.T, s storage.Store) {
	ctx := context.Background()
	tn, r := tenantRun(t, s)
	want := []storage.RunEntry{
		{Kind: authgate.RunEntryCreated, ToState: authgate.RunStatePending},
		{Kind: authgate.RunEntryStateChanged, FromState: authgate.RunStatePending, ToState: authgate.RunStateRunning, Reason: "preflight passed"},
		{Kind: authgate.RunEntryGate, StepKey: "s1"},
		{Kind: authgate.RunEntryBlocked, FromState: authgate.RunStateRunning, ToState: authgate.RunStateBlockedOnAuth, Binding: "google", Class: authgate.ClassReauthRequired, Reason: "invalid_grant", Details: json.RawMessage(`{"reconnect_url":"https://x"}`)},
		{Kind: authgate.RunEntryResumed, FromState: authgate.RunStateBlockedOnAuth, ToState: authgate.RunStateRunning, Reason: "reconnected"},
	}
	for i := range want {
		e := &want[i]
		e.TenantID, e.RunID, e.At = tn.ID, r.ID, base.Add(time.Duration(i)*time.Second)
		if err := s.RunEntryInsert(ctx, e); err != nil {
			t.Fatal(err)
		}
		if e.Details == nil {
			e.Details = json.RawMessage(`{}`)
		}
		if i > 0 && e.Seq <= want[i-1].Seq {
			t.Fatalf("entry %d seq %d after %d", i, e.Seq, want[i-1].Seq)
		}
	}
	got, err := s.RunEntryList(ctx, storage.RunEntryListParams{TenantID: tn.ID, RunID: r.ID})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("timeline (-want +got):\n%s", diff)
	}
	page, _ := s.RunEntryList(ctx, storage.RunEntryListParams{TenantID: tn.ID, RunID: r.ID, AfterSeq: want[1].Seq, Limit: 2})
	if len(page) != 2 || page[0].Seq != want[2].Seq {
		t.Fatalf("timeline page = %v", page)
	}
	other := mustTenant(t, s, "globex")
	if l, _ := s.RunEntryList(ctx, storage.RunEntryListParams{TenantID: other.ID, RunID: r.ID}); len(l) != 0 {
		t.Fatalf("another tenant reads %d entries", len(l))
	}
}

func testSteps(t *testing.T, s storage.Store) {
	ctx := context.Background()
	tn, r := tenantRun(t, s)
	start := storage.StepStartParams{TenantID: tn.ID, RunID: r.ID, Key: "create-doc", Actions: []string{"docs.create"}, IdempotencyKey: "idem-1",
		CredentialFingerprints: map[string]string{"google": "fp1"}, At: base}
	st, err := s.StepStart(ctx, start)
	if err != nil {
		t.Fatal(err)
	}
	want := &storage.Step{TenantID: tn.ID, RunID: r.ID, Key: "create-doc", Actions: []string{"docs.create"}, IdempotencyKey: "idem-1",
		Status: authgate.StepStatusStarted, Attempts: 1, CredentialFingerprints: map[string]string{"google": "fp1"}, StartedAt: base, UpdatedAt: base}
	if diff := cmp.Diff(want, st); diff != "" {
		t.Fatalf("StepStart (-want +got):\n%s", diff)
	}
	// A retry counts an attempt and records the new fingerprint.
	start.At, start.CredentialFingerprints = base.Add(time.Second), map[string]string{"google": "fp2"}
	st, err = s.StepStart(ctx, start)
	if err != nil || st.Attempts != 2 || st.CredentialFingerprints["google"] != "fp2" || !st.StartedAt.Equal(base) {
		t.Fatalf("second StepStart = %+v, %v", st, err)
	}
	// One step, one idempotency key; one key, one step.
	if _, err := s.StepStart(ctx, storage.StepStartParams{TenantID: tn.ID, RunID: r.ID, Key: "create-doc", IdempotencyKey: "other", At: base}); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("StepStart with another key = %v; want ErrConflict", err)
	}
	if _, err := s.StepStart(ctx, storage.StepStartParams{TenantID: tn.ID, RunID: r.ID, Key: "post", IdempotencyKey: "idem-1", At: base}); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("StepStart of another step with a taken key = %v; want ErrConflict", err)
	}
	if _, _, err := s.StepComplete(ctx, storage.StepCompleteParams{TenantID: tn.ID, RunID: r.ID, Key: "never", IdempotencyKey: "x", At: base}); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("StepComplete of a step never started = %v; want ErrNotFound", err)
	}

	// Completing twice, even concurrently, records once: every caller gets
	// the first output.
	outputs := []string{`{"doc_id":"d1", "n":1}`, `{"doc_id":"d2"}`, `{"doc_id":"d3"}`, `{"doc_id":"d4"}`}
	var wg sync.WaitGroup
	firsts := make(chan string, len(outputs))
	results := make(chan *storage.Step, len(outputs))
	for i, out := range outputs {
		wg.Go(func() {
			st, first, err := s.StepComplete(ctx, storage.StepCompleteParams{TenantID: tn.ID, RunID: r.ID, Key: "create-doc", IdempotencyKey: "idem-1",
				Output: json.RawMessage(out), At: base.Add(time.Duration(10+i) * time.Second)})
			if err != nil {
				t.Errorf("StepComplete: %v", err)
				return
			}
			if first {
				firsts <- out
			}
			results <- st
		})
	}
	wg.Wait()
	close(firsts)
	close(results)
	var won []string
	for f := range firsts {
		won = append(won, f)
	}
	if len(won) != 1 {
		t.Fatalf("%d completions reported first; want 1", len(won))
	}
	for st := range results {
		if string(st.Output) != won[0] || st.Status != authgate.StepStatusCompleted || st.CompletedAt.IsZero() {
			t.Fatalf("a completion returned %+v; want the first output %s", st, won[0])
		}
	}
	if _, _, err := s.StepComplete(ctx, storage.StepCompleteParams{TenantID: tn.ID, RunID: r.ID, Key: "create-doc", IdempotencyKey: "wrong", At: base}); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("StepComplete with another key = %v; want ErrConflict", err)
	}
	// A completed step is not restarted, nor failed.
	st, err = s.StepStart(ctx, start)
	if err != nil || st.Status != authgate.StepStatusCompleted || st.Attempts != 2 {
		t.Fatalf("StepStart of a completed step = %+v, %v; want it unchanged", st, err)
	}
	if failed, err := s.StepFail(ctx, storage.StepFailParams{TenantID: tn.ID, RunID: r.ID, Key: "create-doc", Class: authgate.ClassTransient, At: base}); err != nil || failed {
		t.Fatalf("StepFail of a completed step = %v, %v; want false", failed, err)
	}

	// A failed step may be gated again.
	if _, err := s.StepStart(ctx, storage.StepStartParams{TenantID: tn.ID, RunID: r.ID, Key: "post", IdempotencyKey: "idem-2", At: base}); err != nil {
		t.Fatal(err)
	}
	if failed, err := s.StepFail(ctx, storage.StepFailParams{TenantID: tn.ID, RunID: r.ID, Key: "post", Class: authgate.ClassRateLimited, At: base}); err != nil || !failed {
		t.Fatalf("StepFail = %v, %v", failed, err)
	}
	if st, _ := s.StepGet(ctx, storage.StepGetParams{TenantID: tn.ID, RunID: r.ID, Key: "post"}); st.Status != authgate.StepStatusFailed || st.ErrorClass != authgate.ClassRateLimited {
		t.Fatalf("failed step = %+v", st)
	}
	if st, err := s.StepStart(ctx, storage.StepStartParams{TenantID: tn.ID, RunID: r.ID, Key: "post", IdempotencyKey: "idem-2", At: base}); err != nil || st.Status != authgate.StepStatusStarted || st.Attempts != 2 || st.ErrorClass != "" {
		t.Fatalf("restart of a failed step = %+v, %v", st, err)
	}
	if _, err := s.StepFail(ctx, storage.StepFailParams{TenantID: tn.ID, RunID: r.ID, Key: "never", At: base}); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("StepFail of a step never started = %v; want ErrNotFound", err)
	}

	steps, err := s.StepList(ctx, storage.StepListParams{TenantID: tn.ID, RunID: r.ID})
	if err != nil || len(steps) != 2 || steps[0].Key != "create-doc" || steps[1].Key != "post" {
		t.Fatalf("StepList = %v, %v; want create-doc, post in gate order", steps, err)
	}
	other := mustTenant(t, s, "globex")
	if l, _ := s.StepList(ctx, storage.StepListParams{TenantID: other.ID, RunID: r.ID}); len(l) != 0 {
		t.Fatalf("another tenant lists %d steps", len(l))
	}
}

func testWebhooks(t *testing.T, s storage.Store) {
	ctx := context.Background()
	tn, other := mustTenant(t, s, "acme"), mustTenant(t, s, "globex")
	ep := &storage.WebhookEndpoint{ID: authgate.NewWebhookEndpointID(), TenantID: tn.ID, URL: "https://hooks.example.com/a",
		Secret: keyring.Sealed{KeyID: "kw", Data: []byte{0, 1, 2, 255}}, CreatedAt: base}
	if err := s.WebhookEndpointInsert(ctx, ep); err != nil {
		t.Fatal(err)
	}
	eps, err := s.WebhookEndpointList(ctx, tn.ID)
	if err != nil || len(eps) != 1 {
		t.Fatalf("WebhookEndpointList = %v, %v", eps, err)
	}
	if diff := cmp.Diff(ep, eps[0]); diff != "" {
		t.Fatalf("endpoint round trip (-want +got):\n%s", diff)
	}
	if l, _ := s.WebhookEndpointList(ctx, other.ID); len(l) != 0 {
		t.Fatalf("another tenant lists %d endpoints", len(l))
	}
	if ids, err := s.SealedKeyIDs(ctx); err != nil || !contains(ids, "kw") {
		t.Fatalf("SealedKeyIDs = %v, %v; want the webhook secret's key among them", ids, err)
	}

	// Key rotation finds the secret and re-seals it once.
	old, err := s.WebhookEndpointListSealedNotWith(ctx, storage.WebhookEndpointListSealedNotWithParams{KeyID: "k2"})
	if err != nil || len(old) != 1 || old[0].ID != ep.ID {
		t.Fatalf("WebhookEndpointListSealedNotWith = %v, %v", old, err)
	}
	resealed := keyring.Sealed{KeyID: "k2", Data: []byte{7, 7}}
	if err := s.WebhookEndpointReseal(ctx, storage.WebhookEndpointResealParams{ID: ep.ID, OldKeyID: "kw", Secret: resealed}); err != nil {
		t.Fatal(err)
	}
	if err := s.WebhookEndpointReseal(ctx, storage.WebhookEndpointResealParams{ID: ep.ID, OldKeyID: "kw", Secret: resealed}); !errors.Is(err, storage.ErrVersionConflict) {
		t.Fatalf("second reseal from the old key = %v; want ErrVersionConflict", err)
	}
	if err := s.WebhookEndpointReseal(ctx, storage.WebhookEndpointResealParams{ID: authgate.NewWebhookEndpointID(), OldKeyID: "kw", Secret: resealed}); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("reseal of a missing endpoint = %v; want ErrNotFound", err)
	}
	if left, _ := s.WebhookEndpointListSealedNotWith(ctx, storage.WebhookEndpointListSealedNotWithParams{KeyID: "k2"}); len(left) != 0 {
		t.Fatalf("%d endpoints left to re-seal", len(left))
	}
	ep.Secret = resealed

	payload := json.RawMessage(`{"type":"run.blocked_on_auth",  "run_id":"run_x"}`)
	d := &storage.WebhookDelivery{ID: authgate.NewWebhookDeliveryID(), TenantID: tn.ID, EndpointID: ep.ID, EventType: authgate.WebhookEventRunBlockedOnAuth,
		Payload: payload, NextAttemptAt: base, CreatedAt: base}
	if err := s.WebhookDeliveryInsert(ctx, d); err != nil {
		t.Fatal(err)
	}
	later := &storage.WebhookDelivery{ID: authgate.NewWebhookDeliveryID(), TenantID: tn.ID, EndpointID: ep.ID, EventType: authgate.WebhookEventRunResumed,
		Payload: json.RawMessage(`{}`), NextAttemptAt: base.Add(time.Hour), CreatedAt: base}
	if err := s.WebhookDeliveryInsert(ctx, later); err != nil {
		t.Fatal(err)
	}
	got, err := s.WebhookDeliveryGet(ctx, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(d, got); diff != "" {
		t.Fatalf("delivery round trip, payload byte for byte (-want +got):\n%s", diff)
	}
	// A failure reschedules; a success ends it.
	if err := s.WebhookDeliveryRecordAttempt(ctx, storage.WebhookDeliveryRecordAttemptParams{ID: d.ID, At: base, LastError: "503", NextAttemptAt: base.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.WebhookDeliveryGet(ctx, d.ID); got.Attempts != 1 || !got.NextAttemptAt.Equal(base.Add(time.Minute)) || got.LastError != "503" || got.Status() != storage.WebhookDeliveryPending {
		t.Fatalf("after a failed attempt %+v", got)
	}
	if err := s.WebhookDeliveryRecordAttempt(ctx, storage.WebhookDeliveryRecordAttemptParams{ID: d.ID, At: base.Add(time.Minute), Delivered: true}); err != nil {
		t.Fatal(err)
	}
	got, err = s.WebhookDeliveryGet(ctx, d.ID)
	if err != nil || got.Attempts != 2 || !got.DeliveredAt.Equal(base.Add(time.Minute)) || got.LastError != "" {
		t.Fatalf("delivered = %+v, %v", got, err)
	}
	if err := s.WebhookDeliveryRecordAttempt(ctx, storage.WebhookDeliveryRecordAttemptParams{ID: d.ID, At: base, Delivered: true}); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("recording an attempt on a delivered delivery = %v; want ErrNotFound", err)
	}

	// A last failed attempt makes a delivery dead: listed as such, and
	// pruned with the delivered ones once old enough; pending ones stay.
	dead := &storage.WebhookDelivery{ID: authgate.NewWebhookDeliveryID(), TenantID: tn.ID, EndpointID: ep.ID, EventType: authgate.WebhookEventRunFinished,
		Payload: json.RawMessage(`{}`), NextAttemptAt: base, CreatedAt: base.Add(time.Second)}
	if err := s.WebhookDeliveryInsert(ctx, dead); err != nil {
		t.Fatal(err)
	}
	if err := s.WebhookDeliveryRecordAttempt(ctx, storage.WebhookDeliveryRecordAttemptParams{ID: dead.ID, At: base.Add(time.Hour), LastError: "timeout", Dead: true}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.WebhookDeliveryGet(ctx, dead.ID); err != nil || got.Status() != storage.WebhookDeliveryDead || !got.DeadAt.Equal(base.Add(time.Hour)) {
		t.Fatalf("dead delivery = %+v, %v", got, err)
	}
	for status, want := range map[storage.WebhookDeliveryStatus][]authgate.WebhookDeliveryID{
		"": {dead.ID, d.ID, later.ID}, storage.WebhookDeliveryDead: {dead.ID}, storage.WebhookDeliveryDelivered: {d.ID}, storage.WebhookDeliveryPending: {later.ID},
	} {
		l, err := s.WebhookDeliveryList(ctx, storage.WebhookDeliveryListParams{TenantID: tn.ID, Status: status})
		if err != nil || len(l) != len(want) {
			t.Fatalf("list %q = %v, %v; want %v", status, l, err, want)
		}
		for i := range l {
			if l[i].ID != want[i] && status == "" && i > 0 {
				continue // d and later share created_at: their order is by id
			} else if l[i].ID != want[i] && status != "" {
				t.Fatalf("list %q [%d] = %s; want %s", status, i, l[i].ID, want[i])
			}
		}
	}
	if l, _ := s.WebhookDeliveryList(ctx, storage.WebhookDeliveryListParams{TenantID: other.ID}); len(l) != 0 {
		t.Fatalf("another tenant lists %d deliveries", len(l))
	}
	if n, err := s.WebhookDeliveryDeleteFinished(ctx, storage.WebhookDeliveryDeleteFinishedParams{Before: base.Add(time.Minute)}); err != nil || n != 2 {
		t.Fatalf("prune = %d, %v; want the delivered and the dead one", n, err)
	}
	if _, err := s.WebhookDeliveryGet(ctx, later.ID); err != nil {
		t.Fatalf("pruning took a pending delivery: %v", err)
	}

	// Deleting an endpoint deletes its deliveries; only its tenant may.
	if err := s.WebhookEndpointDelete(ctx, storage.WebhookEndpointDeleteParams{TenantID: other.ID, ID: ep.ID}); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("another tenant's delete = %v; want ErrNotFound", err)
	}
	if err := s.WebhookEndpointDelete(ctx, storage.WebhookEndpointDeleteParams{TenantID: tn.ID, ID: ep.ID}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.WebhookDeliveryGet(ctx, later.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("delivery of a deleted endpoint = %v; want ErrNotFound", err)
	}
}

func testIdempotentResults(t *testing.T, s storage.Store) {
	ctx := context.Background()
	p := storage.IdempotentResultPutParams{TenantID: "ten_a", Scope: "mcp", Key: "k1", Result: []byte(`{"id":1}`), At: base}
	if res, stored, err := s.IdempotentResultPut(ctx, p); err != nil || !stored || string(res) != `{"id":1}` {
		t.Fatalf("first put = %s %v %v", res, stored, err)
	}
	second := p
	second.Result = []byte(`{"id":2}`)
	if res, stored, err := s.IdempotentResultPut(ctx, second); err != nil || stored || string(res) != `{"id":1}` {
		t.Fatalf("second put = %s %v %v; want the first result, not stored", res, stored, err)
	}
	other := second
	other.TenantID = "ten_b"
	if _, stored, err := s.IdempotentResultPut(ctx, other); err != nil || !stored {
		t.Fatalf("another tenant's key is its own: %v %v", stored, err)
	}
	if _, err := s.IdempotentResultGet(ctx, storage.IdempotentResultGetParams{TenantID: "ten_a", Scope: "mcp", Key: "nope"}); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("get missing = %v", err)
	}
	if n, err := s.IdempotentResultDeleteBefore(ctx, base.Add(time.Second), 100); err != nil || n != 2 {
		t.Fatalf("delete = %d %v", n, err)
	}
}

// testSweepQueries: what proactive refresh and the health sweep read. A
// credential bound to an unfinished run is refreshed ahead (by expiry);
// one bound to none is checked on its schedule; finishing the run moves it
// from the first to the second.
func testSweepQueries(t *testing.T, s storage.Store) {
	ctx := context.Background()
	tn := mustTenant(t, s, "acme")
	bound, idle, later := newCredential(tn.ID, "u1"), newCredential(tn.ID, "u2"), newCredential(tn.ID, "u3")
	bound.AccessTokenExpiresAt, idle.AccessTokenExpiresAt, later.AccessTokenExpiresAt = base.Add(time.Hour), base.Add(time.Minute), base.Add(2*time.Hour)
	for _, c := range []*storage.Credential{bound, idle, later} {
		mustInsert(t, s, c)
	}
	r := NewRun(tn.ID, "u1", bound.ID)
	r.Bindings["again"] = bound.ID // bound twice: listed once
	mustRun(t, s, r)
	r2 := NewRun(tn.ID, "u3", later.ID)
	mustRun(t, s, r2)
	ids := func(cs []*storage.Credential) []authgate.CredentialID {
		var out []authgate.CredentialID
		for _, c := range cs {
			out = append(out, c.ID)
		}
		return out
	}
	got, err := s.CredentialListBoundExpiring(ctx, storage.CredentialListBoundExpiringParams{Before: base.Add(3 * time.Hour)})
	if err != nil || !cmp.Equal(ids(got), []authgate.CredentialID{bound.ID, later.ID}) {
		t.Fatalf("bound expiring = %v, %v; want %s then %s (by expiry), not the idle one", ids(got), err, bound.ID, later.ID)
	}
	page, _ := s.CredentialListBoundExpiring(ctx, storage.CredentialListBoundExpiringParams{Before: base.Add(3 * time.Hour), AfterExpiry: bound.AccessTokenExpiresAt, AfterID: bound.ID})
	if !cmp.Equal(ids(page), []authgate.CredentialID{later.ID}) {
		t.Fatalf("next page = %v", ids(page))
	}
	if got, _ := s.CredentialListBoundExpiring(ctx, storage.CredentialListBoundExpiringParams{Before: base.Add(90 * time.Minute)}); !cmp.Equal(ids(got), []authgate.CredentialID{bound.ID}) {
		t.Fatalf("bound expiring before 90 min = %v", ids(got))
	}
	// Planned for its current token: not listed again until the token changes.
	if err := s.RefreshPlanned(ctx, later.ID, later.AccessTokenExpiresAt); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.CredentialListBoundExpiring(ctx, storage.CredentialListBoundExpiringParams{Before: base.Add(3 * time.Hour)}); !cmp.Equal(ids(got), []authgate.CredentialID{bound.ID}) {
		t.Fatalf("after planning %s: %v", later.ID, ids(got))
	}
	if err := s.RefreshPlanned(ctx, later.ID, base); err != nil {
		t.Fatal(err)
	}
	due, err := s.CredentialListCheckDue(ctx, storage.CredentialListCheckDueParams{Before: base})
	if err != nil || len(due) != 1 || due[0].ID != idle.ID || !due[0].NextCheckAt.IsZero() || due[0].Provider != "google" || due[0].TenantID != tn.ID {
		t.Fatalf("check due = %+v, %v; want the idle one, never planned", due, err)
	}
	if err := s.CredentialCheckSchedule(ctx, storage.CredentialCheckScheduleParams{ID: idle.ID, TenantID: tn.ID, Next: base.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if due, _ := s.CredentialListCheckDue(ctx, storage.CredentialListCheckDueParams{Before: base}); len(due) != 0 {
		t.Fatalf("a planned check is due early: %+v", due)
	}
	if err := s.CredentialCheckSchedule(ctx, storage.CredentialCheckScheduleParams{ID: idle.ID, TenantID: tn.ID, Next: base.Add(2 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	due, _ = s.CredentialListCheckDue(ctx, storage.CredentialListCheckDueParams{Before: base.Add(3 * time.Hour)})
	if len(due) != 1 || !due[0].NextCheckAt.Equal(base.Add(2*time.Hour)) {
		t.Fatalf("check due later = %+v", due)
	}
	// The run finishes: its credential is idle now.
	r.State, r.UpdatedAt = authgate.RunStateSucceeded, base
	if err := s.RunUpdateCAS(ctx, r); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.CredentialListBoundExpiring(ctx, storage.CredentialListBoundExpiringParams{Before: base.Add(3 * time.Hour)}); !cmp.Equal(ids(got), []authgate.CredentialID{later.ID}) {
		t.Fatalf("after the run finished = %v", ids(got))
	}
	if due, _ := s.CredentialListCheckDue(ctx, storage.CredentialListCheckDueParams{Before: base}); len(due) != 1 || due[0].ID != bound.ID {
		t.Fatalf("check due after the run finished = %+v", due)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
