package vault_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/internal/secret"
	"github.com/authgate/authgate/internal/storage"
	"github.com/authgate/authgate/internal/vault"
)

// TestImportBatch: a batch lands whole (every credential readable, one
// token_issued event each) or not at all (one bad entry, nothing stored).
func TestImportBatch(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "", ring(t, key("k1", 1)))
	ctx := context.Background()
	entry := func(i int) vault.ImportParams {
		a, r := tokenPair(i)
		return vault.ImportParams{TenantID: f.tenant, UserID: fmt.Sprintf("bulk-%d", i), Provider: "google", Subject: "s", Scopes: []string{"openid"},
			AccessToken: secret.New(a), RefreshToken: secret.New(r), ExpiresAt: t0.Add(time.Hour), Actor: "test"}
	}
	var batch []vault.ImportParams
	for i := range 50 {
		batch = append(batch, entry(i))
	}
	creds, err := f.vault.ImportBatch(ctx, batch)
	if err != nil || len(creds) != 50 {
		t.Fatalf("%d credentials, %v", len(creds), err)
	}
	for i, c := range creds {
		l, err := f.vault.Load(ctx, f.tenant, c.ID)
		want, _ := tokenPair(i)
		if err != nil || l.AccessToken.Reveal() != want || c.Status != authgate.CredentialStatusActive {
			t.Fatalf("credential %d: %v", i, err)
		}
		if got := eventTypes(t, f, c.ID); len(got) != 1 || got[0] != authgate.EventTokenIssued {
			t.Fatalf("credential %d events %v", i, got)
		}
	}

	bad := []vault.ImportParams{entry(100), entry(101)}
	bad[1].UserID = ""
	if _, err := f.vault.ImportBatch(ctx, bad); err == nil {
		t.Fatal("a batch with an invalid entry was accepted")
	}
	list, _, err := f.vault.List(ctx, vault.ListParams{TenantID: f.tenant, UserID: "bulk-100"})
	if err != nil || len(list) != 0 {
		t.Fatalf("a refused batch stored %d credentials (%v)", len(list), err)
	}
}

// TestImportBatchFirstCheck: FirstCheckAt is written with the batch, so
// the health sweep does not find the credential due before then; without
// it the credential is due at once (its first check not yet planned).
func TestImportBatchFirstCheck(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "", ring(t, key("k1", 1)))
	ctx := context.Background()
	a, r := tokenPair(1)
	p := vault.ImportParams{TenantID: f.tenant, UserID: "later", Provider: "google", Subject: "s", Scopes: []string{"openid"},
		AccessToken: secret.New(a), RefreshToken: secret.New(r), ExpiresAt: t0.Add(time.Hour), Actor: "test", FirstCheckAt: t0.AddDate(1, 0, 0)}
	q := p
	q.UserID, q.FirstCheckAt = "now", time.Time{}
	creds, err := f.vault.ImportBatch(ctx, []vault.ImportParams{p, q})
	if err != nil {
		t.Fatal(err)
	}
	due := func(before time.Time) map[authgate.CredentialID]bool {
		ds, err := f.store.CredentialListCheckDue(ctx, storage.CredentialListCheckDueParams{Before: before, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		out := map[authgate.CredentialID]bool{}
		for _, d := range ds {
			out[d.ID] = true
		}
		return out
	}
	if got := due(t0.Add(24 * time.Hour)); got[creds[0].ID] || !got[creds[1].ID] {
		t.Fatalf("due within a day: %v; want only the credential without FirstCheckAt", got)
	}
	if got := due(t0.AddDate(1, 0, 1)); !got[creds[0].ID] {
		t.Fatalf("due after a year and a day: %v; want the deferred credential too", got)
	}
}
