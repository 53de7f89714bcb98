package mcpserver

import (
	"context"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Writes remembers the writes that succeeded, by idempotency key, for a
// while: a write tool called again with the same key (an agent or client
// retrying after a reconnect, a timeout, a lost answer) gets the first
// answer instead of a second Doc, page or message. A call with the same key
// while the first is running waits for it. Failed writes are forgotten, so
// they can be tried again.
type Writes struct {
	ttl time.Duration
	now func() time.Time

	mu   sync.Mutex
	byID map[string]*write
}

type write struct {
	done chan struct{}
	res  *mcp.CallToolResult
	ok   bool
	at   time.Time
}

// NewWrites keeps answers for ttl.
func NewWrites(ttl time.Duration) *Writes {
	return &Writes{ttl: ttl, now: time.Now, byID: map[string]*write{}}
}

// Do runs fn once per key within the window and returns its answer (replayed
// says it is a remembered one).
func (w *Writes) Do(ctx context.Context, key string, fn func() (*mcp.CallToolResult, error)) (res *mcp.CallToolResult, replayed bool, err error) {
	var mine *write
	for mine == nil {
		w.mu.Lock()
		now := w.now()
		for k, e := range w.byID {
			if e.ok && now.Sub(e.at) > w.ttl {
				delete(w.byID, k)
			}
		}
		e, found := w.byID[key]
		if !found {
			mine = &write{done: make(chan struct{})}
			w.byID[key] = mine
			w.mu.Unlock()
			break
		}
		w.mu.Unlock()
		select {
		case <-e.done:
			if e.ok {
				return e.res, true, nil
			}
			// The first attempt failed (or panicked): forget it, try again.
			w.mu.Lock()
			if w.byID[key] == e {
				delete(w.byID, key)
			}
			w.mu.Unlock()
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
	}
	defer close(mine.done)
	res, err = fn()
	w.mu.Lock()
	defer w.mu.Unlock()
	if err == nil && res != nil && !res.IsError {
		mine.res, mine.ok, mine.at = res, true, w.now()
	} else {
		delete(w.byID, key)
	}
	return res, false, err
}
