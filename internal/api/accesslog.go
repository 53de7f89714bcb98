package api

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// AccessLogMode says how many access-log lines the API writes.
type AccessLogMode string

const (
	// AccessLogSummary (the default) writes a line of its own for every
	// request worth reading — any answer other than 2xx, a failed or slow
	// request, a token the provider had to refresh, anything that is not a
	// read — and counts the rest (reads and tokens served from memory) into
	// one "http summary" line per route and status every SummaryEvery. A
	// token route serving tens of thousands of requests a second then logs
	// a few lines a minute instead of one per request.
	AccessLogSummary AccessLogMode = "summary"
	// AccessLogFull writes one line per request.
	AccessLogFull AccessLogMode = "full"
)

// ParseAccessLogMode reads AUTHGATE_ACCESS_LOG's value ("" is the default).
func ParseAccessLogMode(s string) (AccessLogMode, error) {
	switch m := AccessLogMode(strings.ToLower(s)); m {
	case "":
		return AccessLogSummary, nil
	case AccessLogSummary, AccessLogFull:
		return m, nil
	}
	return "", fmt.Errorf("access log %q (AUTHGATE_ACCESS_LOG): want summary or full", s)
}

// AccessLog configures the access log. The zero value is the default.
type AccessLog struct {
	Mode AccessLogMode
	// SummaryEvery is how often summary lines are written (default 1m).
	SummaryEvery time.Duration
	// Slow is the duration from which a request always gets a line of its
	// own (default 500ms).
	Slow time.Duration
}

func (c AccessLog) withDefaults() AccessLog {
	if c.Mode == "" {
		c.Mode = AccessLogSummary
	}
	if c.SummaryEvery <= 0 {
		c.SummaryEvery = time.Minute
	}
	if c.Slow <= 0 {
		c.Slow = 500 * time.Millisecond
	}
	return c
}

// reqInfo is what the middleware knows about a request. It is also the
// ResponseWriter the handlers get (it records status and size), which is
// how they reach it: no context value and no request copy per request.
type reqInfo struct {
	http.ResponseWriter
	status int
	bytes  int64

	id  string
	hdr [1]string // the X-Request-Id header's value slice
	// tenant is filled in by authed.
	tenant string
	// routine marks a request the summary may count instead of logging:
	// a read (GET, HEAD), or a token the handler served from memory.
	routine bool
	// refreshed says the token route made a provider refresh.
	refreshed bool
	// failed says the handler returned an error (also one nobody received:
	// the client had gone).
	failed, clientGone bool
}

// infoOf is the request's reqInfo: w itself when the middleware runs.
func infoOf(w http.ResponseWriter) *reqInfo {
	i, _ := w.(*reqInfo)
	return i
}

func requestID(w http.ResponseWriter) string {
	if i := infoOf(w); i != nil {
		return i.id
	}
	return ""
}

func (i *reqInfo) WriteHeader(code int) {
	if i.status == 0 {
		i.status = code
	}
	i.ResponseWriter.WriteHeader(code)
}

func (i *reqInfo) Write(b []byte) (int, error) {
	if i.status == 0 {
		i.status = http.StatusOK
	}
	n, err := i.ResponseWriter.Write(b)
	i.bytes += int64(n)
	return n, err
}

