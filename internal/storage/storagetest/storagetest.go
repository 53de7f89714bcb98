// Package storagetest is the conformance suite of the storage port. Every
// backend calls Run from one test file; a behaviour belongs to storage only if
// it is asserted here. It must never depend on a particular backend.
package storagetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/internal/clock"
	"github.com/authgate/authgate/internal/keyring"
	"github.com/authgate/authgate/internal/storage"
)

// Open makes a fresh, empty, migrated database for one test and returns a
// Store on it, and reopen, which opens another Store on the same database as
// a second process would. The suite closes every Store it gets.
type Open func(t *testing.T) (s storage.Store, reopen func(t *testing.T) storage.Store)

// Run runs the whole suite against stores made by open.
func Run(t *testing.T, open Open) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s storage.Store)
	}{
		{"Tenants", testTenants},
		{"APIKeys", testAPIKeys},
		{"CredentialRoundTrip", testCredentialRoundTrip},
		{"CredentialUniqueSlot", testCredentialUniqueSlot},
		{"CredentialTenantScoping", testCredentialTenantScoping},
		{"CredentialList", testCredentialList},
		{"CredentialUpdateCAS", testCredentialUpdateCAS},
		{"CredentialUpdateCASRace", testCredentialUpdateCASRace},
		{"TxAtomic", testTxAtomic},
		{"Events", testEvents},
		{"Reseal", testReseal},
		{"Lease", testLease},
		{"SendRecord", testSendRecord},
		{"ClockNow", testClockNow},
		{"TouchBatch", testTouchBatch},
		{"TxReadCAS", testTxReadCAS},
		{"ConnectSession", testConnectSession},
		{"ConnectSessionReseal", testConnectSessionReseal},
		{"Runs", testRuns},
		{"RunTimeline", testRunTimeline},
		{"Steps", testSteps},
		{"Webhooks", testWebhooks},
		{"IdempotentResults", testIdempotentResults},
		{"SweepQueries", testSweepQueries},
		{"CredentialSetVerified", testCredentialSetVerified},
		{"CredentialPromise", testCredentialPromise},
		{"Console", testConsole},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, _ := open(t)
			t.Cleanup(func() { s.Close() })
			tt.fn(t, s)
		})
	}
	// Tests of what one process sees of another's writes get two Stores on
	// one database.
	shared := []struct {
		name string
		fn   func(t *testing.T, s, other storage.Store)
	}{
		{"ChangeFeed", testChangeFeed},
	}
	for _, tt := range shared {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, reopen := open(t)
			t.Cleanup(func() { s.Close() })
			other := reopen(t)
			t.Cleanup(func() { other.Close() })
			tt.fn(t, s, other)
		})
	}
}

// base is a fixed instant with microsecond precision (what every backend keeps).
var base = time.Date(2026, 11, 25, 12, 0, 0, 123456000, time.UTC)

func mustTenant(t *testing.T, s storage.Store, name string) storage.Tenant {
	t.Helper()
	tn := storage.Tenant{ID: authgate.NewTenantID(), Name: name, CreatedAt: base, ReturnURLAllowList: []string{}}
	if err := s.TenantInsert(context.Background(), tn); err != nil {
		t.Fatalf("TenantInsert(%s): %v", name, err)
	}
	return tn
}

func newCredential(tenant authgate.TenantID, user string) *storage.Credential {
	return &storage.Credential{
		ID:                   authgate.NewCredentialID(),
		Slot:                 storage.Slot{TenantID: tenant, UserID: user, Provider: "google", WorkspaceID: "", Subject: "sub-" + user},
		Email:                user + "@example.com",
		AccountType:          authgate.AccountTypeWorkspace,
		Domain:               "example.com",
		GrantedScopes:        []string{"openid", "https://www.googleapis.com/auth/drive.file"},
		RequestedScopes:      []string{"openid", "https://www.googleapis.com/auth/drive.file", "https://www.googleapis.com/auth/documents"},
		TokenType:            "Bearer",
		AccessToken:          keyring.Sealed{KeyID: "k1", Data: []byte{1, 2, 3, 0, 255}},
		AccessTokenFP:        "0123456789",
		AccessTokenExpiresAt: base.Add(time.Hour),
		RefreshToken:         keyring.Sealed{KeyID: "k1", Data: []byte{9, 8, 7}},
		RefreshTokenFP:       "abcdefabcd",
		Status:               authgate.CredentialStatusActive,
		Version:              1,
		CreatedAt:            base,
		UpdatedAt:            base,
	}
}

func mustInsert(t *testing.T, s storage.Queries, c *storage.Credential) {
	t.Helper()
	if err := s.CredentialInsert(context.Background(), c); err != nil {
		t.Fatalf("CredentialInsert: %v", err)
	}
}

func testTenants(t *testing.T, s storage.Store) {
	ctx := context.Background()
	a := mustTenant(t, s, "acme")
	b := mustTenant(t, s, "globex")
	got, err := s.TenantGetByID(ctx, a.ID)
	if err != nil || !cmp.Equal(got, a) {
		t.Fatalf("TenantGetByID = %+v, %v; want %+v", got, err, a)
	}
	got, err = s.TenantGetByName(ctx, "globex")
	if err != nil || !cmp.Equal(got, b) {
		t.Fatalf("TenantGetByName = %+v, %v; want %+v", got, err, b)
	}
	if err := s.TenantSetReturnURLs(ctx, a.ID, []string{"https://app.acme.example/"}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.TenantGetByID(ctx, a.ID); len(got.ReturnURLAllowList) != 1 || got.ReturnURLAllowList[0] != "https://app.acme.example/" {
		t.Fatalf("allow-list %v", got.ReturnURLAllowList)
	}
	if err := s.TenantSetReturnURLs(ctx, authgate.NewTenantID(), nil); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("allow-list of a missing tenant: %v", err)
	}
	if _, err := s.TenantGetByName(ctx, "nope"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("TenantGetByName(nope) err = %v; want ErrNotFound", err)
	}
	dup := storage.Tenant{ID: authgate.NewTenantID(), Name: "acme", CreatedAt: base, ReturnURLAllowList: []string{}}
	if err := s.TenantInsert(ctx, dup); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("duplicate tenant name err = %v; want ErrConflict", err)
	}
	list, err := s.TenantList(ctx)
	if err != nil || len(list) != 2 {
		t.Fatalf("TenantList = %v, %v; want 2 tenants", list, err)
	}
}

