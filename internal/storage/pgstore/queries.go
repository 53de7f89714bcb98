package pgstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/internal/keyring"
	"github.com/authgate/authgate/internal/storage"
)

// execer is what *pgxpool.Pool and pgx.Tx share.
type execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// queries answers storage.Queries on the pool, or inside Store.Tx on its
// transaction (inTx).
type queries struct {
	db   execer
	inTx bool
}

var _ storage.Queries = queries{}

// ts maps the zero time to NULL; others go in at microsecond precision.
func ts(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Truncate(time.Microsecond)
}

func fromTS(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

func jsonList(s []string) (string, error) {
	if s == nil {
		s = []string{}
	}
	b, err := json.Marshal(s)
	return string(b), err
}

func blob(s keyring.Sealed) any {
	if s.IsZero() {
		return nil
	}
	return s.Data
}

type scanner interface{ Scan(dest ...any) error }

func (q queries) TenantInsert(ctx context.Context, t storage.Tenant) error {
	urls, err := jsonList(t.ReturnURLAllowList)
	if err != nil {
		return err
	}
	_, err = q.db.Exec(ctx, `INSERT INTO tenants (id, name, created_at, return_url_allowlist) VALUES ($1, $2, $3, $4::jsonb)`, t.ID, t.Name, ts(t.CreatedAt), urls)
	return mapErr(err)
}

const tenantColumns = `id, name, created_at, return_url_allowlist`

func scanTenant(s scanner) (storage.Tenant, error) {
	var t storage.Tenant
	var urls []byte
	if err := s.Scan(&t.ID, &t.Name, &t.CreatedAt, &urls); err != nil {
		return t, mapErr(err)
	}
	t.CreatedAt = t.CreatedAt.UTC()
	if err := json.Unmarshal(urls, &t.ReturnURLAllowList); err != nil {
		return t, fmt.Errorf("tenant %s: return_url_allowlist: %w", t.ID, err)
	}
	return t, nil
}

func (q queries) TenantGetByID(ctx context.Context, id authgate.TenantID) (storage.Tenant, error) {
	return scanTenant(q.db.QueryRow(ctx, `SELECT `+tenantColumns+` FROM tenants WHERE id = $1`, id))
}

func (q queries) TenantGetByName(ctx context.Context, name string) (storage.Tenant, error) {
	return scanTenant(q.db.QueryRow(ctx, `SELECT `+tenantColumns+` FROM tenants WHERE name = $1`, name))
}

func (q queries) TenantList(ctx context.Context) ([]storage.Tenant, error) {
	return queryRows(ctx, q.db, scanTenant, `SELECT `+tenantColumns+` FROM tenants ORDER BY created_at, id`)
}

func (q queries) TenantSetReturnURLs(ctx context.Context, id authgate.TenantID, prefixes []string) error {
	urls, err := jsonList(prefixes)
	if err != nil {
		return err
	}
	tag, err := q.db.Exec(ctx, `UPDATE tenants SET return_url_allowlist = $1::jsonb WHERE id = $2`, urls, id)
	if err != nil {
		return mapErr(err)
	}
	if tag.RowsAffected() != 1 {
		return storage.ErrNotFound
	}
	return nil
}

func queryRows[T any](ctx context.Context, db execer, scan func(scanner) (T, error), sql string, args ...any) ([]T, error) {
	rows, err := db.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
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
	return out, rows.Err()
}

func (q queries) APIKeyInsert(ctx context.Context, k storage.APIKey) error {
	_, err := q.db.Exec(ctx, `INSERT INTO api_keys (id, tenant_id, hash, name, created_at) VALUES ($1, $2, $3, $4, $5)`, k.ID, k.TenantID, k.Hash, k.Name, ts(k.CreatedAt))
	return mapErr(err)
}

func (q queries) APIKeyGetByHash(ctx context.Context, hash []byte) (storage.APIKey, error) {
	var k storage.APIKey
	err := q.db.QueryRow(ctx, `SELECT id, tenant_id, hash, name, created_at FROM api_keys WHERE hash = $1 AND revoked_at IS NULL`, hash).
		Scan(&k.ID, &k.TenantID, &k.Hash, &k.Name, &k.CreatedAt)
	k.CreatedAt = k.CreatedAt.UTC()
	return k, mapErr(err)
}

const credentialColumns = `id, tenant_id, user_id, provider, workspace_id, subject, email, account_type, domain,
	granted_scopes, requested_scopes, token_type,
	access_token_kid, access_token_ct, access_token_fp, access_token_expires_at,
	refresh_token_kid, refresh_token_ct, refresh_token_fp,
	status, status_reason, version, created_at, updated_at, last_used_at, last_refreshed_at,
	clock_skew_ms, clock_skew_at, lease_holder, lease_expires_at,
	last_verified_at, last_verdict, last_verification`

func (q queries) CredentialInsert(ctx context.Context, c *storage.Credential) error {
	granted, err := jsonList(c.GrantedScopes)
	if err != nil {
		return err
	}
	requested, err := jsonList(c.RequestedScopes)
	if err != nil {
		return err
	}
	_, err = q.db.Exec(ctx, `INSERT INTO credentials (`+credentialColumns+`) VALUES
		($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb, $11::jsonb, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, '', NULL, NULL, '', NULL)`,
		c.ID, c.TenantID, c.UserID, c.Provider, c.WorkspaceID, c.Subject, c.Email, c.AccountType, c.Domain,
		granted, requested, c.TokenType,
		c.AccessToken.KeyID, blob(c.AccessToken), c.AccessTokenFP, ts(c.AccessTokenExpiresAt),
		c.RefreshToken.KeyID, blob(c.RefreshToken), c.RefreshTokenFP,
		c.Status, c.StatusReason, c.Version, ts(c.CreatedAt), ts(c.UpdatedAt), ts(c.LastUsedAt), ts(c.LastRefreshedAt),
		c.ClockSkew.Milliseconds(), ts(c.ClockSkewAt))
	return mapErr(err)
}

func scanCredential(s scanner) (*storage.Credential, error) {
	var c storage.Credential
	var granted, requested []byte
	var accessExp, lastUsed, lastRefreshed, skewAt, leaseExp, verifiedAt *time.Time
	var skewMS int64
	var verification []byte
	err := s.Scan(&c.ID, &c.TenantID, &c.UserID, &c.Provider, &c.WorkspaceID, &c.Subject, &c.Email, &c.AccountType, &c.Domain,
		&granted, &requested, &c.TokenType,
		&c.AccessToken.KeyID, &c.AccessToken.Data, &c.AccessTokenFP, &accessExp,
		&c.RefreshToken.KeyID, &c.RefreshToken.Data, &c.RefreshTokenFP,
		&c.Status, &c.StatusReason, &c.Version, &c.CreatedAt, &c.UpdatedAt, &lastUsed, &lastRefreshed,
		&skewMS, &skewAt, &c.LeaseHolder, &leaseExp,
		&verifiedAt, &c.LastVerdict, &verification)
	if err != nil {
		return nil, mapErr(err)
	}
	c.LastVerifiedAt = fromTS(verifiedAt)
	if len(verification) > 0 {
		c.LastVerification = json.RawMessage(verification)
	}
	if err := json.Unmarshal(granted, &c.GrantedScopes); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(requested, &c.RequestedScopes); err != nil {
		return nil, err
	}
	c.CreatedAt, c.UpdatedAt = c.CreatedAt.UTC(), c.UpdatedAt.UTC()
	c.AccessTokenExpiresAt, c.LastUsedAt, c.LastRefreshedAt = fromTS(accessExp), fromTS(lastUsed), fromTS(lastRefreshed)
	c.ClockSkew, c.ClockSkewAt, c.LeaseExpiresAt = time.Duration(skewMS)*time.Millisecond, fromTS(skewAt), fromTS(leaseExp)
	return &c, nil
}

// CredentialGetByID locks the row inside a transaction (FOR UPDATE): a
// transaction that reads a credential and then compare-and-swaps it waits
// for any other such transaction on the row to commit and then reads its
// result, so read-modify-write transactions run one after another, as
// SQLite's immediate transactions do, instead of the later one losing its
// compare-and-swap. Outside a transaction nothing is locked.
func (q queries) CredentialGetByID(ctx context.Context, p storage.CredentialGetByIDParams) (*storage.Credential, error) {
	query := `SELECT ` + credentialColumns + ` FROM credentials WHERE id = $1 AND tenant_id = $2`
	if q.inTx {
		query += ` FOR UPDATE`
	}
	return scanCredential(q.db.QueryRow(ctx, query, p.ID, p.TenantID))
}

func (q queries) CredentialGetBySlot(ctx context.Context, s storage.Slot) (*storage.Credential, error) {
	return scanCredential(q.db.QueryRow(ctx, `SELECT `+credentialColumns+` FROM credentials
		WHERE tenant_id = $1 AND user_id = $2 AND provider = $3 AND workspace_id = $4 AND subject = $5`, s.TenantID, s.UserID, s.Provider, s.WorkspaceID, s.Subject))
}

func (q queries) CredentialList(ctx context.Context, p storage.CredentialListParams) ([]*storage.Credential, error) {
	var where []string
	var args []any
	add := func(col string, v any) {
		args = append(args, v)
		where = append(where, fmt.Sprintf("%s $%d", col, len(args)))
	}
	if !p.AllTenants {
		add("tenant_id =", p.TenantID)
	}
	if p.UserID != "" {
		add("user_id =", p.UserID)
	}
	if p.Provider != "" {
		add("provider =", p.Provider)
	}
	if p.Status != "" {
		add("status =", p.Status)
	}
	if p.AfterID != "" {
		add(`id COLLATE "C" >`, p.AfterID)
	}
	sql := `SELECT ` + credentialColumns + ` FROM credentials`
	if len(where) > 0 {
		sql += ` WHERE ` + strings.Join(where, " AND ")
	}
	args = append(args, storage.ClampLimit(p.Limit, 100, 1000))
	sql += fmt.Sprintf(` ORDER BY id COLLATE "C" LIMIT $%d`, len(args))
	return queryRows(ctx, q.db, scanCredential, sql, args...)
}

func (q queries) CredentialUpdateCAS(ctx context.Context, c *storage.Credential) error {
	granted, err := jsonList(c.GrantedScopes)
	if err != nil {
		return err
	}
	requested, err := jsonList(c.RequestedScopes)
	if err != nil {
		return err
	}
	tag, err := q.db.Exec(ctx, `UPDATE credentials SET
		email = $1, account_type = $2, domain = $3, granted_scopes = $4::jsonb, requested_scopes = $5::jsonb, token_type = $6,
		access_token_kid = $7, access_token_ct = $8, access_token_fp = $9, access_token_expires_at = $10,
		refresh_token_kid = $11, refresh_token_ct = $12, refresh_token_fp = $13,
		status = $14, status_reason = $15, updated_at = $16, last_used_at = $17, last_refreshed_at = $18,
		clock_skew_ms = $19, clock_skew_at = $20, version = version + 1
		WHERE id = $21 AND tenant_id = $22 AND version = $23`,
		c.Email, c.AccountType, c.Domain, granted, requested, c.TokenType,
		c.AccessToken.KeyID, blob(c.AccessToken), c.AccessTokenFP, ts(c.AccessTokenExpiresAt),
		c.RefreshToken.KeyID, blob(c.RefreshToken), c.RefreshTokenFP,
		c.Status, c.StatusReason, ts(c.UpdatedAt), ts(c.LastUsedAt), ts(c.LastRefreshedAt),
		c.ClockSkew.Milliseconds(), ts(c.ClockSkewAt), c.ID, c.TenantID, c.Version)
	if err != nil {
		return mapErr(err)
	}
	return q.casResult(ctx, tag, c.ID, func() { c.Version++ })
}

func (q queries) casResult(ctx context.Context, tag pgconn.CommandTag, id authgate.CredentialID, won func()) error {
	if tag.RowsAffected() == 1 {
		won()
		return nil
	}
	var one int
	err := q.db.QueryRow(ctx, `SELECT 1 FROM credentials WHERE id = $1`, id).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return storage.ErrNotFound
	}
	if err != nil {
		return err
	}
	return storage.ErrVersionConflict
}

