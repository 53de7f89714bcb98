package sqlitestore

// Temporary bridge (branch issue-8): the storage port gained methods in
// 89ad9a5 whose real implementations are being written on main. These keep the
// tree building and behave as the port documents, simply; delete this file
// when merging main.

import (
	"context"

	"github.com/authgate/authgate/internal/storage"
)

func (q queries) CredentialTouchBatch(ctx context.Context, touches []storage.CredentialTouch) error {
	for _, t := range touches {
		if err := q.CredentialTouch(ctx, storage.CredentialTouchParams{ID: t.ID, At: t.At, Before: t.At}); err != nil {
			return err
		}
	}
	return nil
}

func (q queries) CredentialLeaseRenew(ctx context.Context, p storage.CredentialLeaseParams) (bool, error) {
	res, err := q.w.ExecContext(ctx, `UPDATE credentials SET lease_expires_at = ? WHERE id = ? AND lease_holder = ?`, p.Until.UnixMicro(), p.ID, p.Holder)
	if err != nil {
		return false, mapErr(err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

func (q queries) ConnectSessionListSealedNotWith(ctx context.Context, p storage.ConnectSessionListSealedNotWithParams) ([]*storage.ConnectSession, error) {
	rows, err := q.r.QueryContext(ctx, `SELECT `+sessionColumns+` FROM connect_sessions
		WHERE verifier_kid <> ? AND used_at IS NULL AND expires_at > ? AND id > ? ORDER BY id LIMIT ?`,
		p.KeyID, p.Now.UnixMicro(), p.AfterID, storage.ClampLimit(p.Limit, 100, 1000))
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	var out []*storage.ConnectSession
	for rows.Next() {
		s, err := scanSession(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, mapErr(rows.Err())
}

func (q queries) ConnectSessionReseal(ctx context.Context, p storage.ConnectSessionResealParams) error {
	res, err := q.w.ExecContext(ctx, `UPDATE connect_sessions SET verifier_kid = ?, verifier_ct = ? WHERE id = ? AND verifier_kid = ?`,
		p.Verifier.KeyID, blob(p.Verifier), p.ID, p.OldKeyID)
	if err != nil {
		return mapErr(err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return nil
	}
	if _, err := q.ConnectSessionGet(ctx, p.ID); err != nil {
		return err
	}
	return storage.ErrVersionConflict
}
