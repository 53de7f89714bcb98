package vault

import (
	"context"
	"errors"
	"time"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/internal/secret"
	"github.com/authgate/authgate/internal/storage"
)

// ErrStale means the stored credential changed since the caller looked: the
// caller re-reads instead of overwriting (a refresh raced, a reconnect landed).
var ErrStale = errors.New("credential changed since it was read")

// Refreshed is a successful refresh as the provider answered it.
type Refreshed struct {
	// UsedRefreshFP is the fingerprint of the refresh token that was sent;
	// the update applies only if it is still the stored one.
	UsedRefreshFP string
	AccessToken   secret.Secret
	ExpiresAt     time.Time // zero: does not expire
	// RefreshToken is set only when the provider rotated it.
	RefreshToken secret.Secret
	// Scopes are the granted scopes the provider reported (nil: unchanged).
	Scopes     []string
	ClockSkew  time.Duration
	SkewKnown  bool
	RequestID  string
	HTTPStatus int
	Actor      string
}

// ApplyRefresh stores a refresh result and its refresh_succeeded event (plus
// scopes_changed when the grant changed) in one transaction. A rotated refresh
// token is committed here, before any caller sees the new access token.
//
// The read and the compare-and-swap run in one transaction (SQLite takes the
// write lock up front; PostgreSQL locks the row), so a version conflict means
// a writer outside that discipline slipped in: the transaction is re-run
// against the new row rather than dropping a rotated refresh token.
func (v *Vault) ApplyRefresh(ctx context.Context, tenant authgate.TenantID, id authgate.CredentialID, r Refreshed) (authgate.Credential, error) {
	var out authgate.Credential
	err := v.retryConflicts(func() error {
		return v.store.Tx(ctx, func(q storage.Queries) error {
			rec, err := v.get(ctx, q, tenant, id)
			if err != nil {
				return err
			}
			if rec.RefreshTokenFP != r.UsedRefreshFP || rec.Status != authgate.CredentialStatusActive {
				return ErrStale
			}
			now := v.now()
			prevScopes := rec.GrantedScopes
			rec.AccessToken, rec.AccessTokenFP, rec.AccessTokenExpiresAt = v.seal(id, FieldAccessToken, r.AccessToken), r.AccessToken.Fingerprint(), r.ExpiresAt.UTC()
			rotated := !r.RefreshToken.IsZero() && r.RefreshToken.Fingerprint() != r.UsedRefreshFP
			if rotated {
				rec.RefreshToken, rec.RefreshTokenFP = v.seal(id, FieldRefreshToken, r.RefreshToken), r.RefreshToken.Fingerprint()
			} else if err := v.resealStale(rec); err != nil {
				return err
			}
			if r.Scopes != nil {
				rec.GrantedScopes = normalizeScopes(r.Scopes)
			}
			if r.SkewKnown {
				rec.ClockSkew, rec.ClockSkewAt = r.ClockSkew, now
			}
			rec.LastRefreshedAt, rec.UpdatedAt = now, now
			if err := q.CredentialUpdateCAS(ctx, rec); err != nil {
				return err
			}
			d := map[string]any{"access_token_fp": rec.AccessTokenFP, "refresh_token_fp": rec.RefreshTokenFP, "rotated": rotated,
				"expires_at": expiry(rec.AccessTokenExpiresAt), "provider_request_id": r.RequestID, "http_status": r.HTTPStatus}
			if rotated {
				d["previous_refresh_token_fp"] = r.UsedRefreshFP
			}
			if r.SkewKnown {
				d["clock_skew_seconds"] = r.ClockSkew.Round(time.Second).Seconds()
			}
			if err := q.EventInsert(ctx, &storage.Event{TenantID: tenant, CredentialID: id, Type: authgate.EventRefreshSucceeded, At: now, Actor: r.Actor, Details: eventDetails(d)}); err != nil {
				return err
			}
			if added, removed := diffScopes(prevScopes, rec.GrantedScopes); len(added)+len(removed) > 0 {
				if err := q.EventInsert(ctx, &storage.Event{TenantID: tenant, CredentialID: id, Type: authgate.EventScopesChanged, At: now, Actor: r.Actor,
					Details: eventDetails(map[string]any{"added": added, "removed": removed, "granted_scopes": rec.GrantedScopes, "source": "refresh"})}); err != nil {
					return err
				}
			}
			out = Public(rec)
			return nil
		})
	})
	return out, err
}

// retryConflicts re-runs a read-modify-write transaction that lost its
// compare-and-swap, a few times; the caller's own checks (ErrStale) decide
// whether the write still applies to the new row.
func (v *Vault) retryConflicts(tx func() error) error {
	var err error
	for range 5 {
		if err = tx(); !errors.Is(err, storage.ErrVersionConflict) {
			return err
		}
	}
	return err
}