func (i *reqInfo) statusOr200() int {
	if i.status == 0 {
		return http.StatusOK
	}
	return i.status
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (i *reqInfo) Unwrap() http.ResponseWriter { return i.ResponseWriter }

// markServedFromMemory tells the access log that a token request was
// answered without a refresh: the summary may count it.
func markServedFromMemory(w http.ResponseWriter) {
	if i := infoOf(w); i != nil {
		i.routine = true
	}
}

// markRefreshed tells the access log that a token request refreshed.
func markRefreshed(w http.ResponseWriter) {
	if i := infoOf(w); i != nil {
		i.refreshed = true
	}
}

// routeKey is what a summary line counts by.
type routeKey struct {
	method, route string
	status        int
}

// routeStats accumulates one summary line.
type routeStats struct {
	mu sync.Mutex
	routeCounts
}

type routeCounts struct {
	n, bytes int64
	sum, max time.Duration
}

// summary counts the routine requests between two summary lines.
type summary struct {
	mu     sync.RWMutex // guards routes; a route's counts have their own lock
	routes map[routeKey]*routeStats
	since  time.Time // guarded by flushMu
	// flushMu serializes flushes.
	flushMu sync.Mutex
}

func (s *summary) add(k routeKey, d time.Duration, bytes int64) {
	s.mu.RLock()
	st, ok := s.routes[k]
	s.mu.RUnlock()
	if !ok {
		s.mu.Lock()
		if st, ok = s.routes[k]; !ok {
			if s.routes == nil {
				s.routes = map[routeKey]*routeStats{}
			}
			st = &routeStats{}
			s.routes[k] = st
		}
		s.mu.Unlock()
	}
	st.mu.Lock()
	st.n++
	st.bytes += bytes
	st.sum += d
	st.max = max(st.max, d)
	st.mu.Unlock()
}

// flush writes one line per route and status counted since the last flush
// and starts counting afresh.
func (s *summary) flush(log *slog.Logger, now time.Time) {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	type line struct {
		k routeKey
		routeCounts
	}
	var lines []line
	s.mu.RLock()
	for k, st := range s.routes {
		st.mu.Lock()
		if st.n > 0 {
			lines = append(lines, line{k: k, routeCounts: st.routeCounts})
			st.routeCounts = routeCounts{}
		}
		st.mu.Unlock()
	}
	s.mu.RUnlock()
	slices.SortFunc(lines, func(a, b line) int {
		return cmpKey(a.k, b.k)
	})
	for _, l := range lines {
		log.LogAttrs(context.Background(), slog.LevelInfo, "http summary",
			slog.String("method", l.k.method), slog.String("route", l.k.route), slog.Int("status", l.k.status),
			slog.Int64("requests", l.n), slog.Int64("bytes", l.bytes),
			slog.Float64("duration_ms_avg", ms(l.sum/time.Duration(l.n))), slog.Float64("duration_ms_max", ms(l.max)),
			slog.Float64("interval_s", now.Sub(s.since).Round(time.Second).Seconds()))
	}
	s.since = now
}

func cmpKey(a, b routeKey) int {
	if c := strings.Compare(a.route, b.route); c != 0 {
		return c
	}
	if c := strings.Compare(a.method, b.method); c != 0 {
		return c
	}
	return a.status - b.status
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// logRequest writes the request's access-log line, or counts it into the
// summary. It never sees the query, headers or body: only the path.
func (a *API) logRequest(ctx context.Context, r *http.Request, i *reqInfo, d time.Duration) {
	status := i.statusOr200()
	if a.accessLog.Mode != AccessLogFull && i.routine && !i.failed && !i.refreshed && status/100 == 2 && d < a.accessLog.Slow && r.Pattern != "" {
		a.summary.add(routeKey{method: r.Method, route: routeOf(r.Pattern), status: status}, d, i.bytes)
		return
	}
	attrs := make([]slog.Attr, 0, 10)
	attrs = append(attrs, slog.String("request_id", i.id), slog.String("method", r.Method), slog.String("path", r.URL.Path),
		slog.Int("status", status), slog.Int64("bytes", i.bytes), slog.Float64("duration_ms", ms(d)))
	if i.tenant != "" {
		attrs = append(attrs, slog.String("tenant_id", i.tenant))
	}
	if i.refreshed {
		attrs = append(attrs, slog.Bool("refreshed", true))
	}
	if i.clientGone {
		attrs = append(attrs, slog.Bool("client_gone", true))
	}
	if d >= a.accessLog.Slow {
		attrs = append(attrs, slog.Bool("slow", true))
	}
	a.log.LogAttrs(ctx, slog.LevelInfo, "http request", attrs...)
}

// routeOf strips the method from a mux pattern ("POST /v1/x" → "/v1/x").
func routeOf(pattern string) string {
	if _, p, ok := strings.Cut(pattern, " "); ok {
		return p
	}
	return pattern
}

// FlushAccessSummary writes the summary lines now (tests; Close does it).
func (a *API) FlushAccessSummary() { a.summary.flush(a.log, a.clock.Now()) }

// runSummary writes the summary every SummaryEvery until stop is closed.
// (A ticker rather than the injected clock: it paces output, it decides
// nothing; tests call FlushAccessSummary.)
func (a *API) runSummary(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(a.accessLog.SummaryEvery)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			a.FlushAccessSummary()
		case <-stop:
			a.FlushAccessSummary()
			return
		}
	}
}
