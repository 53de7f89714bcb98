package sandbox_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"

	"golang.org/x/oauth2"

	"github.com/authgate/authgate/sandbox"
)

// A chaos test in a few lines: sign in to the emulated Google, then revoke
// the grant and watch the refresh fail exactly as Google's does.
func Example() {
	ctx := context.Background()
	sb := sandbox.New(sandbox.Options{Seed: 1})
	srv := httptest.NewServer(sb.Handler())
	defer srv.Close()

	// Answer the consent screen as ada, with every requested scope.
	_ = sb.SetConsent("google", sandbox.Consent{Account: "ada@example.com"})
	c, _ := sb.DefaultClient("google")
	cfg := &oauth2.Config{ClientID: c.ClientID, ClientSecret: c.ClientSecret, RedirectURL: "http://127.0.0.1:9/callback", Scopes: []string{"openid", "email"},
		Endpoint: oauth2.Endpoint{AuthURL: srv.URL + "/sandbox/google/o/oauth2/v2/auth", TokenURL: srv.URL + "/sandbox/google/token", AuthStyle: oauth2.AuthStyleInParams}}
	back, err := sandbox.CompleteConsent(ctx, nil, cfg.AuthCodeURL("state-1", oauth2.AccessTypeOffline), sandbox.Choice{})
	if err != nil {
		fmt.Println(err)
		return
	}
	tok, err := cfg.Exchange(ctx, back.Query().Get("code"))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("expires_in:", tok.Extra("expires_in"), "refresh token:", tok.RefreshToken != "")

	_ = sb.InjectFault(sandbox.Fault{Provider: "google", Fault: "revoke", Account: "ada@example.com"})
	_, err = cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		fmt.Println(re.Response.StatusCode, re.ErrorCode, re.ErrorDescription)
	}
	fmt.Println("refreshes seen:", sb.Counters()["google"].Refreshes)
	// Output:
	// expires_in: 3599 refresh token: true
	// 400 invalid_grant Token has been expired or revoked.
	// refreshes seen: 1
}
