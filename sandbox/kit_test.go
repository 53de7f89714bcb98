package sandbox_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/authgate/authgate/sandbox"
)

// fakeClock is the sandbox's clock in tests: time moves only when told.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

type env struct {
	sb    *sandbox.Sandbox
	url   string
	clock *fakeClock
}

func start(t *testing.T, o sandbox.Options) *env {
	t.Helper()
	clk := &fakeClock{now: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}
	if o.Clock == nil {
		o.Clock = clk
	}
	o.Seed = 42
	sb := sandbox.New(o)
	srv := httptest.NewServer(sb.Handler())
	t.Cleanup(srv.Close)
	return &env{sb: sb, url: srv.URL, clock: clk}
}

const redirectURL = "http://127.0.0.1:9/oauth/callback"

// oauthConfig is an x/oauth2 configuration for one sandbox provider, using
// its default client.
func (e *env) oauthConfig(t *testing.T, provider string, scopes ...string) *oauth2.Config {
	t.Helper()
	c, err := e.sb.DefaultClient(provider)
	if err != nil {
		t.Fatal(err)
	}
	p := e.url + "/sandbox/" + provider
	ep := map[string]oauth2.Endpoint{
		"google": {AuthURL: p + "/o/oauth2/v2/auth", TokenURL: p + "/token", AuthStyle: oauth2.AuthStyleInParams},
		"oidc":   {AuthURL: p + "/oauth2/auth", TokenURL: p + "/oauth2/token", AuthStyle: oauth2.AuthStyleInHeader},
		"notion": {AuthURL: p + "/v1/oauth/authorize", TokenURL: p + "/v1/oauth/token", AuthStyle: oauth2.AuthStyleInHeader},
		"slack":  {AuthURL: p + "/oauth/v2/authorize", TokenURL: p + "/api/oauth.v2.access", AuthStyle: oauth2.AuthStyleInHeader},
	}[provider]
	return &oauth2.Config{ClientID: c.ClientID, ClientSecret: c.ClientSecret, Endpoint: ep, RedirectURL: redirectURL, Scopes: scopes}
}

// authorize drives the consent page and returns the callback's query.
func (e *env) authorize(t *testing.T, authURL string, c sandbox.Choice) url.Values {
	t.Helper()
	loc, err := sandbox.CompleteConsent(context.Background(), nil, authURL, c)
	if err != nil {
		t.Fatalf("consent: %v", err)
	}
	if !strings.HasPrefix(loc.String(), redirectURL) {
		t.Fatalf("redirected to %s; want the client's redirect URI", loc)
	}
	return loc.Query()
}

type response struct {
	status int
	header http.Header
	body   string
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(r.body), &m); err != nil {
		t.Fatalf("body is not JSON: %v\n%s", err, r.body)
	}
	return m
}

func send(t *testing.T, method, u string, header map[string]string, body string) response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

func form(t *testing.T, u string, header map[string]string, v url.Values) response {
	t.Helper()
	h := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	for k, x := range header {
		h[k] = x
	}
	return send(t, "POST", u, h, v.Encode())
}

func basic(id, secret string) map[string]string {
	return map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))}
}

func bearer(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }

// jwtClaims decodes a JWT's payload (signature checked separately).
func jwtClaims(t *testing.T, jwt string) map[string]any {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", jwt)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func (e *env) counters(t *testing.T, provider string) sandbox.Counters {
	t.Helper()
	return e.sb.Counters()[provider]
}

func mustFault(t *testing.T, e *env, f sandbox.Fault) {
	t.Helper()
	if err := e.sb.InjectFault(f); err != nil {
		t.Fatalf("inject %+v: %v", f, err)
	}
}

func fingerprint(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(sum[:5])
}
