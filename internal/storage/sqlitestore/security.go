package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"sort"
	"time"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/internal/keyring"
	"github.com/authgate/authgate/internal/storage"
)

func (q queries) APIKeyList(ctx context.Context, tenant authgate.TenantID) ([]storage.APIKey, error) {
	rows, err := q.r.QueryContext(ctx, `SELECT id, tenant_id, hash, name, created_at, revoked_at FROM api_keys WHERE tenant_id = ? ORDER BY created_at, id`, tenant)
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	var out []storage.APIKey
	for rows.Next() {
		var k storage.APIKey
		var created int64
		var revoked sql.NullInt64
		if err := rows.Scan(&k.ID, &k.TenantID, &k.Hash, &k.Name, &created, &revoked); err != nil {
			return nil, mapErr(err)
		}
		k.CreatedAt, k.RevokedAt = time.UnixMicro(created).UTC(), fromMicros(revoked)
		out = append(out, k)
	}
	return out, mapErr(rows.Err())
}

func (q queries) APIKeyRevoke(ctx context.Context, p storage.APIKeyRevokeParams) error {
	res, err := q.w.ExecContext(ctx, `UPDATE api_keys SET revoked_at = ? WHERE id = ? AND tenant_id = ? AND revoked_at IS NULL`, p.At.UnixMicro(), p.ID, p.TenantID)
	if err != nil {
		return mapErr(err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return storage.ErrNotFound
	}
	return nil
}

func (q queries) SealedKeyIDs(ctx context.Context) ([]string, error) {
	rows, err := q.r.QueryContext(ctx, `SELECT access_token_kid FROM credentials WHERE access_token_ct IS NOT NULL
		UNION SELECT refresh_token_kid FROM credentials WHERE refresh_token_ct IS NOT NULL
		UNION SELECT verifier_kid FROM connect_sessions WHERE verifier_ct IS NOT NULL`)
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, mapErr(err)
		}
		if id != "" {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out, mapErr(rows.Err())
}

func (q queries) ConnectSessionOpen(ctx context.Context, p storage.ConnectSessionOpenParams) error {
	res, err := q.w.ExecContext(ctx, `UPDATE connect_sessions SET opened_at = ?, browser_hash = ?
		WHERE id = ? AND opened_at IS NULL AND used_at IS NULL AND expires_at > ?`, p.Now.UnixMicro(), p.BrowserHash, p.ID, p.Now.UnixMicro())
	if err != nil {
		return mapErr(err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
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
	missing, err := scopesJSON(p.Missing)
	if err != nil {
		return err
	}
	_, err = q.w.ExecContext(ctx, `UPDATE connect_sessions SET outcome = ?, outcome_credential_id = ?, missing_scopes = ?, error_class = ?, error_code = ? WHERE id = ?`,
		p.Outcome, p.CredentialID, missing, p.ErrorClass, p.ErrorCode, p.ID)
	return mapErr(err)
}

func (q queries) ConnectSessionListReusable(ctx context.Context, p storage.ConnectSessionListReusableParams) ([]*storage.ConnectSession, error) {
	rows, err := q.r.QueryContext(ctx, `SELECT `+sessionColumns+` FROM connect_sessions
		WHERE tenant_id = ? AND credential_id = ? AND opened_at IS NULL AND used_at IS NULL AND expires_at > ?
		ORDER BY created_at DESC, id LIMIT ?`, p.TenantID, p.CredentialID, p.Until.UnixMicro(), storage.ClampLimit(p.Limit, 10, 100))
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

func (q queries) ConnectSessionDeleteExpired(ctx context.Context, p storage.ConnectSessionDeleteExpiredParams) (int64, error) {
	res, err := q.w.ExecContext(ctx, `DELETE FROM connect_sessions WHERE id IN (SELECT id FROM connect_sessions WHERE expires_at < ? LIMIT ?)`,
		p.Before.UnixMicro(), storage.ClampLimit(p.Limit, 1000, 10000))
	if err != nil {
		return 0, mapErr(err)
	}
	return res.RowsAffected()
}

// SealedSample finds one secret sealed with keyID.
func (q queries) SealedSample(ctx context.Context, keyID string) (storage.SealedSample, error) {
	for _, c := range sealedColumns {
		var owner string
		var data []byte
		err := q.r.QueryRowContext(ctx, `SELECT id, `+c.ct+` FROM `+c.table+` WHERE `+c.kid+` = ? AND `+c.ct+` IS NOT NULL LIMIT 1`, keyID).Scan(&owner, &data)
		if errors.Is(err, sql.ErrNoRows) {
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
