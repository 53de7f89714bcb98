package api

import (
	"net/http"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/internal/tenancy"
)

// Any key of a tenant is that tenant's admin key (there are no roles yet):
// it may add keys, list them and revoke them, its own included.

func (a *API) createAPIKey(w http.ResponseWriter, r *http.Request, p tenancy.Principal) error {
	var b authgate.NewAPIKeyRequest
	if err := decodeJSON(w, r, 4<<10, &b); err != nil {
		return err
	}
	k, key, err := a.tenancy.CreateKey(r.Context(), p.TenantID, b.Name)
	if err != nil {
		return err
	}
	a.log.InfoContext(r.Context(), "api key created", "tenant_id", string(p.TenantID), "key_id", string(k.ID), "key_fp", key.Fingerprint(), "actor", p.Actor())
	return writeJSON(w, http.StatusCreated, authgate.NewAPIKey{APIKey: k, Key: key.Reveal()})
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
