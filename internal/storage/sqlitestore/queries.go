package sqlitestore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/internal/keyring"
	"github.com/authgate/authgate/internal/storage"
)

// execer is what *sql.DB and *sql.Tx share.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	PrepareContext(ctx context.Context, query string) (*sql.Stmt, error)
}

// queries answers storage.Queries; r serves reads and w writes (both the same
// *sql.Tx inside a transaction). hot holds the hot-path reads prepared once
// on the read pool; it is nil inside a transaction, whose reads run on the
// write connection.
type queries struct {
	r, w execer
	hot  *hotStmts
}

// hotStmts are the reads on every token request, prepared once at Open so
// SQLite compiles them once per read connection rather than once per call.
type hotStmts struct {
	credentialByID *sql.Stmt
	apiKeyByHash   *sql.Stmt
}

const (
	credentialByIDQuery = `SELECT ` + credentialColumns + ` FROM credentials WHERE id = ? AND tenant_id = ?`
	apiKeyByHashQuery   = `SELECT id, tenant_id, hash, name, created_at FROM api_keys WHERE hash = ? AND revoked_at IS NULL`
)

func prepareHot(ctx context.Context, db *sql.DB) (*hotStmts, error) {
	byID, err := db.PrepareContext(ctx, credentialByIDQuery)
	if err != nil {
		return nil, fmt.Errorf("prepare credential by id: %w", err)
	}
	byHash, err := db.PrepareContext(ctx, apiKeyByHashQuery)
	if err != nil {
		byID.Close()
		return nil, fmt.Errorf("prepare api key by hash: %w", err)
	}
	return &hotStmts{credentialByID: byID, apiKeyByHash: byHash}, nil
}

func (h *hotStmts) close() error {
	if h == nil {
		return nil
	}
	return errors.Join(h.credentialByID.Close(), h.apiKeyByHash.Close())
}

var _ storage.Queries = queries{}

func micros(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMicro()
}

func fromMicros(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return time.UnixMicro(v.Int64).UTC()
}

func (q queries) TenantInsert(ctx context.Context, t storage.Tenant) error {
	urls, err := scopesJSON(t.ReturnURLAllowList)
	if err != nil {
		return err
	}
	_, err = q.w.ExecContext(ctx, `INSERT INTO tenants (id, name, created_at, return_url_allowlist) VALUES (?, ?, ?, ?)`, t.ID, t.Name, t.CreatedAt.UnixMicro(), urls)
	return mapErr(err)
}

func scanTenant(s scanner) (storage.Tenant, error) {
	var t storage.Tenant
	var created int64
	var urls string
	if err := s.Scan(&t.ID, &t.Name, &created, &urls); err != nil {
		return t, mapErr(err)
	}
	t.CreatedAt = time.UnixMicro(created).UTC()
	if err := json.Unmarshal([]byte(urls), &t.ReturnURLAllowList); err != nil {
		return t, fmt.Errorf("tenant %s: return_url_allowlist: %w", t.ID, err)
	}
	return t, nil
}

const tenantColumns = `id, name, created_at, return_url_allowlist`

func (q queries) tenantGet(ctx context.Context, where string, arg any) (storage.Tenant, error) {
	return scanTenant(q.r.QueryRowContext(ctx, `SELECT `+tenantColumns+` FROM tenants WHERE `+where, arg))
}

