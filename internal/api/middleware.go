package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/internal/tenancy"
)

type ctxKey int

const (
	ctxRequestID ctxKey = iota
	ctxPrincipal
)

func requestID(ctx context.Context) string {
	id, _ := ctx.Value(ctxRequestID).(string)
	return id
}

var clientRequestID = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// middleware assigns a request id (a well-formed X-Request-Id from the client
// is kept), recovers panics into 500 problems, and writes one access-log line
// per request. The log line has the path but never the query, headers or body.
func (a *API) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := a.clock.Now()
		id := r.Header.Get("X-Request-Id")
		if !clientRequestID.MatchString(id) {
			b := make([]byte, 8)
			_, _ = rand.Read(b)
			id = "req_" + hex.EncodeToString(b)
		}
		ctx := context.WithValue(r.Context(), ctxRequestID, id)
		r = r.WithContext(ctx)
		w.Header().Set("X-Request-Id", id)
		rec := &statusRecorder{ResponseWriter: w}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				a.log.ErrorContext(ctx, "panic", slog.String("request_id", id), slog.String("path", r.URL.Path), slog.String("panic", fmt.Sprint(v)))
				if rec.status == 0 {
					writeProblem(rec, r, authgate.Errorf(authgate.ClassInternal, "internal error (request id %s)", id))
				}
			}
			attrs := []slog.Attr{
				slog.String("request_id", id), slog.String("method", r.Method), slog.String("path", r.URL.Path),
				slog.Int("status", rec.statusOr200()), slog.Int64("bytes", rec.bytes),
				slog.Float64("duration_ms", float64(a.clock.Now().Sub(start).Microseconds())/1000),
			}
			if p, ok := r.Context().Value(ctxPrincipal).(*tenancy.Principal); ok && p.TenantID != "" {
				attrs = append(attrs, slog.String("tenant_id", string(p.TenantID)))
			}
			a.log.LogAttrs(ctx, slog.LevelInfo, "http request", attrs...)
		}()
		// The principal is filled in by authed; the access log reads it.
		r = r.WithContext(context.WithValue(ctx, ctxPrincipal, &tenancy.Principal{}))
		next.ServeHTTP(rec, r)
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	n, err := s.ResponseWriter.Write(b)
	s.bytes += int64(n)
	return n, err
}

func (s *statusRecorder) statusOr200() int {
	if s.status == 0 {
		return http.StatusOK
	}
	return s.status
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

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
		if slot, ok := r.Context().Value(ctxPrincipal).(*tenancy.Principal); ok {
			*slot = p
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
