package sqlitestore

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/authgate/authgate/internal/storage/sqlstore"
)

// execer is what *sql.DB and *sql.Tx share.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	PrepareContext(ctx context.Context, query string) (*sql.Stmt, error)
}

// db adapts database/sql to sqlstore.DB. hot holds statements prepared once
// on the read pool (the reads on every token request), by query text; it is
// nil on the write connection and inside transactions.
type db struct {
	q   execer
	hot map[string]*sql.Stmt
}

var _ sqlstore.DB = db{}

func (d db) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	res, err := d.q.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (d db) Query(ctx context.Context, query string, args ...any) (sqlstore.Rows, error) {
	rows, err := d.q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return sqlRows{rows}, nil
}

func (d db) QueryRow(ctx context.Context, query string, args ...any) sqlstore.Row {
	if st := d.hot[query]; st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return d.q.QueryRowContext(ctx, query, args...)
}

// ExecBatch prepares the statement once on the caller's connection and runs
// it per argument list.
func (d db) ExecBatch(ctx context.Context, query string, args [][]any) error {
	st, err := d.q.PrepareContext(ctx, query)
	if err != nil {
		return fmt.Errorf("prepare: %w", err)
	}
	defer st.Close()
	for _, a := range args {
		if _, err := st.ExecContext(ctx, a...); err != nil {
			return err
		}
	}
	return nil
}

// sqlRows drops the error Close returns: Err reports what went wrong.
type sqlRows struct{ *sql.Rows }

func (r sqlRows) Close() { _ = r.Rows.Close() }
