package sqlitestore

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/authgate/authgate/internal/storage"
	"github.com/authgate/authgate/internal/storage/sqlstore"
)

// TestHotReadsPrepared: the reads on every token request run on statements
// prepared at Open, which the shared queries reach by their exact text.
func TestHotReadsPrepared(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "authgate.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if len(s.hot) != len(sqlstore.HotQueries) {
		t.Fatalf("%d prepared statements; want %d", len(s.hot), len(sqlstore.HotQueries))
	}
	// Closing a prepared statement makes any query that still uses it fail:
	// proof the store's reads go through them.
	for _, st := range s.hot {
		st.Close()
	}
	if _, err := s.APIKeyGetByHash(ctx, []byte("x")); err == nil || err == storage.ErrNotFound {
		t.Fatalf("APIKeyGetByHash on a closed statement = %v; want a statement error", err)
	}
	if _, err := s.CredentialGetByID(ctx, storage.CredentialGetByIDParams{ID: "cred_x", TenantID: "ten_x"}); err == nil || err == storage.ErrNotFound {
		t.Fatalf("CredentialGetByID on a closed statement = %v; want a statement error", err)
	}
	s.hot = nil // already closed
}