func (q queries) CredentialListSealedNotWith(ctx context.Context, p storage.CredentialListSealedNotWithParams) ([]*storage.Credential, error) {
	return queryRows(ctx, q.db, scanCredential, `SELECT `+credentialColumns+` FROM credentials
		WHERE id COLLATE "C" > $1 AND ((access_token_kid <> '' AND access_token_kid <> $2) OR (refresh_token_kid <> '' AND refresh_token_kid <> $2))
		ORDER BY id COLLATE "C" LIMIT $3`, p.AfterID, p.KeyID, storage.ClampLimit(p.Limit, 500, 5000))
}

func (q queries) CredentialReseal(ctx context.Context, p storage.CredentialResealParams) error {
	tag, err := q.db.Exec(ctx, `UPDATE credentials SET access_token_kid = $1, access_token_ct = $2, refresh_token_kid = $3, refresh_token_ct = $4,
		version = version + 1
		WHERE id = $5 AND version = $6`, p.AccessToken.KeyID, blob(p.AccessToken), p.RefreshToken.KeyID, blob(p.RefreshToken), p.ID, p.Version)
	if err != nil {
		return mapErr(err)
	}
	return q.casResult(ctx, tag, p.ID, func() {})
}

// CredentialTouchBatch queues one UPDATE per entry in a pgx batch: pgx
// prepares the statement once and sends every execution in one round trip.
// Store.CredentialTouchBatch wraps it in a transaction. Rows are updated in
// id order, so two batches touching the same credentials lock them in the
// same order and cannot deadlock. Touches change neither version, lease
// holder nor status, so the change-feed trigger does not fire.
func (q queries) CredentialTouchBatch(ctx context.Context, touches []storage.CredentialTouch) error {
	if len(touches) == 0 {
		return nil
	}
	sorted := slices.Clone(touches)
	slices.SortFunc(sorted, func(a, b storage.CredentialTouch) int { return strings.Compare(string(a.ID), string(b.ID)) })
	b := &pgx.Batch{}
	for _, t := range sorted {
		b.Queue(`UPDATE credentials SET last_used_at = $1 WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $1)`, ts(t.At), t.ID)
	}
	br := q.db.SendBatch(ctx, b)
	for _, t := range sorted {
		if _, err := br.Exec(); err != nil {
			br.Close()
			return fmt.Errorf("touch %s: %w", t.ID, mapErr(err))
		}
	}
	return mapErr(br.Close())
}

