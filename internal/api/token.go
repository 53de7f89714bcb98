package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/internal/broker"
	"github.com/authgate/authgate/internal/classify"
	"github.com/authgate/authgate/internal/refresh"
	"github.com/authgate/authgate/internal/tenancy"
)

// fingerprintPattern is what secret.Fingerprint produces.
var fingerprintPattern = regexp.MustCompile(`^[0-9a-f]{10}$`)

func (a *API) credentialToken(w http.ResponseWriter, r *http.Request, p tenancy.Principal) error {
	var b authgate.TokenRequestBody
	if r.ContentLength != 0 {
		if err := decodeTokenBody(w, r, &b); err != nil {
			return err
		}
	}
	minValid := refresh.DefaultMinValid
	if b.MinValidSeconds != nil {
		if *b.MinValidSeconds < 0 || *b.MinValidSeconds > 86400 {
			return authgate.Errorf(authgate.ClassInvalidRequest, "min_valid_seconds must be from 0 to 86400")
		}
		minValid = time.Duration(*b.MinValidSeconds) * time.Second
		if minValid == 0 {
			minValid = time.Nanosecond // "any unexpired token"
		}
	}
	if b.RejectedFingerprint != "" && !fingerprintPattern.MatchString(b.RejectedFingerprint) {
		return authgate.Errorf(authgate.ClassInvalidRequest, "rejected_fingerprint must be the fingerprint of a token this API returned (10 hex digits)")
	}
	ctx := r.Context()
	if b.MaxWaitSeconds != nil {
		if !(*b.MaxWaitSeconds > 0 && *b.MaxWaitSeconds <= 3600) {
			return authgate.Errorf(authgate.ClassInvalidRequest, "max_wait_seconds must be above 0 and at most 3600")
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(*b.MaxWaitSeconds*float64(time.Second)))
		defer cancel()
	}
	id := authgate.CredentialID(r.PathValue("id"))
	t, err := a.refresher.Token(ctx, refresh.Request{TenantID: p.TenantID, UserID: p.UserID, ID: id, MinValid: minValid, Actions: b.Actions, RejectedFingerprint: b.RejectedFingerprint})
	if err != nil {
		if r.Context().Err() != nil {
			// The client went away; nothing failed on our side.
			a.countToken("unknown", "client_gone")
			return err
		}
		if ctx.Err() != nil {
			e := authgate.Errorf(authgate.ClassTransient, "no token could be settled within max_wait_seconds; ask again")
			e.CredentialID, e.RetryAfter = id, authgate.Duration(time.Second)
			err = e.WithCause(ctx.Err())
		}
		a.countTokenError(err)
		return a.withReconnect(r, p, id, err)
	}
	result := "served"
	if t.Refreshed {
		result = "refreshed"
		markRefreshed(w)
	} else {
		markServedFromMemory(w)
	}
	a.countToken(t.Provider, result)
	// The one response that carries a token: it is what the route is for.
	// Everything else shows fingerprints only.
	return writeToken(w, &authgate.AccessToken{CredentialID: t.CredentialID, Provider: t.Provider, AccessToken: t.AccessToken.Reveal(), TokenType: t.TokenType,
		ExpiresAt: t.ExpiresAt, Scopes: nonNil(t.Scopes), Fingerprint: t.AccessToken.Fingerprint(), MinValidMet: t.MinValidMet})
}

// countToken counts a token request by provider and result.
func (a *API) countToken(provider, result string) {
	if a.metrics != nil {
		a.metrics.tokenCounter(provider, result).Inc()
	}
}

