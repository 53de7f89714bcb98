package vault_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/internal/clock"
	"github.com/authgate/authgate/internal/secret"
	"github.com/authgate/authgate/internal/storage"
	"github.com/authgate/authgate/internal/storage/pgtest"
	"github.com/authgate/authgate/internal/storage/sqlitestore"
	"github.com/authgate/authgate/internal/storage/storagetest"
	"github.com/authgate/authgate/internal/vault"
)

// backend opens a fresh store; the PostgreSQL one runs only when
// AUTHGATE_TEST_POSTGRES names a server (CI sets it).
type backend struct {
	name string
	open func(t *testing.T) storage.Store
}

func backends(t *testing.T) []backend {
	bs := []backend{{"sqlite", func(t *testing.T) storage.Store {
		s, err := sqlitestore.Open(context.Background(), filepath.Join(t.TempDir(), "authgate.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}}}
	if os.Getenv(storagetest.PostgresEnv) == "" {
		t.Log(storagetest.PostgresSkipMessage)
		return bs
	}
	return append(bs, backend{"postgres", func(t *testing.T) storage.Store { return pgtest.Open(t) }})
}

func seed(t *testing.T, s storage.Store, v *vault.Vault, n int) (authgate.TenantID, []authgate.CredentialID) {
	t.Helper()
	tenant := authgate.NewTenantID()
	if err := s.TenantInsert(context.Background(), storage.Tenant{ID: tenant, Name: "acme", CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	ids := make([]authgate.CredentialID, n)
	for i := range n {
		a, r := tokenPair(i)
		exp := t0.Add(-time.Minute)
		c, _, err := v.Import(context.Background(), vault.ImportParams{TenantID: tenant, UserID: fmt.Sprintf("u%d", i), Provider: "google", Subject: fmt.Sprintf("s%d", i),
			Email: fmt.Sprintf("u%d@example.com", i), Scopes: []string{"openid"}, AccessToken: secret.New(a), RefreshToken: secret.New(r), ExpiresAt: exp, Actor: "test"})
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = c.ID
	}
	return tenant, ids
}

// TestConcurrentApplyRefresh: many refresh results for the same presented
// refresh token race; exactly one lands and the others are told the row
// moved on (ErrStale), never an internal error and never a lost write.
func TestConcurrentApplyRefresh(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			s := b.open(t)
			v := vault.New(s, ring(t, key("k1", 1)), clock.NewFake(t0))
			tenant, ids := seed(t, s, v, 1)
			l, err := v.Load(context.Background(), tenant, ids[0])
			if err != nil {
				t.Fatal(err)
			}
			const n = 20
			errs := make([]error, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, errs[i] = v.ApplyRefresh(context.Background(), tenant, ids[0], vault.Refreshed{UsedRefreshFP: l.RefreshToken.Fingerprint(),
						AccessToken: secret.New(fmt.Sprintf("ya29.new-%d", i)), RefreshToken: secret.New(fmt.Sprintf("1//rotated-%d", i)), ExpiresAt: t0.Add(time.Hour), Actor: "test"})
				}()
			}
			wg.Wait()
			won := 0
			for i, err := range errs {
				switch {
				case err == nil:
					won++
				case errors.Is(err, vault.ErrStale):
				default:
					t.Fatalf("writer %d: %v", i, err)
				}
			}
			if won != 1 {
				t.Fatalf("%d writers won; want exactly 1", won)
			}
			got, _ := v.Get(context.Background(), tenant, ids[0])
			if got.Version != l.Version+1 {
				t.Fatalf("version %d; want %d", got.Version, l.Version+1)
			}
		})
	}
}

// TestKeyRotationRacesRefresh: refreshes committing while keys rotate never
// leave a secret sealed with the old key behind; afterwards a keyring with
// only the new key reads every credential.
func TestKeyRotationRacesRefresh(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			s := b.open(t)
			old := vault.New(s, ring(t, key("k1", 1)), clock.NewFake(t0))
			tenant, ids := seed(t, s, old, 60)
			both := vault.New(s, ring(t, key("k2", 2), key("k1", 1)), clock.NewFake(t0))
			ctx := context.Background()
			stop := make(chan struct{})
			var wg sync.WaitGroup
			var refreshes int64
			var mu sync.Mutex
			for w := range 3 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := w; ; i++ {
						select {
						case <-stop:
							return
						default:
						}
						id := ids[i%len(ids)]
						l, err := both.Load(ctx, tenant, id)
						if err != nil {
							t.Error(err)
							return
						}
						_, err = both.ApplyRefresh(ctx, tenant, id, vault.Refreshed{UsedRefreshFP: l.RefreshToken.Fingerprint(), AccessToken: secret.New(fmt.Sprintf("ya29.r%d-%d", w, i)),
							ExpiresAt: t0.Add(time.Hour), Actor: "test"})
						if err != nil && !errors.Is(err, vault.ErrStale) {
							t.Error(err)
							return
						}
						mu.Lock()
						refreshes++
						mu.Unlock()
					}
				}()
			}
			res, err := both.RotateKeys(ctx, vault.RotateOptions{BatchSize: 7})
			close(stop)
			wg.Wait()
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("rotation %+v alongside %d refreshes", res, refreshes)
			only := vault.New(s, ring(t, key("k2", 2)), clock.NewFake(t0))
			for _, id := range ids {
				if _, err := only.Load(ctx, tenant, id); err != nil {
					t.Fatalf("after rotation with the old key retired: %v", err)
				}
			}
		})
	}
}

// TestRotationLeavesNoOldKeyBehind: after a rotation, no ciphertext in the
// database needs the old key — not a live connect session's verifier, not
// an expired one awaiting pruning, not a used one — so the old key can be
// retired and the server still starts.
func TestRotationLeavesNoOldKeyBehind(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			s := b.open(t)
			ctx := context.Background()
			clk := clock.NewFake(t0)
			old := vault.New(s, ring(t, key("k1", 1)), clk)
			tenant, _ := seed(t, s, old, 3)
			oldRing := ring(t, key("k1", 1))
			for i, exp := range []time.Time{t0.Add(time.Hour), t0.Add(-time.Hour), t0.Add(time.Hour)} {
				id := fmt.Sprintf("cs_test%d", i)
				if err := s.ConnectSessionInsert(ctx, &storage.ConnectSession{ID: id, TenantID: tenant, UserID: "u", Provider: "google", StateHash: []byte(id),
					Verifier: oldRing.Seal([]byte("verifier"), vault.SessionAssociatedData(id)), CreatedAt: t0.Add(-2 * time.Hour), ExpiresAt: exp}); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.ConnectSessionConsume(ctx, "cs_test2", t0); err != nil { // a used one
				t.Fatal(err)
			}
			both := vault.New(s, ring(t, key("k2", 2), key("k1", 1)), clk)
			if _, err := both.RotateKeys(ctx, vault.RotateOptions{}); err != nil {
				t.Fatal(err)
			}
			ids, err := s.SealedKeyIDs(ctx)
			if err != nil || fmt.Sprint(ids) != "[k2]" {
				t.Fatalf("key ids still needed after rotation: %v %v", ids, err)
			}
		})
	}
}
