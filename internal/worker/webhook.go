// Package worker is authgate's webhooks: each tenant's endpoints (the
// signing secret sealed with the master keys and shown once), one stored
// delivery per event and endpoint, stored and enqueued in the transaction of
// the change it reports (NotifyTx), and one signed attempt at a delivery
// (Deliver). When and where attempts run — once across instances, retried
// on a schedule, dead after the last — is River's job (package jobs).
//
// It must never log or return an endpoint's secret after its creation, nor
// send a delivery that was not stored first.
package worker

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/internal/clock"
	"github.com/authgate/authgate/internal/keyring"
	"github.com/authgate/authgate/internal/netpolicy"
	"github.com/authgate/authgate/internal/storage"
	"github.com/authgate/authgate/internal/vault"
	"github.com/authgate/authgate/webhook"
)

// Sealer seals and opens endpoint secrets (the master keyring).
type Sealer interface {
	Seal(plaintext, ad []byte) keyring.Sealed
	Open(s keyring.Sealed, ad []byte) ([]byte, error)
}

// WebhooksConfig wires Webhooks.
type WebhooksConfig struct {
	Store  storage.Store
	Keys   Sealer
	Clock  clock.Clock  // clock.Real{} when nil
	Client *http.Client // netpolicy.Client(Policy, SendTimeout) when nil; another must enforce Policy itself
	Logger *slog.Logger
	// Enqueue schedules the sending of stored deliveries (River).
	Enqueue Enqueuer
	// Policy says which addresses endpoints may point at: checked when an
	// endpoint is added and, through Client, on every connection.
	Policy netpolicy.Policy
	// AllowHTTP allows plain http endpoints (development, and receivers on
	// networks the operator opened); otherwise https is required.
	AllowHTTP bool
}

// Webhooks stores endpoints and deliveries and sends them.
type Webhooks struct {
	cfg WebhooksConfig
}

