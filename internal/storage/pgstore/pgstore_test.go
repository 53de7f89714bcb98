package pgstore_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/authgate/authgate/internal/storage"
	"github.com/authgate/authgate/internal/storage/pgstore"
	"github.com/authgate/authgate/internal/storage/storagetest"
)

// dsn is the test database: AUTHGATE_TEST_POSTGRES, or the local server this
// project's machines run (trust auth, database test). The suite fails — it
// does not skip — when PostgreSQL is unreachable: .ci/run starts it.
func dsn() string {
	if v := os.Getenv("AUTHGATE_TEST_POSTGRES"); v != "" {
		return v
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

// TestConformance runs the storage suite against real PostgreSQL, one
// schema per test, dropped afterwards.
func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Store {
		b := make([]byte, 8)
		_, _ = rand.Read(b)
		schema := "t_" + hex.EncodeToString(b)
		s, err := pgstore.Open(context.Background(), dsn(), pgstore.Options{Schema: schema})
		if err != nil {
			t.Fatalf("PostgreSQL at %s: %v (start it: pg_ctlcluster --skip-systemctl-redirect 15 main start)", dsn(), err)
		}
		t.Cleanup(func() {
			conn, err := pgx.Connect(context.Background(), dsn())
			if err == nil {
				_, _ = conn.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
				conn.Close(context.Background())
			}
		})
		return s
	})
}
