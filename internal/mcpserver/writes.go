package mcpserver

import (
	"context"
	"encoding/json"
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
//
// With a Store (authgate serve: the database), an answer is also kept
// there, so a call retried on another instance, or after a restart, gets
// the first answer too. Two calls with one key running at the same moment
// on two instances are not serialised (each instance serialises its own);
// a retry comes after the first attempt ended, which is the case that
// matters.
type Writes struct {
	ttl time.Duration
	now func() time.Time
	// Store, when set, keeps answers across instances and restarts.
	Store WriteStore

	mu   sync.Mutex
	byID map[string]*write
}

type write struct {
	done chan struct{}
	res  *mcp.CallToolResult
	ok   bool
	at   time.Time
}

// WriteStore keeps write answers by key where every instance sees them.
type WriteStore interface {
	// Load returns the answer stored under key, if any.
	Load(ctx context.Context, key string) ([]byte, bool, error)
	// Save stores answer under key unless one is there already.
	Save(ctx context.Context, key string, answer []byte) error
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
	if stored, ok := w.load(ctx, key); ok {
		w.mu.Lock()
		mine.res, mine.ok, mine.at = stored, true, w.now()
		w.mu.Unlock()
		return stored, true, nil
	}
	res, err = fn()
	ok := err == nil && res != nil && !res.IsError
	if ok && w.Store != nil {
		if b, merr := json.Marshal(res); merr == nil {
			// Saved on a context of its own: the write happened even if
			// the caller has gone.
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			_ = w.Store.Save(sctx, key, b) // on failure, this instance still remembers it
			cancel()
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if ok {
		mine.res, mine.ok, mine.at = res, true, w.now()
	} else {
		delete(w.byID, key)
	}
	return res, false, err
}

// load finds an answer another instance (or an earlier run of this one)
// stored under key.
func (w *Writes) load(ctx context.Context, key string) (*mcp.CallToolResult, bool) {
	if w.Store == nil {
		return nil, false
	}
	b, found, err := w.Store.Load(ctx, key)
	if err != nil || !found {
		return nil, false
	}
	var res mcp.CallToolResult
	if err := json.Unmarshal(b, &res); err != nil {
		return nil, false
	}
	return &res, true
}
