package sqlitestore

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/internal/storage"
)

// TestChangeFeedPruneGap: pruning the log under a watcher that is keeping
// up costs it nothing; pruning rows a watcher has not read yet makes it
// report All. (The conformance suite covers what the feed carries; this is
// how the SQLite feed notices what it lost.)
func TestChangeFeedPruneGap(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "authgate.db"), WithChangePollInterval(time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	tenant := storage.Tenant{ID: authgate.NewTenantID(), Name: "acme", CreatedAt: time.Now()}
	if err := s.TenantInsert(ctx, tenant); err != nil {
		t.Fatal(err)
	}
	insert := func(user string) authgate.CredentialID {
		t.Helper()
		c := &storage.Credential{ID: authgate.NewCredentialID(), Slot: storage.Slot{TenantID: tenant.ID, UserID: user, Provider: "google", Subject: user},
			Status: authgate.CredentialStatusActive, Version: 1, CreatedAt: time.Now(), UpdatedAt: time.Now()}
		if err := s.CredentialInsert(ctx, c); err != nil {
			t.Fatal(err)
		}
		return c.ID
	}
	// pruneAll prunes as if every row were old: all but the newest go.
	pruneAll := func() {
		t.Helper()
		if err := s.pruneChanges(ctx, -time.Hour); err != nil {
			t.Fatal(err)
		}
	}

	blocker := authgate.NewCredentialID()
	gate := make(chan struct{})
	changes := make(chan storage.CredentialChange, 100)
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- s.WatchCredentials(wctx, func(c storage.CredentialChange) {
			changes <- c
			if c.ID == blocker {
				<-gate // the watcher falls behind here
			}
		})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("WatchCredentials = %v; want context.Canceled", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("WatchCredentials did not return")
		}
	})
	next := func() storage.CredentialChange {
		t.Helper()
		select {
		case c := <-changes:
			return c
		case <-time.After(10 * time.Second):
			t.Fatal("no change within 10s")
			return storage.CredentialChange{}
		}
	}
	if c := next(); !c.All {
		t.Fatalf("first change %+v; want All", c)
	}

	// Keeping up: pruning everything it has read reports nothing.
	c0 := insert("u0")
	if c := next(); c.ID != c0 {
		t.Fatalf("got %+v; want %s", c, c0)
	}
	pruneAll()
	c1 := insert("u1")
	if c := next(); c.ID != c1 {
		t.Fatalf("after pruning read rows got %+v; want %s and no All", c, c1)
	}

	// Falling behind: rows pruned before the watcher read them.
	if err := s.CredentialInsert(ctx, &storage.Credential{ID: blocker, Slot: storage.Slot{TenantID: tenant.ID, UserID: "blocker", Provider: "google", Subject: "blocker"},
		Status: authgate.CredentialStatusActive, Version: 1, CreatedAt: time.Now(), UpdatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if c := next(); c.ID != blocker {
		t.Fatalf("got %+v; want the blocker %s", c, blocker)
	}
	insert("u2")
	insert("u3")
	c4 := insert("u4")
	pruneAll()
	close(gate)
	if c := next(); !c.All {
		t.Fatalf("after a gap got %+v; want All", c)
	}
	if c := next(); c.ID != c4 {
		t.Fatalf("after the gap got %+v; want the kept row's %s", c, c4)
	}
}
