// Package worker runs authgate's background work. For now: webhooks — each
// tenant's endpoints (the signing secret sealed with the master keys and
// shown once), one stored delivery per event and endpoint (stored before
// anything is sent, so a restart loses none), and the sender that posts
// due deliveries signed (package webhook) and retries them with backoff.
//
// It must never log or return an endpoint's secret after its creation, nor
// send a delivery that was not stored first. The River issue moves the
// sending onto its queue: callers only see Notify.
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
	Client *http.Client // netpolicy.Client(Policy, 10s) when nil; another must enforce Policy itself
	Logger *slog.Logger
	// Policy says which addresses endpoints may point at: checked when an
	// endpoint is added and, through Client, on every connection.
	Policy netpolicy.Policy
	// AllowHTTP allows plain http endpoints (development, and receivers on
	// networks the operator opened); otherwise https is required.
	AllowHTTP bool
}

// Webhooks stores endpoints and deliveries and sends them.
type Webhooks struct {
	cfg  WebhooksConfig
	kick chan struct{}
}

// NewWebhooks returns Webhooks.
func NewWebhooks(cfg WebhooksConfig) *Webhooks {
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Client == nil {
		cfg.Client = netpolicy.Client(cfg.Policy, 10*time.Second)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Webhooks{cfg: cfg, kick: make(chan struct{}, 1)}
}

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

// Notify stores one delivery of event typ with data for each of the
// tenant's endpoints, in one transaction, and wakes the sender.
func (w *Webhooks) Notify(ctx context.Context, tenant authgate.TenantID, typ authgate.WebhookEventType, data any) error {
	es, err := w.cfg.Store.WebhookEndpointList(ctx, tenant)
	if err != nil || len(es) == 0 {
		return err
	}
	raw, err := json.Marshal(data)
	if err != nil {
		return fmt.Errorf("webhook %s: %w", typ, err)
	}
	now := w.cfg.Clock.Now().UTC().Truncate(time.Microsecond)
	err = w.cfg.Store.Tx(ctx, func(q storage.Queries) error {
		for _, e := range es {
			id := authgate.NewWebhookDeliveryID()
			body, err := json.Marshal(authgate.WebhookEvent{ID: id, Type: typ, TenantID: tenant, CreatedAt: now, Data: raw})
			if err != nil {
				return err
			}
			if err := q.WebhookDeliveryInsert(ctx, &storage.WebhookDelivery{ID: id, TenantID: tenant, EndpointID: e.ID, EventType: typ, Payload: body,
				NextAttemptAt: now, CreatedAt: now}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("webhook %s: %w", typ, err)
	}
	select {
	case w.kick <- struct{}{}:
	default:
	}
	return nil
}

// Backoff is the wait after the nth failed attempt (1-based): 10 s doubling
// to at most an hour.
func Backoff(n int) time.Duration {
	d := 10 * time.Second
	for i := 1; i < n && d < time.Hour; i++ {
		d *= 2
	}
	return min(d, time.Hour)
}

// SendDue sends every delivery due now, once each, and records each
// attempt; it returns how many were delivered.
func (w *Webhooks) SendDue(ctx context.Context) (int, error) {
	due, err := w.cfg.Store.WebhookDeliveryListDue(ctx, storage.WebhookDeliveryListDueParams{Now: w.cfg.Clock.Now(), Limit: 100})
	if err != nil {
		return 0, fmt.Errorf("webhooks due: %w", err)
	}
	endpoints := map[authgate.TenantID][]*storage.WebhookEndpoint{}
	sent := 0
	for _, d := range due {
		es, ok := endpoints[d.TenantID]
		if !ok {
			if es, err = w.cfg.Store.WebhookEndpointList(ctx, d.TenantID); err != nil {
				return sent, err
			}
			endpoints[d.TenantID] = es
		}
		var ep *storage.WebhookEndpoint
		for _, e := range es {
			if e.ID == d.EndpointID {
				ep = e
			}
		}
		if ep == nil {
			continue // deleted meanwhile: its deliveries go with it
		}
		err := w.send(ctx, ep, d)
		p := storage.WebhookDeliveryRecordAttemptParams{ID: d.ID, At: w.cfg.Clock.Now(), Delivered: err == nil}
		if err != nil {
			p.LastError = truncate(err.Error(), 500)
			p.NextAttemptAt = p.At.Add(Backoff(d.Attempts + 1))
			w.cfg.Logger.WarnContext(ctx, "webhook delivery failed", "delivery_id", string(d.ID), "endpoint_id", string(ep.ID), "attempt", d.Attempts+1, "error", p.LastError)
		} else {
			sent++
		}
		if err := w.cfg.Store.WebhookDeliveryRecordAttempt(ctx, p); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return sent, err
		}
	}
	return sent, nil
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

// Run sends due deliveries until ctx ends: at once when Notify stores one,
// and every interval for retries and what a previous process left behind.
func (w *Webhooks) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := w.SendDue(ctx); err != nil && ctx.Err() == nil {
			w.cfg.Logger.WarnContext(ctx, "send webhooks", "error", err.Error())
		}
		select {
		case <-ctx.Done():
			return
		case <-w.kick:
		case <-t.C:
		}
	}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