func (q queries) TenantSetReturnURLs(ctx context.Context, id authgate.TenantID, prefixes []string) error {
	urls, err := scopesJSON(prefixes)
	if err != nil {
		return err
	}
	res, err := q.w.ExecContext(ctx, `UPDATE tenants SET return_url_allowlist = ? WHERE id = ?`, urls, id)
	if err != nil {
		return mapErr(err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return storage.ErrNotFound
	}
	return nil
}

func (q queries) TenantGetByID(ctx context.Context, id authgate.TenantID) (storage.Tenant, error) {
	return q.tenantGet(ctx, "id = ?", id)
}

func (q queries) TenantGetByName(ctx context.Context, name string) (storage.Tenant, error) {
	return q.tenantGet(ctx, "name = ?", name)
}

func (q queries) TenantList(ctx context.Context) ([]storage.Tenant, error) {
	return queryRows(ctx, q.r, scanTenant, `SELECT `+tenantColumns+` FROM tenants ORDER BY created_at, id`)
}

// queryRows runs a query and scans every row with scan.
func queryRows[T any](ctx context.Context, db execer, scan func(scanner) (T, error), query string, args ...any) ([]T, error) {
	rows, err := db.QueryContext(ctx, query, args...)
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
	_, err := q.w.ExecContext(ctx, `INSERT INTO api_keys (id, tenant_id, hash, name, created_at) VALUES (?, ?, ?, ?, ?)`,
		k.ID, k.TenantID, k.Hash, k.Name, k.CreatedAt.UnixMicro())
	return mapErr(err)
}

func (q queries) APIKeyGetByHash(ctx context.Context, hash []byte) (storage.APIKey, error) {
	var k storage.APIKey
	var created int64
	var row *sql.Row
	if q.hot != nil {
		row = q.hot.apiKeyByHash.QueryRowContext(ctx, hash)
	} else {
		row = q.r.QueryRowContext(ctx, apiKeyByHashQuery, hash)
	}
	err := row.Scan(&k.ID, &k.TenantID, &k.Hash, &k.Name, &created)
	if err != nil {
		return k, mapErr(err)
	}
	k.CreatedAt = time.UnixMicro(created).UTC()
	return k, nil
}

const credentialColumns = `id, tenant_id, user_id, provider, workspace_id, subject, email, account_type, domain,
	granted_scopes, requested_scopes, token_type,
	access_token_kid, access_token_ct, access_token_fp, access_token_expires_at,
	refresh_token_kid, refresh_token_ct, refresh_token_fp,
	status, status_reason, version, created_at, updated_at, last_used_at, last_refreshed_at,
	clock_skew_ms, clock_skew_at, lease_holder, lease_expires_at,
	last_verified_at, last_verdict, last_verification`

func scopesJSON(s []string) (string, error) {
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

func (q queries) CredentialInsert(ctx context.Context, c *storage.Credential) error {
	granted, err := scopesJSON(c.GrantedScopes)
	if err != nil {
		return err
	}
	requested, err := scopesJSON(c.RequestedScopes)
	if err != nil {
		return err
	}
	_, err = q.w.ExecContext(ctx, `INSERT INTO credentials (`+credentialColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '', NULL, NULL, '', '')`,
		c.ID, c.TenantID, c.UserID, c.Provider, c.WorkspaceID, c.Subject, c.Email, c.AccountType, c.Domain,
		granted, requested, c.TokenType,
		c.AccessToken.KeyID, blob(c.AccessToken), c.AccessTokenFP, micros(c.AccessTokenExpiresAt),
		c.RefreshToken.KeyID, blob(c.RefreshToken), c.RefreshTokenFP,
		c.Status, c.StatusReason, c.Version, c.CreatedAt.UnixMicro(), c.UpdatedAt.UnixMicro(), micros(c.LastUsedAt), micros(c.LastRefreshedAt),
		c.ClockSkew.Milliseconds(), micros(c.ClockSkewAt))
	return mapErr(err)
}

type scanner interface{ Scan(dest ...any) error }

func scanCredential(s scanner) (*storage.Credential, error) {
	var c storage.Credential
	var granted, requested string
	var accessExp, lastUsed, lastRefreshed, skewAt, leaseExp, verifiedAt sql.NullInt64
	var created, updated, skewMS int64
	var verification string
	err := s.Scan(&c.ID, &c.TenantID, &c.UserID, &c.Provider, &c.WorkspaceID, &c.Subject, &c.Email, &c.AccountType, &c.Domain,
		&granted, &requested, &c.TokenType,
		&c.AccessToken.KeyID, &c.AccessToken.Data, &c.AccessTokenFP, &accessExp,
		&c.RefreshToken.KeyID, &c.RefreshToken.Data, &c.RefreshTokenFP,
		&c.Status, &c.StatusReason, &c.Version, &created, &updated, &lastUsed, &lastRefreshed,
		&skewMS, &skewAt, &c.LeaseHolder, &leaseExp,
		&verifiedAt, &c.LastVerdict, &verification)
	if err != nil {
		return nil, mapErr(err)
	}
	c.LastVerifiedAt = fromMicros(verifiedAt)
	if verification != "" {
		c.LastVerification = json.RawMessage(verification)
	}
	if err := json.Unmarshal([]byte(granted), &c.GrantedScopes); err != nil {
		return nil, fmt.Errorf("credential %s: granted_scopes: %w", c.ID, err)
	}
	if err := json.Unmarshal([]byte(requested), &c.RequestedScopes); err != nil {
		return nil, fmt.Errorf("credential %s: requested_scopes: %w", c.ID, err)
	}
	c.AccessTokenExpiresAt = fromMicros(accessExp)
	c.LastUsedAt = fromMicros(lastUsed)
	c.LastRefreshedAt = fromMicros(lastRefreshed)
	c.CreatedAt = time.UnixMicro(created).UTC()
	c.UpdatedAt = time.UnixMicro(updated).UTC()
	c.ClockSkew = time.Duration(skewMS) * time.Millisecond
	c.ClockSkewAt = fromMicros(skewAt)
	c.LeaseExpiresAt = fromMicros(leaseExp)
	return &c, nil
}

func (q queries) CredentialGetByID(ctx context.Context, p storage.CredentialGetByIDParams) (*storage.Credential, error) {
	if q.hot != nil {
		return scanCredential(q.hot.credentialByID.QueryRowContext(ctx, p.ID, p.TenantID))
	}
	return scanCredential(q.r.QueryRowContext(ctx, credentialByIDQuery, p.ID, p.TenantID))
}

func (q queries) CredentialGetBySlot(ctx context.Context, s storage.Slot) (*storage.Credential, error) {
	return scanCredential(q.r.QueryRowContext(ctx, `SELECT `+credentialColumns+` FROM credentials
		WHERE tenant_id = ? AND user_id = ? AND provider = ? AND workspace_id = ? AND subject = ?`,
		s.TenantID, s.UserID, s.Provider, s.WorkspaceID, s.Subject))
}

func (q queries) credentialQuery(ctx context.Context, query string, args ...any) ([]*storage.Credential, error) {
	return queryRows(ctx, q.r, scanCredential, query, args...)
}

func (q queries) CredentialList(ctx context.Context, p storage.CredentialListParams) ([]*storage.Credential, error) {
	var where []string
	var args []any
	add := func(cond string, v any) { where = append(where, cond); args = append(args, v) }
	if !p.AllTenants {
		add("tenant_id = ?", p.TenantID)
	}
	if p.UserID != "" {
		add("user_id = ?", p.UserID)
	}
	if p.Provider != "" {
		add("provider = ?", p.Provider)
	}
	if p.Status != "" {
		add("status = ?", p.Status)
	}
	if p.AfterID != "" {
		add("id > ?", p.AfterID)
	}
	query := `SELECT ` + credentialColumns + ` FROM credentials`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, " AND ")
	}
	query += ` ORDER BY id LIMIT ?`
	args = append(args, storage.ClampLimit(p.Limit, 100, 1000))
	return q.credentialQuery(ctx, query, args...)
}

func (q queries) CredentialUpdateCAS(ctx context.Context, c *storage.Credential) error {
	granted, err := scopesJSON(c.GrantedScopes)
	if err != nil {
		return err
	}
	requested, err := scopesJSON(c.RequestedScopes)
	if err != nil {
		return err
	}
	res, err := q.w.ExecContext(ctx, `UPDATE credentials SET
		email = ?, account_type = ?, domain = ?, granted_scopes = ?, requested_scopes = ?, token_type = ?,
		access_token_kid = ?, access_token_ct = ?, access_token_fp = ?, access_token_expires_at = ?,
		refresh_token_kid = ?, refresh_token_ct = ?, refresh_token_fp = ?,
		status = ?, status_reason = ?, updated_at = ?, last_used_at = ?, last_refreshed_at = ?,
		clock_skew_ms = ?, clock_skew_at = ?,
		version = version + 1
		WHERE id = ? AND tenant_id = ? AND version = ?`,
		c.Email, c.AccountType, c.Domain, granted, requested, c.TokenType,
		c.AccessToken.KeyID, blob(c.AccessToken), c.AccessTokenFP, micros(c.AccessTokenExpiresAt),
		c.RefreshToken.KeyID, blob(c.RefreshToken), c.RefreshTokenFP,
		c.Status, c.StatusReason, c.UpdatedAt.UnixMicro(), micros(c.LastUsedAt), micros(c.LastRefreshedAt),
		c.ClockSkew.Milliseconds(), micros(c.ClockSkewAt),
		c.ID, c.TenantID, c.Version)
	if err != nil {
		return mapErr(err)
	}
	return q.casResult(ctx, res, c.ID, func() { c.Version++ })
}

// casResult turns "0 rows updated" into ErrVersionConflict or ErrNotFound.
func (q queries) casResult(ctx context.Context, res sql.Result, id authgate.CredentialID, won func()) error {
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 1 {
		won()
		return nil
	}
	var one int
	err = q.w.QueryRowContext(ctx, `SELECT 1 FROM credentials WHERE id = ?`, id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return storage.ErrNotFound
	}
	if err != nil {
		return err
	}
	return storage.ErrVersionConflict
}

func (q queries) CredentialListSealedNotWith(ctx context.Context, p storage.CredentialListSealedNotWithParams) ([]*storage.Credential, error) {
	return q.credentialQuery(ctx, `SELECT `+credentialColumns+` FROM credentials
		WHERE id > ? AND ((access_token_kid <> '' AND access_token_kid <> ?) OR (refresh_token_kid <> '' AND refresh_token_kid <> ?))
		ORDER BY id LIMIT ?`, p.AfterID, p.KeyID, p.KeyID, storage.ClampLimit(p.Limit, 500, 5000))
}

func (q queries) CredentialReseal(ctx context.Context, p storage.CredentialResealParams) error {
	res, err := q.w.ExecContext(ctx, `UPDATE credentials SET
		access_token_kid = ?, access_token_ct = ?, refresh_token_kid = ?, refresh_token_ct = ?,
		version = version + 1
		WHERE id = ? AND version = ?`,
		p.AccessToken.KeyID, blob(p.AccessToken), p.RefreshToken.KeyID, blob(p.RefreshToken), p.ID, p.Version)
	if err != nil {
		return mapErr(err)
	}
	return q.casResult(ctx, res, p.ID, func() {})
}

func (q queries) CredentialSetVerified(ctx context.Context, p storage.CredentialSetVerifiedParams) error {
	if !json.Valid(p.Result) {
		return errors.New("verification result is not valid JSON")
	}
	res, err := q.w.ExecContext(ctx, `UPDATE credentials SET last_verified_at = ?, last_verdict = ?, last_verification = ? WHERE id = ? AND tenant_id = ?`,
		p.At.UnixMicro(), p.Verdict, string(p.Result), p.ID, p.TenantID)
	if err != nil {
		return mapErr(err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
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
	err := q.w.QueryRowContext(ctx, `INSERT INTO credential_events (tenant_id, credential_id, type, at, actor, details)
		VALUES (?, ?, ?, ?, ?, ?) RETURNING id`, e.TenantID, e.CredentialID, e.Type, e.At.UnixMicro(), e.Actor, details).Scan(&e.ID)
	return mapErr(err)
}

func scanEvent(s scanner) (storage.Event, error) {
	var e storage.Event
	var at int64
	var details string
	if err := s.Scan(&e.ID, &e.TenantID, &e.CredentialID, &e.Type, &at, &e.Actor, &details); err != nil {
		return e, err
	}
	e.At = time.UnixMicro(at).UTC()
	e.Details = json.RawMessage(details)
	return e, nil
}

func (q queries) EventList(ctx context.Context, p storage.EventListParams) ([]storage.Event, error) {
	return queryRows(ctx, q.r, scanEvent, `SELECT id, tenant_id, credential_id, type, at, actor, details FROM credential_events
		WHERE tenant_id = ? AND credential_id = ? AND id > ? ORDER BY id LIMIT ?`,
		p.TenantID, p.CredentialID, p.AfterID, storage.ClampLimit(p.Limit, 100, 1000))
}

// CredentialTouchBatch runs one prepared UPDATE per entry on the caller's
// connection; Store.CredentialTouchBatch wraps it in a transaction. Touches
// change neither version, lease holder nor status, so the change feed's
// triggers do not fire.
func (q queries) CredentialTouchBatch(ctx context.Context, touches []storage.CredentialTouch) error {
	if len(touches) == 0 {
		return nil
	}
	stmt, err := q.w.PrepareContext(ctx, `UPDATE credentials SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)`)
	if err != nil {
		return fmt.Errorf("touch: prepare: %w", err)
	}
	defer stmt.Close()
	for _, t := range touches {
		at := micros(t.At)
		if _, err := stmt.ExecContext(ctx, at, t.ID, at); err != nil {
			return fmt.Errorf("touch %s: %w", t.ID, mapErr(err))
		}
	}
	return nil
}

var errEmptyHolder = errors.New("lease: empty holder name")

func (q queries) CredentialLeaseAcquire(ctx context.Context, p storage.CredentialLeaseParams) (bool, error) {
	if p.Holder == "" {
		return false, errEmptyHolder
	}
	res, err := q.w.ExecContext(ctx, `UPDATE credentials SET lease_holder = ?, lease_expires_at = ?
		WHERE id = ? AND (lease_holder = '' OR lease_expires_at IS NULL OR lease_expires_at <= ?)`,
		p.Holder, p.Until.UnixMicro(), p.ID, p.Now.UnixMicro())
	if err != nil {
		return false, mapErr(err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

func (q queries) CredentialLeaseRenew(ctx context.Context, p storage.CredentialLeaseParams) (bool, error) {
	if p.Holder == "" {
		return false, errEmptyHolder
	}
	res, err := q.w.ExecContext(ctx, `UPDATE credentials SET lease_expires_at = ? WHERE id = ? AND lease_holder = ?`,
		p.Until.UnixMicro(), p.ID, p.Holder)
	if err != nil {
		return false, mapErr(err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

func (q queries) CredentialLeaseRelease(ctx context.Context, p storage.CredentialLeaseParams) error {
	_, err := q.w.ExecContext(ctx, `UPDATE credentials SET lease_holder = '', lease_expires_at = NULL WHERE id = ? AND lease_holder = ?`, p.ID, p.Holder)
	return mapErr(err)
}

const sessionColumns = `id, tenant_id, user_id, provider, credential_id, requested_scopes, actions, login_hint, return_url,
	force_consent, state_hash, verifier_kid, verifier_ct, created_at, expires_at, used_at,
	expected_account, browser_hash, opened_at, outcome, outcome_credential_id, missing_scopes, error_class, error_code`

func (q queries) ConnectSessionInsert(ctx context.Context, s *storage.ConnectSession) error {
	scopes, err := scopesJSON(s.RequestedScopes)
	if err != nil {
		return err
	}
	actions, err := scopesJSON(s.Actions)
	if err != nil {
		return err
	}
	_, err = q.w.ExecContext(ctx, `INSERT INTO connect_sessions (`+sessionColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, NULL, NULL, '', '', '[]', '', '')`,
		s.ID, s.TenantID, s.UserID, s.Provider, s.CredentialID, scopes, actions, s.LoginHint, s.ReturnURL, s.ForceConsent, s.StateHash,
		s.Verifier.KeyID, blob(s.Verifier), s.CreatedAt.UnixMicro(), s.ExpiresAt.UnixMicro(), s.ExpectedAccount)
	return mapErr(err)
}

func scanSession(sc scanner) (*storage.ConnectSession, error) {
	var s storage.ConnectSession
	var scopes, actions string
	var created, expires int64
	var used, opened sql.NullInt64
	var missing string
	err := sc.Scan(&s.ID, &s.TenantID, &s.UserID, &s.Provider, &s.CredentialID, &scopes, &actions, &s.LoginHint, &s.ReturnURL,
		&s.ForceConsent, &s.StateHash, &s.Verifier.KeyID, &s.Verifier.Data, &created, &expires, &used,
		&s.ExpectedAccount, &s.BrowserHash, &opened, &s.Outcome, &s.OutcomeCredentialID, &missing, &s.ErrorClass, &s.ErrorCode)
	if err != nil {
		return nil, mapErr(err)
	}
	if err := json.Unmarshal([]byte(scopes), &s.RequestedScopes); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(actions), &s.Actions); err != nil {
		return nil, err
	}
	s.CreatedAt, s.ExpiresAt, s.UsedAt = time.UnixMicro(created).UTC(), time.UnixMicro(expires).UTC(), fromMicros(used)
	s.OpenedAt = fromMicros(opened)
	if missing != "[]" {
		if err := json.Unmarshal([]byte(missing), &s.MissingScopes); err != nil {
			return nil, err
		}
	}
	return &s, nil
}

