package api

import (
	"net/http"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/internal/tenancy"
)

// The key routes need an admin key (routes.go): an admin may add keys of
// any role, list them and revoke them, its own included (but not the
// tenant's last live admin key).

func (a *API) createAPIKey(w http.ResponseWriter, r *http.Request, p tenancy.Principal) error {
	// A pointer, so that a body of `null` is seen and refused rather than
	// read as an empty request.
	var b *authgate.NewAPIKeyRequest
	if err := decodeJSON(w, r, 4<<10, &b); err != nil {
		return err
	}
	if b == nil {
		e := authgate.Errorf(authgate.ClassInvalidRequest, `send a JSON object such as {"name": "agent", "role": "user", "user_id": "alice"}`)
		e.Errors = []authgate.FieldError{{Field: "role", Message: "required"}}
		return e
	}
	k, key, err := a.tenancy.CreateKey(r.Context(), p.TenantID, tenancy.KeyParams{Name: b.Name, Role: b.Role, UserID: b.UserID})
	if err != nil {
		return err
	}
	a.log.InfoContext(r.Context(), "api key created", "tenant_id", string(p.TenantID), "key_id", string(k.ID), "role", string(k.Role), "key_fp", key.Fingerprint(), "actor", p.Actor())
	return writeJSON(w, http.StatusCreated, authgate.NewAPIKey{APIKey: k, Key: key.Reveal()})
}

// me answers who the caller's key is (any role: it is the caller's own).
func (a *API) me(w http.ResponseWriter, r *http.Request, p tenancy.Principal) error {
	if _, err := query(r); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, authgate.Caller{TenantID: p.TenantID, KeyID: p.KeyID, Role: p.Role, UserID: p.UserID})
}

func (a *API) listAPIKeys(w http.ResponseWriter, r *http.Request, p tenancy.Principal) error {
	ks, err := a.tenancy.ListKeys(r.Context(), p.TenantID)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"api_keys": ks})
}

func (a *API) revokeAPIKey(w http.ResponseWriter, r *http.Request, p tenancy.Principal) error {
	id := authgate.APIKeyID(r.PathValue("id"))
	if err := a.tenancy.RevokeKey(r.Context(), p.TenantID, id); err != nil {
		return err
	}
	a.log.InfoContext(r.Context(), "api key revoked", "tenant_id", string(p.TenantID), "key_id", string(id), "actor", p.Actor())
	w.WriteHeader(http.StatusNoContent)
	return nil
}
