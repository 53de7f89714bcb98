package sqlitestore_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/internal/storage"
	"github.com/authgate/authgate/internal/storage/sqlitestore"
)

// TestKeysBeforeRolesAreAdmin: a key row written the way the schema before
// migration 0011 wrote it (no role, no user) reads back as an admin key of
// no user: existing keys keep what they could always do.
func TestKeysBeforeRolesAreAdmin(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "a.db")
	s, err := sqlitestore.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	tn := storage.Tenant{ID: authgate.NewTenantID(), Name: "acme", CreatedAt: time.Unix(1, 0).UTC(), ReturnURLAllowList: []string{}}
	if err := s.TenantInsert(ctx, tn); err != nil {
		t.Fatal(err)
	}
	s.Close()

	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	hash := []byte("0123456789abcdef0123456789abcdef")
	if _, err := db.Exec(`INSERT INTO api_keys (id, tenant_id, hash, name, created_at) VALUES (?, ?, ?, 'old', 1)`, string(authgate.NewAPIKeyID()), string(tn.ID), hash); err != nil {
		t.Fatal(err)
	}
	db.Close()

	s, err = sqlitestore.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	k, err := s.APIKeyGetByHash(ctx, hash)
	if err != nil || k.Role != authgate.RoleAdmin || k.UserID != "" {
		t.Fatalf("a key from before roles: %+v, %v; want role admin, no user", k, err)
	}
}