func testAPIKeys(t *testing.T, s storage.Store) {
	ctx := context.Background()
	tn := mustTenant(t, s, "acme")
	k := storage.APIKey{ID: authgate.NewAPIKeyID(), TenantID: tn.ID, Hash: []byte("0123456789abcdef0123456789abcdef"), Name: "admin", Role: authgate.RoleAdmin, CreatedAt: base}
	if err := s.APIKeyInsert(ctx, k); err != nil {
		t.Fatal(err)
	}
	got, err := s.APIKeyGetByHash(ctx, k.Hash)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(k, got); diff != "" {
		t.Fatalf("APIKeyGetByHash (-want +got):\n%s", diff)
	}
	if _, err := s.APIKeyGetByHash(ctx, []byte("other")); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("unknown hash err = %v; want ErrNotFound", err)
	}
	k2 := k
	k2.ID = authgate.NewAPIKeyID()
	if err := s.APIKeyInsert(ctx, k2); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("duplicate hash err = %v; want ErrConflict", err)
	}
	// A user key keeps its role and its end user.
	u := storage.APIKey{ID: authgate.NewAPIKeyID(), TenantID: tn.ID, Hash: []byte("fedcba9876543210fedcba9876543210"), Name: "agent", Role: authgate.RoleUser, UserID: "alice", CreatedAt: base.Add(time.Second)}
	if err := s.APIKeyInsert(ctx, u); err != nil {
		t.Fatal(err)
	}
	if got, err := s.APIKeyGetByHash(ctx, u.Hash); err != nil || got.Role != authgate.RoleUser || got.UserID != "alice" {
		t.Fatalf("user key read back as %+v, %v", got, err)
	}
	list, err := s.APIKeyList(ctx, tn.ID)
	if err != nil || len(list) != 2 || list[0].Role != authgate.RoleAdmin || list[1].Role != authgate.RoleUser || list[1].UserID != "alice" {
		t.Fatalf("APIKeyList = %+v, %v; want the admin key, then the user key of alice", list, err)
	}
}

func testCredentialRoundTrip(t *testing.T, s storage.Store) {
	ctx := context.Background()
	tn := mustTenant(t, s, "acme")
	c := newCredential(tn.ID, "u1")
	c.LastUsedAt = base.Add(time.Minute)
	mustInsert(t, s, c)
	got, err := s.CredentialGetByID(ctx, storage.CredentialGetByIDParams{TenantID: tn.ID, ID: c.ID})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(c, got); diff != "" {
		t.Fatalf("CredentialGetByID (-want +got):\n%s", diff)
	}
	got, err = s.CredentialGetBySlot(ctx, c.Slot)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(c, got); diff != "" {
		t.Fatalf("CredentialGetBySlot (-want +got):\n%s", diff)
	}

	// A credential with no refresh token and unknown expiry keeps those absent.
	bare := newCredential(tn.ID, "u2")
	bare.RefreshToken, bare.RefreshTokenFP, bare.AccessTokenExpiresAt = keyring.Sealed{}, "", time.Time{}
	bare.GrantedScopes, bare.RequestedScopes = []string{}, []string{}
	mustInsert(t, s, bare)
	got, err = s.CredentialGetByID(ctx, storage.CredentialGetByIDParams{TenantID: tn.ID, ID: bare.ID})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(bare, got); diff != "" {
		t.Fatalf("bare credential (-want +got):\n%s", diff)
	}
	if _, err := s.CredentialGetByID(ctx, storage.CredentialGetByIDParams{TenantID: tn.ID, ID: authgate.NewCredentialID()}); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("unknown id err = %v; want ErrNotFound", err)
	}
}

func testCredentialUniqueSlot(t *testing.T, s storage.Store) {
	ctx := context.Background()
	tn := mustTenant(t, s, "acme")
	c := newCredential(tn.ID, "u1")
	mustInsert(t, s, c)
	dup := newCredential(tn.ID, "u1") // same slot, new id
	if err := s.CredentialInsert(ctx, dup); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("same slot err = %v; want ErrConflict", err)
	}
	sameID := newCredential(tn.ID, "u9")
	sameID.ID = c.ID
	if err := s.CredentialInsert(ctx, sameID); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("same id err = %v; want ErrConflict", err)
	}
	// Each part of the slot distinguishes.
	for i, mod := range []func(c *storage.Credential){
		func(c *storage.Credential) { c.Provider = "notion" },
		func(c *storage.Credential) { c.WorkspaceID = "ws-2" },
		func(c *storage.Credential) { c.Subject = "another-sub" },
	} {
		o := newCredential(tn.ID, "u1")
		mod(o)
		if err := s.CredentialInsert(ctx, o); err != nil {
			t.Fatalf("variant %d: %v", i, err)
		}
	}
}

func testCredentialTenantScoping(t *testing.T, s storage.Store) {
	ctx := context.Background()
	a := mustTenant(t, s, "acme")
	b := mustTenant(t, s, "globex")
	ca := newCredential(a.ID, "u1")
	mustInsert(t, s, ca)
	// The same slot in another tenant is another credential.
	cb := newCredential(b.ID, "u1")
	mustInsert(t, s, cb)
	if _, err := s.CredentialGetByID(ctx, storage.CredentialGetByIDParams{TenantID: b.ID, ID: ca.ID}); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("cross-tenant get err = %v; want ErrNotFound", err)
	}
	list, err := s.CredentialList(ctx, storage.CredentialListParams{TenantID: b.ID})
	if err != nil || len(list) != 1 || list[0].ID != cb.ID {
		t.Fatalf("tenant B list = %v, %v; want only its own credential", list, err)
	}
	wrong := *ca
	wrong.TenantID = b.ID
	wrong.Email = "hijack@example.com"
	if err := s.CredentialUpdateCAS(ctx, &wrong); !errors.Is(err, storage.ErrVersionConflict) && !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("cross-tenant update err = %v; want refusal", err)
	}
	got, _ := s.CredentialGetByID(ctx, storage.CredentialGetByIDParams{TenantID: a.ID, ID: ca.ID})
	if got.Email != ca.Email || got.Version != 1 {
		t.Fatalf("cross-tenant update changed the row: %+v", got)
	}
	if err := s.EventInsert(ctx, &storage.Event{TenantID: a.ID, CredentialID: ca.ID, Type: authgate.EventTokenIssued, At: base, Actor: "test"}); err != nil {
		t.Fatal(err)
	}
	evs, err := s.EventList(ctx, storage.EventListParams{TenantID: b.ID, CredentialID: ca.ID})
	if err != nil || len(evs) != 0 {
		t.Fatalf("cross-tenant events = %v, %v; want none", evs, err)
	}
}

