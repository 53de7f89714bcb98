package refresh

import (
	"context"
	"log/slog"
	"time"
)

// Start begins the background work: following the store's change feed (so
// the in-memory copies can be trusted) and flushing recorded uses. Without
// Start, every request reads the database. Calling it twice is harmless.
func (r *Refresher) Start() {
	r.runMu.Lock()
	defer r.runMu.Unlock()
	if r.cancel != nil || r.closed.Load() {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	r.done = make(chan struct{})
	r.touches.full = make(chan struct{}, 1)
	go func() {
		defer close(r.done)
		stopped := make(chan struct{})
		go func() { defer close(stopped); r.watch(ctx) }()
		r.flushLoop(ctx)
		<-stopped
	}()
}

// Close stops new flights, waits until ctx ends for the flights in progress
// to commit what the provider answered (a caller that gave up does not make
// a rotated refresh token any less precious), and past ctx for those already
// holding an answer whose commit the database keeps refusing; then it writes
// the pending uses and stops the background work. It reports whether
// flights were still running when ctx ended.
func (r *Refresher) Close(ctx context.Context) error {
	r.closeMu.Lock()
	r.closed.Store(true)
	r.closeMu.Unlock()
	drained := make(chan struct{})
	go func() { r.flights.Wait(); close(drained) }()
	var err error
	start := time.Now()
	select {
	case <-drained:
	case <-ctx.Done():
		err = ctx.Err()
		// A rotation in hand is never abandoned: the provider already
		// retired the old refresh token. Its commit is bounded by its own
		// budget (commit.go).
		stored := r.commits.zero()
		select {
		case <-stored:
		default:
			r.cfg.Logger.Warn("shutdown: waiting past the drain deadline for rotated tokens to be stored")
			<-stored
		}
		r.cfg.Logger.Error("shutdown: refreshes still in flight were abandoned", slog.Duration("waited", time.Since(start)))
	}
	r.runMu.Lock()
	cancel, done := r.cancel, r.done
	r.runMu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
	fctx, fcancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer fcancel()
	r.flushTouches(fctx)
	return err
}

// InFlight counts the flights running in this process (shutdown keeps
// answering the requests that wait on them). It walks every coordinator:
// for shutdown, not for the hot path.
func (r *Refresher) InFlight() int {
	n := 0
	r.entries.Range(func(_, v any) bool {
		e := v.(*entry)
		e.mu.Lock()
		if e.flight != nil {
			n++
		}
		e.mu.Unlock()
		return true
	})
	return n
}
