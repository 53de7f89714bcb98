package sqlstore

import (
	"context"
	"time"

	"github.com/authgate/authgate/internal/storage"
)

const loginLinkColumns = `hash, tenant_id, created_by, created_at, expires_at, used_at`

func (q Queries) ConsoleLoginLinkInsert(ctx context.Context, l *storage.ConsoleLoginLink) error {
	_, err := q.W.Exec(ctx, `INSERT INTO console_login_links (`+loginLinkColumns+`) VALUES ($1, $2, $3, $4, $5, NULL)`,
		l.Hash, l.TenantID, l.CreatedBy, q.ts(l.CreatedAt), q.ts(l.ExpiresAt))
	return q.mapErr(err)
}

func (q Queries) ConsoleLoginLinkConsume(ctx context.Context, p storage.ConsoleLoginLinkConsumeParams) (*storage.ConsoleLoginLink, error) {
	// One UPDATE … RETURNING: of two browsers opening one link at once,
	// exactly one gets the row.
	var l storage.ConsoleLoginLink
	err := q.W.QueryRow(ctx, `UPDATE console_login_links SET used_at = $1
		WHERE hash = $2 AND used_at IS NULL AND expires_at > $1 RETURNING `+loginLinkColumns, q.ts(p.Now), p.Hash).
		Scan(&l.Hash, &l.TenantID, &l.CreatedBy, at(&l.CreatedAt), at(&l.ExpiresAt), at(&l.UsedAt))
	if err != nil {
		return nil, q.mapErr(err)
	}
	return &l, nil
}

func (q Queries) ConsoleSessionInsert(ctx context.Context, s *storage.ConsoleSession) error {
	_, err := q.W.Exec(ctx, `INSERT INTO console_sessions (hash, tenant_id, created_at, expires_at) VALUES ($1, $2, $3, $4)`,
		s.Hash, s.TenantID, q.ts(s.CreatedAt), q.ts(s.ExpiresAt))
	return q.mapErr(err)
}

func (q Queries) ConsoleSessionGet(ctx context.Context, p storage.ConsoleSessionGetParams) (*storage.ConsoleSession, error) {
	var s storage.ConsoleSession
	err := q.R.QueryRow(ctx, `SELECT hash, tenant_id, created_at, expires_at FROM console_sessions WHERE hash = $1 AND expires_at > $2`,
		p.Hash, q.ts(p.Now)).Scan(&s.Hash, &s.TenantID, at(&s.CreatedAt), at(&s.ExpiresAt))
	if err != nil {
		return nil, q.mapErr(err)
	}
	return &s, nil
}

func (q Queries) ConsoleSessionDelete(ctx context.Context, hash []byte) error {
	_, err := q.W.Exec(ctx, `DELETE FROM console_sessions WHERE hash = $1`, hash)
	return q.mapErr(err)
}

func (q Queries) ConsoleDeleteExpired(ctx context.Context, before time.Time) error {
	if _, err := q.W.Exec(ctx, `DELETE FROM console_login_links WHERE expires_at < $1`, q.ts(before)); err != nil {
		return q.mapErr(err)
	}
	_, err := q.W.Exec(ctx, `DELETE FROM console_sessions WHERE expires_at < $1`, q.ts(before))
	return q.mapErr(err)
}
