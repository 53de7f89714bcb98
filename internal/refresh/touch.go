package refresh

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/internal/storage"
)

// touchEvery is the precision of last_used_at: a credential's use is written
// at most once a minute per process.
const touchEvery = time.Minute

// maxPendingTouches bounds the uses waiting for a flush; reaching it flushes
// early instead of growing.
const maxPendingTouches = 50_000

// touchBuffer collects uses between flushes.
type touchBuffer struct {
	mu      sync.Mutex
	pending []storage.CredentialTouch
	full    chan struct{} // signalled when pending reaches its bound
}

// touch records that a token was served. The hot path pays an atomic load.
func (r *Refresher) touch(e *entry, id authgate.CredentialID, now time.Time) {
	last := e.lastTouch.Load()
	n := now.UnixNano()
	if n-last < int64(touchEvery) || !e.lastTouch.CompareAndSwap(last, n) {
		return
	}
	b := &r.touches
	b.mu.Lock()
	b.pending = append(b.pending, storage.CredentialTouch{ID: id, At: now.UTC()})
	full := len(b.pending) >= maxPendingTouches
	b.mu.Unlock()
	if full {
		select {
		case b.full <- struct{}{}:
		default:
		}
	}
}

// FlushUses writes the recorded uses (last_used_at) now instead of at the
// next periodic flush.
func (r *Refresher) FlushUses(ctx context.Context) { r.flushTouches(ctx) }

// flushTouches writes the pending uses in one batch.
func (r *Refresher) flushTouches(ctx context.Context) {
	b := &r.touches
	b.mu.Lock()
	batch := b.pending
	b.pending = nil
	b.mu.Unlock()
	if len(batch) == 0 {
		return
	}
	// Short transactions: on SQLite a long one would hold the write lock that
	// lease renewals and refresh commits of every process wait for.
	for len(batch) > 0 {
		n := min(len(batch), touchChunk)
		if err := r.cfg.Store.CredentialTouchBatch(ctx, batch[:n]); err != nil {
			r.cfg.Logger.Warn("record credential use", slog.Int("credentials", n), slog.String("error", err.Error()))
		}
		batch = batch[n:]
	}
}

// touchChunk is how many uses one write transaction records.
const touchChunk = 500

// flushLoop flushes every TouchFlushEvery, or early when the buffer is full.
func (r *Refresher) flushLoop(ctx context.Context) {
	t := time.NewTicker(r.cfg.TouchFlushEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-r.touches.full:
		}
		r.flushTouches(ctx)
	}
}
