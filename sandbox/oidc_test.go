package sandbox_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/authgate/authgate/sandbox"
)

func oidcTokens(t *testing.T, e *env, account string, scopes ...string) (*oauth2.Config, *oauth2.Token) {
	t.Helper()
	cfg := e.oauthConfig(t, "oidc", scopes...)
	verifier := oauth2.GenerateVerifier()
	q := e.authorize(t, cfg.AuthCodeURL("state-oidc-1", oauth2.S256ChallengeOption(verifier)), sandbox.Choice{Account: account})
	tok, err := cfg.Exchange(context.Background(), q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	return cfg, tok
}

func refreshWith(cfg *oauth2.Config, tok *oauth2.Token) (*oauth2.Token, error) {
	old := *tok
	old.Expiry = time.Now().Add(-time.Minute)
	return cfg.TokenSource(context.Background(), &old).Token()
}

// TestOIDCRotationAndReuseDetection: every refresh rotates; presenting a
// retired refresh token revokes the whole family, newest tokens included.
func TestOIDCRotationAndReuseDetection(t *testing.T) {
	t.Parallel()
	e := start(t, sandbox.Options{})
	cfg, tok := oidcTokens(t, e, "mia@example.com", "openid", "offline_access", "profile", "email")
	if !strings.HasPrefix(tok.RefreshToken, "ory_rt_") || tok.Extra("expires_in") != float64(3599) || tok.Extra("id_token") == nil {
		t.Fatalf("token %+v", tok)
	}
	verifyJWT(t, e.url+"/sandbox/oidc/.well-known/jwks.json", tok.Extra("id_token").(string))
	second, err := refreshWith(cfg, tok)
	if err != nil {
		t.Fatal(err)
	}
	if second.RefreshToken == tok.RefreshToken || second.AccessToken == tok.AccessToken {
		t.Fatal("refresh did not rotate")
	}
	// The rotated-away pair is dead.
	if r := send(t, "GET", e.url+"/sandbox/oidc/api/me", bearer(tok.AccessToken), ""); r.status != 401 {
		t.Fatalf("old access token after rotation: %d", r.status)
	}
	if r := send(t, "GET", e.url+"/sandbox/oidc/api/me", bearer(second.AccessToken), ""); r.status != 200 {
		t.Fatalf("new access token: %d %s", r.status, r.body)
	}
	// Reuse of the first refresh token: 400 invalid_grant, family revoked.
	_, err = refreshWith(cfg, tok)
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.Response.StatusCode != 400 || re.ErrorCode != "invalid_grant" || !strings.HasSuffix(re.ErrorDescription, "The refresh token was already used.") {
		t.Fatalf("reuse: %v", err)
	}
	if _, err := refreshWith(cfg, second); !errors.As(err, &re) || !strings.HasSuffix(re.ErrorDescription, "The refresh token is malformed or not valid.") {
		t.Fatalf("newest refresh token after reuse detection: %v", err)
	}
	if r := send(t, "GET", e.url+"/sandbox/oidc/api/me", bearer(second.AccessToken), ""); r.status != 401 {
		t.Fatalf("newest access token after reuse detection: %d", r.status)
	}
	c := e.counters(t, "oidc")
	if c.ReuseDetected != 1 || c.Refreshes != 3 || c.CodeExchanges != 1 {
		t.Fatalf("counters %+v", c)
	}
}

func TestOIDCGracePeriodAndOffline(t *testing.T) {
	t.Parallel()
	e := start(t, sandbox.Options{OIDCGracePeriod: 30 * time.Second})
	cfg, tok := oidcTokens(t, e, "noa@example.com", "openid", "offline_access")
	a, err := refreshWith(cfg, tok)
	if err != nil {
		t.Fatal(err)
	}
	b, err := refreshWith(cfg, tok) // within the grace period: the same new pair
	if err != nil || b.RefreshToken != a.RefreshToken {
		t.Fatalf("grace-period reuse: %v %v", err, b)
	}
	e.clock.Advance(31 * time.Second)
	if _, err := refreshWith(cfg, tok); err == nil {
		t.Fatal("reuse after the grace period succeeded")
	}
	// No offline_access: no refresh token.
	_, online := oidcTokens(t, e, "noa@example.com", "openid")
	if online.RefreshToken != "" {
		t.Fatal("refresh token without offline_access")
	}
}

func TestOIDCDiscoveryAndResourceErrors(t *testing.T) {
	t.Parallel()
	e := start(t, sandbox.Options{})
	iss := e.url + "/sandbox/oidc"
	for _, path := range []string{"/sandbox/oidc/.well-known/openid-configuration", "/.well-known/oauth-authorization-server/sandbox/oidc"} {
		d := send(t, "GET", e.url+path, nil, "").json(t)
		if d["issuer"] != iss || d["token_endpoint"] != iss+"/oauth2/token" || d["revocation_endpoint"] != iss+"/oauth2/revoke" {
			t.Fatalf("%s: %v", path, d)
		}
	}
	api := e.url + "/sandbox/oidc/api/me"
	if r := send(t, "GET", api, nil, ""); r.status != 401 || r.header.Get("WWW-Authenticate") != `Bearer realm="sandbox-oidc"` || r.body != "" {
		t.Fatalf("no token: %d %v %q", r.status, r.header, r.body)
	}
	_, tok := oidcTokens(t, e, "ola@example.com", "openid", "offline_access")
	r := send(t, "GET", api, bearer(tok.AccessToken), "")
	if r.status != 403 || !strings.Contains(r.header.Get("WWW-Authenticate"), `error="insufficient_scope", scope="profile"`) {
		t.Fatalf("insufficient scope: %d %v", r.status, r.header)
	}
	mustFault(t, e, sandbox.Fault{Provider: "oidc", Fault: "expire_access_tokens", Account: "ola@example.com"})
	r = send(t, "GET", e.url+"/sandbox/oidc/userinfo", bearer(tok.AccessToken), "")
	if r.status != 401 || !strings.Contains(r.header.Get("WWW-Authenticate"), `error="invalid_token", error_description="The access token expired"`) {
		t.Fatalf("expired: %d %v", r.status, r.header)
	}
	c, _ := e.sb.DefaultClient("oidc")
	// RFC 7009: 200 even for an unknown token.
	if r := form(t, e.url+"/sandbox/oidc/oauth2/revoke", basic(c.ClientID, c.ClientSecret), url.Values{"token": {"ory_at_unknown"}}); r.status != 200 {
		t.Fatalf("revoke unknown: %d %s", r.status, r.body)
	}
	if r := form(t, e.url+"/sandbox/oidc/oauth2/token", basic(c.ClientID, "wrong"), url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}}); r.status != 401 ||
		r.json(t)["error"] != "invalid_client" || r.header.Get("WWW-Authenticate") == "" {
		t.Fatalf("bad client via Basic: %d %v %s", r.status, r.header, r.body)
	}
	// Hydra refuses a state under 8 characters.
	loc, err := sandbox.CompleteConsent(context.Background(), nil, e.oauthConfig(t, "oidc", "openid").AuthCodeURL("short"), sandbox.Choice{Account: "x@example.com"})
	if err != nil || loc.Query().Get("error") != "invalid_state" {
		t.Fatalf("short state: %v %v", loc, err)
	}
}
