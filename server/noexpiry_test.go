package server_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/authgatetest"
	"github.com/authgate/authgate/internal/clock"
	"github.com/authgate/authgate/server"
)

// TestTokensWithoutExpiryAreNotRefreshedEveryTime: a provider whose token
// responses carry no expires_in is refreshed once (to learn the lifetime),
// then its token is served until a caller reports it rejected, rather than
// refreshed on every request (which on a rotating provider rotates every
// time).
func TestTokensWithoutExpiryAreNotRefreshedEveryTime(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	tokenEndpoint := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"access_token":"acme-access-` + string(rune('a'+n)) + `","token_type":"bearer","refresh_token":"acme-refresh-` + string(rune('a'+n)) + `"}`))
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
    rotates_refresh_tokens: true
    scopes: [read]
`), 0o600); err != nil {
		t.Fatal(err)
	}
	clk := clock.NewFake(time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC))
	env := authgatetest.Start(t, authgatetest.Options{Clock: clk, Configure: func(c *server.Config) { c.ProvidersFile = file }})
	ctx := context.Background()
	cred, err := env.Client.ImportCredential(ctx, authgate.ImportCredentialRequest{UserID: "u1", Provider: "acme", Subject: "s1",
		Scopes: []string{"read"}, AccessToken: "acme-imported", RefreshToken: "acme-refresh-0"})
	if err != nil {
		t.Fatal(err)
	}
	var last authgate.AccessToken
	for range 10 {
		if last, err = env.Client.Token(ctx, cred.ID, authgate.TokenRequest{}); err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Minute)
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("%d token-endpoint calls for 10 requests; want 1 (to learn there is no expiry)", n)
	}
	// A caller reports the token rejected: exactly one more refresh.
	if _, err := env.Client.Token(ctx, cred.ID, authgate.TokenRequest{RejectedFingerprint: last.Fingerprint}); err != nil {
		t.Fatal(err)
	}
	if n := calls.Load(); n != 2 {
		t.Fatalf("%d token-endpoint calls after a rejection; want 2", n)
	}
}
