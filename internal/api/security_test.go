package api_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/authgatetest"
	"github.com/authgate/authgate/internal/clock"
	"github.com/authgate/authgate/internal/keyring"
	"github.com/authgate/authgate/internal/storage"
)

func TestAPIKeysRevokedWithinASecond(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC))
	env := authgatetest.Start(t, authgatetest.Options{Clock: clk})
	r := do(t, "POST", env.URL+"/v1/api-keys", env.AdminKey, "application/json", strings.NewReader(`{"name":"worker","role":"service"}`))
	if r.status != 201 || !strings.Contains(string(r.body), `"key":"ag_`) {
		t.Fatalf("create %d %s", r.status, r.body)
	}
	var k authgate.NewAPIKey
	mustJSON(t, r.body, &k)
	if r := do(t, "GET", env.URL+"/v1/credentials", k.Key, "", nil); r.status != 200 {
		t.Fatalf("new key %d", r.status)
	}
	if r := do(t, "DELETE", env.URL+"/v1/api-keys/"+string(k.ID), env.AdminKey, "", nil); r.status != 204 {
		t.Fatalf("revoke %d %s", r.status, r.body)
	}
	clk.Advance(time.Second) // the longest a running server may remember a key
	problem(t, do(t, "GET", env.URL+"/v1/credentials", k.Key, "", nil), http.StatusUnauthorized, authgate.ClassUnauthorized)
	r = do(t, "GET", env.URL+"/v1/api-keys", env.AdminKey, "", nil)
	if r.status != 200 || !strings.Contains(string(r.body), `"revoked_at":"2026-11-25T12:00:00Z"`) || strings.Contains(string(r.body), k.Key) {
		t.Fatalf("list %d %s", r.status, r.body)
	}
	problem(t, do(t, "DELETE", env.URL+"/v1/api-keys/"+string(k.ID), env.AdminKey, "", nil), 404, authgate.ClassNotFound)
	// Another tenant cannot revoke ours.
	_, other := env.NewTenant(t, "other")
	problem(t, do(t, "DELETE", env.URL+"/v1/api-keys/"+string(k.ID), other, "", nil), 404, authgate.ClassNotFound)
}

func TestRetryAfterClamped(t *testing.T) {
	t.Parallel()
	env := authgatetest.Start(t, authgatetest.Options{})
	for _, ra := range []string{"Fri, 31 Dec 9999 23:59:59 GMT", "99999999999999999"} {
		body := `{"provider":"google","operation":"api","status":429,"headers":{"Retry-After":"` + ra + `"},"body":"{}"}`
		r := do(t, "POST", env.URL+"/v1/classify", env.AdminKey, "application/json", strings.NewReader(body))
		if r.status != 200 || !strings.Contains(string(r.body), `"retry_after":86400`) {
			t.Errorf("Retry-After %s: %d %s", ra, r.status, r.body)
		}
	}
}

func TestHTMLPagesCarrySecurityHeaders(t *testing.T) {
	t.Parallel()
	env := authgatetest.Start(t, authgatetest.Options{})
	r := do(t, "GET", env.URL+"/connect/cs_nope", "", "", nil)
	if !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") {
		t.Fatalf("not a page: %v", r.header)
	}
	for h, want := range map[string]string{"Content-Security-Policy": "frame-ancestors 'none'", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"} {
		if !strings.Contains(r.header.Get(h), want) {
			t.Errorf("%s = %q, want %q", h, r.header.Get(h), want)
		}
	}
}

func mustJSON(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
}

// TestSDKAPIKeys: the Go SDK creates, lists and revokes keys, and a revoked
// key stops working at once on the server that revoked it.
func TestSDKAPIKeys(t *testing.T) {
	t.Parallel()
	env := authgatetest.Start(t, authgatetest.Options{})
	ctx := t.Context()
	k, err := env.Client.CreateAPIKey(ctx, authgate.NewAPIKeyRequest{Name: "sdk-worker", Role: authgate.RoleAdmin})
	if err != nil || !strings.HasPrefix(k.Key, "ag_") || k.Name != "sdk-worker" {
		t.Fatalf("create: %+v %v", k, err)
	}
	worker := authgate.NewClient(env.URL, k.Key)
	if _, err := worker.Credentials(ctx, authgate.CredentialFilter{}); err != nil {
		t.Fatalf("the new key: %v", err)
	}
	keys, err := env.Client.APIKeys(ctx)
	if err != nil || len(keys) != 2 {
		t.Fatalf("list: %+v %v", keys, err)
	}
	if err := env.Client.RevokeAPIKey(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	var ae *authgate.Error
	if _, err := worker.Credentials(ctx, authgate.CredentialFilter{}); !errors.As(err, &ae) || ae.Class != authgate.ClassUnauthorized {
		t.Fatalf("revoked key still works: %v", err)
	}
}

// TestLastKeyCannotBeRevoked: a tenant cannot lock itself out through the API.
func TestLastKeyCannotBeRevoked(t *testing.T) {
	t.Parallel()
	env := authgatetest.Start(t, authgatetest.Options{})
	keys, err := env.Client.APIKeys(t.Context())
	if err != nil || len(keys) != 1 {
		t.Fatalf("keys %+v %v", keys, err)
	}
	var ae *authgate.Error
	if err := env.Client.RevokeAPIKey(t.Context(), keys[0].ID); !errors.As(err, &ae) || ae.Class != authgate.ClassConflict || !strings.Contains(ae.Detail, "create another") {
		t.Fatalf("revoking the last key: %v", err)
	}
	if _, err := env.Client.Credentials(t.Context(), authgate.CredentialFilter{}); err != nil {
		t.Fatalf("the key stopped working: %v", err)
	}
}

// TestDisconnectWithALostKey: a credential whose ciphertext no loaded key
// opens (a lost key, a moved row) can still be disconnected: its tokens are
// erased here, and the event says they were not revoked at the provider.
func TestDisconnectWithALostKey(t *testing.T) {
	t.Parallel()
	env := authgatetest.Start(t, authgatetest.Options{})
	ctx := t.Context()
	exp := time.Now().Add(time.Hour)
	c, err := env.Client.ImportCredential(ctx, authgate.ImportCredentialRequest{UserID: "u", Provider: "google", Subject: "s", Scopes: []string{"openid"},
		AccessToken: "ya29.lost-key-access", RefreshToken: "1//lost-key-refresh", ExpiresAt: &exp})
	if err != nil {
		t.Fatal(err)
	}
	lost := keyring.Sealed{KeyID: "k-lost", Data: []byte("sealed with a key nobody has any more")}
	if err := env.Server.Store.CredentialReseal(ctx, storage.CredentialResealParams{ID: c.ID, Version: c.Version, AccessToken: lost, RefreshToken: lost}); err != nil {
		t.Fatal(err)
	}
	got, err := env.Client.DeleteCredential(ctx, c.ID)
	if err != nil || got.Status != authgate.CredentialStatusRevoked || got.HasRefreshToken || got.AccessTokenFingerprint != "" {
		t.Fatalf("disconnect with a lost key: %+v %v", got, err)
	}
	page, err := env.Client.CredentialEvents(ctx, c.ID, 0)
	if err != nil || len(page.Events) == 0 || !strings.Contains(string(page.Events[len(page.Events)-1].Details), "not revoked at the provider") {
		t.Fatalf("events %+v %v", page, err)
	}
}
