package api

import (
	"context"
	"net/http"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/internal/broker"
	"github.com/authgate/authgate/internal/tenancy"
)

// maxVerifyBody caps a verify body: a few targets and actions.
const maxVerifyBody = 16 << 10

// verifyCredential runs the connector's minimal checks live and records the
// result: 200 with the verification whatever the verdict (a failed check is
// a finding, not an API error).
func (a *API) verifyCredential(w http.ResponseWriter, r *http.Request, p tenancy.Principal) error {
	var b authgate.VerifyRequest
	if r.ContentLength != 0 {
		if err := decodeJSON(w, r, maxVerifyBody, &b); err != nil {
			return err
		}
	}
	if len(b.Actions) > 50 {
		return authgate.Errorf(authgate.ClassInvalidRequest, "at most 50 actions")
	}
	if err := a.ownCredential(r.Context(), p, authgate.CredentialID(r.PathValue("id"))); err != nil {
		return err
	}
	res, err := a.verifier.Verify(r.Context(), p.TenantID, authgate.CredentialID(r.PathValue("id")), b, p.Actor())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, res)
}

// reconnectLink is a connect link that reconnects c asking for scopes.
func (a *API) reconnectLink(ctx context.Context, tenant authgate.TenantID, c authgate.Credential, scopes []string) (string, error) {
	s, err := a.broker.CreateSession(ctx, broker.SessionParams{TenantID: tenant, UserID: c.UserID, Provider: c.Provider, CredentialID: c.ID, Scopes: scopes,
		ForceConsent: !c.HasRefreshToken})
	if err != nil {
		return "", err
	}
	return s.ConnectURL, nil
}

// diagnoseCredential runs the doctor: 200 with the report whatever the
// verdict (a root cause is a finding, not an API error).
func (a *API) diagnoseCredential(w http.ResponseWriter, r *http.Request, p tenancy.Principal) error {
	var b authgate.DiagnoseRequest
	if r.ContentLength != 0 {
		if err := decodeJSON(w, r, maxVerifyBody, &b); err != nil {
			return err
		}
	}
	if len(b.Actions) > 50 {
		return authgate.Errorf(authgate.ClassInvalidRequest, "at most 50 actions")
	}
	if err := a.ownCredential(r.Context(), p, authgate.CredentialID(r.PathValue("id"))); err != nil {
		return err
	}
	res, err := a.doctor.Diagnose(r.Context(), p.TenantID, authgate.CredentialID(r.PathValue("id")), b, p.Actor())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, forCaller(res, p))
}

// CheckIdentity is the health sweep's cheap live check of a credential
// (verify.Verifier.Health): answered is false when the provider has no
// identity call, rejected the fingerprint of a token the provider refused.
func (a *API) CheckIdentity(ctx context.Context, tenant authgate.TenantID, id authgate.CredentialID) (answered bool, rejected string, err error) {
	if a.verifier == nil {
		return false, "", nil
	}
	h, err := a.verifier.Health(ctx, tenant, id, "health-sweep")
	return h.Answered, h.Rejected, err
}
