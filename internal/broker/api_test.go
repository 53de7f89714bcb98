package broker_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/authgatetest"
	"github.com/authgate/authgate/internal/clock"
	"github.com/authgate/authgate/sandbox"
	"github.com/authgate/authgate/server"
)

func TestClassifyEndpoint(t *testing.T) {
	t.Parallel()
	f := start(t)
	for _, tc := range []struct {
		body  map[string]any
		class string
	}{
		{map[string]any{"provider": "google", "operation": "refresh", "status": 400, "body": "{\n  \"error\": \"invalid_grant\",\n  \"error_description\": \"Token has been expired or revoked.\"\n}"}, "reauth_required"},
		{map[string]any{"provider": "slack", "operation": "api", "status": 200, "body": `{"ok":false,"error":"missing_scope","needed":"chat:write","provided":"channels:read"}`}, "insufficient_scope"},
		{map[string]any{"provider": "notion", "operation": "api", "status": 429, "headers": map[string]string{"Retry-After": "3"}, "body": `{"object":"error","status":429,"code":"rate_limited","message":"x"}`}, "rate_limited"},
		{map[string]any{"provider": "some-idp", "operation": "api", "status": 401, "headers": map[string]string{"WWW-Authenticate": `Bearer error="invalid_token"`}, "body": ""}, "reauth_required"},
	} {
		status, res := f.api(t, "POST", "/v1/classify", tc.body)
		if status != 200 || res["class"] != tc.class || res["message"] == "" || res["policy"] == "" {
			t.Fatalf("%v: %d %v", tc.body, status, res)
		}
		if tc.class == "insufficient_scope" && res["missing_scopes"].([]any)[0] != "chat:write" {
			t.Fatalf("missing scopes %v", res)
		}
		if tc.class == "rate_limited" && res["retry_after"] != float64(3) {
			t.Fatalf("retry_after %v", res)
		}
	}
	for _, bad := range []map[string]any{{"provider": "google", "operation": "dance", "status": 400, "body": ""}, {"provider": "google", "operation": "api", "status": 1000, "body": ""}} {
		if status, _ := f.api(t, "POST", "/v1/classify", bad); status != 400 {
			t.Errorf("bad classify %v: %d", bad, status)
		}
	}
	if status, res := f.api(t, "GET", "/v1/providers", nil); status != 200 || len(res["providers"].([]any)) != 4 {
		t.Fatalf("providers %d %v", status, res)
	}
	// Metrics after a connect and a refresh.
	_, res := f.connect(t, map[string]any{"user_id": "u1", "provider": "google"}, sandbox.Choice{Account: "mo@acme.example"})
	id := credOf(t, res)["id"].(string)
	f.clock.Advance(2 * time.Hour)
	if status, tok := f.api(t, "POST", "/v1/credentials/"+id+"/token", nil); status != 200 {
		t.Fatalf("token %d %v", status, tok)
	}
	resp, err := http.Get(f.env.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`authgate_refreshes_total{outcome="success",provider="google"} 1`, `authgate_code_exchanges_total{outcome="success",provider="google"} 1`,
		`authgate_token_requests_total{provider="google",result="refreshed"} 1`, `authgate_classifications_total{class="reauth_required"} 2`, "authgate_refresh_duration_seconds_bucket"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	// One structured line per refresh, with fingerprints and no token.
	logs := f.env.Logs.String()
	var line string
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, `"msg":"refresh"`) {
			line = l
		}
	}
	for _, want := range []string{`"provider":"google"`, `"credential_id":"` + id + `"`, `"refresh_token_fp":"`, `"access_token_fp":"`, `"http_status":200`, `"outcome":"success"`, `"duration_ms":`} {
		if !strings.Contains(line, want) {
			t.Errorf("refresh log line lacks %s: %s", want, line)
		}
	}
}

// TestUserProvidersFile: a generic OIDC provider discovered from the
// sandbox's issuer joins the catalog; a bad entry stops start-up naming the
// entry and field.
func TestUserProvidersFile(t *testing.T) {
	t.Parallel()
	// A standalone sandbox plays the user's identity provider.
	sb := authgatetest.Start(t, authgatetest.Options{})
	issuer := sb.URL + "/sandbox/oidc"
	dir := t.TempDir()
	good := filepath.Join(dir, "providers.yaml")
	os.WriteFile(good, []byte(`providers:
  - name: acme-idp
    kind: oidc
    issuer: `+issuer+`
    client_id: sandbox-oidc-client
    client_secret: sandbox-oidc-client-secret
    scopes: [openid, offline_access]
    actions:
      api.read: [profile]
`), 0o600)
	env := authgatetest.Start(t, authgatetest.Options{Clock: clock.NewFake(t0), Configure: func(c *server.Config) { c.ProvidersFile = good }})
	f := &fixture{env: env}
	status, res := f.api(t, "GET", "/v1/providers", nil)
	if status != 200 || !strings.Contains(strings.Join(namesOf(res), ","), "acme-idp") {
		t.Fatalf("providers %v", res)
	}
	status, s := f.api(t, "POST", "/v1/connect-sessions", map[string]any{"user_id": "u1", "provider": "acme-idp", "actions": []string{"api.read"}})
	if status != 201 {
		t.Fatalf("session %d %v", status, s)
	}
	resp, _ := noFollow.Get(s["connect_url"].(string))
	loc, _ := resp.Location()
	if !strings.HasPrefix(loc.String(), issuer+"/oauth2/auth?") || !strings.Contains(loc.RawQuery, "code_challenge_method=S256") {
		t.Fatalf("authorize URL %s", loc)
	}
	for _, tc := range []struct{ yaml, want string }{
		{"providers:\n  - name: x\n    kind: oauth2\n    client_id: a\n    client_secret: b\n    authorization_url: nope\n    token_url: https://x/t\n", "entry x: authorization_url must be an absolute http(s) URL"},
		{"providers:\n  - name: y\n    kind: oidc\n    issuer: https://a.example\n    client_secret: b\n", "entry y: client_id is required"},
		{"providers:\n  - name: z\n    kind: saml\n    client_id: a\n    client_secret: b\n", "entry z: kind must be oidc"},
		{"providers:\n  - name: w\n    colour: red\n", "field colour not found"},
	} {
		bad := filepath.Join(dir, "bad.yaml")
		os.WriteFile(bad, []byte(tc.yaml), 0o600)
		_, err := server.Open(context.Background(), server.Config{Database: "sqlite:" + filepath.Join(t.TempDir(), "a.db"), KeyFile: filepath.Join(dir, "k"), ProvidersFile: bad, Stdout: io.Discard})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("bad providers file: %v; want %q", err, tc.want)
		}
	}
}

func namesOf(res map[string]any) []string {
	var out []string
	for _, p := range res["providers"].([]any) {
		out = append(out, p.(map[string]any)["name"].(string))
	}
	return out
}
