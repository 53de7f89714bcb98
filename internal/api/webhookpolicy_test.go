package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/authgatetest"
	"github.com/authgate/authgate/internal/netpolicy"
	"github.com/authgate/authgate/internal/storage"
	"github.com/authgate/authgate/internal/worker"
	"github.com/authgate/authgate/server"
)

// TestWebhookAddressPolicy: a receiver on 127.0.0.1 is accepted and
// delivered to in development, refused at registration with a problem that
// names the setting once the server has a public URL, and accepted again
// when the operator opens private targets or lists the range. Only
// loopback is ever registered or dialled.
func TestWebhookAddressPolicy(t *testing.T) {
	t.Parallel()
	const public = "https://authgate.example.com" // never contacted
	for _, tc := range []struct {
		name      string
		configure func(*server.Config)
		refused   bool
	}{
		{"development", func(*server.Config) {}, false},
		{"public URL", func(c *server.Config) { c.PublicURL = public }, true},
		{"public URL, AUTHGATE_WEBHOOK_ALLOW_PRIVATE", func(c *server.Config) { c.PublicURL, c.WebhookAllowPrivate = public, true }, false},
		{"public URL, AUTHGATE_WEBHOOK_ALLOW_CIDRS", func(c *server.Config) { c.PublicURL, c.WebhookAllowCIDRs = public, []string{"127.0.0.0/8"} }, false},
		{"public URL, another CIDR", func(c *server.Config) { c.PublicURL, c.WebhookAllowCIDRs = public, []string{"10.1.0.0/16"} }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := authgatetest.Start(t, authgatetest.Options{Configure: func(c *server.Config) {
				c.JobPollInterval = 20 * time.Millisecond
				tc.configure(c)
			}})
			ctx := context.Background()
			var hits atomic.Int32
			arrived := make(chan struct{}, 10)
			hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1); arrived <- struct{}{} }))
			t.Cleanup(hs.Close)

			ep, err := env.Client.CreateWebhook(ctx, authgate.WebhookEndpointCreateRequest{URL: hs.URL + "/hook"})
			if tc.refused {
				var ae *authgate.Error
				if !errors.As(err, &ae) || ae.Class != authgate.ClassInvalidRequest || ae.Status != http.StatusBadRequest ||
					!strings.Contains(ae.Detail, "AUTHGATE_WEBHOOK_ALLOW_PRIVATE=true") || !strings.Contains(ae.Detail, "AUTHGATE_WEBHOOK_ALLOW_CIDRS") ||
					!strings.Contains(ae.Detail, "loopback") || len(ae.Errors) != 1 || ae.Errors[0].Field != "url" {
					t.Fatalf("create: %#v; want invalid_request naming the settings", err)
				}
				assertProblemJSON(t, env, hs.URL+"/hook")
				if l, err := env.Client.Webhooks(ctx); err != nil || len(l.Endpoints) != 0 {
					t.Fatalf("stored anyway: %+v %v", l, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("create: %v", err)
			}
			// The sender's client dials through the same policy: the
			// delivery arrives.
			tenant := tenantOf(t, env)
			if err := env.Server.Webhooks.Notify(ctx, tenant, authgate.WebhookEventRunFinished, map[string]string{"run_id": "run_x"}); err != nil {
				t.Fatal(err)
			}
			select { // the job queue delivers
			case <-arrived:
			case <-time.After(30 * time.Second):
			}
			if hits.Load() != 1 {
				t.Fatalf("%d requests reached %s; want 1 delivery", hits.Load(), ep.URL)
			}
		})
	}
}

// TestWebhookRefusedAtConnect: an endpoint registered while the policy
// admitted it (development) is not dialled by a sender whose policy no
// longer does (the same database served behind a public URL): the
// connection is refused before anything is sent, and the attempt is
// recorded as failed.
func TestWebhookRefusedAtConnect(t *testing.T) {
	t.Parallel()
	env := authgatetest.Start(t, authgatetest.Options{})
	ctx := context.Background()
	var hits atomic.Int32
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	t.Cleanup(hs.Close)
	if _, err := env.Client.CreateWebhook(ctx, authgate.WebhookEndpointCreateRequest{URL: hs.URL + "/hook"}); err != nil {
		t.Fatal(err)
	}
	// A sender on the same database under the policy of a published server
	// (strict: no private targets), whose deliveries are sent only when the
	// test says so.
	var logs bytes.Buffer
	behindProxy := worker.NewWebhooks(worker.WebhooksConfig{Store: env.Server.Core.Store, Keys: env.Server.Core.Keys, Clock: env.Server.Core.Clock,
		Logger: slog.New(slog.NewTextHandler(&logs, nil)), Policy: netpolicy.Policy{}, AllowHTTP: true, Enqueue: holdDeliveries{}})
	tenant := tenantOf(t, env)
	if err := behindProxy.Notify(ctx, tenant, authgate.WebhookEventRunFinished, map[string]string{"run_id": "run_x"}); err != nil {
		t.Fatal(err)
	}
	ds, err := behindProxy.Deliveries(ctx, tenant, worker.DeliveriesParams{})
	if err != nil || len(ds) != 1 {
		t.Fatalf("deliveries %v %v", ds, err)
	}
	if err := behindProxy.Deliver(ctx, ds[0].ID, false, time.Now().Add(time.Hour)); err == nil {
		t.Fatal("delivered to a loopback address under a strict policy")
	}
	if hits.Load() != 0 {
		t.Fatalf("the receiver got %d requests", hits.Load())
	}
	if !strings.Contains(logs.String(), "refused by the webhook address policy") {
		t.Fatalf("the failed attempt does not say why; logs:\n%s", logs.String())
	}
}

// holdDeliveries enqueues nothing: the test sends by hand.
type holdDeliveries struct{}

func (holdDeliveries) EnqueueDeliveriesTx(context.Context, storage.Queries, []*storage.WebhookDelivery) error {
	return nil
}

func tenantOf(t *testing.T, env *authgatetest.Env) authgate.TenantID {
	t.Helper()
	p, err := env.Server.Tenancy.Authenticate(context.Background(), "Bearer "+env.AdminKey)
	if err != nil {
		t.Fatal(err)
	}
	return p.TenantID
}

// assertProblemJSON posts url as a raw request and checks the wire answer
// is an RFC 9457 problem naming the setting.
func assertProblemJSON(t *testing.T, env *authgatetest.Env, url string) {
	t.Helper()
	body, _ := json.Marshal(authgate.WebhookEndpointCreateRequest{URL: url})
	r := do(t, http.MethodPost, env.URL+"/v1/webhooks", env.AdminKey, "application/json", bytes.NewReader(body))
	if p := problem(t, r, http.StatusBadRequest, authgate.ClassInvalidRequest); !strings.Contains(p.Detail, "AUTHGATE_WEBHOOK_ALLOW_PRIVATE") {
		t.Fatalf("problem %s does not name the setting", r.body)
	}
}
