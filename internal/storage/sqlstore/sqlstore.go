// Package sqlstore is the one SQL layer both storage backends share: every
// query of storage.Queries written once, its rows scanned once, and the one
// migration runner. A backend (sqlitestore, pgstore) supplies a DB adapter
// over its driver and a Dialect saying what differs: how a time is stored,
// how ids compare bytewise, whether reads in a transaction lock rows, how
// driver errors map to storage's sentinels, and the migrations table. The
// query text itself is the same on both: numbered placeholders ($1, $2, …),
// which PostgreSQL speaks natively and SQLite binds by number.
//
// It must never decrypt, log or interpret secrets (they arrive sealed), and
// never hold anything a backend must own alone: connections and pools,
// transaction begin and retry, the change feed.
package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/authgate/authgate/internal/keyring"
	"github.com/authgate/authgate/internal/storage"
)

// DB is what the queries need from a pool, a connection or a transaction.
type DB interface {
	// Exec runs a statement and reports how many rows it changed.
	Exec(ctx context.Context, query string, args ...any) (int64, error)
	Query(ctx context.Context, query string, args ...any) (Rows, error)
	QueryRow(ctx context.Context, query string, args ...any) Row
	// ExecBatch runs one statement once per argument list, in order, as
	// cheaply as the driver allows (one prepared statement, one round trip).
	ExecBatch(ctx context.Context, query string, args [][]any) error
}

// Row is one result row.
type Row interface{ Scan(dest ...any) error }

// Rows is a result set.
type Rows interface {
	Row
	Next() bool
	Err() error
	Close()
}

// Dialect is what differs between the backends' SQL.
type Dialect struct {
	// Time encodes a non-zero instant as the backend's time columns hold it.
	// Scanning accepts either encoding (see timeDest).
	Time func(time.Time) any
	// ByteOrder follows an id column where ids are compared or ordered, so
	// that both backends page in byte order (PostgreSQL's default collation
	// would not).
	ByteOrder string
	// LockInTx makes the reads a read-modify-write transaction starts with
	// lock their row (SELECT … FOR UPDATE), so such transactions on one row
	// run in turn, as they do under SQLite's single writer.
	LockInTx bool
	// MapErr turns the driver's "no rows" into storage.ErrNotFound and a
	// uniqueness violation into storage.ErrConflict; it passes nil through.
	MapErr func(error) error
	// MigrationsTable creates schema_migrations (version, name, applied_at)
	// if it is missing; applied_at holds a Time.
	MigrationsTable string
	// MigrationLock, when set, runs first in the migration transaction so
	// that processes starting together apply each migration once.
	MigrationLock string
}

// Queries answers storage.Queries on R (reads) and W (writes): one pool
// each, or the same transaction for both inside Tx (InTx).
type Queries struct {
	R, W DB
	D    *Dialect
	InTx bool
	// Native is the driver's own transaction inside Tx (*sql.Tx on
	// SQLite, pgx.Tx on PostgreSQL), nil outside: what River's InsertTx
	// takes so that a job commits with the change that causes it.
	Native any
}

var _ storage.Queries = Queries{}

// InTransaction is the Queries a backend's Tx hands its callback; native
// is the driver's transaction that tx wraps.
func InTransaction(tx DB, d *Dialect, native any) Queries {
	return Queries{R: tx, W: tx, D: d, InTx: true, Native: native}
}

// NativeTx is the driver's transaction q runs in (see storage.NativeTx).
func (q Queries) NativeTx() any { return q.Native }

func (q Queries) mapErr(err error) error {
	if err == nil {
		return nil
	}
	return q.D.MapErr(err)
}

// ts maps the zero time to NULL and others to the dialect's encoding.
func (q Queries) ts(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return q.D.Time(t)
}

// forUpdate locks the rows a read inside a transaction returns, where the
// dialect does that.
func (q Queries) forUpdate() string {
	if q.InTx && q.D.LockInTx {
		return ` FOR UPDATE`
	}
	return ``
}

// timeDest scans a time column in either encoding: INTEGER microseconds
// since the Unix epoch (SQLite) or a timestamp (PostgreSQL); NULL is the
// zero time. Times come back in UTC.
type timeDest struct{ t *time.Time }

func (d timeDest) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*d.t = time.Time{}
	case int64:
		*d.t = time.UnixMicro(v).UTC()
	case time.Time:
		*d.t = v.UTC()
	default:
		return fmt.Errorf("time column: unexpected %T", src)
	}
	return nil
}

var _ sql.Scanner = timeDest{}

// at scans a time column into *t.
func at(t *time.Time) timeDest { return timeDest{t} }

// jsonList encodes a string list for a JSON column; nil becomes [].
func jsonList(s []string) (string, error) {
	if s == nil {
		s = []string{}
	}
	b, err := json.Marshal(s)
	return string(b), err
}

// blob stores a sealed secret's ciphertext, NULL when there is none.
func blob(s keyring.Sealed) any {
	if s.IsZero() {
		return nil
	}
	return s.Data
}

// queryRows runs a query on db and scans every row with scan.
func queryRows[T any](ctx context.Context, q Queries, db DB, scan func(Row) (T, error), query string, args ...any) ([]T, error) {
	rows, err := db.Query(ctx, query, args...)
	if err != nil {
		return nil, q.mapErr(err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, q.mapErr(rows.Err())
}

// affectedOne turns "no row changed" into storage.ErrNotFound.
func affectedOne(n int64, err error, mapErr func(error) error) error {
	if err != nil {
		return mapErr(err)
	}
	if n != 1 {
		return storage.ErrNotFound
	}
	return nil
}

// TouchBatchTx is Store.CredentialTouchBatch for both backends: the whole
// batch in one transaction, so one write lock and one commit.
func TouchBatchTx(ctx context.Context, s storage.Store, touches []storage.CredentialTouch) error {
	if len(touches) == 0 {
		return nil
	}
	return s.Tx(ctx, func(q storage.Queries) error { return q.CredentialTouchBatch(ctx, touches) })
}
