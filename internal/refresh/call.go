package refresh

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/authgate/authgate/internal/catalog"
	"github.com/authgate/authgate/internal/classify"
	"github.com/authgate/authgate/internal/httprec"
	"github.com/authgate/authgate/internal/secret"
	"github.com/authgate/authgate/internal/vault"
)

// outcome is one provider refresh call.
type outcome struct {
	access, refresh secret.Secret
	expiresAt       time.Time
	scopes          []string
	skew            time.Duration
	skewKnown       bool
	status          int
	requestID       string
	err             error
	class           classify.Result
	description     string
	// inDoubt: no answer, and the request may have reached the provider.
	inDoubt bool
	// notSent: the send guard kept the request from leaving (see
	// indoubt.go); leaseLost says the flight no longer holds its lease.
	notSent, leaseLost bool
}

// call makes one refresh request with x/oauth2 and records the response.
// g, when set, records the send just before the request leaves and keeps it
// from leaving when the flight lost its lease.
func (r *Refresher) call(ctx context.Context, p *catalog.Provider, l *vault.Loaded, g *sendGuard) outcome {
	start := r.now()
	var base http.RoundTripper = r.cfg.Transport
	if g != nil {
		base = g.transport(base)
	}
	rec := &httprec.Recorder{Base: base}
	cctx, cancel := context.WithTimeout(ctx, r.callTimeout(p))
	defer cancel()
	cctx = context.WithValue(cctx, oauth2.HTTPClient, &http.Client{Transport: rec})
	style := oauth2.AuthStyleInHeader
	if p.ClientAuth == "post" {
		style = oauth2.AuthStyleInParams
	}
	cfg := &oauth2.Config{ClientID: p.ClientID, ClientSecret: p.ClientSecret, Endpoint: oauth2.Endpoint{TokenURL: p.TokenURL, AuthStyle: style}}
	sent := l.RefreshToken.Reveal()
	tok, err := cfg.TokenSource(cctx, &oauth2.Token{RefreshToken: sent, Expiry: time.Unix(1, 0)}).Token()
	received := r.now()
	if g != nil {
		if why, lease := g.refused(); why != nil {
			r.cfg.Logger.Warn("refresh not sent", slog.String("provider", p.Name), slog.String("credential_id", string(l.ID)),
				slog.String("refresh_token_fp", l.RefreshToken.Fingerprint()), slog.String("reason", why.Error()))
			return outcome{err: notSent(l.ID, p, why), notSent: true, leaseLost: lease}
		}
		// A refusal from the provider itself settles the request: the token
		// was not spent (or the answer says it is dead). A success keeps
		// the record until the new tokens are committed (the stored refresh
		// token then differs from the record's): if the commit never lands,
		// a takeover must still find it.
		if err != nil && rec.Status >= 400 && rec.Status != http.StatusBadGateway && rec.Status != http.StatusGatewayTimeout {
			g.settled(ctx)
		}
	}
	out := outcome{status: rec.Status, requestID: rec.RequestID()}
	out.skew, out.skewKnown = rec.ClockSkew(received)
	// One parser for every provider's error shape; Slack answers refresh
	// failures with HTTP 200 {"ok":false}: a "success" to x/oauth2 that is
	// no token.
	pe := classify.Parse(classify.Input{Provider: p.Name, Operation: classify.OpRefresh, Status: rec.Status, Header: rec.Header, Body: rec.Body, Now: received})
	if err == nil && (tok.AccessToken == "" || pe.Failed()) {
		err = pe
	}
	outcomeName := "success"
	if err != nil {
		out.err = err
		if rec.Status == 0 {
			pe.Cause = err
			out.inDoubt = rec.Sent
		} else if rec.Status == http.StatusBadGateway || rec.Status == http.StatusGatewayTimeout {
			// A gateway gave up waiting: the provider behind it may have
			// answered (and rotated) all the same.
			out.inDoubt = true
		}
		out.class = classify.Classify(pe)
		out.description = pe.Description()
		outcomeName = string(out.class.Class)
	} else {
		out.access = secret.New(tok.AccessToken)
		if tok.RefreshToken != "" && tok.RefreshToken != sent {
			out.refresh = secret.New(tok.RefreshToken)
		}
		if tok.ExpiresIn > 0 {
			out.expiresAt = received.Add(time.Duration(tok.ExpiresIn) * time.Second).UTC().Truncate(time.Microsecond)
		}
		if s, ok := tok.Extra("scope").(string); ok && s != "" {
			out.scopes = p.SplitScopes(s)
		}
	}
	if r.cfg.Observer != nil {
		r.cfg.Observer.Refresh(p.Name, outcomeName, received.Sub(start))
	}
	attrs := []slog.Attr{
		slog.String("provider", p.Name), slog.String("credential_id", string(l.ID)), slog.String("user_id", l.UserID), slog.String("workspace_id", l.WorkspaceID),
		slog.String("refresh_token_fp", l.RefreshToken.Fingerprint()), slog.Int("http_status", out.status), slog.String("provider_request_id", out.requestID),
		slog.Float64("duration_ms", float64(received.Sub(start).Microseconds())/1000), slog.String("outcome", outcomeName),
	}
	if out.err != nil {
		attrs = append(attrs, slog.String("error", out.class.ErrorCode), slog.String("error_description", out.description))
	} else {
		attrs = append(attrs, slog.String("access_token_fp", out.access.Fingerprint()), slog.Bool("rotated", !out.refresh.IsZero()))
	}
	if out.skewKnown {
		attrs = append(attrs, slog.Float64("clock_skew_seconds", out.skew.Seconds()))
		if out.skew > r.cfg.SkewWarn || out.skew < -r.cfg.SkewWarn {
			r.cfg.Logger.LogAttrs(ctx, slog.LevelWarn, "provider clock skew", attrs...)
		}
	}
	level := slog.LevelInfo
	if out.err != nil {
		level = slog.LevelWarn
	}
	r.cfg.Logger.LogAttrs(ctx, level, "refresh", attrs...)
	return out
}

// introspect asks the provider's RFC 7662 endpoint whether a refresh token
// is live, without using it. Notion takes JSON; everyone else a form.
func (r *Refresher) introspect(ctx context.Context, p *catalog.Provider, tok secret.Secret) (bool, error) {
	cctx, cancel := context.WithTimeout(ctx, r.callTimeout(p))
	defer cancel()
	var body io.Reader
	contentType := "application/x-www-form-urlencoded"
	form := url.Values{"token": {tok.Reveal()}, "token_type_hint": {"refresh_token"}}
	if p.Kind == catalog.KindNotion {
		b, _ := json.Marshal(map[string]string{"token": tok.Reveal()})
		body, contentType = bytes.NewReader(b), "application/json"
	} else {
		if p.ClientAuth == "post" {
			form.Set("client_id", p.ClientID)
			form.Set("client_secret", p.ClientSecret)
		}
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(cctx, http.MethodPost, p.IntrospectionURL, body)
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Accept", "application/json")
	if p.Kind == catalog.KindNotion || p.ClientAuth != "post" {
		req.SetBasicAuth(url.QueryEscape(p.ClientID), url.QueryEscape(p.ClientSecret))
	}
	resp, err := (&http.Client{Transport: r.cfg.Transport}).Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("introspection answered %d", resp.StatusCode)
	}
	var out struct {
		Active *bool `json:"active"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&out); err != nil || out.Active == nil {
		return false, errors.New("introspection answered without an active field")
	}
	return *out.Active, nil
}
