package sqlstore

import (
	"context"
	"encoding/json"
	"time"

	"github.com/authgate/authgate/internal/storage"
)

const sessionColumns = `id, tenant_id, user_id, provider, credential_id, requested_scopes, actions, login_hint, return_url,
	force_consent, state_hash, verifier_kid, verifier_ct, created_at, expires_at, used_at,
	expected_account, browser_hash, opened_at, outcome, outcome_credential_id, missing_scopes, error_class, error_code`

func (q Queries) ConnectSessionInsert(ctx context.Context, s *storage.ConnectSession) error {
	scopes, err := jsonList(s.RequestedScopes)
	if err != nil {
		return err
	}
	actions, err := jsonList(s.Actions)
	if err != nil {
		return err
	}
	_, err = q.W.Exec(ctx, `INSERT INTO connect_sessions (`+sessionColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, NULL, $16, NULL, NULL, '', '', '[]', '', '')`,
		s.ID, s.TenantID, s.UserID, s.Provider, s.CredentialID, scopes, actions, s.LoginHint, s.ReturnURL, s.ForceConsent, s.StateHash,
		s.Verifier.KeyID, blob(s.Verifier), q.ts(s.CreatedAt), q.ts(s.ExpiresAt), s.ExpectedAccount)
	return q.mapErr(err)
}

func (q Queries) scanSession(sc Row) (*storage.ConnectSession, error) {
	var s storage.ConnectSession
	var scopes, actions, missing []byte
	err := sc.Scan(&s.ID, &s.TenantID, &s.UserID, &s.Provider, &s.CredentialID, &scopes, &actions, &s.LoginHint, &s.ReturnURL,
		&s.ForceConsent, &s.StateHash, &s.Verifier.KeyID, &s.Verifier.Data, at(&s.CreatedAt), at(&s.ExpiresAt), at(&s.UsedAt),
		&s.ExpectedAccount, &s.BrowserHash, at(&s.OpenedAt), &s.Outcome, &s.OutcomeCredentialID, &missing, &s.ErrorClass, &s.ErrorCode)
	if err != nil {
		return nil, q.mapErr(err)
	}
	if err := json.Unmarshal(scopes, &s.RequestedScopes); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(actions, &s.Actions); err != nil {
		return nil, err
	}
	// An empty list reads back as nil, as it was before the outcome was set.
	if len(missing) > 0 && string(missing) != "[]" {
		if err := json.Unmarshal(missing, &s.MissingScopes); err != nil {
			return nil, err
		}
	}
	return &s, nil
}

func (q Queries) ConnectSessionGet(ctx context.Context, id string) (*storage.ConnectSession, error) {
	return q.scanSession(q.R.QueryRow(ctx, `SELECT `+sessionColumns+` FROM connect_sessions WHERE id = $1`, id))
}

func (q Queries) ConnectSessionGetByState(ctx context.Context, stateHash []byte) (*storage.ConnectSession, error) {
	return q.scanSession(q.R.QueryRow(ctx, `SELECT `+sessionColumns+` FROM connect_sessions WHERE state_hash = $1`, stateHash))
}

func (q Queries) ConnectSessionConsume(ctx context.Context, id string, now time.Time) error {
	// A used session's PKCE verifier is never read again (the caller holds
	// it): erasing it keeps no ciphertext that would tie the database to a
	// retired master key.
	n, err := q.W.Exec(ctx, `UPDATE connect_sessions SET used_at = $1, verifier_kid = '', verifier_ct = NULL WHERE id = $2 AND used_at IS NULL AND expires_at > $1`, q.ts(now), id)
	return affectedOne(n, err, q.mapErr)
}

func (q Queries) ConnectSessionListSealedNotWith(ctx context.Context, p storage.ConnectSessionListSealedNotWithParams) ([]*storage.ConnectSession, error) {
	return queryRows(ctx, q, q.R, q.scanSession, `SELECT `+sessionColumns+` FROM connect_sessions
		WHERE id`+q.D.ByteOrder+` > $1 AND used_at IS NULL AND expires_at > $2 AND verifier_kid <> '' AND verifier_kid <> $3
		ORDER BY id`+q.D.ByteOrder+` LIMIT $4`, p.AfterID, q.ts(p.Now), p.KeyID, storage.ClampLimit(p.Limit, 500, 5000))
}

func (q Queries) ConnectSessionReseal(ctx context.Context, p storage.ConnectSessionResealParams) error {
	n, err := q.W.Exec(ctx, `UPDATE connect_sessions SET verifier_kid = $1, verifier_ct = $2 WHERE id = $3 AND verifier_kid = $4`,
		p.Verifier.KeyID, blob(p.Verifier), p.ID, p.OldKeyID)
	return q.casResult(ctx, n, err, "connect_sessions", p.ID)
}

func (q Queries) ConnectSessionOpen(ctx context.Context, p storage.ConnectSessionOpenParams) error {
	n, err := q.W.Exec(ctx, `UPDATE connect_sessions SET opened_at = $1, browser_hash = $2
		WHERE id = $3 AND opened_at IS NULL AND used_at IS NULL AND expires_at > $1`, q.ts(p.Now), p.BrowserHash, p.ID)
	if err != nil {
		return q.mapErr(err)
	}
	if n == 1 {
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

func (q Queries) ConnectSessionFinish(ctx context.Context, p storage.ConnectSessionFinishParams) error {
	missing, err := jsonList(p.Missing)
	if err != nil {
		return err
	}
	_, err = q.W.Exec(ctx, `UPDATE connect_sessions SET outcome = $1, outcome_credential_id = $2, missing_scopes = $3, error_class = $4, error_code = $5 WHERE id = $6`,
		p.Outcome, p.CredentialID, missing, p.ErrorClass, p.ErrorCode, p.ID)
	return q.mapErr(err)
}

func (q Queries) ConnectSessionListReusable(ctx context.Context, p storage.ConnectSessionListReusableParams) ([]*storage.ConnectSession, error) {
	return queryRows(ctx, q, q.R, q.scanSession, `SELECT `+sessionColumns+` FROM connect_sessions
		WHERE tenant_id = $1 AND credential_id = $2 AND opened_at IS NULL AND used_at IS NULL AND expires_at > $3
		ORDER BY created_at DESC, id LIMIT $4`, p.TenantID, p.CredentialID, q.ts(p.Until), storage.ClampLimit(p.Limit, 10, 100))
}

func (q Queries) ConnectSessionDeleteExpired(ctx context.Context, p storage.ConnectSessionDeleteExpiredParams) (int64, error) {
	n, err := q.W.Exec(ctx, `DELETE FROM connect_sessions WHERE id IN (SELECT id FROM connect_sessions WHERE expires_at < $1 LIMIT $2)`,
		q.ts(p.Before), storage.ClampLimit(p.Limit, 1000, 10000))
	return n, q.mapErr(err)
}