var errEmptyHolder = errors.New("lease: empty holder name")

func (q queries) CredentialLeaseAcquire(ctx context.Context, p storage.CredentialLeaseParams) (bool, error) {
	if p.Holder == "" {
		return false, errEmptyHolder
	}
	tag, err := q.db.Exec(ctx, `UPDATE credentials SET lease_holder = $1, lease_expires_at = $2
		WHERE id = $3 AND (lease_holder = '' OR lease_expires_at IS NULL OR lease_expires_at <= $4)`,
		p.Holder, ts(p.Until), p.ID, ts(p.Now))
	if err != nil {
		return false, mapErr(err)
	}
	return tag.RowsAffected() == 1, nil
}

func (q queries) CredentialLeaseRenew(ctx context.Context, p storage.CredentialLeaseParams) (bool, error) {
	if p.Holder == "" {
		return false, errEmptyHolder
	}
	tag, err := q.db.Exec(ctx, `UPDATE credentials SET lease_expires_at = $1 WHERE id = $2 AND lease_holder = $3`, ts(p.Until), p.ID, p.Holder)
	if err != nil {
		return false, mapErr(err)
	}
	return tag.RowsAffected() == 1, nil
}

func (q queries) CredentialLeaseRelease(ctx context.Context, p storage.CredentialLeaseParams) error {
	_, err := q.db.Exec(ctx, `UPDATE credentials SET lease_holder = '', lease_expires_at = NULL WHERE id = $1 AND lease_holder = $2`, p.ID, p.Holder)
	return mapErr(err)
}

