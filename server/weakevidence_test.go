package server_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/authgatetest"
	"github.com/authgate/authgate/internal/clock"
	"github.com/authgate/authgate/server"
)

// TestWeakEvidenceLeavesCredentialActive: a token endpoint that answers
// without an OAuth error body — a bare 401 (RFC 6749 §5.2: the client failed
// to authenticate), a proxy's HTML 403, a captive portal's HTML 401 — never
// turns a credential into reauth_required. A real loopback server plays the
// token endpoint of a provider configured from a providers file; the
// credential goes through the HTTP API.
func TestWeakEvidenceLeavesCredentialActive(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		status      int
		contentType string
		body        string
		class       authgate.Class
	}{
		{"bare 401", 401, "", "", authgate.ClassClientMisconfigured},
		{"gateway JSON 401", 401, "application/json", `{"message":"Unauthorized"}`, authgate.ClassClientMisconfigured},
		{"captive portal 401", 401, "text/html", "<!DOCTYPE html><html><body>Sign in to the Wi-Fi</body></html>", authgate.ClassTransient},
		{"WAF 403", 403, "text/html; charset=utf-8", "<html><body>Request blocked</body></html>", authgate.ClassTransient},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var calls atomic.Int32
			tokenEndpoint := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				calls.Add(1)
				if tc.contentType != "" {
					w.Header().Set("Content-Type", tc.contentType)
				}
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			}))
			t.Cleanup(tokenEndpoint.Close)
			file := filepath.Join(t.TempDir(), "providers.yaml")
			if err := os.WriteFile(file, []byte(`providers:
  - name: acme
    kind: oauth2
    client_id: acme-client
    client_secret: acme-secret
    authorization_url: `+tokenEndpoint.URL+`/authorize
    token_url: `+tokenEndpoint.URL+`/token
    scopes: [read]
`), 0o600); err != nil {
				t.Fatal(err)
			}
			clk := clock.NewFake(time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC))
			env := authgatetest.Start(t, authgatetest.Options{Clock: clk, Configure: func(c *server.Config) {
				c.ProvidersFile = file
				c.RefreshSleep = func(ctx context.Context, _ time.Duration) error { return ctx.Err() } // retries without waiting
			}})
			ctx := context.Background()
			exp := clk.Now().Add(time.Minute)
			cred, err := env.Client.ImportCredential(ctx, authgate.ImportCredentialRequest{UserID: "u1", Provider: "acme", Subject: "s1",
				Scopes: []string{"read"}, AccessToken: "acme-access", RefreshToken: "acme-refresh", ExpiresAt: &exp})
			if err != nil {
				t.Fatal(err)
			}
			clk.Advance(time.Hour) // the access token has expired: the token call must refresh
			_, err = env.Client.Token(ctx, cred.ID, authgate.TokenRequest{})
			var ae *authgate.Error
			if !errors.As(err, &ae) || ae.Class != tc.class {
				t.Fatalf("token: %v; want class %s", err, tc.class)
			}
			if calls.Load() == 0 {
				t.Fatal("the token endpoint was never called")
			}
			got, err := env.Client.Credential(ctx, cred.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.Status != authgate.CredentialStatusActive {
				t.Fatalf("credential %s (%s) after %s; want active", got.Status, got.StatusReason, tc.name)
			}
			page, err := env.Client.CredentialEvents(ctx, cred.ID, 0)
			if err != nil {
				t.Fatal(err)
			}
			var types []string
			for _, e := range page.Events {
				types = append(types, string(e.Type))
			}
			if s := strings.Join(types, ","); !strings.Contains(s, "refresh_failed") || strings.Contains(s, "reauth_required_set") || strings.Contains(s, "revoked_detected") {
				t.Fatalf("events %s", s)
			}
		})
	}
}
