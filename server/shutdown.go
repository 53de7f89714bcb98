package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"sync"
	"time"
)

// openRequests knows which requests are open, so that a shutdown that has
// to cut some can say which. One map write and delete per request: nothing
// next to what a request costs.
type openRequests struct{ m sync.Map } // *http.Request → time.Time (start)

func (o *openRequests) wrap(h http.Handler, now func() time.Time) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.m.Store(r, now())
		defer o.m.Delete(r)
		h.ServeHTTP(w, r)
	})
}

// list describes the open requests, oldest first: method, path, age.
func (o *openRequests) list(now time.Time) []string {
	type open struct {
		what  string
		start time.Time
	}
	var all []open
	o.m.Range(func(k, v any) bool {
		r := k.(*http.Request)
		all = append(all, open{r.Method + " " + r.URL.Path, v.(time.Time)})
		return true
	})
	sort.Slice(all, func(i, j int) bool { return all[i].start.Before(all[j].start) })
	out := make([]string, len(all))
	for i, a := range all {
		out[i] = fmt.Sprintf("%s (open %s)", a.what, now.Sub(a.start).Round(time.Millisecond))
	}
	return out
}

// shutdownGrace is how long, once no refresh is in flight any more, the
// requests that waited on one get to write their answers.
const shutdownGrace = 2 * time.Second

// shutdown stops hs gracefully: requests get cfg.ShutdownTimeout, longer
// while refreshes are in flight (up to cfg.DrainTimeout: their callers get
// the answer they waited for). Whatever is still open then (an MCP event
// stream, a slow client) is cut, named in the log, and is no failure: the
// process has finished its work and exits 0.
func (s *Server) shutdown(hs *http.Server, open *openRequests) error {
	start := s.cfg.Clock.Now()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		defer cancel()
		t := time.NewTimer(s.cfg.ShutdownTimeout)
		defer t.Stop()
		select {
		case <-stop:
			return
		case <-t.C:
		}
		// Past the request deadline: keep going while refreshes run, then
		// let their callers write.
		limit := time.NewTimer(max(s.cfg.DrainTimeout-s.cfg.ShutdownTimeout, 0))
		defer limit.Stop()
		poll := time.NewTicker(50 * time.Millisecond)
		defer poll.Stop()
		for s.Refresher != nil && s.Refresher.InFlight() > 0 {
			select {
			case <-stop:
				return
			case <-limit.C:
				return
			case <-poll.C:
			}
		}
		grace := time.NewTimer(shutdownGrace)
		defer grace.Stop()
		select {
		case <-stop:
		case <-limit.C:
		case <-grace.C:
		}
	}()
	err := hs.Shutdown(ctx)
	if err == nil || !errors.Is(err, context.Canceled) {
		return err
	}
	now := s.cfg.Clock.Now()
	cut := open.list(now)
	s.cfg.Logger.Warn("shutdown: requests still open at the deadline were cut", slog.Duration("request_timeout", s.cfg.ShutdownTimeout),
		slog.Duration("waited", now.Sub(start).Round(time.Millisecond)), slog.Int("cut", len(cut)), slog.Any("requests", cut))
	return hs.Close()
}
