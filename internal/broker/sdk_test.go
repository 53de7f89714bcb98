package broker_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/sandbox"
)

// TestSDKClient drives connect, token and classify through the Go SDK, the
// way a worker embedding authgate does.
func TestSDKClient(t *testing.T) {
	t.Parallel()
	f := start(t)
	ctx := context.Background()
	c := f.env.Client
	provs, err := c.Providers(ctx)
	if err != nil || len(provs) != 4 {
		t.Fatalf("providers %v %v", provs, err)
	}
	s, err := c.CreateConnectSession(ctx, authgate.ConnectSessionRequest{UserID: "u1", Provider: "google", Actions: []string{"drive.files.create"}})
	if err != nil || !strings.Contains(s.ConnectURL, "/connect/cs_") {
		t.Fatalf("session %+v %v", s, err)
	}
	resp, _ := noFollow.Get(s.ConnectURL)
	resp.Body.Close()
	loc, _ := resp.Location()
	back, err := sandbox.CompleteConsent(ctx, nil, loc.String(), sandbox.Choice{Account: "sdk@acme.example"})
	if err != nil {
		t.Fatal(err)
	}
	resp, _ = noFollow.Get(back.String())
	resp.Body.Close()
	page, _ := c.Credentials(ctx, authgate.CredentialFilter{UserID: "u1"})
	if len(page.Credentials) != 1 {
		t.Fatalf("credentials %+v", page)
	}
	id := page.Credentials[0].ID
	f.clock.Advance(time.Hour)
	tok, err := c.Token(ctx, id, authgate.TokenRequest{MinValid: 10 * time.Minute, Actions: []string{"drive.files.create"}})
	if err != nil || !strings.HasPrefix(tok.AccessToken, "ya29.") || tok.TokenType != "Bearer" || tok.ExpiresAt == nil {
		t.Fatalf("token %+v %v", tok, err)
	}
	req, _ := http.NewRequest("GET", f.env.URL+"/sandbox/google/drive/v3/files", nil)
	req.Header.Set("Authorization", tok.TokenType+" "+tok.AccessToken)
	if r, err := http.DefaultClient.Do(req); err != nil || r.StatusCode != 200 {
		t.Fatalf("the served token does not work at the provider: %v", err)
	}
	// The user removes drive.file at Google: the next refresh reports the
	// narrower grant (scopes_changed) and the action is then refused.
	if err := f.sb().InjectFault(sandbox.Fault{Provider: "google", Fault: "drop_scope", Account: "sdk@acme.example", Scope: "https://www.googleapis.com/auth/drive.file"}); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Hour)
	if _, err := c.Token(ctx, id, authgate.TokenRequest{}); err != nil {
		t.Fatal(err)
	}
	_, err = c.Token(ctx, id, authgate.TokenRequest{Actions: []string{"drive.files.create"}})
	var ae *authgate.Error
	if !errors.As(err, &ae) || ae.Class != authgate.ClassInsufficientScope || len(ae.MissingScopes) != 1 || ae.MissingScopes[0] != "https://www.googleapis.com/auth/drive.file" ||
		ae.ReconnectURL == "" || ae.AgentHint == "" || ae.Status != 403 {
		t.Fatalf("insufficient scope through the SDK: %#v", err)
	}
	if ev := events(t, f, string(id)); ev[len(ev)-1] != "scopes_changed" {
		t.Fatalf("events %v; want scopes_changed last", ev)
	}
	_, err = c.Token(ctx, id, authgate.TokenRequest{Actions: []string{"drive.explode"}})
	if !errors.As(err, &ae) || ae.Class != authgate.ClassInvalidRequest {
		t.Fatalf("unknown action: %v", err)
	}
	cl, err := c.Classify(ctx, authgate.ClassifyRequest{Provider: "slack", Operation: "api", Status: 200, Body: `{"ok":false,"error":"token_revoked"}`})
	if err != nil || cl.Class != authgate.ClassReauthRequired {
		t.Fatalf("classify %+v %v", cl, err)
	}
}
