// Package sqlitestore is the embedded storage backend: one SQLite file, pure
// Go (modernc.org/sqlite, no cgo), WAL mode, shared safely by several
// processes on one machine.
//
// Each Store keeps two pools: a single write connection whose transactions
// begin IMMEDIATE (the write lock is taken up front, so writers queue instead
// of failing to upgrade a read lock) and a small read-only pool. Across
// processes, writers wait for the file lock with SQLite's busy timeout, and a
// transaction that still cannot begin is retried with backoff until its
// context ends. The reads on every token request (credential by id, API key
// by hash) are prepared once at Open. The queries themselves are
// sqlstore's, shared with pgstore; this package owns the connections, the
// transactions, the dialect and the change feed. Migrations are numbered,
// forward-only and embedded, in SQLite's own DDL.
//
// Store is also a storage.ChangeFeed: triggers append every credential
// change to a log table in the writing transaction, and a watcher polls
// PRAGMA data_version on a connection of its own to read new log rows as
// soon as any connection of any process commits (see WatchCredentials).
//
// It must never decrypt, log or interpret secrets; it stores sealed bytes.
package sqlitestore

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net/url"
	"os"
	"strconv"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/authgate/authgate/internal/clock"
	"github.com/authgate/authgate/internal/storage"
	"github.com/authgate/authgate/internal/storage/sqlstore"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// busyTimeout is how long one statement waits for another process's lock.
const busyTimeout = 10 * time.Second

// dialect is SQLite's side of the shared SQL: times are INTEGER
// microseconds since the Unix epoch, text compares bytewise already, and the
// single write connection makes row locks unnecessary.
var dialect = &sqlstore.Dialect{
	Time:            func(t time.Time) any { return t.UnixMicro() },
	MapErr:          mapErr,
	MigrationsTable: `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)`,
}

// Store is a SQLite-backed storage.Store.
type Store struct {
	sqlstore.Queries
	w, r *sql.DB
	hot  map[string]*sql.Stmt
	path string
	opts options
}

var (
	_ storage.Store      = (*Store)(nil)
	_ storage.ChangeFeed = (*Store)(nil)
)

// DefaultChangePollInterval is how often a change-feed watcher asks SQLite
// whether another connection committed, unless WithChangePollInterval says
// otherwise. The question reads one shared-memory counter, so asking often
// costs little and wakes waiters across processes within milliseconds.
const DefaultChangePollInterval = 5 * time.Millisecond

// Option tunes Open.
type Option func(*options)

type options struct {
	changePollInterval time.Duration
	clock              clock.Clock
}

// WithClock sets the clock ClockNow answers with (default the wall clock).
// Every process on one SQLite file runs on one host, so the host's clock is
// the database's; tests inject a fake one.
func WithClock(c clock.Clock) Option {
	return func(o *options) { o.clock = c }
}

// WithChangePollInterval sets how often WatchCredentials polls for commits
// (DefaultChangePollInterval when d is not positive).
func WithChangePollInterval(d time.Duration) Option {
	return func(o *options) { o.changePollInterval = d }
}

// Open opens (creating if needed) the database file at path and applies
// pending migrations.
func Open(ctx context.Context, path string, opts ...Option) (*Store, error) {
	o := options{changePollInterval: DefaultChangePollInterval}
	for _, opt := range opts {
		opt(&o)
	}
	if o.changePollInterval <= 0 {
		o.changePollInterval = DefaultChangePollInterval
	}
	if o.clock == nil {
		o.clock = clock.Real{}
	}
	if path == "" {
		return nil, errors.New("sqlite: empty database path")
	}
	// The file holds ciphertexts and key hashes: create it owner-only.
	// SQLite gives its -wal and -shm files the same permissions.
	if f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600); err == nil {
		f.Close()
	} else if !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("sqlite: create %s: %w", path, err)
	}
	w, err := sql.Open("sqlite", dsn(path, true))
	if err != nil {
		return nil, err
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	r, err := sql.Open("sqlite", dsn(path, false))
	if err != nil {
		w.Close()
		return nil, err
	}
	r.SetMaxOpenConns(4)
	r.SetMaxIdleConns(4)
	s := &Store{w: w, r: r, path: path, opts: o}
	s.Queries = sqlstore.Queries{R: db{q: r}, W: db{q: w}, D: dialect}
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("sqlite %s: migrate: %w", path, err)
	}
	// Prepared after migrating: the statements name tables migrations create.
	s.hot = map[string]*sql.Stmt{}
	for _, query := range sqlstore.HotQueries {
		st, err := r.PrepareContext(ctx, query)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("sqlite %s: prepare: %w", path, err)
		}
		s.hot[query] = st
	}
	s.Queries.R = db{q: r, hot: s.hot}
	return s, nil
}

