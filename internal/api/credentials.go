package api

import (
	"context"
	"net/http"
	"time"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/internal/secret"
	"github.com/authgate/authgate/internal/tenancy"
	"github.com/authgate/authgate/internal/vault"
)

func (a *API) healthz(w http.ResponseWriter, r *http.Request) error {
	return writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (a *API) readyz(w http.ResponseWriter, r *http.Request) error {
	if err := a.store.Ping(r.Context()); err != nil {
		return authgate.Errorf(authgate.ClassUnavailable, "database is not answering").WithCause(err)
	}
	return writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func (a *API) listCredentials(w http.ResponseWriter, r *http.Request, p tenancy.Principal) error {
	q, err := query(r, "user_id", "provider", "status", "after", "limit")
	if err != nil {
		return err
	}
	limit, err := intParam(q, "limit", 1, 1000)
	if err != nil {
		return err
	}
	user, err := p.User(q.Get("user_id"))
	if err != nil {
		return err
	}
	creds, next, err := a.vault.List(r.Context(), vault.ListParams{
		TenantID: p.TenantID, UserID: user, Provider: q.Get("provider"),
		Status: authgate.CredentialStatus(q.Get("status")), After: authgate.CredentialID(q.Get("after")), Limit: int(limit),
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, authgate.CredentialPage{Credentials: creds, NextAfter: next})
}

func (a *API) getCredential(w http.ResponseWriter, r *http.Request, p tenancy.Principal) error {
	c, err := a.readCredential(r.Context(), p, authgate.CredentialID(r.PathValue("id")))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, c)
}

// readCredential reads a credential of the caller's tenant and, for a user
// key, of its user: another user's credential is as missing to a user key as
// another tenant's is to any key.
func (a *API) readCredential(ctx context.Context, p tenancy.Principal, id authgate.CredentialID) (authgate.Credential, error) {
	c, err := a.vault.Get(ctx, p.TenantID, id)
	if err == nil && !p.Owns(c.UserID) {
		return authgate.Credential{}, authgate.Errorf(authgate.ClassNotFound, "no credential %s", id)
	}
	return c, err
}

// ownCredential refuses a user key another user's credential before a
// route acts on it; other keys pass without a read (the route's own read
// scopes them to the tenant).
func (a *API) ownCredential(ctx context.Context, p tenancy.Principal, id authgate.CredentialID) error {
	if p.Role != authgate.RoleUser {
		return nil
	}
	_, err := a.readCredential(ctx, p, id)
	return err
}

func (a *API) deleteCredential(w http.ResponseWriter, r *http.Request, p tenancy.Principal) error {
	id := authgate.CredentialID(r.PathValue("id"))
	if err := a.ownCredential(r.Context(), p, id); err != nil {
		return err
	}
	var c authgate.Credential
	revoke := func(ctx context.Context) error {
		var err error
		if a.broker != nil {
			c, err = a.broker.Revoke(ctx, p.TenantID, id, p.Actor())
		} else {
			c, err = a.vault.Revoke(ctx, p.TenantID, id, p.Actor())
		}
		return err
	}
	var err error
	if a.refresher != nil {
		// Holding the refresh lease, no refresh is in flight anywhere: the
		// refresh token revoked at the provider is the newest one.
		err = a.refresher.WithLease(r.Context(), p.TenantID, id, revoke)
	} else {
		err = revoke(r.Context())
	}
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, c)
}

func (a *API) credentialEvents(w http.ResponseWriter, r *http.Request, p tenancy.Principal) error {
	q, err := query(r, "after", "limit")
	if err != nil {
		return err
	}
	after, err := intParam(q, "after", 0, 1<<62)
	if err != nil {
		return err
	}
	limit, err := intParam(q, "limit", 1, 1000)
	if err != nil {
		return err
	}
	if err := a.ownCredential(r.Context(), p, authgate.CredentialID(r.PathValue("id"))); err != nil {
		return err
	}
	evs, next, err := a.vault.Events(r.Context(), p.TenantID, authgate.CredentialID(r.PathValue("id")), after, int(limit))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, authgate.EventPage{Events: evs, NextAfter: next})
}

// importBody is the wire type with expires_at read as text (the shallower
// field wins in encoding/json), so a malformed time gets its own message.
type importBody struct {
	authgate.ImportCredentialRequest
	ExpiresAt string `json:"expires_at"`
}

func (a *API) importCredential(w http.ResponseWriter, r *http.Request, p tenancy.Principal) error {
	var b importBody
	if err := decodeJSON(w, r, maxImportBody, &b); err != nil {
		return err
	}
	var exp time.Time
	if b.ExpiresAt != "" {
		t, err := time.Parse(time.RFC3339, b.ExpiresAt)
		if err != nil {
			e := authgate.Errorf(authgate.ClassInvalidRequest, "expires_at must be an RFC 3339 time such as 2026-11-25T10:00:00Z")
			e.Errors = []authgate.FieldError{{Field: "expires_at", Message: "must be an RFC 3339 time"}}
			return e
		}
		exp = t
	}
	c, created, err := a.vault.Import(r.Context(), vault.ImportParams{
		TenantID: p.TenantID, UserID: b.UserID, Provider: b.Provider, WorkspaceID: b.WorkspaceID, Subject: b.Subject,
		Email: b.Email, AccountType: b.AccountType, Domain: b.Domain, Scopes: b.Scopes, TokenType: b.TokenType,
		AccessToken: secret.New(b.AccessToken), RefreshToken: secret.New(b.RefreshToken), ExpiresAt: exp, Actor: p.Actor(),
	})
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
		w.Header().Set("Location", "/v1/credentials/"+string(c.ID))
	}
	return writeJSON(w, status, c)
}
