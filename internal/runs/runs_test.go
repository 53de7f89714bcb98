package runs_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/internal/runs"
	"github.com/authgate/authgate/internal/storage"
	"github.com/authgate/authgate/internal/vault"
)

// recorder keeps what the service asked of its ports, in order.
type recorder struct{ got []string }

func (r *recorder) NotifyTx(_ context.Context, _ storage.Queries, _ authgate.TenantID, typ authgate.WebhookEventType, _ any) error {
	r.got = append(r.got, string(typ))
	return nil
}

func (r *recorder) EnqueueResumeTx(_ context.Context, _ storage.Queries, _ authgate.TenantID, id authgate.CredentialID, _ string) error {
	r.got = append(r.got, "resume "+string(id))
	return nil
}

// TestCredentialChanged: what each credential change sets off, in its
// transaction — one event per change, a resume whenever the user renewed
// a credential that is usable.
func TestCredentialChanged(t *testing.T) {
	t.Parallel()
	const id = authgate.CredentialID("cred_x")
	active, reauth, revoked := authgate.CredentialStatusActive, authgate.CredentialStatusReauthRequired, authgate.CredentialStatusRevoked
	for _, tc := range []struct {
		from, to authgate.CredentialStatus
		renewed  bool
		want     []string
	}{
		{active, reauth, false, []string{"credential.reauth_required"}},
		{reauth, active, true, []string{"credential.reconnected", "resume cred_x"}},
		{revoked, active, true, []string{"credential.reconnected", "resume cred_x"}},
		// Re-consent on an active credential (more scopes): no event, but
		// runs blocked on missing scopes resume.
		{active, active, true, []string{"resume cred_x"}},
		{active, revoked, false, nil},
		{reauth, reauth, false, nil},
	} {
		t.Run(fmt.Sprintf("%s_to_%s_renewed_%v", tc.from, tc.to, tc.renewed), func(t *testing.T) {
			t.Parallel()
			rec := &recorder{}
			s := runs.New(runs.Config{Notify: rec, Resume: rec})
			err := s.CredentialChanged(context.Background(), nil, vault.Change{Credential: authgate.Credential{ID: id, TenantID: "ten_a", Status: tc.to}, From: tc.from, Renewed: tc.renewed})
			if err != nil || !slices.Equal(rec.got, tc.want) {
				t.Fatalf("got %v, %v; want %v", rec.got, err, tc.want)
			}
		})
	}
}