func (q queries) CredentialSetVerified(ctx context.Context, p storage.CredentialSetVerifiedParams) error {
	if !json.Valid(p.Result) {
		return errors.New("verification result is not valid JSON")
	}
	tag, err := q.db.Exec(ctx, `UPDATE credentials SET last_verified_at = $1, last_verdict = $2, last_verification = $3::jsonb WHERE id = $4 AND tenant_id = $5`,
		ts(p.At), p.Verdict, string(p.Result), p.ID, p.TenantID)
	if err != nil {
		return mapErr(err)
	}
	if tag.RowsAffected() != 1 {
		return storage.ErrNotFound
	}
	return nil
}

func (q queries) EventInsert(ctx context.Context, e *storage.Event) error {
	details := string(e.Details)
	if details == "" || details == "null" {
		details = "{}"
	}
	if !json.Valid([]byte(details)) {
		return errors.New("event details are not valid JSON")
	}
	err := q.db.QueryRow(ctx, `INSERT INTO credential_events (tenant_id, credential_id, type, at, actor, details)
		VALUES ($1, $2, $3, $4, $5, $6::jsonb) RETURNING id`, e.TenantID, e.CredentialID, e.Type, ts(e.At), e.Actor, details).Scan(&e.ID)
	return mapErr(err)
}

