package sqlitestore

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/internal/storage"
)

const (
	// changeRetention is how long the change log keeps a row: far longer
	// than a watcher polling every few milliseconds needs. A watcher that
	// falls further behind finds the gap and reports All.
	changeRetention = 10 * time.Minute
	// pruneEvery is how often each watcher prunes the log.
	pruneEvery = time.Minute
	// maxFeedBackoff caps the wait between attempts while the database errs.
	maxFeedBackoff = 5 * time.Second
)

// WatchCredentials implements storage.ChangeFeed. The migration-0004
// triggers log every credential change in credential_changes inside the
// writing transaction; the watcher holds one read-only connection of its own
// and polls PRAGMA data_version on it every poll interval (see
// WithChangePollInterval). data_version moves only when another connection
// commits, and this connection never writes, so every commit by this
// process's write pool or by another process is noticed; only then does the
// watcher read the log rows past the last one it delivered. It starts with
// one All change from the log's current end, and prunes rows older than ten
// minutes once a minute. Cancel ctx before closing the Store.
func (s *Store) WatchCredentials(ctx context.Context, fn func(storage.CredentialChange)) error {
	db, err := sql.Open("sqlite", dsn(s.path, false))
	if err != nil {
		return fmt.Errorf("change feed: %w", err)
	}
	defer db.Close()
	// One connection: data_version is per connection, so every poll must
	// ask the same one.
	db.SetMaxOpenConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)

	var wg sync.WaitGroup
	defer wg.Wait()
	// Pruning writes, and may wait for the write lock; on its own goroutine
	// it never delays delivery.
	wg.Go(func() { s.pruneLoop(ctx) })

	f := &feed{s: s, db: db, fn: fn}
	defer f.disconnect()
	return f.run(ctx)
}

// feed is one WatchCredentials call's state; only its goroutine touches it.
type feed struct {
	s  *Store
	db *sql.DB
	fn func(storage.CredentialChange)

	conn        *sql.Conn
	dataVersion *sql.Stmt // PRAGMA data_version, on conn
	changes     *sql.Stmt // the log past a seq, on conn
	version     int64     // data_version when the log was last read
	started     bool      // the first All was delivered and last is set
	last        int64     // the highest seq delivered
}

func (f *feed) run(ctx context.Context) error {
	timer := time.NewTimer(0)
	defer timer.Stop()
	var backoff time.Duration
	failing := false
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
		}
		err := f.poll(ctx)
		if err == nil {
			failing, backoff = false, 0
			timer.Reset(f.s.opts.changePollInterval)
			continue
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		// Start over on a fresh connection. Reading resumes after the last
		// seq delivered, so nothing is lost unless the log is pruned
		// meanwhile (then the gap check reports All); All now lets
		// consumers stop trusting what they hold while the feed is down.
		f.disconnect()
		if f.started && !failing {
			f.fn(storage.CredentialChange{All: true})
		}
		failing = true
		backoff = min(max(2*backoff, 10*time.Millisecond), maxFeedBackoff)
		timer.Reset(backoff/2 + rand.N(backoff/2))
	}
}

// poll reads the log if anyone committed since the last read.
func (f *feed) poll(ctx context.Context) error {
	if f.conn == nil {
		return f.connect(ctx)
	}
	var v int64
	if err := f.dataVersion.QueryRowContext(ctx).Scan(&v); err != nil {
		return fmt.Errorf("change feed: data_version: %w", err)
	}
	if v == f.version {
		return nil
	}
	f.version = v
	return f.read(ctx)
}

// connect opens the feed's connection. The first time, it starts from the
// log's end and delivers All; after an error it reads what it missed.
func (f *feed) connect(ctx context.Context) error {
	conn, err := f.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("change feed: connect: %w", err)
	}
	f.conn = conn
	if f.dataVersion, err = conn.PrepareContext(ctx, `PRAGMA data_version`); err != nil {
		return fmt.Errorf("change feed: prepare: %w", err)
	}
	// Each row carries the log's lowest seq, read in the same statement so
	// it belongs to the same snapshot as the rows (see read).
	if f.changes, err = conn.PrepareContext(ctx, `SELECT seq, credential_id, (SELECT MIN(seq) FROM credential_changes)
		FROM credential_changes WHERE seq > ? ORDER BY seq`); err != nil {
		return fmt.Errorf("change feed: prepare: %w", err)
	}
	// data_version first: a commit landing between the two reads is then
	// both counted in the log's end and seen as a new version (read again,
	// finding nothing), never missed.
	if err := f.dataVersion.QueryRowContext(ctx).Scan(&f.version); err != nil {
		return fmt.Errorf("change feed: data_version: %w", err)
	}
	if f.started {
		return f.read(ctx)
	}
	if err := conn.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM credential_changes`).Scan(&f.last); err != nil {
		return fmt.Errorf("change feed: log end: %w", err)
	}
	f.started = true
	f.fn(storage.CredentialChange{All: true})
	return nil
}

type change struct {
	seq, min int64
	id       authgate.CredentialID
}

// read delivers the log rows past f.last. Pruning deletes a prefix of the
// log and always keeps the newest row it could have deleted, so the rows
// after f.last were all kept unless the lowest seq left is beyond f.last+1:
// that gap means pruned rows went undelivered, and All is reported.
func (f *feed) read(ctx context.Context) error {
	rows, err := f.changes.QueryContext(ctx, f.last)
	if err != nil {
		return fmt.Errorf("change feed: read: %w", err)
	}
	// Collect first: fn runs with no statement open, so a slow fn never
	// holds a read snapshot that keeps SQLite from checkpointing the WAL.
	var got []change
	for rows.Next() {
		var c change
		if err := rows.Scan(&c.seq, &c.id, &c.min); err != nil {
			rows.Close()
			return fmt.Errorf("change feed: read: %w", err)
		}
		got = append(got, c)
	}
	err = rows.Err()
	rows.Close()
	if err != nil {
		return fmt.Errorf("change feed: read: %w", err)
	}
	if len(got) > 0 && got[0].min > f.last+1 {
		f.fn(storage.CredentialChange{All: true})
	}
	for _, c := range got {
		f.fn(storage.CredentialChange{ID: c.id})
		f.last = c.seq
	}
	return nil
}

func (f *feed) disconnect() {
	for _, st := range []*sql.Stmt{f.dataVersion, f.changes} {
		if st != nil {
			st.Close()
		}
	}
	if f.conn != nil {
		f.conn.Close()
	}
	f.conn, f.dataVersion, f.changes = nil, nil, nil
}

// pruneLoop prunes the change log every pruneEvery until ctx ends. A failed
// prune loses no change (the log only grows until the next one succeeds),
// so it is left to the next tick rather than reported.
func (s *Store) pruneLoop(ctx context.Context) {
	t := time.NewTicker(pruneEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_ = s.pruneChanges(ctx, changeRetention)
		}
	}
}

// pruneChanges deletes the log rows older than olderThan, by the database's
// clock (the one that stamped them), except the newest of them: keeping it
// is what lets a watcher tell "nothing newer" from "pruned before I read it".
func (s *Store) pruneChanges(ctx context.Context, olderThan time.Duration) error {
	_, err := s.w.ExecContext(ctx, `DELETE FROM credential_changes WHERE seq < (
		SELECT MAX(seq) FROM credential_changes WHERE at < CAST(unixepoch('subsec') * 1000000 AS INTEGER) - ?)`,
		olderThan.Microseconds())
	if err != nil {
		return fmt.Errorf("prune change log: %w", mapErr(err))
	}
	return nil
}
