// Package pgstore is the PostgreSQL storage backend (jackc/pgx/v5), for
// several authgate processes serving one platform. It passes the same
// conformance suite as sqlitestore: compare-and-swap on a version, leases
// taken with a conditional UPDATE (row locks make exactly one taker win),
// slot uniqueness from a UNIQUE constraint, append-only events enforced by a
// trigger. The queries are sqlstore's, shared with sqlitestore; this package
// owns the pool, the transactions, the dialect and the change feed.
// Migrations are numbered like sqlitestore's, embedded, forward-only, in
// PostgreSQL's own DDL, and applied under an advisory lock so concurrent
// starts apply each once.
//
// Inside Store.Tx, CredentialGetByID locks the row (SELECT ... FOR UPDATE), so
// read-then-compare-and-swap transactions on one credential run in turn, as
// they do on SQLite. Store is also a storage.ChangeFeed: a trigger NOTIFYs
// channel authgate_credentials with the id of every changed credential, and
// WatchCredentials LISTENs on a connection of its own.
//
// It must never decrypt, log or interpret secrets; it stores sealed bytes.
package pgstore

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/authgate/authgate/internal/storage"
	"github.com/authgate/authgate/internal/storage/sqlstore"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrationLock is the advisory lock key serialising migrations.
const migrationLock = 0x61757468 // "auth"

// dialect is PostgreSQL's side of the shared SQL: TIMESTAMPTZ columns kept
// at microsecond precision, ids compared in byte order (COLLATE "C", not the
// database's locale), and rows read at the start of a transaction locked
// (FOR UPDATE) so read-modify-write transactions queue as on SQLite.
var dialect = &sqlstore.Dialect{
	Time:            func(t time.Time) any { return t.UTC().Truncate(time.Microsecond) },
	ByteOrder:       ` COLLATE "C"`,
	LockInTx:        true,
	MapErr:          mapErr,
	MigrationsTable: `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())`,
	MigrationLock:   fmt.Sprintf(`SELECT pg_advisory_xact_lock(%d)`, migrationLock),
}

// Store is a PostgreSQL-backed storage.Store.
type Store struct {
	sqlstore.Queries
	pool *pgxpool.Pool
	// listening, when set (by tests, before watching), is told the server
	// process id of each change-feed connection once it listens.
	listening func(pid uint32)
}

var (
	_ storage.Store      = (*Store)(nil)
	_ storage.ChangeFeed = (*Store)(nil)
)

// Options tunes Open.
type Options struct {
	// Schema, when set, is created if missing and used as the search path
	// (tests use a schema each).
	Schema string
}

// Open connects to dsn (a postgres:// URL or key=value string) and applies
// pending migrations.
//
// Statements are prepared once per connection: pgx's default query mode
// (QueryExecModeCacheStatement) prepares each distinct SQL text the first
// time a pooled connection runs it and reuses it after, so the hot reads
// (credential by id, API key by hash) are parsed and planned once per
// connection. Keep that default; a DSN setting default_query_exec_mode to
// a simple or exec mode would give it up (and the JSON columns rely on the
// prepared parameter types to take text).
func Open(ctx context.Context, dsn string, o Options) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if o.Schema != "" {
		if !validSchema(o.Schema) {
			return nil, fmt.Errorf("postgres: schema %q: use letters, digits and _", o.Schema)
		}
		cfg.ConnConfig.RuntimeParams["search_path"] = o.Schema
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if o.Schema != "" {
		if _, err := pool.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+o.Schema); err != nil {
			pool.Close()
			return nil, fmt.Errorf("postgres: create schema: %w", err)
		}
	}
	s := &Store{Queries: sqlstore.Queries{R: db{pool}, W: db{pool}, D: dialect}, pool: pool}
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: migrate: %w", err)
	}
	return s, nil
}

func validSchema(s string) bool {
	for _, r := range s {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return s != ""
}

// Close closes the pool.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// ClockNow is the PostgreSQL server's clock at the moment of the query
// (clock_timestamp, not the transaction's start), the one clock every
// process sharing this database agrees on.
func (s *Store) ClockNow(ctx context.Context) (time.Time, error) {
	var t time.Time
	if err := s.pool.QueryRow(ctx, `SELECT clock_timestamp()`).Scan(&t); err != nil {
		return time.Time{}, fmt.Errorf("postgres: clock: %w", err)
	}
	return t.UTC(), nil
}

// Ping checks the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.pool.Ping(ctx) }

// Tx runs fn in one READ COMMITTED transaction. Compare-and-swap updates and
// leases are single conditional UPDATEs, which row locks make safe at this
// level, and CredentialGetByID locks the row it reads until commit; a unique
// violation surfaces as storage.ErrConflict for the caller to retry.
func (s *Store) Tx(ctx context.Context, fn func(q storage.Queries) error) error {
	return s.tx(ctx, func(tx sqlstore.DB, native any) error { return fn(sqlstore.InTransaction(tx, dialect, native)) })
}

func (s *Store) tx(ctx context.Context, fn func(tx sqlstore.DB, native any) error) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(db{tx}, tx); err != nil {
		_ = tx.Rollback(ctx)
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", mapErr(err))
	}
	return nil
}

// CredentialTouchBatch records every touch in one transaction.
func (s *Store) CredentialTouchBatch(ctx context.Context, touches []storage.CredentialTouch) error {
	return sqlstore.TouchBatchTx(ctx, s, touches)
}

func mapErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return storage.ErrNotFound
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" {
		return fmt.Errorf("%w: %v", storage.ErrConflict, err)
	}
	return err
}

// migrate applies the embedded migrations the database lacks in one
// transaction, after taking the advisory lock.
func (s *Store) migrate(ctx context.Context) error {
	if err := sqlstore.MigrateFS(ctx, s.tx, dialect, migrationFiles, "migrations", nil); err != nil {
		return err
	}
	return s.migrateRiver(ctx)
}
