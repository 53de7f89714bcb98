package ui

import (
	"context"
	"net/http"
	"time"

	"github.com/authgate/authgate"
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

// recentDeliveries is the one place the console reads deliveries: the
// API's list (GET /v1/webhooks/deliveries), which the job queue keeps
// current: pending (not tried yet), retrying (failed, will be tried again
// on the River schedule), delivered, or dead (every attempt failed).
func recentDeliveries(ctx context.Context, c *authgate.Client) ([]delivery, error) {
	page, err := c.WebhookDeliveries(ctx, "", "")
	if err != nil {
		return nil, err
	}
	at := func(t *time.Time) time.Time {
		if t == nil {
			return time.Time{}
		}
		return *t
	}
	out := make([]delivery, 0, len(page.Deliveries))
	for _, d := range page.Deliveries {
		v := delivery{ID: d.ID, EndpointID: d.EndpointID, EventType: d.EventType, Attempts: d.Attempts, CreatedAt: d.CreatedAt,
			DeliveredAt: at(d.DeliveredAt), NextAttempt: at(d.NextAttemptAt), LastError: d.LastError, Status: string(d.Status)}
		if d.Status == authgate.WebhookDeliveryPending && d.Attempts > 0 {
			v.Status = "retrying"
		}
		if d.Status == authgate.WebhookDeliveryDead {
			v.NextAttempt = at(d.DeadAt)
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
	ds, err := recentDeliveries(r.Context(), c.cfg.Client(s.Tenant))
	if err != nil {
		return err
	}
	c.render(w, r, s, "webhooks", "Webhooks", webhooksPage{Endpoints: eps.Endpoints, Deliveries: ds})
	return nil
}
