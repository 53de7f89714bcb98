package api

import (
	"net/http"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/internal/storage"
	"github.com/authgate/authgate/internal/tenancy"
	"github.com/authgate/authgate/internal/worker"
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

// listDeliveries shows the tenant's deliveries with their status: what a
// receiver missed (dead) and what is still being tried.
func (a *API) listDeliveries(w http.ResponseWriter, r *http.Request, p tenancy.Principal) error {
	q, err := query(r, "status", "endpoint_id", "before", "limit")
	if err != nil {
		return err
	}
	limit, err := intParam(q, "limit", 1, 1000)
	if err != nil {
		return err
	}
	if limit == 0 {
		limit = 100
	}
	ds, err := a.webhooks.Deliveries(r.Context(), p.TenantID, worker.DeliveriesParams{EndpointID: authgate.WebhookEndpointID(q.Get("endpoint_id")),
		Status: storage.WebhookDeliveryStatus(q.Get("status")), Before: authgate.WebhookDeliveryID(q.Get("before")), Limit: int(limit)})
	if err != nil {
		return err
	}
	page := authgate.WebhookDeliveryPage{Deliveries: []authgate.WebhookDelivery{}}
	for _, d := range ds {
		page.Deliveries = append(page.Deliveries, worker.PublicDelivery(d))
	}
	if len(ds) == int(limit) {
		page.NextBefore = ds[len(ds)-1].ID
	}
	return writeJSON(w, http.StatusOK, page)
}

func (a *API) deleteWebhook(w http.ResponseWriter, r *http.Request, p tenancy.Principal) error {
	if err := a.webhooks.DeleteEndpoint(r.Context(), p.TenantID, authgate.WebhookEndpointID(r.PathValue("id"))); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
