package sqlstore

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/internal/storage"
)

// CredentialListBoundExpiring pages the active credentials bound to an
// unfinished run whose access token expires before p.Before, by expiry.
func (q Queries) CredentialListBoundExpiring(ctx context.Context, p storage.CredentialListBoundExpiringParams) ([]*storage.Credential, error) {
	args := []any{q.ts(p.Before)}
	cursor := ``
	if !p.AfterExpiry.IsZero() {
		args = append(args, q.ts(p.AfterExpiry), p.AfterID)
		cursor = ` AND (c.access_token_expires_at > $2 OR (c.access_token_expires_at = $2 AND c.id` + q.D.ByteOrder + ` > $3))`
	}
	args = append(args, storage.ClampLimit(p.Limit, 500, 5000))
	return queryRows(ctx, q, q.R, q.scanCredential, `SELECT `+prefixed("c.", credentialColumns)+` FROM credentials c
		LEFT JOIN refresh_plans p ON p.credential_id = c.id
		WHERE c.status = 'active' AND c.access_token_expires_at IS NOT NULL AND c.access_token_expires_at < $1`+cursor+`
		AND (p.expires_at IS NULL OR p.expires_at <> c.access_token_expires_at)
		AND EXISTS (SELECT 1 FROM run_bindings b WHERE b.credential_id = c.id)
		ORDER BY c.access_token_expires_at, c.id`+q.D.ByteOrder+` LIMIT $`+itoa(len(args)), args...)
}

// CredentialListCheckDue pages the active credentials bound to no
// unfinished run whose health check is due by p.Before or was never
// planned, by id.
func (q Queries) CredentialListCheckDue(ctx context.Context, p storage.CredentialListCheckDueParams) ([]storage.CredentialCheckDue, error) {
	return queryRows(ctx, q, q.R, func(r Row) (storage.CredentialCheckDue, error) {
		var d storage.CredentialCheckDue
		err := r.Scan(&d.ID, &d.TenantID, &d.Provider, at(&d.NextCheckAt))
		return d, q.mapErr(err)
	}, `SELECT c.id, c.tenant_id, c.provider, k.next_check_at FROM credentials c
		LEFT JOIN credential_checks k ON k.credential_id = c.id
		WHERE c.status = 'active' AND (k.next_check_at IS NULL OR k.next_check_at <= $1) AND c.id`+q.D.ByteOrder+` > $2
		AND NOT EXISTS (SELECT 1 FROM run_bindings b WHERE b.credential_id = c.id)
		ORDER BY c.id`+q.D.ByteOrder+` LIMIT $3`, q.ts(p.Before), p.AfterID, storage.ClampLimit(p.Limit, 500, 5000))
}

// CredentialCheckSchedule sets when a credential's next health check is due.
func (q Queries) CredentialCheckSchedule(ctx context.Context, p storage.CredentialCheckScheduleParams) error {
	_, err := q.W.Exec(ctx, `INSERT INTO credential_checks (credential_id, tenant_id, next_check_at) VALUES ($1, $2, $3)
		ON CONFLICT (credential_id) DO UPDATE SET next_check_at = excluded.next_check_at`, p.ID, p.TenantID, q.ts(p.Next))
	return q.mapErr(err)
}

// RefreshPlanned records that a credential's refresh was planned for the
// token expiring at expiresAt.
func (q Queries) RefreshPlanned(ctx context.Context, id authgate.CredentialID, expiresAt time.Time) error {
	_, err := q.W.Exec(ctx, `INSERT INTO refresh_plans (credential_id, expires_at) VALUES ($1, $2)
		ON CONFLICT (credential_id) DO UPDATE SET expires_at = excluded.expires_at`, id, q.ts(expiresAt))
	return q.mapErr(err)
}

// RefreshSlotsGet reads every provider's next free refresh slot.
func (q Queries) RefreshSlotsGet(ctx context.Context) (map[string]time.Time, error) {
	type slot struct {
		p string
		t time.Time
	}
	rows, err := queryRows(ctx, q, q.W, func(r Row) (slot, error) {
		var s slot
		return s, q.mapErr(r.Scan(&s.p, at(&s.t)))
	}, `SELECT provider, next_at FROM refresh_slots`+q.forUpdate())
	if err != nil {
		return nil, err
	}
	out := make(map[string]time.Time, len(rows))
	for _, s := range rows {
		out[s.p] = s.t
	}
	return out, nil
}

// RefreshSlotSet stores a provider's next free refresh slot.
func (q Queries) RefreshSlotSet(ctx context.Context, provider string, next time.Time) error {
	_, err := q.W.Exec(ctx, `INSERT INTO refresh_slots (provider, next_at) VALUES ($1, $2)
		ON CONFLICT (provider) DO UPDATE SET next_at = excluded.next_at`, provider, q.ts(next))
	return q.mapErr(err)
}

// prefixed qualifies every column of a comma-separated list with p.
func prefixed(p, columns string) string {
	parts := strings.Split(columns, ",")
	for i, c := range parts {
		parts[i] = p + strings.TrimSpace(c)
	}
	return strings.Join(parts, ", ")
}

func itoa(n int) string { return strconv.Itoa(n) }
