package api

import (
	"net/http"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/internal/tenancy"
)

// createWebhook adds an endpoint; its signing secret is in this answer and
// never again.
func (a *API) createWebhook(w http.ResponseWriter, r *http.Request, p tenancy.Principal) error {
	var b authgate.WebhookEndpointCreateRequest
	if err := decodeJSON(w, r, 8<<10, &b); err != nil {
		return err
	}
	e, err := a.webhooks.AddEndpoint(r.Context(), p.TenantID, b.URL)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, e)
}

func (a *API) listWebhooks(w http.ResponseWriter, r *http.Request, p tenancy.Principal) error {
	es, err := a.webhooks.Endpoints(r.Context(), p.TenantID)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, authgate.WebhookEndpointList{Endpoints: es})
}

func (a *API) deleteWebhook(w http.ResponseWriter, r *http.Request, p tenancy.Principal) error {
	if err := a.webhooks.DeleteEndpoint(r.Context(), p.TenantID, authgate.WebhookEndpointID(r.PathValue("id"))); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
