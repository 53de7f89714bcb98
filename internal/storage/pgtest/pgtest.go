// Package pgtest opens a PostgreSQL store on a fresh schema for a test and
// drops the schema when the test ends. It exists for tests outside the
// storage packages (vault, gate, …) that run on both backends; storagetest
// cannot offer it because the conformance suite must not depend on a
// backend. Without AUTHGATE_TEST_POSTGRES the test is skipped with the one
// message storagetest.PostgresDSN gives.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/authgate/authgate/internal/storage/pgstore"
	"github.com/authgate/authgate/internal/storage/storagetest"
)

// Open returns a store on a new schema, closed and dropped with t.
func Open(t testing.TB) *pgstore.Store {
	t.Helper()
	return OpenN(t, 1)[0]
}

// OpenN returns n stores (pools of their own, as n processes would have) on
// one new schema, closed and dropped with t.
func OpenN(t testing.TB, n int) []*pgstore.Store {
	t.Helper()
	dsn := storagetest.PostgresDSN(t)
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	schema := "t_" + hex.EncodeToString(b)
	t.Cleanup(func() {
		if conn, err := pgx.Connect(context.Background(), dsn); err == nil {
			_, _ = conn.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
			conn.Close(context.Background())
		}
	})
	var out []*pgstore.Store
	for range n {
		s, err := pgstore.Open(context.Background(), dsn, pgstore.Options{Schema: schema})
		if err != nil {
			t.Fatalf("PostgreSQL at %s: %v", dsn, err)
		}
		t.Cleanup(func() { s.Close() })
		out = append(out, s)
	}
	return out
}