func testCredentialList(t *testing.T, s storage.Store) {
	ctx := context.Background()
	a := mustTenant(t, s, "acme")
	b := mustTenant(t, s, "globex")
	var all []authgate.CredentialID
	for i := range 25 {
		c := newCredential(a.ID, fmt.Sprintf("u%02d", i%5))
		c.Subject = fmt.Sprintf("sub-%d", i)
		if i%2 == 1 {
			c.Provider = "notion"
		}
		if i%5 == 0 {
			c.Status, c.StatusReason = authgate.CredentialStatusReauthRequired, authgate.StatusReasonInvalidGrant
		}
		mustInsert(t, s, c)
		all = append(all, c.ID)
	}
	mustInsert(t, s, newCredential(b.ID, "u00"))

	// Paging by id visits each credential of the tenant exactly once, in id order.
	var seen []authgate.CredentialID
	after := authgate.CredentialID("")
	for {
		page, err := s.CredentialList(ctx, storage.CredentialListParams{TenantID: a.ID, AfterID: after, Limit: 7})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range page {
			seen = append(seen, c.ID)
		}
		if len(page) < 7 {
			break
		}
		after = page[len(page)-1].ID
	}
	if len(seen) != 25 {
		t.Fatalf("paged %d credentials; want 25", len(seen))
	}
	for i := 1; i < len(seen); i++ {
		if seen[i-1] >= seen[i] {
			t.Fatalf("page order broken at %d: %s >= %s", i, seen[i-1], seen[i])
		}
	}
	count := func(p storage.CredentialListParams) int {
		p.Limit = 1000
		l, err := s.CredentialList(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		return len(l)
	}
	for _, tc := range []struct {
		name string
		p    storage.CredentialListParams
		want int
	}{
		{"user", storage.CredentialListParams{TenantID: a.ID, UserID: "u00"}, 5},
		{"provider", storage.CredentialListParams{TenantID: a.ID, Provider: "notion"}, 12},
		{"status", storage.CredentialListParams{TenantID: a.ID, Status: authgate.CredentialStatusReauthRequired}, 5},
		{"user+provider", storage.CredentialListParams{TenantID: a.ID, UserID: "u01", Provider: "notion"}, 3},
		{"all tenants", storage.CredentialListParams{AllTenants: true}, 26},
		{"unknown tenant", storage.CredentialListParams{TenantID: authgate.NewTenantID()}, 0},
	} {
		if got := count(tc.p); got != tc.want {
			t.Errorf("%s: %d credentials; want %d", tc.name, got, tc.want)
		}
	}
}

func testCredentialUpdateCAS(t *testing.T, s storage.Store) {
	ctx := context.Background()
	tn := mustTenant(t, s, "acme")
	c := newCredential(tn.ID, "u1")
	mustInsert(t, s, c)
	stale := *c
	c.Email = "new@example.com"
	c.GrantedScopes = []string{"openid"}
	c.AccessToken = keyring.Sealed{KeyID: "k2", Data: []byte("new")}
	c.RefreshToken = keyring.Sealed{}
	c.RefreshTokenFP = ""
	c.Status, c.StatusReason = authgate.CredentialStatusReauthRequired, authgate.StatusReasonInvalidGrant
	c.UpdatedAt = base.Add(time.Minute)
	c.LastRefreshedAt = base.Add(time.Minute)
	if err := s.CredentialUpdateCAS(ctx, c); err != nil {
		t.Fatal(err)
	}
	if c.Version != 2 {
		t.Fatalf("version after update = %d; want 2", c.Version)
	}
	got, err := s.CredentialGetByID(ctx, storage.CredentialGetByIDParams{TenantID: tn.ID, ID: c.ID})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(c, got); diff != "" {
		t.Fatalf("after update (-want +got):\n%s", diff)
	}
	stale.Email = "stale@example.com"
	if err := s.CredentialUpdateCAS(ctx, &stale); !errors.Is(err, storage.ErrVersionConflict) {
		t.Fatalf("stale update err = %v; want ErrVersionConflict", err)
	}
	if stale.Version != 1 {
		t.Fatalf("a lost CAS changed the caller's version to %d", stale.Version)
	}
	gone := newCredential(tn.ID, "ghost")
	if err := s.CredentialUpdateCAS(ctx, gone); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("update of missing row err = %v; want ErrNotFound", err)
	}
}

