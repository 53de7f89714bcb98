package pgstore

import (
	"context"
	"errors"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/internal/keyring"
	"github.com/authgate/authgate/internal/storage"
)

func (q queries) APIKeyList(ctx context.Context, tenant authgate.TenantID) ([]storage.APIKey, error) {
	out, err := queryRows(ctx, q.db, func(sc scanner) (storage.APIKey, error) {
		var k storage.APIKey
		var revoked *time.Time
		err := sc.Scan(&k.ID, &k.TenantID, &k.Hash, &k.Name, &k.CreatedAt, &revoked)
		k.CreatedAt, k.RevokedAt = k.CreatedAt.UTC(), fromTS(revoked)
		return k, err
	}, `SELECT id, tenant_id, hash, name, created_at, revoked_at FROM api_keys WHERE tenant_id = $1 ORDER BY created_at, id`, tenant)
	return out, mapErr(err)
}

func (q queries) APIKeyRevoke(ctx context.Context, p storage.APIKeyRevokeParams) error {
	tag, err := q.db.Exec(ctx, `UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND tenant_id = $3 AND revoked_at IS NULL`, ts(p.At), p.ID, p.TenantID)
	if err != nil {
		return mapErr(err)
	}
	if tag.RowsAffected() != 1 {
		return storage.ErrNotFound
	}
	return nil
}

func (q queries) SealedKeyIDs(ctx context.Context) ([]string, error) {
	ids, err := queryRows(ctx, q.db, func(sc scanner) (string, error) {
		var id string
		return id, sc.Scan(&id)
	}, `SELECT access_token_kid FROM credentials WHERE access_token_ct IS NOT NULL
		UNION SELECT refresh_token_kid FROM credentials WHERE refresh_token_ct IS NOT NULL
		UNION SELECT verifier_kid FROM connect_sessions WHERE verifier_ct IS NOT NULL`)
	if err != nil {
		return nil, mapErr(err)
	}
	out := ids[:0]
	for _, id := range ids {
		if id != "" {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out, nil
}

func (q queries) ConnectSessionOpen(ctx context.Context, p storage.ConnectSessionOpenParams) error {
	tag, err := q.db.Exec(ctx, `UPDATE connect_sessions SET opened_at = $1, browser_hash = $2
		WHERE id = $3 AND opened_at IS NULL AND used_at IS NULL AND expires_at > $1`, ts(p.Now), p.BrowserHash, p.ID)
	if err != nil {
		return mapErr(err)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	s, err := q.ConnectSessionGet(ctx, p.ID)
	if err != nil {
		return err
	}
	if !s.OpenedAt.IsZero() && s.UsedAt.IsZero() && p.Now.Before(s.ExpiresAt) {
		return storage.ErrConflict
	}
	return storage.ErrNotFound
}

func (q queries) ConnectSessionFinish(ctx context.Context, p storage.ConnectSessionFinishParams) error {
	missing, err := jsonList(p.Missing)
	if err != nil {
		return err
	}
	_, err = q.db.Exec(ctx, `UPDATE connect_sessions SET outcome = $1, outcome_credential_id = $2, missing_scopes = $3::jsonb, error_class = $4, error_code = $5 WHERE id = $6`,
		p.Outcome, p.CredentialID, missing, p.ErrorClass, p.ErrorCode, p.ID)
	return mapErr(err)
}

func (q queries) ConnectSessionListReusable(ctx context.Context, p storage.ConnectSessionListReusableParams) ([]*storage.ConnectSession, error) {
	out, err := queryRows(ctx, q.db, scanSession, `SELECT `+sessionColumns+` FROM connect_sessions
		WHERE tenant_id = $1 AND credential_id = $2 AND opened_at IS NULL AND used_at IS NULL AND expires_at > $3
		ORDER BY created_at DESC, id LIMIT $4`, p.TenantID, p.CredentialID, ts(p.Until), storage.ClampLimit(p.Limit, 10, 100))
	return out, mapErr(err)
}

func (q queries) ConnectSessionDeleteExpired(ctx context.Context, p storage.ConnectSessionDeleteExpiredParams) (int64, error) {
	tag, err := q.db.Exec(ctx, `DELETE FROM connect_sessions WHERE id IN (SELECT id FROM connect_sessions WHERE expires_at < $1 LIMIT $2)`,
		ts(p.Before), storage.ClampLimit(p.Limit, 1000, 10000))
	if err != nil {
		return 0, mapErr(err)
	}
	return tag.RowsAffected(), nil
}

// SealedSample finds one secret sealed with keyID.
func (q queries) SealedSample(ctx context.Context, keyID string) (storage.SealedSample, error) {
	for _, c := range sealedColumns {
		var owner string
		var data []byte
		err := q.db.QueryRow(ctx, `SELECT id, `+c.ct+` FROM `+c.table+` WHERE `+c.kid+` = $1 AND `+c.ct+` IS NOT NULL LIMIT 1`, keyID).Scan(&owner, &data)
		if errors.Is(err, pgx.ErrNoRows) {
			continue
		}
		if err != nil {
			return storage.SealedSample{}, mapErr(err)
		}
		return storage.SealedSample{Owner: owner, Field: c.field, Sealed: keyring.Sealed{KeyID: keyID, Data: data}}, nil
	}
	return storage.SealedSample{}, storage.ErrNotFound
}

var sealedColumns = []struct{ table, kid, ct, field string }{
	{"credentials", "access_token_kid", "access_token_ct", "access_token"},
	{"credentials", "refresh_token_kid", "refresh_token_ct", "refresh_token"},
	{"connect_sessions", "verifier_kid", "verifier_ct", "connect_verifier"},
}