// NewWebhooks returns Webhooks.
func NewWebhooks(cfg WebhooksConfig) *Webhooks {
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Client == nil {
		cfg.Client = netpolicy.Client(cfg.Policy, SendTimeout)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Webhooks{cfg: cfg}
}

// SendTimeout bounds one delivery attempt, answer included: a slow
// endpoint holds one worker for at most this long.
const SendTimeout = 10 * time.Second

// AddEndpoint stores an endpoint for tenant with a fresh secret, returned
// in Secret this once.
func (w *Webhooks) AddEndpoint(ctx context.Context, tenant authgate.TenantID, rawURL string) (authgate.WebhookEndpoint, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || len(rawURL) > 2000 {
		return authgate.WebhookEndpoint{}, authgate.Errorf(authgate.ClassInvalidRequest, "url must be an absolute http(s) URL without credentials")
	}
	if u.Scheme == "http" && !w.cfg.AllowHTTP {
		return authgate.WebhookEndpoint{}, authgate.Errorf(authgate.ClassInvalidRequest, "url must be https")
	}
	if err := w.cfg.Policy.CheckEndpoint(ctx, u); err != nil {
		return authgate.WebhookEndpoint{}, err
	}
	raw := make([]byte, 32)
	_, _ = rand.Read(raw)
	sec := "whsec_" + base64.RawURLEncoding.EncodeToString(raw)
	e := &storage.WebhookEndpoint{ID: authgate.NewWebhookEndpointID(), TenantID: tenant, URL: u.String(), CreatedAt: w.cfg.Clock.Now().UTC().Truncate(time.Microsecond)}
	e.Secret = w.cfg.Keys.Seal([]byte(sec), vault.WebhookSecretAssociatedData(e.ID))
	if err := w.cfg.Store.WebhookEndpointInsert(ctx, e); err != nil {
		return authgate.WebhookEndpoint{}, fmt.Errorf("add webhook endpoint: %w", err)
	}
	return authgate.WebhookEndpoint{ID: e.ID, URL: e.URL, CreatedAt: e.CreatedAt, Secret: sec}, nil
}

// Endpoints lists a tenant's endpoints, without secrets.
func (w *Webhooks) Endpoints(ctx context.Context, tenant authgate.TenantID) ([]authgate.WebhookEndpoint, error) {
	es, err := w.cfg.Store.WebhookEndpointList(ctx, tenant)
	if err != nil {
		return nil, err
	}
	out := []authgate.WebhookEndpoint{}
	for _, e := range es {
		out = append(out, authgate.WebhookEndpoint{ID: e.ID, URL: e.URL, CreatedAt: e.CreatedAt})
	}
	return out, nil
}

// DeleteEndpoint removes an endpoint and its pending deliveries.
func (w *Webhooks) DeleteEndpoint(ctx context.Context, tenant authgate.TenantID, id authgate.WebhookEndpointID) error {
	err := w.cfg.Store.WebhookEndpointDelete(ctx, storage.WebhookEndpointDeleteParams{TenantID: tenant, ID: id})
	if errors.Is(err, storage.ErrNotFound) {
		return authgate.Errorf(authgate.ClassNotFound, "no webhook endpoint %s", id).WithCause(err)
	}
	return err
}

// Enqueuer schedules the sending of stored deliveries in the caller's
// transaction (River jobs: see package jobs).
type Enqueuer interface {
	EnqueueDeliveriesTx(ctx context.Context, q storage.Queries, ds []*storage.WebhookDelivery) error
}

// Notify is NotifyTx in a transaction of its own.
func (w *Webhooks) Notify(ctx context.Context, tenant authgate.TenantID, typ authgate.WebhookEventType, data any) error {
	return w.cfg.Store.Tx(ctx, func(q storage.Queries) error { return w.NotifyTx(ctx, q, tenant, typ, data) })
}

// NotifyTx stores one delivery of event typ with data for each of the
// tenant's endpoints and enqueues the sending of each, on q: inside the
// transaction of the change the event reports, so the event exists if and
// only if the change committed, once.
func (w *Webhooks) NotifyTx(ctx context.Context, q storage.Queries, tenant authgate.TenantID, typ authgate.WebhookEventType, data any) error {
	es, err := q.WebhookEndpointList(ctx, tenant)
	if err != nil || len(es) == 0 {
		return err
	}
	raw, err := json.Marshal(data)
	if err != nil {
		return fmt.Errorf("webhook %s: %w", typ, err)
	}
	now := w.cfg.Clock.Now().UTC().Truncate(time.Microsecond)
	ds := make([]*storage.WebhookDelivery, 0, len(es))
	for _, e := range es {
		id := authgate.NewWebhookDeliveryID()
		body, err := json.Marshal(authgate.WebhookEvent{ID: id, Type: typ, TenantID: tenant, CreatedAt: now, Data: raw})
		if err != nil {
			return err
		}
		d := &storage.WebhookDelivery{ID: id, TenantID: tenant, EndpointID: e.ID, EventType: typ, Payload: body, NextAttemptAt: now, CreatedAt: now}
		if err := q.WebhookDeliveryInsert(ctx, d); err != nil {
			return fmt.Errorf("webhook %s: %w", typ, err)
		}
		ds = append(ds, d)
	}
	if w.cfg.Enqueue == nil {
		return errors.New("webhooks: no queue to send deliveries with")
	}
	return w.cfg.Enqueue.EnqueueDeliveriesTx(ctx, q, ds)
}

// ErrGone: the delivery or its endpoint no longer exists (deleted), or it
// was delivered already; there is nothing to send.
var ErrGone = errors.New("webhook delivery gone or finished")

// Deliver makes one attempt at a stored delivery and records it: delivered,
// or failed (dead when last is set: nothing will retry it). It returns the
// endpoint id (for per-endpoint limits, before sending: see Endpoint) and
// the attempt's error; ErrGone when there is nothing to send.
func (w *Webhooks) Deliver(ctx context.Context, id authgate.WebhookDeliveryID, last bool, nextAttempt time.Time) error {
	d, err := w.cfg.Store.WebhookDeliveryGet(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return ErrGone
	}
	if err != nil {
		return err
	}
	if d.Status() != storage.WebhookDeliveryPending {
		return ErrGone
	}
	ep, err := w.endpoint(ctx, d)
	if err != nil {
		return err
	}
	sendErr := w.send(ctx, ep, d)
	p := storage.WebhookDeliveryRecordAttemptParams{ID: d.ID, At: w.cfg.Clock.Now(), Delivered: sendErr == nil}
	if sendErr != nil {
		p.LastError, p.Dead, p.NextAttemptAt = truncate(sendErr.Error(), 500), last, nextAttempt
		w.cfg.Logger.WarnContext(ctx, "webhook delivery failed", "delivery_id", string(d.ID), "endpoint_id", string(ep.ID), "attempt", d.Attempts+1, "dead", last, "error", p.LastError)
	}
	// Recorded on a context of its own: an attempt that happened is
	// recorded even when the job's context ends right after.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := w.cfg.Store.WebhookDeliveryRecordAttempt(rctx, p); err != nil && !errors.Is(err, storage.ErrNotFound) {
		return errors.Join(sendErr, err)
	}
	return sendErr
}

