package pgstore

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
	tag, err := q.db.Exec(ctx, `UPDATE credentials SET lease_expires_at = $1 WHERE id = $2 AND lease_holder = $3`, ts(p.Until), p.ID, p.Holder)
	if err != nil {
		return false, mapErr(err)
	}
	return tag.RowsAffected() == 1, nil
}

func (q queries) ConnectSessionListSealedNotWith(ctx context.Context, p storage.ConnectSessionListSealedNotWithParams) ([]*storage.ConnectSession, error) {
	out, err := queryRows(ctx, q.db, scanSession, `SELECT `+sessionColumns+` FROM connect_sessions
		WHERE verifier_kid <> $1 AND used_at IS NULL AND expires_at > $2 AND id > $3 ORDER BY id LIMIT $4`,
		p.KeyID, ts(p.Now), p.AfterID, storage.ClampLimit(p.Limit, 100, 1000))
	return out, mapErr(err)
}

func (q queries) ConnectSessionReseal(ctx context.Context, p storage.ConnectSessionResealParams) error {
	tag, err := q.db.Exec(ctx, `UPDATE connect_sessions SET verifier_kid = $1, verifier_ct = $2 WHERE id = $3 AND verifier_kid = $4`,
		p.Verifier.KeyID, blob(p.Verifier), p.ID, p.OldKeyID)
	if err != nil {
		return mapErr(err)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	if _, err := q.ConnectSessionGet(ctx, p.ID); err != nil {
		return err
	}
	return storage.ErrVersionConflict
}
