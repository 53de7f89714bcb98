package refresh_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/internal/clock"
	"github.com/authgate/authgate/internal/keyring"
	"github.com/authgate/authgate/internal/refresh"
	"github.com/authgate/authgate/internal/storage"
	"github.com/authgate/authgate/internal/storage/pgtest"
	"github.com/authgate/authgate/internal/storage/sqlitestore"
	"github.com/authgate/authgate/internal/vault"
)

// TestSkewedClocksNeverShareALease: two refreshers with stores of their own
// on one database, whose clocks differ by 10 s (more than three lease
// periods), take turns on one credential's lease many times; at no moment
// do both hold it. Before leases were measured with the database's clock,
// the one 10 s ahead saw the other's lease as long expired and took it.
func TestSkewedClocksNeverShareALease(t *testing.T) {
	t.Parallel()
	t.Run("SQLite", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "skew.db")
		// One host, one clock: the file's. Each process's own clock is
		// the refresher's; the database's is the one both stores share.
		dbClock := clock.NewFake(time.Now().UTC())
		open := func() storage.Store {
			s, err := sqlitestore.Open(context.Background(), path, sqlitestore.WithClock(dbClock))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		}
		skewedLease(t, open(), open(), dbClock.Now())
	})
	t.Run("Postgres", func(t *testing.T) {
		t.Parallel()
		two := pgtest.OpenN(t, 2)
		a, b := two[0], two[1]
		now, err := a.ClockNow(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		skewedLease(t, a, b, now)
	})
}

func skewedLease(t *testing.T, sa, sb storage.Store, now time.Time) {
	ctx := context.Background()
	tn := storage.Tenant{ID: authgate.NewTenantID(), Name: "skew", CreatedAt: now, ReturnURLAllowList: []string{}}
	if err := sa.TenantInsert(ctx, tn); err != nil {
		t.Fatal(err)
	}
	c := &storage.Credential{
		ID: authgate.NewCredentialID(), Slot: storage.Slot{TenantID: tn.ID, UserID: "u", Provider: "oidc", Subject: "s"},
		GrantedScopes: []string{}, RequestedScopes: []string{}, TokenType: "Bearer",
		AccessToken: keyring.Sealed{KeyID: "k1", Data: []byte{1}}, RefreshToken: keyring.Sealed{KeyID: "k1", Data: []byte{2}},
		Status: authgate.CredentialStatusActive, Version: 1, CreatedAt: now, UpdatedAt: now,
	}
	if err := sa.CredentialInsert(ctx, c); err != nil {
		t.Fatal(err)
	}
	// Process B's clock runs 10 s ahead of A's (and of the database's).
	clocks := []clock.Clock{clock.NewFake(now), clock.NewFake(now.Add(10 * time.Second))}
	stores := []storage.Store{sa, sb}
	var rs []*refresh.Refresher
	for i := range 2 {
		// The default 3 s lease: the skew is more than three of them.
		rs = append(rs, refresh.New(refresh.Config{Store: stores[i], Vault: vault.New(stores[i], nil, clocks[i]), Clock: clocks[i],
			Holder: []string{"a", "b"}[i]}))
	}
	var inside, overlaps, turns atomic.Int32
	var wg sync.WaitGroup
	for i, r := range rs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 3 {
				err := r.WithLease(ctx, tn.ID, c.ID, func(context.Context) error {
					if inside.Add(1) > 1 {
						overlaps.Add(1)
					}
					// Hold it long enough for the other, whose clock is 10 s
					// ahead or behind, to try to take it.
					time.Sleep(700 * time.Millisecond)
					inside.Add(-1)
					turns.Add(1)
					return nil
				})
				if err != nil && !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("refresher %d: %v", i, err)
					return
				}
				// Pace the turns so the other one, polling, gets the lease
				// next and holds it while this one tries again.
				time.Sleep(150 * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	if overlaps.Load() != 0 {
		t.Fatalf("the two processes held the lease at once %d times", overlaps.Load())
	}
	if turns.Load() != 6 {
		t.Fatalf("%d turns; want 6", turns.Load())
	}
}
