package vault_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/internal/secret"
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