// countTokenError counts a refused token request by its class (the
// provider is unknown when the credential could not be read).
func (a *API) countTokenError(err error) {
	var ae *authgate.Error
	class := "internal"
	if errors.As(err, &ae) {
		class = string(ae.Class)
	}
	a.countToken("unknown", class)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// withReconnect adds what a caller needs to get the user unstuck: a fresh
// connect link for exactly this credential (and the missing scopes) and one
// sentence an agent can relay.
func (a *API) withReconnect(r *http.Request, p tenancy.Principal, id authgate.CredentialID, err error) error {
	var ae *authgate.Error
	if !errors.As(err, &ae) {
		return err
	}
	e := *ae
	switch e.Class {
	case authgate.ClassReauthRequired, authgate.ClassInsufficientScope:
		c, gerr := a.vault.Get(r.Context(), p.TenantID, id)
		if gerr != nil || a.broker == nil {
			break
		}
		s, serr := a.broker.CreateSession(r.Context(), broker.SessionParams{TenantID: p.TenantID, UserID: c.UserID, Provider: c.Provider, CredentialID: c.ID, Scopes: e.MissingScopes,
			ForceConsent: e.Class == authgate.ClassReauthRequired && !c.HasRefreshToken})
		if serr != nil {
			a.log.WarnContext(r.Context(), "create reconnect session", "credential_id", string(id), "error", serr.Error())
			break
		}
		name := displayName(c.Provider)
		e.ReconnectURL = s.ConnectURL
		if e.Class == authgate.ClassInsufficientScope {
			e.AgentHint = fmt.Sprintf("Ask the user to reconnect %s and allow %s at %s; the run will continue by itself.", name, strings.Join(e.MissingScopes, ", "), s.ConnectURL)
		} else {
			e.AgentHint = fmt.Sprintf("Ask the user to reconnect %s at %s; the run will continue by itself.", name, s.ConnectURL)
		}
	case authgate.ClassRateLimited, authgate.ClassTransient:
		e.AgentHint = "The provider is busy; wait and ask for the token again. Nothing needs to change."
	case authgate.ClassAdminPolicy:
		e.AgentHint = "Tell the user their organization's administrator must allow this app; reconnecting will not help until then."
	}
	return &e
}

func displayName(provider string) string {
	switch provider {
	case "google":
		return "Google"
	case "notion":
		return "Notion"
	case "slack":
		return "Slack"
	}
	return provider
}

// classifyError is the classifier as a service for workers in any language.
func (a *API) classifyError(w http.ResponseWriter, r *http.Request, p tenancy.Principal) error {
	var b authgate.ClassifyRequest
	if err := decodeJSON(w, r, 256<<10, &b); err != nil {
		return err
	}
	op := classify.Operation(b.Operation)
	if !op.Valid() {
		return authgate.Errorf(authgate.ClassInvalidRequest, "operation must be authorize, code_exchange, refresh, revoke or api")
	}
	// The authorization step often has no status: a callback query or the
	// text of the provider's error page is all a worker saw.
	if (b.Status < 100 || b.Status > 599) && (op != classify.OpAuthorize || b.Status != 0) {
		return invalidField("status", "must be an HTTP status code (or omitted, with operation authorize)")
	}
	h := http.Header{}
	for k, v := range b.Headers {
		h.Set(k, v)
	}
	var pe *classify.ProviderError
	if op == classify.OpAuthorize {
		pe = classify.ParseAuthorize(b.Provider, b.Status, h, b.Body)
	} else {
		pe = classify.Parse(classify.Input{Provider: b.Provider, Operation: op, Status: b.Status, Header: h, Body: []byte(b.Body), Now: a.clock.Now()})
	}
	res := classify.Classify(pe)
	if a.metrics != nil {
		a.metrics.classifications.WithLabelValues(string(res.Class)).Inc()
	}
	a.log.InfoContext(r.Context(), "classify", "provider", b.Provider, "operation", b.Operation, "status", b.Status, "class", string(res.Class), "error", res.ErrorCode)
	out := authgate.Classification{Class: res.Class, Policy: string(res.Policy), Message: res.Message, MissingScopes: nonNil(res.MissingScopes), ErrorCode: res.ErrorCode}
	if res.RetryAfter > 0 {
		s := int64((res.RetryAfter + time.Second - 1) / time.Second)
		out.RetryAfter = &s
	}
	return writeJSON(w, http.StatusOK, out)
}
