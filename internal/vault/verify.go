package vault

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/internal/storage"
)

// LiveMismatch is a live identity that is not the stored one.
type LiveMismatch struct {
	Stored, Live string // labels naming both accounts
}

// RecordVerification stores a live verification on the credential (time,
// verdict, result) with its verified event, in one transaction. With a
// mismatch, an active credential also moves to reauth_required with reason
// identity_mismatch (events identity_mismatch and reauth_required_set): the
// tokens answer for another account than the one the credential is bound to
// (SPEC failure 6), so nothing may use them until the user reconnects.
func (v *Vault) RecordVerification(ctx context.Context, tenant authgate.TenantID, id authgate.CredentialID, res *authgate.Verification, mismatch *LiveMismatch, actor string) (authgate.Credential, error) {
	var out authgate.Credential
	err := v.retryConflicts(func() error {
		return v.store.Tx(ctx, func(q storage.Queries) error {
			rec, err := v.get(ctx, q, tenant, id)
			if err != nil {
				return err
			}
			now := v.now()
			if mismatch != nil && rec.Status == authgate.CredentialStatusActive {
				if err := q.EventInsert(ctx, &storage.Event{TenantID: tenant, CredentialID: id, Type: authgate.EventIdentityMismatch, At: now, Actor: actor,
					Details: eventDetails(map[string]any{"stored": mismatch.Stored, "live": mismatch.Live, "source": "verify"})}); err != nil {
					return err
				}
				rec.Status, rec.StatusReason, rec.UpdatedAt = authgate.CredentialStatusReauthRequired, authgate.StatusReasonIdentityMismatch, now
				if err := q.CredentialUpdateCAS(ctx, rec); err != nil {
					return err
				}
				if err := q.EventInsert(ctx, &storage.Event{TenantID: tenant, CredentialID: id, Type: authgate.EventReauthRequiredSet, At: now, Actor: actor,
					Details: eventDetails(map[string]any{"reason": authgate.StatusReasonIdentityMismatch, "previous_status": authgate.CredentialStatusActive})}); err != nil {
					return err
				}
				if err := v.changed(ctx, q, Change{Credential: Public(rec), From: authgate.CredentialStatusActive, Actor: actor}); err != nil {
					return err
				}
			}
			res.VerifiedAt = now
			res.Credential = authgate.VerifiedCredential{ID: rec.ID, Provider: rec.Provider, Status: rec.Status, StatusReason: rec.StatusReason,
				Connector: authgate.ConnectorStateOf(rec.Status, rec.StatusReason, &now, res.Verdict)}
			body, err := json.Marshal(res)
			if err != nil {
				return fmt.Errorf("verification result: %w", err)
			}
			if err := q.CredentialSetVerified(ctx, storage.CredentialSetVerifiedParams{TenantID: tenant, ID: id, At: now, Verdict: string(res.Verdict), Result: body}); err != nil {
				return err
			}
			checks := make([]map[string]any, 0, len(res.Checks))
			for _, c := range res.Checks {
				checks = append(checks, map[string]any{"name": c.Name, "status": c.Status, "class": c.Class})
			}
			if err := q.EventInsert(ctx, &storage.Event{TenantID: tenant, CredentialID: id, Type: authgate.EventVerified, At: now, Actor: actor,
				Details: eventDetails(map[string]any{"verdict": res.Verdict, "identity_matches_stored": res.IdentityMatchesStored, "missing_scopes": res.Scopes.Missing, "checks": checks})}); err != nil {
				return err
			}
			rec.LastVerifiedAt, rec.LastVerdict = now, string(res.Verdict)
			out = Public(rec)
			return nil
		})
	})
	return out, err
}