// testCredentialUpdateCASRace: 100 goroutines each try to get one update in
// (with an event in the same transaction), re-reading on conflict. Exactly one
// wins per version and none is lost.
func testCredentialUpdateCASRace(t *testing.T, s storage.Store) {
	ctx := context.Background()
	tn := mustTenant(t, s, "acme")
	c := newCredential(tn.ID, "u1")
	mustInsert(t, s, c)
	const writers = 100
	var mu sync.Mutex
	winners := map[int64]int{} // version won → writer
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				cur, err := s.CredentialGetByID(ctx, storage.CredentialGetByIDParams{TenantID: tn.ID, ID: c.ID})
				if err != nil {
					errs <- err
					return
				}
				cur.Email = fmt.Sprintf("writer-%d@example.com", w)
				err = s.Tx(ctx, func(q storage.Queries) error {
					if err := q.CredentialUpdateCAS(ctx, cur); err != nil {
						return err
					}
					d, _ := json.Marshal(map[string]any{"writer": w, "version": cur.Version})
					return q.EventInsert(ctx, &storage.Event{TenantID: tn.ID, CredentialID: c.ID, Type: authgate.EventScopesChanged, At: base, Actor: "race", Details: d})
				})
				if errors.Is(err, storage.ErrVersionConflict) {
					continue
				}
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				if prev, dup := winners[cur.Version]; dup {
					errs <- fmt.Errorf("version %d won by writers %d and %d", cur.Version, prev, w)
				}
				winners[cur.Version] = w
				mu.Unlock()
				return
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if len(winners) != writers {
		t.Fatalf("%d winning versions; want %d", len(winners), writers)
	}
	for v := int64(2); v <= writers+1; v++ {
		if _, ok := winners[v]; !ok {
			t.Errorf("version %d has no winner", v)
		}
	}
	final, err := s.CredentialGetByID(ctx, storage.CredentialGetByIDParams{TenantID: tn.ID, ID: c.ID})
	if err != nil {
		t.Fatal(err)
	}
	if final.Version != writers+1 {
		t.Fatalf("final version %d; want %d", final.Version, writers+1)
	}
	evs, err := s.EventList(ctx, storage.EventListParams{TenantID: tn.ID, CredentialID: c.ID, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != writers {
		t.Fatalf("%d events; want one per winning update (%d)", len(evs), writers)
	}
	if want := fmt.Sprintf("writer-%d@example.com", winners[writers+1]); final.Email != want {
		t.Fatalf("final email %s; want the last winner's %s", final.Email, want)
	}
}

func testTxAtomic(t *testing.T, s storage.Store) {
	ctx := context.Background()
	tn := mustTenant(t, s, "acme")
	c := newCredential(tn.ID, "u1")
	boom := errors.New("boom")
	err := s.Tx(ctx, func(q storage.Queries) error {
		if err := q.CredentialInsert(ctx, c); err != nil {
			return err
		}
		if err := q.EventInsert(ctx, &storage.Event{TenantID: tn.ID, CredentialID: c.ID, Type: authgate.EventTokenIssued, At: base, Actor: "t"}); err != nil {
			return err
		}
		// Reads inside the transaction see its own writes.
		if _, err := q.CredentialGetByID(ctx, storage.CredentialGetByIDParams{TenantID: tn.ID, ID: c.ID}); err != nil {
			return fmt.Errorf("read own write: %w", err)
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Tx err = %v; want boom", err)
	}
	if _, err := s.CredentialGetByID(ctx, storage.CredentialGetByIDParams{TenantID: tn.ID, ID: c.ID}); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("rolled-back credential visible: err = %v", err)
	}
	if evs, _ := s.EventList(ctx, storage.EventListParams{TenantID: tn.ID, CredentialID: c.ID}); len(evs) != 0 {
		t.Fatalf("rolled-back event visible: %v", evs)
	}
	err = s.Tx(ctx, func(q storage.Queries) error {
		if err := q.CredentialInsert(ctx, c); err != nil {
			return err
		}
		return q.EventInsert(ctx, &storage.Event{TenantID: tn.ID, CredentialID: c.ID, Type: authgate.EventTokenIssued, At: base, Actor: "t"})
	})
	if err != nil {
		t.Fatal(err)
	}
	if evs, _ := s.EventList(ctx, storage.EventListParams{TenantID: tn.ID, CredentialID: c.ID}); len(evs) != 1 {
		t.Fatalf("committed events = %d; want 1", len(evs))
	}
}

func testEvents(t *testing.T, s storage.Store) {
	ctx := context.Background()
	tn := mustTenant(t, s, "acme")
	c := newCredential(tn.ID, "u1")
	mustInsert(t, s, c)
	types := []authgate.EventType{authgate.EventTokenIssued, authgate.EventRefreshSucceeded, authgate.EventRefreshFailed, authgate.EventReauthRequiredSet, authgate.EventReconnected}
	var ids []int64
	for i, typ := range types {
		e := &storage.Event{TenantID: tn.ID, CredentialID: c.ID, Type: typ, At: base.Add(time.Duration(i) * time.Second), Actor: "refresher",
			Details: json.RawMessage(fmt.Sprintf(`{"n":%d,"access_token_fp":"0123456789"}`, i))}
		if err := s.EventInsert(ctx, e); err != nil {
			t.Fatal(err)
		}
		if e.ID == 0 {
			t.Fatal("EventInsert did not set the id")
		}
		ids = append(ids, e.ID)
	}
	if err := s.EventInsert(ctx, &storage.Event{TenantID: tn.ID, CredentialID: c.ID, Type: authgate.EventTokenIssued, At: base, Actor: "x", Details: json.RawMessage(`{not json`)}); err == nil {
		t.Fatal("EventInsert accepted invalid JSON details")
	}
	evs, err := s.EventList(ctx, storage.EventListParams{TenantID: tn.ID, CredentialID: c.ID})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != len(types) {
		t.Fatalf("%d events; want %d", len(evs), len(types))
	}
	for i, e := range evs {
		if e.ID != ids[i] || e.Type != types[i] || !e.At.Equal(base.Add(time.Duration(i)*time.Second)) || e.Actor != "refresher" {
			t.Errorf("event %d = %+v", i, e)
		}
		var d map[string]any
		if err := json.Unmarshal(e.Details, &d); err != nil || d["n"] != float64(i) {
			t.Errorf("event %d details = %s (%v)", i, e.Details, err)
		}
	}
	page, err := s.EventList(ctx, storage.EventListParams{TenantID: tn.ID, CredentialID: c.ID, AfterID: ids[2], Limit: 1})
	if err != nil || len(page) != 1 || page[0].ID != ids[3] {
		t.Fatalf("EventList after %d limit 1 = %v, %v", ids[2], page, err)
	}
	empty := &storage.Event{TenantID: tn.ID, CredentialID: c.ID, Type: authgate.EventDisconnected, At: base, Actor: "x"}
	if err := s.EventInsert(ctx, empty); err != nil {
		t.Fatal(err)
	}
	last, _ := s.EventList(ctx, storage.EventListParams{TenantID: tn.ID, CredentialID: c.ID, AfterID: ids[len(ids)-1]})
	if len(last) != 1 || string(last[0].Details) != "{}" {
		t.Fatalf("nil details stored as %v; want {}", last)
	}
}

func testReseal(t *testing.T, s storage.Store) {
	ctx := context.Background()
	tn := mustTenant(t, s, "acme")
	old := newCredential(tn.ID, "u1")
	mixed := newCredential(tn.ID, "u2")
	mixed.AccessToken.KeyID = "k2"
	fresh := newCredential(tn.ID, "u3")
	fresh.AccessToken.KeyID, fresh.RefreshToken.KeyID = "k2", "k2"
	noRefresh := newCredential(tn.ID, "u4")
	noRefresh.AccessToken.KeyID, noRefresh.RefreshToken = "k2", keyring.Sealed{}
	for _, c := range []*storage.Credential{old, mixed, fresh, noRefresh} {
		mustInsert(t, s, c)
	}
	todo, err := s.CredentialListSealedNotWith(ctx, storage.CredentialListSealedNotWithParams{KeyID: "k2"})
	if err != nil {
		t.Fatal(err)
	}
	got := map[authgate.CredentialID]bool{}
	for _, c := range todo {
		got[c.ID] = true
	}
	if len(todo) != 2 || !got[old.ID] || !got[mixed.ID] {
		t.Fatalf("needing k2: %v; want exactly the two with k1 secrets", got)
	}
	p := storage.CredentialResealParams{ID: old.ID, Version: old.Version,
		AccessToken: keyring.Sealed{KeyID: "k2", Data: []byte("a2")}, RefreshToken: keyring.Sealed{KeyID: "k2", Data: []byte("r2")}}
	if err := s.CredentialReseal(ctx, p); err != nil {
		t.Fatal(err)
	}
	after, _ := s.CredentialGetByID(ctx, storage.CredentialGetByIDParams{TenantID: tn.ID, ID: old.ID})
	if after.Version != old.Version+1 || after.AccessToken.KeyID != "k2" || string(after.RefreshToken.Data) != "r2" {
		t.Fatalf("after reseal: version %d (want %d), %+v", after.Version, old.Version+1, after)
	}
	// A writer that read the row before the reseal holds the old
	// ciphertexts: its compare-and-swap must lose, or it would write back
	// secrets sealed with the key being retired.
	stale := *old
	stale.Email = "stale@example.com"
	if err := s.CredentialUpdateCAS(ctx, &stale); !errors.Is(err, storage.ErrVersionConflict) {
		t.Fatalf("CAS at the pre-reseal version err = %v; want ErrVersionConflict", err)
	}
	if got, _ := s.CredentialGetByID(ctx, storage.CredentialGetByIDParams{TenantID: tn.ID, ID: old.ID}); got.AccessToken.KeyID != "k2" || got.Email != old.Email {
		t.Fatalf("a stale CAS changed a resealed row: %+v", got)
	}
	if err := s.CredentialReseal(ctx, p); !errors.Is(err, storage.ErrVersionConflict) {
		t.Fatalf("second reseal at the pre-reseal version err = %v; want ErrVersionConflict", err)
	}
	p.Version = 99
	if err := s.CredentialReseal(ctx, p); !errors.Is(err, storage.ErrVersionConflict) {
		t.Fatalf("reseal at wrong version err = %v; want ErrVersionConflict", err)
	}
	p.ID, p.Version = authgate.NewCredentialID(), 1
	if err := s.CredentialReseal(ctx, p); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("reseal of a missing row err = %v; want ErrNotFound", err)
	}
	todo, _ = s.CredentialListSealedNotWith(ctx, storage.CredentialListSealedNotWithParams{KeyID: "k2"})
	if len(todo) != 1 || todo[0].ID != mixed.ID {
		t.Fatalf("after reseal, needing k2: %v", todo)
	}
}

// testSendRecord: the in-doubt record is written only by the lease's holder
// (expired or not, while nobody took it over), renews the lease, never bumps
// the version, and is cleared only by its writer.
func testSendRecord(t *testing.T, s storage.Store) {
	ctx := context.Background()
	tn := mustTenant(t, s, "acme")
	c := newCredential(tn.ID, "u1")
	mustInsert(t, s, c)
	get := func() *storage.Credential {
		t.Helper()
		got, err := s.CredentialGetByID(ctx, storage.CredentialGetByIDParams{TenantID: tn.ID, ID: c.ID})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	mark := func(holder string, at time.Time) storage.CredentialSendParams {
		return storage.CredentialSendParams{ID: c.ID, Holder: holder, RefreshFP: "fp-" + holder, At: at, Deadline: at.Add(40 * time.Second), LeaseUntil: at.Add(3 * time.Second)}
	}
	if ok, err := s.CredentialSendMark(ctx, mark("a", base)); ok || err != nil {
		t.Fatalf("mark without the lease = %v, %v; want false", ok, err)
	}
	if got := get(); got.SendHolder != "" || !got.SendAt.IsZero() {
		t.Fatalf("a refused mark left a record: %+v", got)
	}
	if ok, _ := s.CredentialLeaseAcquire(ctx, storage.CredentialLeaseParams{ID: c.ID, Holder: "a", Now: base, Until: base.Add(3 * time.Second)}); !ok {
		t.Fatal("acquire")
	}
	// Expired but not taken over: still a's to use.
	if ok, err := s.CredentialSendMark(ctx, mark("a", base.Add(10*time.Second))); !ok || err != nil {
		t.Fatalf("mark by the holder = %v, %v", ok, err)
	}
	got := get()
	if got.SendHolder != "a" || got.SendRefreshFP != "fp-a" || !got.SendAt.Equal(base.Add(10*time.Second)) || !got.SendDeadline.Equal(base.Add(50*time.Second)) ||
		!got.LeaseExpiresAt.Equal(base.Add(13*time.Second)) || got.Version != 1 {
		t.Fatalf("record %q %q at %v until %v, lease until %v, version %d", got.SendHolder, got.SendRefreshFP, got.SendAt, got.SendDeadline, got.LeaseExpiresAt, got.Version)
	}
	// b takes the expired lease over: a can no longer mark, the record stays.
	if ok, _ := s.CredentialLeaseAcquire(ctx, storage.CredentialLeaseParams{ID: c.ID, Holder: "b", Now: base.Add(14 * time.Second), Until: base.Add(17 * time.Second)}); !ok {
		t.Fatal("takeover")
	}
	if ok, _ := s.CredentialSendMark(ctx, mark("a", base.Add(15*time.Second))); ok {
		t.Fatal("a marked a send after losing the lease")
	}
	if err := s.CredentialSendClear(ctx, mark("b", base)); err != nil {
		t.Fatal(err)
	}
	if got := get(); got.SendHolder != "a" || got.LeaseHolder != "b" {
		t.Fatalf("b cleared a's record: %q, lease %q", got.SendHolder, got.LeaseHolder)
	}
	if err := s.CredentialSendClear(ctx, mark("a", base)); err != nil {
		t.Fatal(err)
	}
	if got := get(); got.SendHolder != "" || got.SendRefreshFP != "" || !got.SendAt.IsZero() || !got.SendDeadline.IsZero() || got.LeaseHolder != "b" || got.Version != 1 {
		t.Fatalf("after clear: %+v", got)
	}
	if _, err := s.CredentialSendMark(ctx, mark("", base)); err == nil {
		t.Fatal("mark with an empty holder succeeded")
	}
}

// testClockNow: the database tells a time, and it moves forward. (SQLite
// answers with the clock it was opened with, the wall clock here.)
func testClockNow(t *testing.T, s storage.Store) {
	ctx := context.Background()
	a, err := s.ClockNow(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.ClockNow(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if a.IsZero() || b.Before(a) {
		t.Fatalf("database clock went %v then %v", a, b)
	}
	if d := a.Sub(clock.Real{}.Now()); d > time.Hour || d < -time.Hour {
		t.Fatalf("database clock %v is %v away from this host's: not a clock", a, d)
	}
}

func testLease(t *testing.T, s storage.Store) {
	ctx := context.Background()
	tn := mustTenant(t, s, "acme")
	c := newCredential(tn.ID, "u1")
	mustInsert(t, s, c)
	p := func(holder string, now time.Time) storage.CredentialLeaseParams {
		return storage.CredentialLeaseParams{ID: c.ID, Holder: holder, Now: now, Until: now.Add(30 * time.Second)}
	}
	get := func() *storage.Credential {
		t.Helper()
		got, err := s.CredentialGetByID(ctx, storage.CredentialGetByIDParams{TenantID: tn.ID, ID: c.ID})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	ok, err := s.CredentialLeaseAcquire(ctx, p("a", base))
	if err != nil || !ok {
		t.Fatalf("first acquire = %v, %v", ok, err)
	}
	if ok, _ := s.CredentialLeaseAcquire(ctx, p("b", base.Add(time.Second))); ok {
		t.Fatal("b took a lease a holds")
	}
	// Not re-entrant: two flights sharing a holder name must not both
	// believe they hold the lease.
	if ok, err := s.CredentialLeaseAcquire(ctx, p("a", base.Add(time.Second))); ok || err != nil {
		t.Fatalf("a acquired the lease it already holds: %v, %v; want false", ok, err)
	}
	got := get()
	if got.LeaseHolder != "a" || !got.LeaseExpiresAt.Equal(base.Add(30*time.Second)) || got.Version != 1 {
		t.Fatalf("lease holder %q until %v version %d; want a until +30s, version 1 (leases must not bump the version)", got.LeaseHolder, got.LeaseExpiresAt, got.Version)
	}

	// Renewal extends the holder's lease, even once expired if nobody took it.
	if ok, err := s.CredentialLeaseRenew(ctx, p("a", base.Add(10*time.Second))); !ok || err != nil {
		t.Fatalf("a renewing its lease = %v, %v", ok, err)
	}
	if got := get(); got.LeaseHolder != "a" || !got.LeaseExpiresAt.Equal(base.Add(40*time.Second)) || got.Version != 1 {
		t.Fatalf("after renew: holder %q until %v version %d; want a until +40s, version 1", got.LeaseHolder, got.LeaseExpiresAt, got.Version)
	}
	if ok, _ := s.CredentialLeaseRenew(ctx, p("b", base.Add(10*time.Second))); ok {
		t.Fatal("b renewed a's lease")
	}
	if ok, _ := s.CredentialLeaseRenew(ctx, p("a", base.Add(50*time.Second))); !ok {
		t.Fatal("a could not renew its expired lease nobody took")
	}
	if got := get(); !got.LeaseExpiresAt.Equal(base.Add(80 * time.Second)) {
		t.Fatalf("after late renew: until %v; want +80s", got.LeaseExpiresAt)
	}

	// An expired lease can be taken over, and its old holder has lost it.
	if ok, _ := s.CredentialLeaseAcquire(ctx, p("b", base.Add(79*time.Second))); ok {
		t.Fatal("b took a lease before it expired")
	}
	if ok, _ := s.CredentialLeaseAcquire(ctx, p("b", base.Add(80*time.Second))); !ok {
		t.Fatal("b could not take a lease expiring at Now")
	}
	if ok, _ := s.CredentialLeaseRenew(ctx, p("a", base.Add(81*time.Second))); ok {
		t.Fatal("a renewed a lease b took over")
	}
	if got := get(); got.LeaseHolder != "b" || !got.LeaseExpiresAt.Equal(base.Add(110*time.Second)) {
		t.Fatalf("after takeover: holder %q until %v; want b until +110s", got.LeaseHolder, got.LeaseExpiresAt)
	}
	// Release by a non-holder does nothing.
	if err := s.CredentialLeaseRelease(ctx, p("a", base)); err != nil {
		t.Fatal(err)
	}
	if got := get(); got.LeaseHolder != "b" || !got.LeaseExpiresAt.Equal(base.Add(110*time.Second)) {
		t.Fatalf("a released b's lease: holder %q until %v", got.LeaseHolder, got.LeaseExpiresAt)
	}
	if err := s.CredentialLeaseRelease(ctx, p("b", base)); err != nil {
		t.Fatal(err)
	}
	if got := get(); got.LeaseHolder != "" || !got.LeaseExpiresAt.IsZero() || got.Version != 1 {
		t.Fatalf("after release: holder %q until %v version %d", got.LeaseHolder, got.LeaseExpiresAt, got.Version)
	}
	// A free lease cannot be renewed: the renewer lost it.
	if ok, _ := s.CredentialLeaseRenew(ctx, p("b", base.Add(2*time.Minute))); ok {
		t.Fatal("b renewed a released lease")
	}
	if ok, _ := s.CredentialLeaseAcquire(ctx, p("c", base.Add(time.Second))); !ok {
		t.Fatal("a released lease could not be taken")
	}
	// A holder needs a name: the empty one means "free".
	if _, err := s.CredentialLeaseAcquire(ctx, p("", base.Add(time.Hour))); err == nil {
		t.Fatal("acquire with an empty holder succeeded")
	}
	if _, err := s.CredentialLeaseRenew(ctx, p("", base.Add(time.Hour))); err == nil {
		t.Fatal("renew with an empty holder succeeded")
	}
	if ok, _ := s.CredentialLeaseAcquire(ctx, storage.CredentialLeaseParams{ID: authgate.NewCredentialID(), Holder: "a", Now: base, Until: base.Add(time.Minute)}); ok {
		t.Fatal("acquired the lease of a missing credential")
	}

	// Only one of many concurrent acquirers wins a free lease.
	c2 := newCredential(tn.ID, "u2")
	mustInsert(t, s, c2)
	var wg sync.WaitGroup
	var mu sync.Mutex
	winners := 0
	for i := range 20 {
		wg.Go(func() {
			ok, err := s.CredentialLeaseAcquire(ctx, storage.CredentialLeaseParams{ID: c2.ID, Holder: fmt.Sprint("h", i), Now: base, Until: base.Add(time.Minute)})
			if err != nil {
				t.Error(err)
			}
			if ok {
				mu.Lock()
				winners++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if winners != 1 {
		t.Fatalf("%d holders of one lease", winners)
	}

	// Clock skew round-trips through CAS.
	c.ClockSkew, c.ClockSkewAt = 600*time.Second, base
	if err := s.CredentialUpdateCAS(ctx, c); err != nil {
		t.Fatal(err)
	}
	if got := get(); got.ClockSkew != 600*time.Second || !got.ClockSkewAt.Equal(base) {
		t.Fatalf("skew %v at %v", got.ClockSkew, got.ClockSkewAt)
	}
}

// testTouchBatch: one batch records uses for 2000 credentials, keeps newer
// values, ignores unknown ids, and never changes a version.
func testTouchBatch(t *testing.T, s storage.Store) {
	ctx := context.Background()
	tn := mustTenant(t, s, "acme")
	const n = 2000
	recent := base.Add(2 * time.Hour)
	want := map[authgate.CredentialID]time.Time{}
	var touches []storage.CredentialTouch
	at := base.Add(time.Hour)
	err := s.Tx(ctx, func(q storage.Queries) error {
		for i := range n {
			c := newCredential(tn.ID, fmt.Sprintf("u%04d", i))
			want[c.ID] = at
			switch i % 10 {
			case 0: // used more recently than the batch says: kept
				c.LastUsedAt = recent
				want[c.ID] = recent
			case 1: // used earlier: moved forward
				c.LastUsedAt = base
			}
			if err := q.CredentialInsert(ctx, c); err != nil {
				return err
			}
			touches = append(touches, storage.CredentialTouch{ID: c.ID, At: at})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for range 10 {
		touches = append(touches, storage.CredentialTouch{ID: authgate.NewCredentialID(), At: at})
	}
	if err := s.CredentialTouchBatch(ctx, touches); err != nil {
		t.Fatalf("CredentialTouchBatch(%d): %v", len(touches), err)
	}
	check := func(when string) {
		t.Helper()
		seen := 0
		for after := authgate.CredentialID(""); ; {
			page, err := s.CredentialList(ctx, storage.CredentialListParams{TenantID: tn.ID, AfterID: after, Limit: 1000})
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range page {
				seen++
				if !c.LastUsedAt.Equal(want[c.ID]) || c.Version != 1 {
					t.Fatalf("%s: %s last used %v version %d; want %v, version 1", when, c.ID, c.LastUsedAt, c.Version, want[c.ID])
				}
			}
			if len(page) < 1000 {
				break
			}
			after = page[len(page)-1].ID
		}
		if seen != n {
			t.Fatalf("%s: listed %d credentials; want %d", when, seen, n)
		}
	}
	check("after the batch")

	// An older touch changes nothing; an empty batch is fine.
	if err := s.CredentialTouchBatch(ctx, []storage.CredentialTouch{{ID: touches[1].ID, At: base}, {ID: touches[2].ID, At: at}}); err != nil {
		t.Fatal(err)
	}
	if err := s.CredentialTouchBatch(ctx, nil); err != nil {
		t.Fatal(err)
	}
	check("after an older touch")

	// Inside a transaction the batch commits or rolls back with it.
	boom := errors.New("boom")
	err = s.Tx(ctx, func(q storage.Queries) error {
		if err := q.CredentialTouchBatch(ctx, []storage.CredentialTouch{{ID: touches[1].ID, At: base.Add(3 * time.Hour)}}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Tx err = %v; want boom", err)
	}
	check("after a rolled-back touch")
	later := base.Add(3 * time.Hour)
	if err := s.Tx(ctx, func(q storage.Queries) error {
		return q.CredentialTouchBatch(ctx, []storage.CredentialTouch{{ID: touches[1].ID, At: later}})
	}); err != nil {
		t.Fatal(err)
	}
	want[touches[1].ID] = later
	check("after a committed touch")
}

// testTxReadCAS: transactions that read a credential and compare-and-swap it
// run one after another on any backend: every one commits, none loses its
// compare-and-swap, because each reads inside its transaction.
func testTxReadCAS(t *testing.T, s storage.Store) {
	ctx := context.Background()
	tn := mustTenant(t, s, "acme")
	c := newCredential(tn.ID, "u1")
	mustInsert(t, s, c)
	const workers, rounds = 8, 5
	start := make(chan struct{})
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			<-start
			for r := range rounds {
				err := s.Tx(ctx, func(q storage.Queries) error {
					cur, err := q.CredentialGetByID(ctx, storage.CredentialGetByIDParams{TenantID: tn.ID, ID: c.ID})
					if err != nil {
						return err
					}
					// Something between the read and the write, as a
					// refresh records its event: it widens the window.
					if err := q.EventInsert(ctx, &storage.Event{TenantID: tn.ID, CredentialID: c.ID, Type: authgate.EventRefreshSucceeded, At: base, Actor: "rmw"}); err != nil {
						return err
					}
					cur.Email = fmt.Sprintf("w%d-r%d@example.com", w, r)
					return q.CredentialUpdateCAS(ctx, cur)
				})
				if err != nil {
					errs <- fmt.Errorf("worker %d round %d: %w", w, r, err)
					return
				}
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	got, err := s.CredentialGetByID(ctx, storage.CredentialGetByIDParams{TenantID: tn.ID, ID: c.ID})
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != 1+workers*rounds {
		t.Fatalf("final version %d; want %d", got.Version, 1+workers*rounds)
	}
}

func testConnectSession(t *testing.T, s storage.Store) {
	ctx := context.Background()
	tn := mustTenant(t, s, "acme")
	cs := &storage.ConnectSession{ID: "cs_1", TenantID: tn.ID, UserID: "u1", Provider: "google", RequestedScopes: []string{"openid"}, Actions: []string{"drive.files.list"},
		LoginHint: "a@b.c", ReturnURL: "https://app/x", ForceConsent: true, StateHash: []byte("hash-1"), Verifier: keyring.Sealed{KeyID: "k1", Data: []byte{1, 2}},
		CreatedAt: base, ExpiresAt: base.Add(10 * time.Minute)}
	if err := s.ConnectSessionInsert(ctx, cs); err != nil {
		t.Fatal(err)
	}
	got, err := s.ConnectSessionGet(ctx, "cs_1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(cs, got); diff != "" {
		t.Fatalf("session (-want +got):\n%s", diff)
	}
	if got, err := s.ConnectSessionGetByState(ctx, []byte("hash-1")); err != nil || got.ID != "cs_1" {
		t.Fatalf("by state = %v, %v", got, err)
	}
	if err := s.ConnectSessionConsume(ctx, "cs_1", base.Add(11*time.Minute)); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("consume after expiry err = %v", err)
	}
	if err := s.ConnectSessionConsume(ctx, "cs_1", base.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := s.ConnectSessionConsume(ctx, "cs_1", base.Add(time.Minute)); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("second consume err = %v; state must be single-use", err)
	}
	if _, err := s.ConnectSessionGet(ctx, "nope"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("unknown session err = %v", err)
	}
}

func testConnectSessionReseal(t *testing.T, s storage.Store) {
	ctx := context.Background()
	a := mustTenant(t, s, "acme")
	b := mustTenant(t, s, "globex")
	now := base.Add(time.Minute)
	mk := func(id string, tenant authgate.TenantID, kid string, expires time.Time) *storage.ConnectSession {
		cs := &storage.ConnectSession{ID: id, TenantID: tenant, UserID: "u1", Provider: "google", RequestedScopes: []string{"openid"}, Actions: []string{},
			StateHash: []byte("hash-" + id), Verifier: keyring.Sealed{KeyID: kid, Data: []byte("v-" + id)}, CreatedAt: base, ExpiresAt: expires}
		if err := s.ConnectSessionInsert(ctx, cs); err != nil {
			t.Fatal(err)
		}
		return cs
	}
	live := mk("cs_a", a.ID, "k1", base.Add(10*time.Minute))
	mk("cs_b", b.ID, "k1", base.Add(10*time.Minute)) // another tenant: listed too
	mk("cs_c", a.ID, "k1", base.Add(10*time.Minute))
	if err := s.ConnectSessionConsume(ctx, "cs_c", now); err != nil { // used: never needed again
		t.Fatal(err)
	}
	mk("cs_d", a.ID, "k1", now)                      // expired at now
	mk("cs_e", a.ID, "k2", base.Add(10*time.Minute)) // already on k2

	ids := func(p storage.ConnectSessionListSealedNotWithParams) []string {
		t.Helper()
		l, err := s.ConnectSessionListSealedNotWith(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		out := []string{}
		for _, cs := range l {
			out = append(out, cs.ID)
		}
		return out
	}
	if got := ids(storage.ConnectSessionListSealedNotWithParams{KeyID: "k2", Now: now}); !cmp.Equal(got, []string{"cs_a", "cs_b"}) {
		t.Fatalf("live sessions not sealed with k2: %v; want [cs_a cs_b]", got)
	}
	if got := ids(storage.ConnectSessionListSealedNotWithParams{KeyID: "k2", Now: now, Limit: 1}); !cmp.Equal(got, []string{"cs_a"}) {
		t.Fatalf("first page: %v", got)
	}
	if got := ids(storage.ConnectSessionListSealedNotWithParams{KeyID: "k2", Now: now, AfterID: "cs_a"}); !cmp.Equal(got, []string{"cs_b"}) {
		t.Fatalf("second page: %v", got)
	}

	resealed := keyring.Sealed{KeyID: "k2", Data: []byte("v2-cs_a")}
	if err := s.ConnectSessionReseal(ctx, storage.ConnectSessionResealParams{ID: "cs_a", OldKeyID: "k1", Verifier: resealed}); err != nil {
		t.Fatal(err)
	}
	got, err := s.ConnectSessionGet(ctx, "cs_a")
	if err != nil {
		t.Fatal(err)
	}
	want := *live
	want.Verifier = resealed
	if diff := cmp.Diff(&want, got); diff != "" {
		t.Fatalf("after reseal (-want +got):\n%s", diff)
	}
	// A second re-sealer that read the session before the first wrote loses.
	if err := s.ConnectSessionReseal(ctx, storage.ConnectSessionResealParams{ID: "cs_a", OldKeyID: "k1", Verifier: keyring.Sealed{KeyID: "k3", Data: []byte("x")}}); !errors.Is(err, storage.ErrVersionConflict) {
		t.Fatalf("reseal of a changed verifier err = %v; want ErrVersionConflict", err)
	}
	if got, _ := s.ConnectSessionGet(ctx, "cs_a"); !cmp.Equal(got.Verifier, resealed) {
		t.Fatalf("a lost reseal wrote %v", got.Verifier)
	}
	if err := s.ConnectSessionReseal(ctx, storage.ConnectSessionResealParams{ID: "cs_nope", OldKeyID: "k1", Verifier: resealed}); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("reseal of a missing session err = %v; want ErrNotFound", err)
	}
	if got := ids(storage.ConnectSessionListSealedNotWithParams{KeyID: "k2", Now: now}); !cmp.Equal(got, []string{"cs_b"}) {
		t.Fatalf("after reseal, not sealed with k2: %v; want [cs_b]", got)
	}
}

// feedWait bounds every wait for the change feed: generous, because a wait
// that succeeds returns as soon as the change arrives.
const feedWait = 10 * time.Second

// watch is a running WatchCredentials whose changes a test reads in order.
type watch struct {
	t       *testing.T
	changes chan storage.CredentialChange
}

// startWatch watches s until the test ends (then checks the watcher returns
// context.Canceled) and waits for the feed's first change, All.
func startWatch(t *testing.T, s storage.Store) *watch {
	t.Helper()
	feed, ok := s.(storage.ChangeFeed)
	if !ok {
		t.Fatalf("%T does not implement storage.ChangeFeed", s)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &watch{t: t, changes: make(chan storage.CredentialChange, 1024)}
	done := make(chan error, 1)
	go func() {
		done <- feed.WatchCredentials(ctx, func(c storage.CredentialChange) {
			select {
			case w.changes <- c:
			case <-ctx.Done():
			}
		})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("WatchCredentials returned %v after its context ended; want context.Canceled", err)
			}
		case <-time.After(feedWait):
			t.Errorf("WatchCredentials still running %v after its context ended", feedWait)
		}
	})
	if c := w.next(); !c.All {
		t.Fatalf("first change %+v; want All", c)
	}
	return w
}

func (w *watch) next() storage.CredentialChange {
	w.t.Helper()
	select {
	case c := <-w.changes:
		return c
	case <-time.After(feedWait):
		w.t.Fatalf("no change within %v", feedWait)
		return storage.CredentialChange{}
	}
}

// until reads the feed up to a change of want. It fails on All (nothing
// here makes the feed lose track) and on a change of any id in never before
// want. Other ids pass: a feed may carry more than this test's credentials.
func (w *watch) until(want authgate.CredentialID, never ...authgate.CredentialID) {
	w.t.Helper()
	for {
		c := w.next()
		switch {
		case c.All:
			w.t.Fatalf("unexpected All while waiting for %s", want)
		case c.ID == want:
			return
		case slices.Contains(never, c.ID):
			w.t.Fatalf("change of %s arrived before %s; want none", c.ID, want)
		}
	}
}

// testChangeFeed: a watcher on s sees every committed change to a
// credential's version, lease holder or status, made by s or by another
// Store on the same database (another process), in commit order; it sees
// no lease renewal, touch, lost compare-and-swap or rolled-back write. Each
// "sees no" is asserted with a marker: a real change to another credential
// made after it, which must arrive with nothing for the first before it.
func testChangeFeed(t *testing.T, s, other storage.Store) {
	ctx := context.Background()
	tn := mustTenant(t, other, "acme")
	w := startWatch(t, s)
	get := func(c *storage.Credential) *storage.Credential {
		t.Helper()
		got, err := other.CredentialGetByID(ctx, storage.CredentialGetByIDParams{TenantID: tn.ID, ID: c.ID})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	cas := func(st storage.Store, c *storage.Credential) {
		t.Helper()
		c.UpdatedAt = c.UpdatedAt.Add(time.Second)
		if err := st.CredentialUpdateCAS(ctx, c); err != nil {
			t.Fatal(err)
		}
	}

	c := newCredential(tn.ID, "u1")
	mustInsert(t, other, c)
	w.until(c.ID) // insert, by another process
	m := newCredential(tn.ID, "marker")
	mustInsert(t, s, m)
	w.until(m.ID) // insert, by this process

	cas(other, c)
	w.until(c.ID) // compare-and-swap
	c.Status, c.StatusReason = authgate.CredentialStatusReauthRequired, authgate.StatusReasonInvalidGrant
	cas(s, c)
	w.until(c.ID) // status change, by this process

	lease := storage.CredentialLeaseParams{ID: c.ID, Holder: "flight-1", Now: base, Until: base.Add(time.Minute)}
	if ok, err := other.CredentialLeaseAcquire(ctx, lease); !ok || err != nil {
		t.Fatalf("acquire = %v, %v", ok, err)
	}
	w.until(c.ID) // lease taken

	lease.Until = base.Add(2 * time.Minute)
	if ok, err := other.CredentialLeaseRenew(ctx, lease); !ok || err != nil {
		t.Fatalf("renew = %v, %v", ok, err)
	}
	cas(other, m)
	w.until(m.ID, c.ID) // a renewal is not a change

	if err := other.CredentialTouchBatch(ctx, []storage.CredentialTouch{{ID: c.ID, At: base.Add(time.Hour)}}); err != nil {
		t.Fatal(err)
	}
	if got := get(c); !got.LastUsedAt.Equal(base.Add(time.Hour)) {
		t.Fatalf("touch did not record: last used %v", got.LastUsedAt)
	}
	cas(other, m)
	w.until(m.ID, c.ID) // nor is a touch

	stale := *c
	stale.Version--
	if err := other.CredentialUpdateCAS(ctx, &stale); !errors.Is(err, storage.ErrVersionConflict) {
		t.Fatalf("stale CAS err = %v", err)
	}
	boom := errors.New("boom")
	if err := other.Tx(ctx, func(q storage.Queries) error {
		cur := *c
		if err := q.CredentialUpdateCAS(ctx, &cur); err != nil {
			return err
		}
		return boom
	}); !errors.Is(err, boom) {
		t.Fatalf("Tx err = %v; want boom", err)
	}
	cas(other, m)
	w.until(m.ID, c.ID) // nor a lost compare-and-swap or a rolled-back one

	if err := other.CredentialLeaseRelease(ctx, lease); err != nil {
		t.Fatal(err)
	}
	w.until(c.ID) // lease released

	if err := other.CredentialReseal(ctx, storage.CredentialResealParams{ID: c.ID, Version: c.Version,
		AccessToken: keyring.Sealed{KeyID: "k2", Data: []byte("a2")}, RefreshToken: keyring.Sealed{KeyID: "k2", Data: []byte("r2")}}); err != nil {
		t.Fatal(err)
	}
	c.Version++
	w.until(c.ID) // re-sealed

	// Commit order: c's change committed first arrives first.
	cas(other, c)
	cas(s, m)
	w.until(c.ID, m.ID)
	w.until(m.ID)
}

// testCredentialSetVerified: a verification is recorded per tenant, read
// back with every credential read, leaves the version alone (a concurrent
// refresh must not lose its compare-and-swap to it) and survives later CAS
// updates, which never write it.
func testCredentialSetVerified(t *testing.T, s storage.Store) {
	ctx := context.Background()
	tn := mustTenant(t, s, "acme")
	other := mustTenant(t, s, "other")
	c := newCredential(tn.ID, "verified")
	mustInsert(t, s, c)
	got, err := s.CredentialGetByID(ctx, storage.CredentialGetByIDParams{TenantID: tn.ID, ID: c.ID})
	if err != nil || !got.LastVerifiedAt.IsZero() || got.LastVerdict != "" || got.LastVerification != nil {
		t.Fatalf("a new credential carries a verification: %+v %v", got, err)
	}
	at := base.Add(time.Minute)
	result := json.RawMessage(`{"verdict":"warn","checks":[{"name":"drive.list","status":"pass"}]}`)
	p := storage.CredentialSetVerifiedParams{TenantID: other.ID, ID: c.ID, At: at, Verdict: "warn", Result: result}
	if err := s.CredentialSetVerified(ctx, p); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("another tenant's verification: %v; want ErrNotFound", err)
	}
	p.TenantID, p.ID = tn.ID, authgate.NewCredentialID()
	if err := s.CredentialSetVerified(ctx, p); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("unknown credential: %v; want ErrNotFound", err)
	}
	p.ID = c.ID
	err = s.Tx(ctx, func(q storage.Queries) error {
		if err := q.CredentialSetVerified(ctx, p); err != nil {
			return err
		}
		return q.EventInsert(ctx, &storage.Event{TenantID: tn.ID, CredentialID: c.ID, Type: authgate.EventVerified, At: at, Actor: "test", Details: result})
	})
	if err != nil {
		t.Fatal(err)
	}
	check := func(when string) {
		t.Helper()
		got, err := s.CredentialGetByID(ctx, storage.CredentialGetByIDParams{TenantID: tn.ID, ID: c.ID})
		if err != nil {
			t.Fatal(err)
		}
		var a, b any
		_ = json.Unmarshal(got.LastVerification, &a)
		_ = json.Unmarshal(result, &b)
		if !got.LastVerifiedAt.Equal(at) || got.LastVerdict != "warn" || cmp.Diff(a, b) != "" {
			t.Fatalf("%s: verification %v %q %s", when, got.LastVerifiedAt, got.LastVerdict, got.LastVerification)
		}
		if got.Version != c.Version {
			t.Fatalf("%s: version %d; want %d", when, got.Version, c.Version)
		}
	}
	check("after recording")
	c.Status, c.StatusReason = authgate.CredentialStatusReauthRequired, authgate.StatusReasonIdentityMismatch
	if err := s.CredentialUpdateCAS(ctx, c); err != nil {
		t.Fatal(err)
	}
	check("after a CAS update")
}
