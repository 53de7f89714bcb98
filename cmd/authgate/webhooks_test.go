package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/authgatetest"
	"github.com/authgate/authgate/server"
)

// TestTenantWebhooksAdd: the secret is printed once by add and never by
// list; the server sees the endpoint.
func TestTenantWebhooksAdd(t *testing.T) {
	t.Parallel()
	env := authgatetest.Start(t, authgatetest.Options{})
	db := []string{"--db", "sqlite:" + env.DBPath, "--key-file", env.KeyFile}
	out, err := run(t, append(db, "tenants", "webhooks", "add", "default", "https://localhost/authgate")...)
	if err != nil || !strings.Contains(out, "signing secret (shown once): whsec_") {
		t.Fatalf("add: %v\n%s", err, out)
	}
	out, err = run(t, append(db, "tenants", "webhooks", "list", "default")...)
	if err != nil || !strings.Contains(out, "https://localhost/authgate") || strings.Contains(out, "whsec_") {
		t.Fatalf("list: %v\n%s", err, out)
	}
	l, err := env.Client.Webhooks(context.Background())
	if err != nil || len(l.Endpoints) != 1 {
		t.Fatalf("API sees %+v %v", l, err)
	}
}

// TestRunsListShow: runs list and show through a running server.
func TestRunsListShow(t *testing.T) {
	t.Parallel()
	env := authgatetest.Start(t, authgatetest.Options{})
	ctx := context.Background()
	c, err := env.Client.ImportCredential(ctx, authgate.ImportCredentialRequest{UserID: "ann", Provider: "google", Subject: "s-ann", AccessToken: "ya29.x", RefreshToken: "1//y"})
	if err != nil {
		t.Fatal(err)
	}
	r, err := env.Client.CreateRun(ctx, authgate.RunCreateRequest{Workflow: "w", UserID: "ann", Bindings: map[string]authgate.CredentialID{"google": c.ID}})
	if err != nil {
		t.Fatal(err)
	}
	srv := []string{"--server", env.URL, "--api-key", env.AdminKey}
	out, err := run(t, append([]string{"runs", "list", "--user", "ann"}, srv...)...)
	if err != nil || !strings.Contains(out, string(r.ID)) || !strings.Contains(out, string(r.State)) {
		t.Fatalf("runs list: %v\n%s", err, out)
	}
	out, err = run(t, append([]string{"runs", "show", string(r.ID)}, srv...)...)
	if err != nil || !strings.Contains(out, "timeline:") || !strings.Contains(out, "binding google → "+string(c.ID)) || strings.Contains(out, "ya29.") {
		t.Fatalf("runs show: %v\n%s", err, out)
	}
}

// TestTenantWebhooksDeliveries: a delivery whose every attempt failed is
// listed as dead by the CLI, with its attempts and last error.
func TestTenantWebhooksDeliveries(t *testing.T) {
	t.Parallel()
	env := authgatetest.Start(t, authgatetest.Options{Configure: func(c *server.Config) {
		c.WebhookRetrySchedule = []time.Duration{10 * time.Millisecond}
		c.JobPollInterval = 20 * time.Millisecond
	}})
	ctx := context.Background()
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no", http.StatusInternalServerError) }))
	t.Cleanup(hs.Close)
	if _, err := env.Client.CreateWebhook(ctx, authgate.WebhookEndpointCreateRequest{URL: hs.URL}); err != nil {
		t.Fatal(err)
	}
	c, err := env.Client.ImportCredential(ctx, authgate.ImportCredentialRequest{UserID: "ann", Provider: "google", Subject: "s-ann", AccessToken: "ya29.x", RefreshToken: "1//y"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.Client.CreateRun(ctx, authgate.RunCreateRequest{Workflow: "w", UserID: "ann", Bindings: map[string]authgate.CredentialID{"google": c.ID}}); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(30 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		p, err := env.Client.WebhookDeliveries(ctx, authgate.WebhookDeliveryDead, "")
		if err == nil && len(p.Deliveries) > 0 {
			break
		}
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatal("no delivery died")
		}
	}
	db := []string{"--db", "sqlite:" + env.DBPath, "--key-file", env.KeyFile}
	out, err := run(t, append(db, "tenants", "webhooks", "deliveries", "default", "--status", "dead")...)
	if err != nil || !strings.Contains(out, "dead") || !strings.Contains(out, "HTTP 500") {
		t.Fatalf("deliveries: %v\n%s", err, out)
	}
	if out, err := run(t, append(db, "tenants", "webhooks", "deliveries", "default", "--status", "lost")...); err == nil {
		t.Fatalf("a bad status is refused: %s", out)
	}
}

// TestTenantWebhooksAddressPolicy: the CLI reads the operator's webhook
// address settings; a loopback endpoint is refused once a public URL is
// set, naming the setting, and accepted when the operator lists its
// range. Not parallel: it sets environment variables.
func TestTenantWebhooksAddressPolicy(t *testing.T) {
	env := authgatetest.Start(t, authgatetest.Options{})
	db := []string{"--db", "sqlite:" + env.DBPath, "--key-file", env.KeyFile}
	add := append(db, "tenants", "webhooks", "add", "default", "http://127.0.0.1:9/hook")
	t.Setenv("AUTHGATE_PUBLIC_URL", "https://authgate.example.com")
	for _, tc := range []struct{ private, cidrs, want string }{
		{"", "", "AUTHGATE_WEBHOOK_ALLOW_PRIVATE=true"},
		{"maybe", "", "AUTHGATE_WEBHOOK_ALLOW_PRIVATE=\"maybe\": want true or false"},
		{"", "127.0.0.1/8", "AUTHGATE_WEBHOOK_ALLOW_CIDRS: \"127.0.0.1/8\" has host bits set: did you mean 127.0.0.0/8?"},
		{"", "10.0.0.0/8", "AUTHGATE_WEBHOOK_ALLOW_CIDRS"},
		{"", "10.0.0.0/8,127.0.0.0/8", "signing secret (shown once)"},
		{"true", "", "signing secret (shown once)"},
	} {
		t.Setenv("AUTHGATE_WEBHOOK_ALLOW_PRIVATE", tc.private)
		t.Setenv("AUTHGATE_WEBHOOK_ALLOW_CIDRS", tc.cidrs)
		out, err := run(t, add...)
		if err != nil {
			out += err.Error()
		}
		if !strings.Contains(out, tc.want) || (err == nil) != strings.Contains(tc.want, "signing secret") {
			t.Errorf("private=%q cidrs=%q: %v\n%s\nwant %q", tc.private, tc.cidrs, err, out, tc.want)
		}
	}
}
