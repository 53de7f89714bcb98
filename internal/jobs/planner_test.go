package jobs_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"testing"
	"time"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/internal/clock"
	"github.com/authgate/authgate/internal/jobs"
	"github.com/authgate/authgate/internal/keyring"
	"github.com/authgate/authgate/internal/storage"
	"github.com/authgate/authgate/internal/storage/sqlitestore"
)

// TestProactiveRefreshPlan: credentials bound to running runs, their tokens
// expiring evenly over one (fake) hour, planned every 30 s of fake time:
// every one gets exactly one refresh scheduled before its token enters the
// safety window, no provider gets two refreshes closer than 1/rate, and
// the planner's memory stays flat (it works a page at a time).
// AUTHGATE_TEST_SCALE=1 (CI) runs it with 4,000 credentials and
// AUTHGATE_TEST_PLAN=100k with 100,000 (about 7 minutes on 2 cores without
// the race detector: the README's figures).
func TestProactiveRefreshPlan(t *testing.T) {
	t.Parallel()
	n := 1000
	if os.Getenv("AUTHGATE_TEST_SCALE") != "" {
		n = 4000
	}
	if os.Getenv("AUTHGATE_TEST_PLAN") == "100k" {
		n = 100_000
	}
	ctx := context.Background()
	s, err := sqlitestore.Open(ctx, filepath.Join(t.TempDir(), "authgate.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	q, err := jobs.Open(s, jobs.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close(ctx) })

	t0 := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	fc := clock.NewFake(t0)
	providers := []string{"google", "notion", "slack", "generic"}
	const rate = 10.0 // per provider per second; the load is n/3600/4 per provider
	tenant := authgate.NewTenantID()
	if err := s.TenantInsert(ctx, storage.Tenant{ID: tenant, Name: "acme", CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	expiry := map[authgate.CredentialID]time.Time{}
	provider := map[authgate.CredentialID]string{}
	for start := 0; start < n; start += 1000 {
		err := s.Tx(ctx, func(tx storage.Queries) error {
			for i := start; i < min(start+1000, n); i++ {
				c := &storage.Credential{ID: authgate.NewCredentialID(), Slot: storage.Slot{TenantID: tenant, UserID: fmt.Sprint("u", i), Provider: providers[i%4], Subject: fmt.Sprint("s", i)},
					TokenType: "Bearer", AccessToken: keyring.Sealed{KeyID: "k", Data: []byte{1}}, AccessTokenFP: "fp",
					AccessTokenExpiresAt: t0.Add(10*time.Minute + time.Duration(i)*time.Hour/time.Duration(n)),
					Status:               authgate.CredentialStatusActive, Version: 1, CreatedAt: t0, UpdatedAt: t0}
				if err := tx.CredentialInsert(ctx, c); err != nil {
					return err
				}
				r := &storage.Run{ID: authgate.NewRunID(), TenantID: tenant, UserID: c.UserID, Workflow: "w", Bindings: map[string]authgate.CredentialID{"b": c.ID},
					State: authgate.RunStateRunning, CreatedAt: t0, UpdatedAt: t0, Version: 1}
				if err := tx.RunInsert(ctx, r); err != nil {
					return err
				}
				expiry[c.ID], provider[c.ID] = c.AccessTokenExpiresAt, c.Provider
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}

	p := &jobs.Planner{Store: s, Queue: q, Clock: fc, Rate: func(string) float64 { return rate }}
	var heap []uint64
	var ms runtime.MemStats
	for fc.Now().Before(t0.Add(70 * time.Minute)) {
		st := time.Now()
		if err := p.Plan(ctx); err != nil {
			t.Fatal(err)
		}
		if testing.Verbose() && len(heap)%20 == 0 {
			t.Logf("pass %d took %v", len(heap), time.Since(st))
		}
		runtime.GC()
		runtime.ReadMemStats(&ms)
		heap = append(heap, ms.HeapAlloc)
		fc.Advance(jobs.PlanInterval)
	}

	// What River holds: one refresh job per credential, each scheduled.
	db, err := s.JobPool()
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, `SELECT json(args), scheduled_at FROM river_job WHERE kind = 'proactive_refresh'`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	at := map[authgate.CredentialID]time.Time{}
	byProvider := map[string][]time.Time{}
	for rows.Next() {
		var args []byte
		var sched time.Time
		if err := rows.Scan(&args, &sched); err != nil {
			t.Fatal(err)
		}
		var a jobs.RefreshArgs
		if err := json.Unmarshal(args, &a); err != nil {
			t.Fatal(err)
		}
		if _, dup := at[a.CredentialID]; dup {
			t.Fatalf("credential %s planned twice", a.CredentialID)
		}
		at[a.CredentialID] = sched
		byProvider[provider[a.CredentialID]] = append(byProvider[provider[a.CredentialID]], sched)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(at) != n {
		t.Fatalf("%d of %d credentials planned", len(at), n)
	}
	var minMargin time.Duration = time.Hour
	for id, e := range expiry {
		margin := e.Add(-p.Safety).Sub(at[id])
		if margin <= 0 {
			t.Fatalf("credential %s is refreshed at %v, %v after its token entered the safety window", id, at[id], -margin)
		}
		minMargin = min(minMargin, margin)
	}
	gap := time.Duration(float64(time.Second) / rate)
	for prov, ts := range byProvider {
		sort.Slice(ts, func(i, j int) bool { return ts[i].Before(ts[j]) })
		for i := 1; i < len(ts); i++ {
			if d := ts[i].Sub(ts[i-1]); d < gap-time.Millisecond {
				t.Fatalf("%s: two refreshes %v apart; the rate allows one per %v", prov, d, gap)
			}
		}
	}
	first, peak := heap[0], uint64(0)
	for _, h := range heap {
		peak = max(peak, h)
	}
	t.Logf("%d credentials, %d planning passes: all refreshed ≥ %v before the safety window; heap after the first pass %d KiB, peak %d KiB",
		n, len(heap), minMargin.Round(time.Second), first>>10, peak>>10)
	if peak > first+64<<20 {
		t.Fatalf("planner memory grew from %d to %d KiB", first>>10, peak>>10)
	}
}
