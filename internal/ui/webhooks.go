package ui

import (
	"context"
	"net/http"
	"time"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/internal/storage"
)

// delivery is one webhook delivery as the Webhooks page shows it.
type delivery struct {
	ID          authgate.WebhookDeliveryID
	EndpointID  authgate.WebhookEndpointID
	EventType   authgate.WebhookEventType
	Attempts    int
	CreatedAt   time.Time
	DeliveredAt time.Time
	NextAttempt time.Time
	LastError   string
	// Status is "delivered", "pending" (not tried yet), "retrying" (failed,
	// will be tried again) or "dead" (failed for good).
	Status string
}

// recentDeliveries is the one place the console reads deliveries: when
// sending moves onto the job queue, point it at the queue's view of them.
// Today's sender retries a failed delivery for ever (backoff capped at an
// hour), so no delivery is dead yet.
func recentDeliveries(ctx context.Context, store storage.Store, tenant authgate.TenantID, limit int) ([]delivery, error) {
	ds, err := store.WebhookDeliveryListRecent(ctx, storage.WebhookDeliveryListRecentParams{TenantID: tenant, Limit: limit})
	if err != nil {
		return nil, err
	}
	out := make([]delivery, 0, len(ds))
	for _, d := range ds {
		v := delivery{ID: d.ID, EndpointID: d.EndpointID, EventType: d.EventType, Attempts: d.Attempts, CreatedAt: d.CreatedAt,
			DeliveredAt: d.DeliveredAt, LastError: d.LastError, Status: "pending"}
		switch {
		case !d.DeliveredAt.IsZero():
			v.Status = "delivered"
		case d.Attempts > 0:
			v.Status, v.NextAttempt = "retrying", d.NextAttemptAt
		default:
			v.NextAttempt = d.NextAttemptAt
		}
		out = append(out, v)
	}
	return out, nil
}

type webhooksPage struct {
	Endpoints  []authgate.WebhookEndpoint
	Deliveries []delivery
}

func (c *Console) webhooks(w http.ResponseWriter, r *http.Request, s *session) error {
	eps, err := c.cfg.Client(s.Tenant).Webhooks(r.Context())
	if err != nil {
		return err
	}
	ds, err := recentDeliveries(r.Context(), c.cfg.Store, s.Tenant, 100)
	if err != nil {
		return err
	}
	c.render(w, r, s, "webhooks", "Webhooks", webhooksPage{Endpoints: eps.Endpoints, Deliveries: ds})
	return nil
}