func dsn(path string, write bool) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout("+strconv.Itoa(int(busyTimeout/time.Millisecond))+")")
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "synchronous(NORMAL)")
	if write {
		q.Add("_pragma", "journal_mode(WAL)")
		q.Set("_txlock", "immediate")
	} else {
		q.Add("_pragma", "query_only(1)")
	}
	return "file:" + path + "?" + q.Encode()
}

// Path is the database file.
func (s *Store) Path() string { return s.path }

// Close closes the prepared statements and both pools.
func (s *Store) Close() error {
	var errs []error
	for _, st := range s.hot {
		errs = append(errs, st.Close())
	}
	return errors.Join(append(errs, s.r.Close(), s.w.Close())...)
}

// Ping checks that the database answers a query.
// ClockNow is the database's time: the host's clock (see WithClock).
func (s *Store) ClockNow(context.Context) (time.Time, error) { return s.opts.clock.Now(), nil }

func (s *Store) Ping(ctx context.Context) error {
	var one int
	return s.r.QueryRowContext(ctx, "SELECT 1").Scan(&one)
}

// Tx runs fn in one immediate transaction on the write connection. Inside fn,
// use only q: the Store's own methods would wait for the connection fn holds.
func (s *Store) Tx(ctx context.Context, fn func(q storage.Queries) error) error {
	return s.tx(ctx, func(tx sqlstore.DB, native any) error { return fn(sqlstore.InTransaction(tx, dialect, native)) })
}

func (s *Store) tx(ctx context.Context, fn func(tx sqlstore.DB, native any) error) error {
	tx, err := s.begin(ctx)
	if err != nil {
		return err
	}
	if err := fn(db{q: tx}, tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", mapErr(err))
	}
	return nil
}

// CredentialTouchBatch records every touch in one transaction: one write
// lock and one commit for the whole batch.
func (s *Store) CredentialTouchBatch(ctx context.Context, touches []storage.CredentialTouch) error {
	return sqlstore.TouchBatchTx(ctx, s, touches)
}

// begin starts an immediate transaction. When another process holds the
// write lock past the busy timeout, nothing has happened yet, so beginning
// again is safe; it retries with jittered backoff until ctx ends.
func (s *Store) begin(ctx context.Context) (*sql.Tx, error) {
	backoff := 5 * time.Millisecond
	for {
		tx, err := s.w.BeginTx(ctx, nil)
		if err == nil {
			return tx, nil
		}
		if !isBusy(err) {
			return nil, fmt.Errorf("begin: %w", err)
		}
		t := time.NewTimer(backoff/2 + rand.N(backoff))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("begin: %w (last: %v)", ctx.Err(), err)
		case <-t.C:
		}
		backoff = min(backoff*2, time.Second)
	}
}

func isBusy(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		code := se.Code() & 0xff
		return code == sqlite3.SQLITE_BUSY || code == sqlite3.SQLITE_LOCKED
	}
	return false
}

func mapErr(err error) error {
	if err == nil {
		return nil
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return fmt.Errorf("%w: %v", storage.ErrConflict, err)
		}
	}
	if errors.Is(err, sql.ErrNoRows) {
		return storage.ErrNotFound
	}
	return err
}

// migrate applies the embedded migrations the database lacks in one
// immediate transaction: the write lock it takes first makes two processes
// starting together apply each migration exactly once.
func (s *Store) migrate(ctx context.Context) error {
	return sqlstore.MigrateFS(ctx, s.tx, dialect, migrationFiles, "migrations", func(ctx context.Context, native any) error {
		return migrateRiver(ctx, native.(*sql.Tx))
	})
}
