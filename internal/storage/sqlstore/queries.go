package sqlstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/internal/keyring"
	"github.com/authgate/authgate/internal/storage"
)

// The reads on every token request. A backend may prepare them once
// (sqlitestore does, on its read pool); the text is what it must match.
const (
	credentialByIDQuery = `SELECT ` + credentialColumns + ` FROM credentials WHERE id = $1 AND tenant_id = $2`
	apiKeyByHashQuery   = `SELECT id, tenant_id, hash, name, role, user_id, created_at FROM api_keys WHERE hash = $1 AND revoked_at IS NULL`
)

// HotQueries lists the hot reads' text, for backends that prepare them.
var HotQueries = []string{credentialByIDQuery, apiKeyByHashQuery}

const tenantColumns = `id, name, created_at, return_url_allowlist`

func (q Queries) TenantInsert(ctx context.Context, t storage.Tenant) error {
	urls, err := jsonList(t.ReturnURLAllowList)
	if err != nil {
		return err
	}
	_, err = q.W.Exec(ctx, `INSERT INTO tenants (`+tenantColumns+`) VALUES ($1, $2, $3, $4)`, t.ID, t.Name, q.ts(t.CreatedAt), urls)
	return q.mapErr(err)
}

func (q Queries) scanTenant(s Row) (storage.Tenant, error) {
	var t storage.Tenant
	var urls []byte
	if err := s.Scan(&t.ID, &t.Name, at(&t.CreatedAt), &urls); err != nil {
		return t, q.mapErr(err)
	}
	if err := json.Unmarshal(urls, &t.ReturnURLAllowList); err != nil {
		return t, fmt.Errorf("tenant %s: return_url_allowlist: %w", t.ID, err)
	}
	return t, nil
}

func (q Queries) TenantGetByID(ctx context.Context, id authgate.TenantID) (storage.Tenant, error) {
	return q.scanTenant(q.R.QueryRow(ctx, `SELECT `+tenantColumns+` FROM tenants WHERE id = $1`, id))
}

func (q Queries) TenantGetByName(ctx context.Context, name string) (storage.Tenant, error) {
	return q.scanTenant(q.R.QueryRow(ctx, `SELECT `+tenantColumns+` FROM tenants WHERE name = $1`, name))
}

func (q Queries) TenantList(ctx context.Context) ([]storage.Tenant, error) {
	return queryRows(ctx, q, q.R, q.scanTenant, `SELECT `+tenantColumns+` FROM tenants ORDER BY created_at, id`)
}

func (q Queries) TenantSetReturnURLs(ctx context.Context, id authgate.TenantID, prefixes []string) error {
	urls, err := jsonList(prefixes)
	if err != nil {
		return err
	}
	n, err := q.W.Exec(ctx, `UPDATE tenants SET return_url_allowlist = $1 WHERE id = $2`, urls, id)
	return affectedOne(n, err, q.mapErr)
}

