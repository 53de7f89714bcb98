package api

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/authgate/authgate"
)

// handlerFunc is a handler that returns its error instead of writing it.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// handle adapts a handlerFunc: a returned error becomes a problem response.
func (a *API) handle(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
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
		a.log.ErrorContext(r.Context(), "internal error", slog.String("request_id", requestID(r.Context())),
			slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.String("error", ae.Error()))
		ae = authgate.Errorf(authgate.ClassInternal, "internal error (request id %s); the operator's log says more", requestID(r.Context()))
	case errors.As(err, &ae):
	case errors.As(err, &tooBig):
		ae = authgate.Errorf(authgate.ClassPayloadTooLarge, "request body is larger than %d bytes", tooBig.Limit)
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		// The client went away; there is nobody to answer.
		return
	default:
		a.log.ErrorContext(r.Context(), "internal error", slog.String("request_id", requestID(r.Context())),
			slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.String("error", err.Error()))
		ae = authgate.Errorf(authgate.ClassInternal, "internal error (request id %s)", requestID(r.Context()))
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

// problemsForUnrouted answers requests the mux has no route for (404) or no
// such method for (405, with Allow) as problems instead of plain text.
func (a *API) problemsForUnrouted(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, pattern := mux.Handler(r)
		if pattern != "" {
			mux.ServeHTTP(w, r) // (mux.Handler does not set path values; ServeHTTP does)
			return
		}
		rec := &headerRecorder{header: http.Header{}}
		h.ServeHTTP(rec, r)
		switch rec.status {
		case http.StatusMethodNotAllowed:
			if allow := rec.header.Get("Allow"); allow != "" {
				w.Header().Set("Allow", allow)
			}
			writeProblem(w, r, authgate.Errorf(authgate.ClassMethodNotAllowed, "%s is not allowed on %s (allowed: %s)", r.Method, r.URL.Path, rec.header.Get("Allow")))
		case http.StatusNotFound, 0:
			writeProblem(w, r, authgate.Errorf(authgate.ClassNotFound, "no route %s %s", r.Method, r.URL.Path))
		default: // a redirect the mux issues for path cleaning
			for k, v := range rec.header {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.status)
		}
	})
}

// headerRecorder captures what the mux's fallback handler would write.
type headerRecorder struct {
	header http.Header
	status int
}

func (h *headerRecorder) Header() http.Header         { return h.header }
func (h *headerRecorder) Write(b []byte) (int, error) { return len(b), nil }
func (h *headerRecorder) WriteHeader(status int)      { h.status = status }
