package api_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/authgatetest"
	"github.com/authgate/authgate/internal/clock"
	"github.com/authgate/authgate/server"
	"github.com/authgate/authgate/webhook"
)

// receiver is a tenant's webhook endpoint that can be down.
type receiver struct {
	clock  clock.Clock
	secret atomic.Pointer[[]byte]
	down   atomic.Bool
	mu     sync.Mutex
	hits   int
	events []authgate.WebhookEvent
	bad    []string
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.hits++
	if rc.down.Load() {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	body, _ := io.ReadAll(r.Body)
	if err := webhook.Verify(*rc.secret.Load(), r.Header.Get(webhook.SignatureHeader), body, rc.clock.Now(), 0); err != nil {
		rc.bad = append(rc.bad, err.Error())
		http.Error(w, "bad signature", http.StatusBadRequest)
		return
	}
	var ev authgate.WebhookEvent
	_ = json.Unmarshal(body, &ev)
	if r.Header.Get(webhook.DeliveryHeader) != string(ev.ID) || r.Header.Get(webhook.EventHeader) != string(ev.Type) {
		rc.bad = append(rc.bad, "headers do not match the body")
	}
	rc.events = append(rc.events, ev)
}

func (rc *receiver) types() []authgate.WebhookEventType {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var out []authgate.WebhookEventType
	for _, e := range rc.events {
		out = append(out, e.Type)
	}
	slices.Sort(out)
	return out
}

// TestWebhooksThroughAnOutage: a run blocked at preflight, then resumed by
// a re-import, delivers one signed webhook per event to a receiver that was
// down for a while — retried with backoff on the injected clock, each
// delivered once, by a sender that is not the one that stored them (what a
// restart does).
func TestWebhooksThroughAnOutage(t *testing.T) {
	t.Parallel()
	fc := clock.NewFake(time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC))
	env := authgatetest.Start(t, authgatetest.Options{Clock: fc, Configure: func(c *server.Config) { c.WebhookInterval = -1 }})
	ctx := context.Background()
	rc := &receiver{clock: fc}
	rc.down.Store(true)
	hs := httptest.NewServer(rc)
	t.Cleanup(hs.Close)
	ep, err := env.Client.CreateWebhook(ctx, authgate.WebhookEndpointCreateRequest{URL: hs.URL + "/hook"})
	if err != nil || ep.Secret == "" {
		t.Fatalf("create webhook %+v %v", ep, err)
	}
	sec := []byte(ep.Secret)
	rc.secret.Store(&sec)
	if l, err := env.Client.Webhooks(ctx); err != nil || len(l.Endpoints) != 1 || l.Endpoints[0].Secret != "" {
		t.Fatalf("list shows %+v %v", l, err)
	}

	// Another tenant neither sees nor deletes the endpoint, and its events
	// never reach it.
	other, _ := env.NewTenant(t, "other")
	if l, err := other.Webhooks(ctx); err != nil || len(l.Endpoints) != 0 {
		t.Fatalf("other tenant lists %+v %v", l, err)
	}
	if err := other.DeleteWebhook(ctx, ep.ID); !isClass(err, authgate.ClassNotFound) {
		t.Fatalf("other tenant deletes: %v", err)
	}
	if oc, err := other.ImportCredential(ctx, importReq("olga")); err != nil {
		t.Fatal(err)
	} else if _, err := other.CreateRun(ctx, authgate.RunCreateRequest{Workflow: "w", UserID: "olga", Bindings: map[string]authgate.CredentialID{"google": oc.ID}}); err != nil {
		t.Fatal(err)
	}

	// The imported token is unknown to the sandbox: the live identity
	// check answers 401 and the run is blocked at preflight.
	c, err := env.Client.ImportCredential(ctx, importReq("wes"))
	if err != nil {
		t.Fatal(err)
	}
	run, err := env.Client.CreateRun(ctx, authgate.RunCreateRequest{Workflow: "w", UserID: "wes", Bindings: map[string]authgate.CredentialID{"google": c.ID}})
	if err != nil || run.State != authgate.RunStateBlockedOnAuth {
		t.Fatalf("run %+v %v", run, err)
	}
	// Reconnected (a re-import here): the run resumes.
	if _, err := env.Client.ImportCredential(ctx, importReq("wes")); err != nil {
		t.Fatal(err)
	}
	if got, _ := env.Client.Run(ctx, run.ID); got.State != authgate.RunStateRunning {
		t.Fatalf("after re-import %s", got.State)
	}

	wh := env.Server.Webhooks
	send := func(want int) {
		t.Helper()
		if n, err := wh.SendDue(ctx); err != nil || n != want {
			t.Fatalf("SendDue = %d, %v; want %d", n, err, want)
		}
	}
	send(0) // down: 3 failed attempts, next in 10 s
	if rc.hits != 3 {
		t.Fatalf("%d attempts; want 3", rc.hits)
	}
	fc.Advance(5 * time.Second)
	send(0)
	fc.Advance(time.Minute) // still down: second attempts, next in 20 s
	send(0)
	if rc.hits != 6 {
		t.Fatalf("%d attempts; want 6 (backoff)", rc.hits)
	}
	rc.down.Store(false)
	fc.Advance(21 * time.Second)
	// A fresh sender over the same store: deliveries live in the database.
	again := server.NewWebhooks(env.Server.Core, server.Config{Addr: "127.0.0.1:0"})
	if n, err := again.SendDue(ctx); err != nil || n != 3 {
		t.Fatalf("after the outage %d, %v", n, err)
	}
	fc.Advance(time.Hour)
	send(0)
	want := []authgate.WebhookEventType{authgate.WebhookEventCredentialReconnected, authgate.WebhookEventRunBlockedOnAuth, authgate.WebhookEventRunResumed}
	if got := rc.types(); !slices.Equal(got, want) || len(rc.bad) != 0 {
		t.Fatalf("received %v (bad %v); want each of %v once", got, rc.bad, want)
	}
	if rc.events[0].TenantID == "" || len(rc.events[0].Data) == 0 {
		t.Fatalf("event %+v", rc.events[0])
	}
}
