package mcpserver

import "sync"

// Changes wakes connect-link watchers when any credential changed in the
// database (the storage change feed: a completed link stores or updates a
// credential), so a link's completion is noticed at once without asking
// the API on a timer.
type Changes struct {
	mu sync.Mutex
	ch chan struct{}
}

// NewChanges returns a Changes nobody has notified yet.
func NewChanges() *Changes { return &Changes{ch: make(chan struct{})} }

// Next is closed at the next Notify. Take it before looking at the state
// it guards, so a change between the look and the wait is not missed.
func (c *Changes) Next() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ch
}

// Notify wakes every waiter.
func (c *Changes) Notify() {
	c.mu.Lock()
	defer c.mu.Unlock()
	close(c.ch)
	c.ch = make(chan struct{})
}
