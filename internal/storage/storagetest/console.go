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

// testWebhookDeliveryListRecent: newest first, one tenant's only, bounded.
func testWebhookDeliveryListRecent(t *testing.T, s storage.Store) {
	ctx := context.Background()
	tn, other := mustTenant(t, s, "acme"), mustTenant(t, s, "globex")
	var ids []authgate.WebhookDeliveryID
	for _, ten := range []storage.Tenant{tn, other} {
		ep := &storage.WebhookEndpoint{ID: authgate.NewWebhookEndpointID(), TenantID: ten.ID, URL: "https://hooks.example.com/a",
			Secret: keyring.Sealed{KeyID: "kw", Data: []byte{1}}, CreatedAt: base}
		if err := s.WebhookEndpointInsert(ctx, ep); err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			d := &storage.WebhookDelivery{ID: authgate.NewWebhookDeliveryID(), TenantID: ten.ID, EndpointID: ep.ID, EventType: authgate.WebhookEventRunResumed,
				Payload: json.RawMessage(`{}`), NextAttemptAt: base, CreatedAt: base.Add(time.Duration(i) * time.Second)}
			if err := s.WebhookDeliveryInsert(ctx, d); err != nil {
				t.Fatal(err)
			}
			if ten.ID == tn.ID {
				ids = append(ids, d.ID)
			}
		}
	}
	got, err := s.WebhookDeliveryListRecent(ctx, storage.WebhookDeliveryListRecentParams{TenantID: tn.ID, Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	var gotIDs []authgate.WebhookDeliveryID
	for _, d := range got {
		gotIDs = append(gotIDs, d.ID)
	}
	if diff := cmp.Diff([]authgate.WebhookDeliveryID{ids[2], ids[1]}, gotIDs); diff != "" {
		t.Fatalf("recent deliveries (-want +got):\n%s", diff)
	}
}
