package storagetest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/authgate/authgate/internal/storage"
)

// testConsole: a login link opens once, before it expires, even when two
// browsers race for it; a session is found only by its hash and only while
// it lives; logout and pruning delete.
func testConsole(t *testing.T, s storage.Store) {
	ctx := context.Background()
	tn := mustTenant(t, s, "acme")
	link := &storage.ConsoleLoginLink{Hash: []byte{1, 2, 3, 0, 255}, TenantID: tn.ID, CreatedBy: "api:key_x", CreatedAt: base, ExpiresAt: base.Add(5 * time.Minute)}
	if err := s.ConsoleLoginLinkInsert(ctx, link); err != nil {
		t.Fatal(err)
	}
	if err := s.ConsoleLoginLinkInsert(ctx, link); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("second insert of one hash = %v; want ErrConflict", err)
	}
	if _, err := s.ConsoleLoginLinkConsume(ctx, storage.ConsoleLoginLinkConsumeParams{Hash: link.Hash, Now: base.Add(5 * time.Minute)}); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("consume at expiry = %v; want ErrNotFound", err)
	}
	// Two browsers open the link at once: exactly one signs in.
	var wg sync.WaitGroup
	var mu sync.Mutex
	var won []*storage.ConsoleLoginLink
	for range 4 {
		wg.Go(func() {
			l, err := s.ConsoleLoginLinkConsume(ctx, storage.ConsoleLoginLinkConsumeParams{Hash: link.Hash, Now: base.Add(time.Minute)})
			if err != nil && !errors.Is(err, storage.ErrNotFound) {
				t.Error(err)
			}
			if err == nil {
				mu.Lock()
				won = append(won, l)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(won) != 1 {
		t.Fatalf("%d consumers won one link; want exactly 1", len(won))
	}
	want := *link
	want.UsedAt = base.Add(time.Minute)
	if diff := cmp.Diff(&want, won[0]); diff != "" {
		t.Fatalf("consumed link (-want +got):\n%s", diff)
	}
	if _, err := s.ConsoleLoginLinkConsume(ctx, storage.ConsoleLoginLinkConsumeParams{Hash: []byte{9}, Now: base}); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("consume of an unknown link = %v; want ErrNotFound", err)
	}

	sess := &storage.ConsoleSession{Hash: []byte{7, 7, 7}, TenantID: tn.ID, CreatedAt: base, ExpiresAt: base.Add(time.Hour)}
	if err := s.ConsoleSessionInsert(ctx, sess); err != nil {
		t.Fatal(err)
	}
	got, err := s.ConsoleSessionGet(ctx, storage.ConsoleSessionGetParams{Hash: sess.Hash, Now: base.Add(59 * time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(sess, got); diff != "" {
		t.Fatalf("session round trip (-want +got):\n%s", diff)
	}
	if _, err := s.ConsoleSessionGet(ctx, storage.ConsoleSessionGetParams{Hash: sess.Hash, Now: base.Add(time.Hour)}); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("expired session = %v; want ErrNotFound", err)
	}
	other := &storage.ConsoleSession{Hash: []byte{8}, TenantID: tn.ID, CreatedAt: base, ExpiresAt: base.Add(time.Hour)}
	if err := s.ConsoleSessionInsert(ctx, other); err != nil {
		t.Fatal(err)
	}
	if err := s.ConsoleSessionDelete(ctx, other.Hash); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ConsoleSessionGet(ctx, storage.ConsoleSessionGetParams{Hash: other.Hash, Now: base}); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("session after logout = %v; want ErrNotFound", err)
	}
	if err := s.ConsoleSessionDelete(ctx, other.Hash); err != nil {
		t.Fatalf("second logout = %v; want nil", err)
	}
	if err := s.ConsoleDeleteExpired(ctx, base.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ConsoleSessionGet(ctx, storage.ConsoleSessionGetParams{Hash: sess.Hash, Now: base}); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("pruned session = %v; want ErrNotFound", err)
	}
}
