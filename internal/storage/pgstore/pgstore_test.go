package pgstore_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/authgate/authgate/internal/storage"
	"github.com/authgate/authgate/internal/storage/pgstore"
	"github.com/authgate/authgate/internal/storage/storagetest"
)

// dsn is the test database named by AUTHGATE_TEST_POSTGRES; without it the
// suite skips with one message saying how to run it. Once it is set, an
// unreachable server fails: .ci/run starts PostgreSQL and sets it.
func dsn(t testing.TB) string { return storagetest.PostgresDSN(t) }

// TestConformance runs the storage suite against real PostgreSQL, one
// schema per test, dropped afterwards.
func TestConformance(t *testing.T) {
	dsn := dsn(t)
	storagetest.Run(t, func(t *testing.T) storage.Store {
		b := make([]byte, 8)
		_, _ = rand.Read(b)
		schema := "t_" + hex.EncodeToString(b)
		s, err := pgstore.Open(context.Background(), dsn, pgstore.Options{Schema: schema})
		if err != nil {
			t.Fatalf("PostgreSQL at %s: %v (start it: pg_ctlcluster --skip-systemctl-redirect 15 main start)", dsn, err)
		}
		t.Cleanup(func() {
			conn, err := pgx.Connect(context.Background(), dsn)
			if err == nil {
				_, _ = conn.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
				conn.Close(context.Background())
			}
		})
		return s
	})
}
