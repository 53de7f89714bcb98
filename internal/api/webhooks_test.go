package api_test

import (
	"context"
	"encoding/json"
	"fmt"
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
	// hit is signalled after every request (never blocks).
	hit chan struct{}
}

// waitFor waits until cond (called with rc.mu held) holds, checked after
// each request the receiver answers and every 20 ms for what the server
// records after answering (a delivery's status); the deadline only turns a
// hang into a failure.
func (rc *receiver) waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.After(60 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		rc.mu.Lock()
		ok := cond()
		rc.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-rc.hit:
		case <-tick.C:
		case <-deadline:
			t.Fatal("timed out waiting for the webhook receiver")
		}
	}
}

// newReceiverServer serves rc on loopback until the test ends.
func newReceiverServer(t *testing.T, rc *receiver) string {
	hs := httptest.NewServer(rc)
	t.Cleanup(hs.Close)
	return hs.URL + "/hook"
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rc.mu.Lock()
	defer func() {
		rc.mu.Unlock()
		select {
		case rc.hit <- struct{}{}:
		default:
		}
	}()
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
// down for a while: every event is stored and enqueued with the change that
// caused it, retried on the schedule by River, and delivered once.
func TestWebhooksThroughAnOutage(t *testing.T) {
	t.Parallel()
	env := authgatetest.Start(t, authgatetest.Options{Configure: func(c *server.Config) {
		c.WebhookRetrySchedule = []time.Duration{50 * time.Millisecond, 50 * time.Millisecond, 50 * time.Millisecond}
		c.JobPollInterval = 50 * time.Millisecond
	}})
	ctx := context.Background()
	rc := &receiver{clock: clock.Real{}, hit: make(chan struct{}, 100)}
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
	// Still down for the first attempts of each.
	rc.waitFor(t, func() bool { return rc.hits >= 1 })
	// Reconnected (a re-import here): a job resumes the run.
	if _, err := env.Client.ImportCredential(ctx, importReq("wes")); err != nil {
		t.Fatal(err)
	}
	rc.waitFor(t, func() bool { return rc.hits >= 3 })
	rc.down.Store(false)
	// The preflight's refresh found the grant gone (reauth_required, from
	// the refresher's path), the run blocked, the re-import reconnected the
	// credential and the job resumed the run.
	want := []authgate.WebhookEventType{authgate.WebhookEventCredentialReauthRequired, authgate.WebhookEventCredentialReconnected,
		authgate.WebhookEventRunBlockedOnAuth, authgate.WebhookEventRunResumed}
	rc.waitFor(t, func() bool { return len(rc.events) >= 4 })
	if got, _ := env.Client.Run(ctx, run.ID); got.State != authgate.RunStateRunning {
		t.Fatalf("after re-import %s", got.State)
	}
	if got := rc.types(); !slices.Equal(got, want) || len(rc.bad) != 0 {
		t.Fatalf("received %v (bad %v); want each of %v once", got, rc.bad, want)
	}
	if rc.events[0].TenantID == "" || len(rc.events[0].Data) == 0 {
		t.Fatalf("event %+v", rc.events[0])
	}
	var page authgate.WebhookDeliveryPage
	rc.waitFor(t, func() bool {
		page, err = env.Client.WebhookDeliveries(ctx, authgate.WebhookDeliveryDelivered, "")
		return err == nil && len(page.Deliveries) == 4
	})
	for _, d := range page.Deliveries {
		if d.Attempts < 1 || d.DeliveredAt == nil {
			t.Fatalf("delivery %+v", d)
		}
	}
	if page, _ := other.WebhookDeliveries(ctx, "", ""); len(page.Deliveries) != 0 {
		t.Fatalf("another tenant sees %d deliveries", len(page.Deliveries))
	}
}

// TestWebhookDead: a delivery whose every attempt fails is dead, shown as
// such by the API, and never sent again.
func TestWebhookDead(t *testing.T) {
	t.Parallel()
	env := authgatetest.Start(t, authgatetest.Options{Configure: func(c *server.Config) {
		c.WebhookRetrySchedule = []time.Duration{20 * time.Millisecond, 20 * time.Millisecond}
		c.JobPollInterval = 20 * time.Millisecond
	}})
	ctx := context.Background()
	rc := &receiver{clock: clock.Real{}, hit: make(chan struct{}, 100)}
	rc.down.Store(true)
	hs := httptest.NewServer(rc)
	t.Cleanup(hs.Close)
	if _, err := env.Client.CreateWebhook(ctx, authgate.WebhookEndpointCreateRequest{URL: hs.URL + "/hook"}); err != nil {
		t.Fatal(err)
	}
	c, err := env.Client.ImportCredential(ctx, importReq("dee"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.Client.CreateRun(ctx, authgate.RunCreateRequest{Workflow: "w", UserID: "dee", Bindings: map[string]authgate.CredentialID{"google": c.ID}}); err != nil {
		t.Fatal(err)
	}
	var dead authgate.WebhookDeliveryPage
	rc.waitFor(t, func() bool {
		dead, _ = env.Client.WebhookDeliveries(ctx, authgate.WebhookDeliveryDead, "")
		return len(dead.Deliveries) == 2 // credential.reauth_required, run.blocked_on_auth
	})
	for _, d := range dead.Deliveries {
		if d.Attempts != 3 || d.DeadAt == nil || d.LastError != "the endpoint answered HTTP 503" {
			t.Fatalf("dead delivery %+v", d)
		}
	}
	if p, _ := env.Client.WebhookDeliveries(ctx, authgate.WebhookDeliveryPending, ""); len(p.Deliveries) != 0 {
		t.Fatalf("pending after both died: %+v", p.Deliveries)
	}
	rc.mu.Lock()
	hits := rc.hits
	rc.mu.Unlock()
	if hits != 6 {
		t.Fatalf("%d attempts reached the receiver; want 3 for each of 2 deliveries", hits)
	}
}

// TestSlowEndpointDoesNotDelayOthers: one tenant's endpoint takes 30 s to
// answer each delivery; another tenant's deliveries still arrive within a
// second of their event, because deliveries run concurrently across
// endpoints and one endpoint holds at most its per-endpoint share.
func TestSlowEndpointDoesNotDelayOthers(t *testing.T) {
	t.Parallel()
	env := authgatetest.Start(t, authgatetest.Options{Configure: func(c *server.Config) { c.JobPollInterval = 100 * time.Millisecond }})
	ctx := context.Background()

	release := make(chan struct{})
	var slowHits atomic.Int32
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		slowHits.Add(1)
		select {
		case <-release:
		case <-time.After(30 * time.Second):
		}
	}))
	t.Cleanup(slow.Close)
	t.Cleanup(func() { close(release) })
	if _, err := env.Client.CreateWebhook(ctx, authgate.WebhookEndpointCreateRequest{URL: slow.URL}); err != nil {
		t.Fatal(err)
	}
	type arrival struct {
		ev authgate.WebhookEvent
		at time.Time
	}
	got := make(chan arrival, 10)
	fast := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev authgate.WebhookEvent
		_ = json.NewDecoder(r.Body).Decode(&ev)
		got <- arrival{ev, time.Now()}
	}))
	t.Cleanup(fast.Close)
	other, _ := env.NewTenant(t, "other")
	if _, err := other.CreateWebhook(ctx, authgate.WebhookEndpointCreateRequest{URL: fast.URL}); err != nil {
		t.Fatal(err)
	}

	// Ten deliveries stuck at the slow endpoint (two events per run).
	for i := range 5 {
		c, err := env.Client.ImportCredential(ctx, importReq(fmt.Sprintf("slow%d", i)))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := env.Client.CreateRun(ctx, authgate.RunCreateRequest{Workflow: "w", UserID: c.UserID, Bindings: map[string]authgate.CredentialID{"google": c.ID}}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.After(30 * time.Second)
	for slowHits.Load() < 4 {
		select {
		case <-deadline:
			t.Fatal("the slow endpoint got no deliveries")
		case <-time.After(10 * time.Millisecond):
		}
	}

	// The other tenant's events arrive promptly all the same.
	c, err := other.ImportCredential(ctx, importReq("fast"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.CreateRun(ctx, authgate.RunCreateRequest{Workflow: "w", UserID: "fast", Bindings: map[string]authgate.CredentialID{"google": c.ID}}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		select {
		case a := <-got:
			if lag := a.at.Sub(a.ev.CreatedAt); lag > time.Second {
				t.Fatalf("%s arrived %v after its event, behind the slow endpoint", a.ev.Type, lag)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the other tenant's deliveries did not arrive")
		}
	}
	if n := slowHits.Load(); n > 4 {
		t.Fatalf("the slow endpoint holds %d concurrent deliveries; the per-endpoint limit is 4", n)
	}
}