func (q queries) ConnectSessionGet(ctx context.Context, id string) (*storage.ConnectSession, error) {
	return scanSession(q.r.QueryRowContext(ctx, `SELECT `+sessionColumns+` FROM connect_sessions WHERE id = ?`, id))
}

func (q queries) ConnectSessionGetByState(ctx context.Context, stateHash []byte) (*storage.ConnectSession, error) {
	return scanSession(q.r.QueryRowContext(ctx, `SELECT `+sessionColumns+` FROM connect_sessions WHERE state_hash = ?`, stateHash))
}

func (q queries) ConnectSessionConsume(ctx context.Context, id string, now time.Time) error {
	res, err := q.w.ExecContext(ctx, `UPDATE connect_sessions SET used_at = ? WHERE id = ? AND used_at IS NULL AND expires_at > ?`, now.UnixMicro(), id, now.UnixMicro())
	if err != nil {
		return mapErr(err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		if err != nil {
			return err
		}
		return storage.ErrNotFound
	}
	return nil
}

func (q queries) ConnectSessionListSealedNotWith(ctx context.Context, p storage.ConnectSessionListSealedNotWithParams) ([]*storage.ConnectSession, error) {
	return queryRows(ctx, q.r, scanSession, `SELECT `+sessionColumns+` FROM connect_sessions
		WHERE id > ? AND used_at IS NULL AND expires_at > ? AND verifier_kid <> '' AND verifier_kid <> ?
		ORDER BY id LIMIT ?`, p.AfterID, p.Now.UnixMicro(), p.KeyID, storage.ClampLimit(p.Limit, 500, 5000))
}

func (q queries) ConnectSessionReseal(ctx context.Context, p storage.ConnectSessionResealParams) error {
	res, err := q.w.ExecContext(ctx, `UPDATE connect_sessions SET verifier_kid = ?, verifier_ct = ? WHERE id = ? AND verifier_kid = ?`,
		p.Verifier.KeyID, blob(p.Verifier), p.ID, p.OldKeyID)
	if err != nil {
		return mapErr(err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 1 {
		return err
	}
	var one int
	err = q.w.QueryRowContext(ctx, `SELECT 1 FROM connect_sessions WHERE id = ?`, p.ID).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return storage.ErrNotFound
	}
	if err != nil {
		return err
	}
	return storage.ErrVersionConflict
}