func scanEvent(s scanner) (storage.Event, error) {
	var e storage.Event
	var details []byte
	if err := s.Scan(&e.ID, &e.TenantID, &e.CredentialID, &e.Type, &e.At, &e.Actor, &details); err != nil {
		return e, err
	}
	e.At = e.At.UTC()
	// JSONB prints with spaces; compact it, as the other backend returns it.
	var buf bytes.Buffer
	if err := json.Compact(&buf, details); err != nil {
		return e, err
	}
	e.Details = json.RawMessage(buf.Bytes())
	return e, nil
}

func (q queries) EventList(ctx context.Context, p storage.EventListParams) ([]storage.Event, error) {
	return queryRows(ctx, q.db, scanEvent, `SELECT id, tenant_id, credential_id, type, at, actor, details::text FROM credential_events
		WHERE tenant_id = $1 AND credential_id = $2 AND id > $3 ORDER BY id LIMIT $4`,
		p.TenantID, p.CredentialID, p.AfterID, storage.ClampLimit(p.Limit, 100, 1000))
}

const sessionColumns = `id, tenant_id, user_id, provider, credential_id, requested_scopes, actions, login_hint, return_url,
	force_consent, state_hash, verifier_kid, verifier_ct, created_at, expires_at, used_at,
	expected_account, browser_hash, opened_at, outcome, outcome_credential_id, missing_scopes, error_class, error_code`