func (q Queries) APIKeyInsert(ctx context.Context, k storage.APIKey) error {
	_, err := q.W.Exec(ctx, `INSERT INTO api_keys (id, tenant_id, hash, name, role, user_id, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		k.ID, k.TenantID, k.Hash, k.Name, string(k.Role), k.UserID, q.ts(k.CreatedAt))
	return q.mapErr(err)
}

func (q Queries) APIKeyGetByHash(ctx context.Context, hash []byte) (storage.APIKey, error) {
	var k storage.APIKey
	err := q.R.QueryRow(ctx, apiKeyByHashQuery, hash).Scan(&k.ID, &k.TenantID, &k.Hash, &k.Name, &k.Role, &k.UserID, at(&k.CreatedAt))
	return k, q.mapErr(err)
}

func (q Queries) APIKeyList(ctx context.Context, tenant authgate.TenantID) ([]storage.APIKey, error) {
	return queryRows(ctx, q, q.R, func(s Row) (storage.APIKey, error) {
		var k storage.APIKey
		err := s.Scan(&k.ID, &k.TenantID, &k.Hash, &k.Name, &k.Role, &k.UserID, at(&k.CreatedAt), at(&k.RevokedAt))
		return k, q.mapErr(err)
	}, `SELECT id, tenant_id, hash, name, role, user_id, created_at, revoked_at FROM api_keys WHERE tenant_id = $1 ORDER BY created_at, id`, tenant)
}

func (q Queries) APIKeyRevoke(ctx context.Context, p storage.APIKeyRevokeParams) error {
	n, err := q.W.Exec(ctx, `UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND tenant_id = $3 AND revoked_at IS NULL`, q.ts(p.At), p.ID, p.TenantID)
	return affectedOne(n, err, q.mapErr)
}

func (q Queries) SealedKeyIDs(ctx context.Context) ([]string, error) {
	ids, err := queryRows(ctx, q, q.R, func(s Row) (string, error) {
		var id string
		return id, q.mapErr(s.Scan(&id))
	}, sealedKeyIDsQuery)
	if err != nil {
		return nil, err
	}
	out := slices.DeleteFunc(ids, func(id string) bool { return id == "" })
	sort.Strings(out)
	return out, nil
}

// SealedSample finds one secret sealed with keyID.
func (q Queries) SealedSample(ctx context.Context, keyID string) (storage.SealedSample, error) {
	for _, c := range sealedColumns {
		var owner string
		var data []byte
		err := q.mapErr(q.R.QueryRow(ctx, `SELECT id, `+c.ct+` FROM `+c.table+` WHERE `+c.kid+` = $1 AND `+c.ct+` IS NOT NULL LIMIT 1`, keyID).Scan(&owner, &data))
		if errors.Is(err, storage.ErrNotFound) {
			continue
		}
		if err != nil {
			return storage.SealedSample{}, err
		}
		return storage.SealedSample{Owner: owner, Field: c.field, Sealed: keyring.Sealed{KeyID: keyID, Data: data}}, nil
	}
	return storage.SealedSample{}, storage.ErrNotFound
}

// sealedColumns is every place a sealed secret is stored: SealedKeyIDs
// and SealedSample both read this one list.
var sealedColumns = []struct{ table, kid, ct, field string }{
	{"credentials", "access_token_kid", "access_token_ct", "access_token"},
	{"credentials", "refresh_token_kid", "refresh_token_ct", "refresh_token"},
	{"connect_sessions", "verifier_kid", "verifier_ct", "connect_verifier"},
	{"webhook_endpoints", "secret_kid", "secret_ct", "webhook_secret"},
}

// sealedKeyIDsQuery lists the key ids of every stored secret.
var sealedKeyIDsQuery = func() string {
	parts := make([]string, len(sealedColumns))
	for i, c := range sealedColumns {
		parts[i] = `SELECT ` + c.kid + ` FROM ` + c.table + ` WHERE ` + c.ct + ` IS NOT NULL`
	}
	return strings.Join(parts, "\n\t\tUNION ")
}()

const credentialColumns = `id, tenant_id, user_id, provider, workspace_id, subject, email, account_type, domain,
	granted_scopes, requested_scopes, token_type,
	access_token_kid, access_token_ct, access_token_fp, access_token_expires_at,
	refresh_token_kid, refresh_token_ct, refresh_token_fp,
	status, status_reason, version, created_at, updated_at, last_used_at, last_refreshed_at,
	clock_skew_ms, clock_skew_at, lease_holder, lease_expires_at,
	last_verified_at, last_verdict, last_verification,
	send_holder, send_refresh_fp, send_at, send_deadline`

// credentialInsertColumns leave the verification columns to their defaults
// (they differ by dialect: TEXT ” on SQLite, JSONB NULL on PostgreSQL).
const credentialInsertColumns = `id, tenant_id, user_id, provider, workspace_id, subject, email, account_type, domain,
	granted_scopes, requested_scopes, token_type,
	access_token_kid, access_token_ct, access_token_fp, access_token_expires_at,
	refresh_token_kid, refresh_token_ct, refresh_token_fp,
	status, status_reason, version, created_at, updated_at, last_used_at, last_refreshed_at,
	clock_skew_ms, clock_skew_at, lease_holder, lease_expires_at`

func (q Queries) CredentialInsert(ctx context.Context, c *storage.Credential) error {
	granted, requested, err := scopeLists(c)
	if err != nil {
		return err
	}
	_, err = q.W.Exec(ctx, `INSERT INTO credentials (`+credentialInsertColumns+`) VALUES
		($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, '', NULL)`,
		c.ID, c.TenantID, c.UserID, c.Provider, c.WorkspaceID, c.Subject, c.Email, c.AccountType, c.Domain,
		granted, requested, c.TokenType,
		c.AccessToken.KeyID, blob(c.AccessToken), c.AccessTokenFP, q.ts(c.AccessTokenExpiresAt),
		c.RefreshToken.KeyID, blob(c.RefreshToken), c.RefreshTokenFP,
		c.Status, c.StatusReason, c.Version, q.ts(c.CreatedAt), q.ts(c.UpdatedAt), q.ts(c.LastUsedAt), q.ts(c.LastRefreshedAt),
		c.ClockSkew.Milliseconds(), q.ts(c.ClockSkewAt))
	return q.mapErr(err)
}

// scopeLists encodes a credential's two scope lists.
func scopeLists(c *storage.Credential) (granted, requested string, err error) {
	if granted, err = jsonList(c.GrantedScopes); err != nil {
		return "", "", err
	}
	requested, err = jsonList(c.RequestedScopes)
	return granted, requested, err
}

func (q Queries) scanCredential(s Row) (*storage.Credential, error) {
	var c storage.Credential
	var granted, requested []byte
	var skewMS int64
	var verification []byte
	err := s.Scan(&c.ID, &c.TenantID, &c.UserID, &c.Provider, &c.WorkspaceID, &c.Subject, &c.Email, &c.AccountType, &c.Domain,
		&granted, &requested, &c.TokenType,
		&c.AccessToken.KeyID, &c.AccessToken.Data, &c.AccessTokenFP, at(&c.AccessTokenExpiresAt),
		&c.RefreshToken.KeyID, &c.RefreshToken.Data, &c.RefreshTokenFP,
		&c.Status, &c.StatusReason, &c.Version, at(&c.CreatedAt), at(&c.UpdatedAt), at(&c.LastUsedAt), at(&c.LastRefreshedAt),
		&skewMS, at(&c.ClockSkewAt), &c.LeaseHolder, at(&c.LeaseExpiresAt),
		at(&c.LastVerifiedAt), &c.LastVerdict, &verification,
		&c.SendHolder, &c.SendRefreshFP, at(&c.SendAt), at(&c.SendDeadline))
	if err != nil {
		return nil, q.mapErr(err)
	}
	if len(verification) > 0 {
		c.LastVerification = json.RawMessage(verification)
	}
	if err := json.Unmarshal(granted, &c.GrantedScopes); err != nil {
		return nil, fmt.Errorf("credential %s: granted_scopes: %w", c.ID, err)
	}
	if err := json.Unmarshal(requested, &c.RequestedScopes); err != nil {
		return nil, fmt.Errorf("credential %s: requested_scopes: %w", c.ID, err)
	}
	c.ClockSkew = time.Duration(skewMS) * time.Millisecond
	return &c, nil
}

// CredentialSetVerified records a verification without bumping the version:
// verifying changes no token and must not make a refresh lose its CAS.
func (q Queries) CredentialSetVerified(ctx context.Context, p storage.CredentialSetVerifiedParams) error {
	if !json.Valid(p.Result) {
		return errors.New("verification result is not valid JSON")
	}
	n, err := q.W.Exec(ctx, `UPDATE credentials SET last_verified_at = $1, last_verdict = $2, last_verification = $3 WHERE id = $4 AND tenant_id = $5`,
		q.ts(p.At), p.Verdict, string(p.Result), p.ID, p.TenantID)
	if err != nil {
		return q.mapErr(err)
	}
	if n != 1 {
		return storage.ErrNotFound
	}
	return nil
}

// CredentialGetByID locks the row inside a transaction where the dialect
// does (see Dialect.LockInTx): a transaction that reads a credential and
// then compare-and-swaps it waits for any other such transaction on the row
// to commit and then reads its result, instead of losing its swap.
func (q Queries) CredentialGetByID(ctx context.Context, p storage.CredentialGetByIDParams) (*storage.Credential, error) {
	return q.scanCredential(q.R.QueryRow(ctx, credentialByIDQuery+q.forUpdate(), p.ID, p.TenantID))
}

func (q Queries) CredentialGetBySlot(ctx context.Context, s storage.Slot) (*storage.Credential, error) {
	return q.scanCredential(q.R.QueryRow(ctx, `SELECT `+credentialColumns+` FROM credentials
		WHERE tenant_id = $1 AND user_id = $2 AND provider = $3 AND workspace_id = $4 AND subject = $5`,
		s.TenantID, s.UserID, s.Provider, s.WorkspaceID, s.Subject))
}

// where builds a WHERE clause of numbered conditions.
type where struct {
	conds []string
	args  []any
}

// add appends "expr $n" with v as argument n.
func (w *where) add(expr string, v any) {
	w.args = append(w.args, v)
	w.conds = append(w.conds, fmt.Sprintf("%s $%d", expr, len(w.args)))
}

func (w *where) String() string {
	if len(w.conds) == 0 {
		return ""
	}
	return ` WHERE ` + strings.Join(w.conds, " AND ")
}

// limit appends LIMIT $n with n as its argument.
func (w *where) limit(n int) string {
	w.args = append(w.args, n)
	return fmt.Sprintf(` LIMIT $%d`, len(w.args))
}

func (q Queries) CredentialList(ctx context.Context, p storage.CredentialListParams) ([]*storage.Credential, error) {
	var w where
	if !p.AllTenants {
		w.add("tenant_id =", p.TenantID)
	}
	if p.UserID != "" {
		w.add("user_id =", p.UserID)
	}
	if p.Provider != "" {
		w.add("provider =", p.Provider)
	}
	if p.Status != "" {
		w.add("status =", p.Status)
	}
	if p.AfterID != "" {
		w.add("id"+q.D.ByteOrder+" >", p.AfterID)
	}
	query := `SELECT ` + credentialColumns + ` FROM credentials` + w.String() + ` ORDER BY id` + q.D.ByteOrder
	query += w.limit(storage.ClampLimit(p.Limit, 100, 1000))
	return queryRows(ctx, q, q.R, q.scanCredential, query, w.args...)
}

func (q Queries) CredentialUpdateCAS(ctx context.Context, c *storage.Credential) error {
	granted, requested, err := scopeLists(c)
	if err != nil {
		return err
	}
	n, err := q.W.Exec(ctx, `UPDATE credentials SET
		email = $1, account_type = $2, domain = $3, granted_scopes = $4, requested_scopes = $5, token_type = $6,
		access_token_kid = $7, access_token_ct = $8, access_token_fp = $9, access_token_expires_at = $10,
		refresh_token_kid = $11, refresh_token_ct = $12, refresh_token_fp = $13,
		status = $14, status_reason = $15, updated_at = $16, last_used_at = $17, last_refreshed_at = $18,
		clock_skew_ms = $19, clock_skew_at = $20,
		version = version + 1
		WHERE id = $21 AND tenant_id = $22 AND version = $23`,
		c.Email, c.AccountType, c.Domain, granted, requested, c.TokenType,
		c.AccessToken.KeyID, blob(c.AccessToken), c.AccessTokenFP, q.ts(c.AccessTokenExpiresAt),
		c.RefreshToken.KeyID, blob(c.RefreshToken), c.RefreshTokenFP,
		c.Status, c.StatusReason, q.ts(c.UpdatedAt), q.ts(c.LastUsedAt), q.ts(c.LastRefreshedAt),
		c.ClockSkew.Milliseconds(), q.ts(c.ClockSkewAt),
		c.ID, c.TenantID, c.Version)
	if err = q.casResult(ctx, n, err, "credentials", string(c.ID)); err == nil {
		c.Version++
	}
	return err
}

// casResult turns a conditional write that changed no row into
// ErrVersionConflict when the row exists and ErrNotFound when it does not.
// table is one of ours, never input.
func (q Queries) casResult(ctx context.Context, n int64, err error, table, id string) error {
	if err != nil {
		return q.mapErr(err)
	}
	if n == 1 {
		return nil
	}
	var one int
	err = q.W.QueryRow(ctx, `SELECT 1 FROM `+table+` WHERE id = $1`, id).Scan(&one)
	if err = q.mapErr(err); err != nil {
		return err
	}
	return storage.ErrVersionConflict
}

func (q Queries) CredentialListSealedNotWith(ctx context.Context, p storage.CredentialListSealedNotWithParams) ([]*storage.Credential, error) {
	return queryRows(ctx, q, q.R, q.scanCredential, `SELECT `+credentialColumns+` FROM credentials
		WHERE id`+q.D.ByteOrder+` > $1 AND ((access_token_kid <> '' AND access_token_kid <> $2) OR (refresh_token_kid <> '' AND refresh_token_kid <> $2))
		ORDER BY id`+q.D.ByteOrder+` LIMIT $3`, p.AfterID, p.KeyID, storage.ClampLimit(p.Limit, 500, 5000))
}

func (q Queries) CredentialReseal(ctx context.Context, p storage.CredentialResealParams) error {
	n, err := q.W.Exec(ctx, `UPDATE credentials SET
		access_token_kid = $1, access_token_ct = $2, refresh_token_kid = $3, refresh_token_ct = $4,
		version = version + 1
		WHERE id = $5 AND version = $6`,
		p.AccessToken.KeyID, blob(p.AccessToken), p.RefreshToken.KeyID, blob(p.RefreshToken), p.ID, p.Version)
	return q.casResult(ctx, n, err, "credentials", string(p.ID))
}

// CredentialTouchBatch runs one UPDATE per entry as one batch on the
// caller's connection; the backends' Store.CredentialTouchBatch wraps it in
// a transaction. Rows are updated in id order, so two batches touching the
// same credentials lock them in the same order and cannot deadlock. Touches
// change neither version, lease holder nor status, so the change feed stays
// quiet.
func (q Queries) CredentialTouchBatch(ctx context.Context, touches []storage.CredentialTouch) error {
	if len(touches) == 0 {
		return nil
	}
	sorted := slices.Clone(touches)
	slices.SortFunc(sorted, func(a, b storage.CredentialTouch) int { return strings.Compare(string(a.ID), string(b.ID)) })
	args := make([][]any, len(sorted))
	for i, t := range sorted {
		args[i] = []any{q.ts(t.At), t.ID}
	}
	err := q.W.ExecBatch(ctx, `UPDATE credentials SET last_used_at = $1 WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $1)`, args)
	if err != nil {
		return fmt.Errorf("touch: %w", q.mapErr(err))
	}
	return nil
}

var errEmptyHolder = errors.New("lease: empty holder name")

func (q Queries) CredentialLeaseAcquire(ctx context.Context, p storage.CredentialLeaseParams) (bool, error) {
	if p.Holder == "" {
		return false, errEmptyHolder
	}
	n, err := q.W.Exec(ctx, `UPDATE credentials SET lease_holder = $1, lease_expires_at = $2
		WHERE id = $3 AND (lease_holder = '' OR lease_expires_at IS NULL OR lease_expires_at <= $4)`,
		p.Holder, q.ts(p.Until), p.ID, q.ts(p.Now))
	return n == 1, q.mapErr(err)
}

func (q Queries) CredentialLeaseRenew(ctx context.Context, p storage.CredentialLeaseParams) (bool, error) {
	if p.Holder == "" {
		return false, errEmptyHolder
	}
	n, err := q.W.Exec(ctx, `UPDATE credentials SET lease_expires_at = $1 WHERE id = $2 AND lease_holder = $3`, q.ts(p.Until), p.ID, p.Holder)
	return n == 1, q.mapErr(err)
}

func (q Queries) CredentialLeaseRelease(ctx context.Context, p storage.CredentialLeaseParams) error {
	_, err := q.W.Exec(ctx, `UPDATE credentials SET lease_holder = '', lease_expires_at = NULL WHERE id = $1 AND lease_holder = $2`, p.ID, p.Holder)
	return q.mapErr(err)
}

func (q Queries) CredentialSendMark(ctx context.Context, p storage.CredentialSendParams) (bool, error) {
	if p.Holder == "" {
		return false, errEmptyHolder
	}
	n, err := q.W.Exec(ctx, `UPDATE credentials SET send_holder = $1, send_refresh_fp = $2, send_at = $3, send_deadline = $4, lease_expires_at = $5
		WHERE id = $6 AND lease_holder = $1`, p.Holder, p.RefreshFP, q.ts(p.At), q.ts(p.Deadline), q.ts(p.LeaseUntil), p.ID)
	return n == 1, q.mapErr(err)
}

func (q Queries) CredentialSendClear(ctx context.Context, p storage.CredentialSendParams) error {
	if p.Holder == "" {
		return errEmptyHolder
	}
	_, err := q.W.Exec(ctx, `UPDATE credentials SET send_holder = '', send_refresh_fp = '', send_at = NULL, send_deadline = NULL
		WHERE id = $1 AND send_holder = $2`, p.ID, p.Holder)
	return q.mapErr(err)
}

// jsonObject validates a JSON document for a JSON column; empty and null
// store {}.
func jsonObject(raw json.RawMessage, what string) (string, error) {
	s := string(raw)
	if s == "" || s == "null" {
		return "{}", nil
	}
	if !json.Valid(raw) {
		return "", fmt.Errorf("%s are not valid JSON", what)
	}
	return s, nil
}

// compactJSON returns a JSON column's value compacted: PostgreSQL's JSONB
// prints with spaces, and both backends return the same bytes.
func compactJSON(b []byte) (json.RawMessage, error) {
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return nil, err
	}
	return json.RawMessage(buf.Bytes()), nil
}

func (q Queries) EventInsert(ctx context.Context, e *storage.Event) error {
	details, err := jsonObject(e.Details, "event details")
	if err != nil {
		return err
	}
	err = q.W.QueryRow(ctx, `INSERT INTO credential_events (tenant_id, credential_id, type, at, actor, details)
		VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`, e.TenantID, e.CredentialID, e.Type, q.ts(e.At), e.Actor, details).Scan(&e.ID)
	return q.mapErr(err)
}

func (q Queries) scanEvent(s Row) (storage.Event, error) {
	var e storage.Event
	var details []byte
	if err := s.Scan(&e.ID, &e.TenantID, &e.CredentialID, &e.Type, at(&e.At), &e.Actor, &details); err != nil {
		return e, q.mapErr(err)
	}
	var err error
	e.Details, err = compactJSON(details)
	return e, err
}

func (q Queries) EventList(ctx context.Context, p storage.EventListParams) ([]storage.Event, error) {
	return queryRows(ctx, q, q.R, q.scanEvent, `SELECT id, tenant_id, credential_id, type, at, actor, details FROM credential_events
		WHERE tenant_id = $1 AND credential_id = $2 AND id > $3 ORDER BY id LIMIT $4`,
		p.TenantID, p.CredentialID, p.AfterID, storage.ClampLimit(p.Limit, 100, 1000))
}
