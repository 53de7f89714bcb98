package api

import (
	"context"
	"net/http"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/internal/tenancy"
)

// ConsoleLinks mints a web-console sign-in link for a tenant (the console
// owns links and sessions; the API only decides who may ask).
type ConsoleLinks func(ctx context.Context, tenant authgate.TenantID, createdBy string) (authgate.ConsoleLoginLink, error)

// requireAdmin refuses callers that are not a key at all (a workflow this
// server runs itself, or the console's own in-process client): a sign-in
// link is minted only for a person holding an admin key. The role itself
// (admin) is enforced by the route table's middleware.
func requireAdmin(r *http.Request, p tenancy.Principal) error {
	if _, inProcess := r.Context().Value(inProcessPrincipal{}).(tenancy.Principal); inProcess {
		return authgate.Errorf(authgate.ClassForbidden, "this route needs a tenant admin API key")
	}
	return nil
}

// createConsoleLoginLink answers POST /v1/ui/login-links. The body, if
// any, is ignored: the link is for the caller's tenant.
func (a *API) createConsoleLoginLink(w http.ResponseWriter, r *http.Request, p tenancy.Principal) error {
	if err := requireAdmin(r, p); err != nil {
		return err
	}
	l, err := a.consoleLinks(r.Context(), p.TenantID, p.Actor())
	if err != nil {
		return err
	}
	a.log.InfoContext(r.Context(), "console login link created", "tenant_id", string(p.TenantID), "actor", p.Actor(), "expires_at", l.ExpiresAt)
	w.Header().Set("Cache-Control", "no-store")
	return writeJSON(w, http.StatusCreated, l)
}