// EndpointOf names the endpoint a delivery goes to ("" when it is gone).
func (w *Webhooks) EndpointOf(ctx context.Context, id authgate.WebhookDeliveryID) (authgate.WebhookEndpointID, error) {
	d, err := w.cfg.Store.WebhookDeliveryGet(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return d.EndpointID, nil
}

func (w *Webhooks) endpoint(ctx context.Context, d *storage.WebhookDelivery) (*storage.WebhookEndpoint, error) {
	es, err := w.cfg.Store.WebhookEndpointList(ctx, d.TenantID)
	if err != nil {
		return nil, err
	}
	for _, e := range es {
		if e.ID == d.EndpointID {
			return e, nil
		}
	}
	return nil, ErrGone // deleted meanwhile: its deliveries go with it
}

// PublicDelivery is a delivery as the API and CLI show it (no body).
func PublicDelivery(d *storage.WebhookDelivery) authgate.WebhookDelivery {
	out := authgate.WebhookDelivery{ID: d.ID, EndpointID: d.EndpointID, EventType: d.EventType, Status: authgate.WebhookDeliveryStatus(d.Status()),
		Attempts: d.Attempts, LastError: d.LastError, CreatedAt: d.CreatedAt}
	at := func(t time.Time) *time.Time {
		if t.IsZero() {
			return nil
		}
		return &t
	}
	out.DeliveredAt, out.DeadAt = at(d.DeliveredAt), at(d.DeadAt)
	if out.Status == authgate.WebhookDeliveryPending {
		out.NextAttemptAt = at(d.NextAttemptAt)
	}
	return out
}

// DeliveriesParams filters a tenant's deliveries.
type DeliveriesParams struct {
	EndpointID authgate.WebhookEndpointID
	Status     storage.WebhookDeliveryStatus
	Before     authgate.WebhookDeliveryID
	Limit      int
}

// Deliveries lists a tenant's deliveries, newest first, with their status
// (pending, delivered, dead), attempts and last error; never a payload's
// signature or an endpoint's secret.
func (w *Webhooks) Deliveries(ctx context.Context, tenant authgate.TenantID, p DeliveriesParams) ([]*storage.WebhookDelivery, error) {
	switch p.Status {
	case "", storage.WebhookDeliveryPending, storage.WebhookDeliveryDelivered, storage.WebhookDeliveryDead:
	default:
		return nil, authgate.Errorf(authgate.ClassInvalidRequest, "status must be pending, delivered or dead")
	}
	return w.cfg.Store.WebhookDeliveryList(ctx, storage.WebhookDeliveryListParams{TenantID: tenant, EndpointID: p.EndpointID, Status: p.Status,
		BeforeID: p.Before, Limit: p.Limit})
}

func (w *Webhooks) send(ctx context.Context, ep *storage.WebhookEndpoint, d *storage.WebhookDelivery) error {
	sec, err := w.cfg.Keys.Open(ep.Secret, vault.WebhookSecretAssociatedData(ep.ID))
	if err != nil {
		return fmt.Errorf("open endpoint secret: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.URL, bytes.NewReader(d.Payload))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "authgate-webhooks")
	req.Header.Set(webhook.SignatureHeader, webhook.Sign(sec, w.cfg.Clock.Now(), d.Payload))
	req.Header.Set(webhook.DeliveryHeader, string(d.ID))
	req.Header.Set(webhook.EventHeader, string(d.EventType))
	resp, err := w.cfg.Client.Do(req)
	if err != nil {
		return fmt.Errorf("post: %w", errors.Unwrap(err))
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("the endpoint answered HTTP %d", resp.StatusCode)
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