func (q queries) ConnectSessionInsert(ctx context.Context, s *storage.ConnectSession) error {
	scopes, err := jsonList(s.RequestedScopes)
	if err != nil {
		return err
	}
	actions, err := jsonList(s.Actions)
	if err != nil {
		return err
	}
	_, err = q.db.Exec(ctx, `INSERT INTO connect_sessions (`+sessionColumns+`) VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7::jsonb, $8, $9, $10, $11, $12, $13, $14, $15, NULL, $16, NULL, NULL, '', '', '[]', '', '')`,
		s.ID, s.TenantID, s.UserID, s.Provider, s.CredentialID, scopes, actions, s.LoginHint, s.ReturnURL, s.ForceConsent, s.StateHash,
		s.Verifier.KeyID, blob(s.Verifier), ts(s.CreatedAt), ts(s.ExpiresAt), s.ExpectedAccount)
	return mapErr(err)
}

func scanSession(sc scanner) (*storage.ConnectSession, error) {
	var s storage.ConnectSession
	var scopes, actions []byte
	var used, opened *time.Time
	var missing []byte
	err := sc.Scan(&s.ID, &s.TenantID, &s.UserID, &s.Provider, &s.CredentialID, &scopes, &actions, &s.LoginHint, &s.ReturnURL,
		&s.ForceConsent, &s.StateHash, &s.Verifier.KeyID, &s.Verifier.Data, &s.CreatedAt, &s.ExpiresAt, &used,
		&s.ExpectedAccount, &s.BrowserHash, &opened, &s.Outcome, &s.OutcomeCredentialID, &missing, &s.ErrorClass, &s.ErrorCode)
	if err != nil {
		return nil, mapErr(err)
	}
	if err := json.Unmarshal(scopes, &s.RequestedScopes); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(actions, &s.Actions); err != nil {
		return nil, err
	}
	s.CreatedAt, s.ExpiresAt, s.UsedAt = s.CreatedAt.UTC(), s.ExpiresAt.UTC(), fromTS(used)
	s.OpenedAt = fromTS(opened)
	if len(missing) > 0 && string(missing) != "[]" {
		if err := json.Unmarshal(missing, &s.MissingScopes); err != nil {
			return nil, err
		}
	}
	return &s, nil
}

func (q queries) ConnectSessionGet(ctx context.Context, id string) (*storage.ConnectSession, error) {
	return scanSession(q.db.QueryRow(ctx, `SELECT `+sessionColumns+` FROM connect_sessions WHERE id = $1`, id))
}

func (q queries) ConnectSessionGetByState(ctx context.Context, stateHash []byte) (*storage.ConnectSession, error) {
	return scanSession(q.db.QueryRow(ctx, `SELECT `+sessionColumns+` FROM connect_sessions WHERE state_hash = $1`, stateHash))
}

func (q queries) ConnectSessionConsume(ctx context.Context, id string, now time.Time) error {
	tag, err := q.db.Exec(ctx, `UPDATE connect_sessions SET used_at = $1 WHERE id = $2 AND used_at IS NULL AND expires_at > $1`, ts(now), id)
	if err != nil {
		return mapErr(err)
	}
	if tag.RowsAffected() != 1 {
		return storage.ErrNotFound
	}
	return nil
}

func (q queries) ConnectSessionListSealedNotWith(ctx context.Context, p storage.ConnectSessionListSealedNotWithParams) ([]*storage.ConnectSession, error) {
	return queryRows(ctx, q.db, scanSession, `SELECT `+sessionColumns+` FROM connect_sessions
		WHERE id COLLATE "C" > $1 AND used_at IS NULL AND expires_at > $2 AND verifier_kid <> '' AND verifier_kid <> $3
		ORDER BY id COLLATE "C" LIMIT $4`, p.AfterID, ts(p.Now), p.KeyID, storage.ClampLimit(p.Limit, 500, 5000))
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
	var one int
	err = q.db.QueryRow(ctx, `SELECT 1 FROM connect_sessions WHERE id = $1`, p.ID).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return storage.ErrNotFound
	}
	if err != nil {
		return err
	}
	return storage.ErrVersionConflict
}
