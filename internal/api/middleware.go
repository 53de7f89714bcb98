package api

import (
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/internal/tenancy"
)

// validClientRequestID accepts an X-Request-Id of 1-64 of A-Z a-z 0-9 . _ -.
func validClientRequestID(id string) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for i := range len(id) {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// newRequestID names a request: "req_" and 16 hex digits. Request ids
// label log lines and problems; they guard nothing, so a fast generator
// (math/rand/v2, seeded from the OS) does.
func newRequestID() string {
	var b [20]byte
	copy(b[:], "req_")
	var n [8]byte
	v := rand.Uint64()
	for i := range n {
		n[i] = byte(v >> (8 * i))
	}
	hex.Encode(b[4:], n[:])
	return string(b[:])
}

// middleware assigns a request id (a well-formed X-Request-Id from the client
// is kept), recovers panics into 500 problems, and writes the access log
// (see AccessLogMode). The log has the path but never the query, headers
// or body.
func (a *API) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := a.clock.Now()
		i := &reqInfo{ResponseWriter: w, id: r.Header.Get("X-Request-Id"), routine: r.Method == http.MethodGet || r.Method == http.MethodHead}
		if !validClientRequestID(i.id) {
			i.id = newRequestID()
		}
		i.hdr[0] = i.id
		w.Header()["X-Request-Id"] = i.hdr[:]
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				a.log.ErrorContext(r.Context(), "panic", slog.String("request_id", i.id), slog.String("path", r.URL.Path), slog.String("panic", fmt.Sprint(v)))
				i.failed = true
				if i.status == 0 {
					writeProblem(i, r, authgate.Errorf(authgate.ClassInternal, "internal error (request id %s)", i.id))
				}
			}
			// r.Pattern is the route the mux matched (it sets it in place).
			a.logRequest(r.Context(), r, i, a.clock.Now().Sub(start))
		}()
		next.ServeHTTP(i, r)
	})
}

// authedFunc is a handler that runs as an authenticated tenant.
type authedFunc func(w http.ResponseWriter, r *http.Request, p tenancy.Principal) error

// authed requires a valid API key whose role reaches role, and passes its
// principal on. It is the one place roles are enforced; the role comes with
// the cached key, so the check costs no query and no allocation.
func (a *API) authed(role authgate.Role, h authedFunc) http.Handler {
	return a.handle(func(w http.ResponseWriter, r *http.Request) error {
		if p, ok := r.Context().Value(inProcessPrincipal{}).(tenancy.Principal); ok {
			// A workflow this server runs itself (ClientFor): only code in
			// this process can put a principal in a request's context.
			if !p.Allows(role) {
				return roleRefused(role)
			}
			return h(w, r, p)
		}
		p, err := a.tenancy.Authenticate(r.Context(), r.Header.Get("Authorization"))
		if errors.Is(err, tenancy.ErrUnauthenticated) {
			return authgate.Errorf(authgate.ClassUnauthorized, "send a valid API key as 'Authorization: Bearer ag_…'")
		}
		if err != nil {
			return err
		}
		if i := infoOf(w); i != nil {
			i.tenant = string(p.TenantID)
		}
		if !p.Allows(role) {
			return roleRefused(role)
		}
		return h(w, r, p)
	})
}

// Refusals are built once: the role check allocates nothing, even when it
// refuses.
var roleRefusals = map[authgate.Role]*authgate.Error{
	authgate.RoleAdmin:   authgate.Errorf(authgate.ClassForbidden, "this route needs an admin API key"),
	authgate.RoleService: authgate.Errorf(authgate.ClassForbidden, "this route needs a service or admin API key"),
	authgate.RoleUser:    authgate.Errorf(authgate.ClassForbidden, "this route needs an API key"),
}

func roleRefused(role authgate.Role) error { return roleRefusals[role] }

// route registers an authenticated route that needs role.
func (a *API) route(pattern string, role authgate.Role, h authedFunc) {
	a.mux.Handle(pattern, a.authed(role, h))
}

// public registers a route that needs no API key.
func (a *API) public(pattern string, h handlerFunc) {
	a.mux.Handle(pattern, a.handle(h))
}
