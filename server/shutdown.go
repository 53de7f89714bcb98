package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// openRequests knows which requests are open, so that a shutdown that has
// to cut some can say which. Per request: one small allocation and two
// uncontended locks of one of 16 shards, nothing next to what a request
// costs (a sync.Map, built for stable keys, cost three times as much).
type openRequests struct {
	next   atomic.Uint32
	shards [16]struct {
		mu   sync.Mutex
		open map[*openRequest]struct{}
	}
}

type openRequest struct {
	r     *http.Request
	start time.Time
}

func (o *openRequests) wrap(h http.Handler, now func() time.Time) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req := &openRequest{r: r, start: now()}
		sh := &o.shards[o.next.Add(1)%uint32(len(o.shards))]
		sh.mu.Lock()
		if sh.open == nil {
			sh.open = map[*openRequest]struct{}{}
		}
		sh.open[req] = struct{}{}
		sh.mu.Unlock()
		defer func() {
			sh.mu.Lock()
			delete(sh.open, req)
			sh.mu.Unlock()
		}()
		h.ServeHTTP(w, r)
	})
}

// list describes the open requests, oldest first: method, path, age.
func (o *openRequests) list(now time.Time) []string {
	var all []*openRequest
	for i := range o.shards {
		sh := &o.shards[i]
		sh.mu.Lock()
		for req := range sh.open {
			all = append(all, req)
		}
		sh.mu.Unlock()
	}
	sort.Slice(all, func(i, j int) bool { return all[i].start.Before(all[j].start) })
	out := make([]string, len(all))
	for i, a := range all {
		out[i] = fmt.Sprintf("%s %s (open %s)", a.r.Method, a.r.URL.Path, now.Sub(a.start).Round(time.Millisecond))
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
