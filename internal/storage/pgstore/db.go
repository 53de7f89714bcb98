package pgstore

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/authgate/authgate/internal/storage/sqlstore"
)

// execer is what *pgxpool.Pool and pgx.Tx share.
type execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// db adapts pgx to sqlstore.DB.
type db struct{ q execer }

var _ sqlstore.DB = db{}

func (d db) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	tag, err := d.q.Exec(ctx, query, args...)
	return tag.RowsAffected(), err
}

func (d db) Query(ctx context.Context, query string, args ...any) (sqlstore.Rows, error) {
	return d.q.Query(ctx, query, args...)
}

func (d db) QueryRow(ctx context.Context, query string, args ...any) sqlstore.Row {
	return d.q.QueryRow(ctx, query, args...)
}

// ExecBatch queues every execution in one pgx batch: pgx prepares the
// statement once and sends them all in one round trip.
func (d db) ExecBatch(ctx context.Context, query string, args [][]any) error {
	b := &pgx.Batch{}
	for _, a := range args {
		b.Queue(query, a...)
	}
	br := d.q.SendBatch(ctx, b)
	for range args {
		if _, err := br.Exec(); err != nil {
			br.Close()
			return err
		}
	}
	return br.Close()
}
