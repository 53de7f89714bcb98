package main

import (
	"context"
	"strings"
	"testing"

	"github.com/authgate/authgate/authgatetest"
)

// TestTenantWebhooksAdd: the secret is printed once by add and never by
// list; the server sees the endpoint.
func TestTenantWebhooksAdd(t *testing.T) {
	t.Parallel()
	env := authgatetest.Start(t, authgatetest.Options{})
	db := []string{"--db", "sqlite:" + env.DBPath, "--key-file", env.KeyFile}
	out, err := run(t, append(db, "tenants", "webhooks", "add", "default", "https://hooks.example/authgate")...)
	if err != nil || !strings.Contains(out, "signing secret (shown once): whsec_") {
		t.Fatalf("add: %v\n%s", err, out)
	}
	out, err = run(t, append(db, "tenants", "webhooks", "list", "default")...)
	if err != nil || !strings.Contains(out, "https://hooks.example/authgate") || strings.Contains(out, "whsec_") {
		t.Fatalf("list: %v\n%s", err, out)
	}
	l, err := env.Client.Webhooks(context.Background())
	if err != nil || len(l.Endpoints) != 1 {
		t.Fatalf("API sees %+v %v", l, err)
	}
}
