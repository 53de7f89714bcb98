package api

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/authgate/authgate"
)

// handlerFunc is a handler that returns its error instead of writing it.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// handle adapts a handlerFunc: a returned error becomes a problem response.
func (a *API) handle(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			if i := infoOf(w); i != nil {
				i.failed = true
			}
			a.writeError(w, r, err)
		}
	})
}

// writeError writes err as application/problem+json. Only *authgate.Error
// reaches the client as it is; anything else is logged and answered as an
// internal error that names the request id, never the cause.
func (a *API) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var ae *authgate.Error
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &ae) && ae.Class == authgate.ClassInternal:
		// Internal details (key ids, which key is missing) are for the
		// operator's log, not for a tenant's API caller.
		a.log.ErrorContext(r.Context(), "internal error", slog.String("request_id", requestID(w)),
			slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.String("error", ae.Error()))
		ae = authgate.Errorf(authgate.ClassInternal, "internal error (request id %s); the operator's log says more", requestID(w))
	case errors.As(err, &ae):
	case errors.As(err, &tooBig):
		ae = authgate.Errorf(authgate.ClassPayloadTooLarge, "request body is larger than %d bytes", tooBig.Limit)
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		// The client went away; there is nobody to answer.
		if i := infoOf(w); i != nil {
			i.clientGone = true
		}
		return
	default:
		a.log.ErrorContext(r.Context(), "internal error", slog.String("request_id", requestID(w)),
			slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.String("error", err.Error()))
		ae = authgate.Errorf(authgate.ClassInternal, "internal error (request id %s)", requestID(w))
	}
	writeProblem(w, r, ae)
}

func writeProblem(w http.ResponseWriter, r *http.Request, e *authgate.Error) {
	p := *e
	if p.Status == 0 {
		p.Status = p.Class.Status()
	}
	if p.Instance == "" {
		p.Instance = r.URL.Path
	}
	if p.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.FormatInt(int64((p.RetryAfter+authgate.Duration(1e9)-1)/authgate.Duration(1e9)), 10))
	}
	if p.Class == authgate.ClassUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="authgate"`)
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(&p)
}

// writeJSON writes v with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	return json.NewEncoder(w).Encode(v)
}

// unrouted answers, as a problem, what no route takes: the API mux sends
// it every request no other pattern matches ("/" is the least specific
// pattern). If another method would match the path, that is a 405 with
// Allow; otherwise a 404. (A catch-all route rather than a wrapper that
// asks the mux first: that would route every request twice.)
func (a *API) unrouted(w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		probe := *r
		probe.Method = m
		if _, pattern := a.mux.Handler(&probe); pattern != "" && pattern != "/" {
			allow = append(allow, m)
		}
	}
	if len(allow) == 0 || slices.Contains(allow, r.Method) {
		writeProblem(w, r, authgate.Errorf(authgate.ClassNotFound, "no route %s %s", r.Method, r.URL.Path))
		return
	}
	slices.Sort(allow)
	w.Header().Set("Allow", strings.Join(allow, ", "))
	writeProblem(w, r, authgate.Errorf(authgate.ClassMethodNotAllowed, "%s is not allowed on %s (allowed: %s)", r.Method, r.URL.Path, strings.Join(allow, ", ")))
}
