package verify

import (
	"cmp"
	"context"
	"net/http"
	"time"

	"golang.org/x/oauth2"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/internal/catalog"
	"github.com/authgate/authgate/internal/refresh"
)

// Health is what one health check of an idle credential learned.
type Health struct {
	// Answered is true when the provider said something about the grant:
	// the refresher refreshed the token (a refresh is itself the check) or
	// the identity call answered. False for a provider with no identity
	// call: the caller then checks with a forced refresh.
	Answered bool
	// Rejected is the fingerprint of the access token the provider refused
	// on the identity call (401, or Slack's invalid_auth/token_revoked).
	// It is the caller's to hand to the refresher as a rejected token: its
	// one forced refresh decides between "revoked" (reauth_required with
	// the reason, and its webhook) and "only that access token died".
	Rejected string
}

// Health is the health sweep's cheap live check of one credential: a token
// (refreshed only when the stored one has less than a minute left: then the
// refresh is the check and nothing else is called) and the provider's
// identity call with exactly that token — Google userinfo, Notion users/me,
// Slack auth.test, a generic provider's userinfo. Nothing else is called
// and nothing is recorded, except a live identity that is not the stored
// one, which is recorded as Verify records it (identity_mismatch).
// Provider errors other than a refused token (5xx, 429, the network) are
// returned, for the job to be retried.
func (v *Verifier) Health(ctx context.Context, tenant authgate.TenantID, id authgate.CredentialID, actor string) (Health, error) {
	cred, err := v.cfg.Vault.Get(ctx, tenant, id)
	if err != nil || cred.Status != authgate.CredentialStatusActive {
		return Health{}, err
	}
	p, ok := v.cfg.Providers.Get(cred.Provider)
	if !ok {
		return Health{}, authgate.Errorf(authgate.ClassClientMisconfigured, "provider %s is not configured here", cred.Provider)
	}
	if p.Kind != catalog.KindGoogle && p.Kind != catalog.KindNotion && p.Kind != catalog.KindSlack && p.UserinfoURL == "" {
		return Health{}, nil
	}
	t, err := v.cfg.Refresher.Token(ctx, refresh.Request{TenantID: tenant, ID: id, MinValid: time.Minute})
	if err != nil {
		return Health{}, err
	}
	if t.Refreshed {
		return Health{Answered: true}, nil
	}
	r := &run{v: v, tenant: tenant, cred: cred, p: p, identityOnly: true,
		ts: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: t.AccessToken.Reveal(), TokenType: t.TokenType})}
	r.res = authgate.Verification{Checks: []authgate.VerifyCheck{}, Identity: authgate.VerifiedIdentity{}}
	if !r.connectorChecks(ctx) {
		r.userinfo(ctx)
	}
	if r.mismatch != nil {
		r.finish(ctx)
		return Health{Answered: true}, r.record(ctx, actor)
	}
	for _, c := range r.res.Checks {
		if c.Status != authgate.CheckFail {
			continue
		}
		switch c.Class {
		case authgate.ClassReauthRequired:
			return Health{Answered: true, Rejected: t.AccessToken.Fingerprint()}, nil
		case authgate.ClassTransient, authgate.ClassRateLimited, authgate.ClassInternal:
			return Health{}, authgate.Errorf(c.Class, "%s: %s", c.Name, c.Detail)
		}
	}
	return Health{Answered: true}, nil
}

// userinfo is a generic provider's identity call: OpenID Connect userinfo,
// whose subject must be the stored one.
func (r *run) userinfo(ctx context.Context) {
	hc := &http.Client{Transport: &oauth2.Transport{Source: r.ts, Base: r.v.cfg.Transport}}
	r.call("userinfo", "", func() (string, error) {
		var ui struct{ Sub, Email string } // matched case-insensitively, as google() does
		if err := r.getJSON(ctx, hc, r.cred.Provider, r.p.UserinfoURL, &ui); err != nil {
			return "", err
		}
		live := authgate.VerifiedIdentity{Subject: ui.Sub, Email: ui.Email, Label: cmp.Or(ui.Email, ui.Sub)}
		r.matchIdentity(live, ui.Sub == r.cred.Account.Subject)
		return r.p.DisplayName + " says the token belongs to " + live.Label, nil
	})
}
