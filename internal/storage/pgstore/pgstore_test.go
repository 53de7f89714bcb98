package pgstore_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/authgate/authgate"
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
	storagetest.Run(t, func(t *testing.T) (storage.Store, func(t *testing.T) storage.Store) {
		schema := testSchema(t)
		open := func(t *testing.T) storage.Store { return openSchema(t, schema) }
		return open(t), open
	})
}

// testSchema names a fresh schema and drops it when the test ends, after
// the stores on it are closed (cleanups run last-registered first).
func testSchema(t *testing.T) string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	schema := "t_" + hex.EncodeToString(b)
	t.Cleanup(func() {
		conn, err := pgx.Connect(context.Background(), dsn(t))
		if err == nil {
			_, _ = conn.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
			conn.Close(context.Background())
		}
	})
	return schema
}

func openSchema(t *testing.T, schema string) *pgstore.Store {
	s, err := pgstore.Open(context.Background(), dsn(t), pgstore.Options{Schema: schema})
	if err != nil {
		t.Fatalf("PostgreSQL at %s: %v (start it: pg_ctlcluster --skip-systemctl-redirect 15 main start)", dsn(t), err)
	}
	return s
}

// TestChangeFeedReconnect: when the listening connection dies, the feed
// reconnects, reports All (notifications sent meanwhile are lost) and
// carries changes again. (The conformance suite covers what the feed
// carries; this is how the PostgreSQL feed survives a lost connection.)
func TestChangeFeedReconnect(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openSchema(t, testSchema(t))
	t.Cleanup(func() { s.Close() })
	pids := make(chan uint32, 4)
	pgstore.SetListening(s, func(pid uint32) { pids <- pid })
	changes := make(chan storage.CredentialChange, 100)
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- s.WatchCredentials(wctx, func(c storage.CredentialChange) { changes <- c })
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("WatchCredentials = %v; want context.Canceled", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("WatchCredentials did not return")
		}
	})
	wait := func() (uint32, storage.CredentialChange) {
		t.Helper()
		var pid uint32
		select {
		case pid = <-pids:
		case <-time.After(10 * time.Second):
			t.Fatal("the feed did not listen within 10s")
		}
		select {
		case c := <-changes:
			return pid, c
		case <-time.After(10 * time.Second):
			t.Fatal("no change within 10s")
		}
		return 0, storage.CredentialChange{}
	}
	pid, c := wait()
	if !c.All {
		t.Fatalf("first change %+v; want All", c)
	}

	admin, err := pgx.Connect(ctx, dsn(t))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	var killed bool
	if err := admin.QueryRow(ctx, `SELECT pg_terminate_backend($1)`, int64(pid)).Scan(&killed); err != nil || !killed {
		t.Fatalf("terminate listener %d: %v, %v", pid, killed, err)
	}
	pid2, c := wait()
	if !c.All || pid2 == pid {
		t.Fatalf("after the connection died: listener %d (was %d), change %+v; want a new listener and All", pid2, pid, c)
	}

	tenant := storage.Tenant{ID: authgate.NewTenantID(), Name: "acme", CreatedAt: time.Now()}
	if err := s.TenantInsert(ctx, tenant); err != nil {
		t.Fatal(err)
	}
	cred := &storage.Credential{ID: authgate.NewCredentialID(), Slot: storage.Slot{TenantID: tenant.ID, UserID: "u1", Provider: "google", Subject: "u1"},
		Status: authgate.CredentialStatusActive, Version: 1, CreatedAt: time.Now(), UpdatedAt: time.Now()}
	if err := s.CredentialInsert(ctx, cred); err != nil {
		t.Fatal(err)
	}
	for {
		select {
		case c := <-changes:
			if c.All {
				t.Fatalf("unexpected All after reconnecting")
			}
			if c.ID == cred.ID {
				return
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the reconnected feed did not carry an insert within 10s")
		}
	}
}