// resealStale re-encrypts a stored refresh token that is still sealed with a
// key other than the primary, so that a write racing a key rotation never
// leaves old-key ciphertext behind once the rotation has passed this row.
func (v *Vault) resealStale(rec *storage.Credential) error {
	if rec.RefreshToken.IsZero() || rec.RefreshToken.KeyID == v.keys.Primary() {
		return nil
	}
	rt, err := v.open(rec.ID, FieldRefreshToken, rec.RefreshToken)
	if err != nil {
		return err
	}
	rec.RefreshToken = v.seal(rec.ID, FieldRefreshToken, rt)
	return nil
}

// Failure describes a failed provider call for the lifecycle log.
type Failure struct {
	Class      authgate.Class
	ErrorCode  string
	HTTPStatus int
	RequestID  string
	Attempt    int
	RefreshFP  string
	// AccessFP, when set, is the access token the failure is about (a
	// step's report): MarkReauthRequired then applies only while it is the
	// stored one, and RefreshFP is not compared.
	AccessFP    string
	Description string
	Actor       string
}

func (f Failure) details() map[string]any {
	return map[string]any{"class": f.Class, "error": f.ErrorCode, "http_status": f.HTTPStatus, "provider_request_id": f.RequestID,
		"attempt": f.Attempt, "refresh_token_fp": f.RefreshFP, "access_token_fp": f.AccessFP, "error_description": f.Description}
}

// RecordFailure writes a refresh_failed event without changing state (a
// transient failure, a rate limit, a misconfiguration).
func (v *Vault) RecordFailure(ctx context.Context, tenant authgate.TenantID, id authgate.CredentialID, f Failure) error {
	return v.store.EventInsert(ctx, &storage.Event{TenantID: tenant, CredentialID: id, Type: authgate.EventRefreshFailed, At: v.now(), Actor: f.Actor, Details: eventDetails(f.details())})
}

// MarkReauthRequired moves the credential to reauth_required with reason,
// writing refresh_failed (when f is given), revoked_detected (for revocations)
// and reauth_required_set, in one transaction. It refuses with ErrStale when
// the refresh token (or, with f.AccessFP, the access token) is no longer the
// one that failed (a race or an old report, not a revocation).
func (v *Vault) MarkReauthRequired(ctx context.Context, tenant authgate.TenantID, id authgate.CredentialID, reason authgate.StatusReason, f *Failure) (authgate.Credential, error) {
	var out authgate.Credential
	err := v.retryConflicts(func() error {
		return v.store.Tx(ctx, func(q storage.Queries) error {
			rec, err := v.get(ctx, q, tenant, id)
			if err != nil {
				return err
			}
			switch {
			case f != nil && f.AccessFP != "":
				// A report about an access token (a step's provider call):
				// it speaks for the stored credential only while that token
				// is still the stored one. A reconnect or refresh since
				// replaced it, and the report is about the past.
				if rec.AccessTokenFP != f.AccessFP {
					return ErrStale
				}
			case f != nil && rec.RefreshTokenFP != f.RefreshFP:
				return ErrStale
			}
			out = Public(rec)
			if rec.Status != authgate.CredentialStatusActive {
				return nil // already flagged: one transition, one set of events
			}
			now := v.now()
			actor := "refresher"
			if f != nil {
				actor = f.Actor
				if err := q.EventInsert(ctx, &storage.Event{TenantID: tenant, CredentialID: id, Type: authgate.EventRefreshFailed, At: now, Actor: actor, Details: eventDetails(f.details())}); err != nil {
					return err
				}
				if reason == authgate.StatusReasonInvalidGrant || reason == authgate.StatusReasonRevoked {
					if err := q.EventInsert(ctx, &storage.Event{TenantID: tenant, CredentialID: id, Type: authgate.EventRevokedDetected, At: now, Actor: actor,
						Details: eventDetails(map[string]any{"refresh_token_fp": f.RefreshFP, "error": f.ErrorCode})}); err != nil {
						return err
					}
				}
			}
			rec.Status, rec.StatusReason, rec.UpdatedAt = authgate.CredentialStatusReauthRequired, reason, now
			if err := q.CredentialUpdateCAS(ctx, rec); err != nil {
				return err
			}
			if err := q.EventInsert(ctx, &storage.Event{TenantID: tenant, CredentialID: id, Type: authgate.EventReauthRequiredSet, At: now, Actor: actor,
				Details: eventDetails(map[string]any{"reason": reason, "previous_status": authgate.CredentialStatusActive})}); err != nil {
				return err
			}
			out = Public(rec)
			return v.changed(ctx, q, Change{Credential: out, From: authgate.CredentialStatusActive, Actor: actor,
				Revocation: reason == authgate.StatusReasonInvalidGrant || reason == authgate.StatusReasonRevoked})
		})
	})
	return out, err
}
