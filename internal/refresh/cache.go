package refresh

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/internal/catalog"
	"github.com/authgate/authgate/internal/secret"
	"github.com/authgate/authgate/internal/storage"
)

// entry is one credential's coordinator: the last known state for the hot
// path, the flight in progress, and a channel closed whenever the change
// feed reports the row changed (waiters on another process's lease).
//
// The snapshot keeps the access token in plaintext. Sealing it in memory
// would cost an AES-GCM open per request and protect nothing: this process
// holds the master key and hands the token out on request anyway.
type entry struct {
	snap      atomic.Pointer[snapshot]
	lastTouch atomic.Int64 // unix nanoseconds of the last recorded use

	mu         sync.Mutex
	gen        uint64 // bumped by every change notification
	flight     *flight
	changed    chan struct{}
	quarantine time.Time // no provider call before this (a rotating refresh in doubt)

	// The promise horizon of the current token (promise.go): providers that
	// revoke the previous access token on refresh only.
	promise   atomic.Pointer[promiseState]
	promiseMu sync.Mutex // one horizon write at a time per process
	// pending is the token a flight waits to refresh away (promise.go).
	pending atomic.Pointer[snapshot]
}

// changedChan returns the channel the next change notification closes.
// Call with e.mu held.
func (e *entry) changedChan() chan struct{} {
	if e.changed == nil {
		e.changed = make(chan struct{})
	}
	return e.changed
}

// snapshot is an immutable view of a credential.
type snapshot struct {
	epoch    uint64
	tenant   authgate.TenantID
	cred     authgate.Credential
	provider *catalog.Provider
	token    *Token // MinValidMet true, Refreshed false
	// lifetime is how long the provider made the current token last (its
	// expiry minus the time it was fetched); zero when unknown.
	lifetime time.Duration
}

// need is the window a token must still cover before it is refreshed: the
// caller's, capped at half the observed lifetime, so a window the provider
// cannot meet never refreshes a token in the first half of its life.
//
// A proactive request (the planner's) is capped only by a lifetime seen at
// a refresh. Before the first refresh the "lifetime" is the time since the
// row was written, which for an imported token is not its lifetime: a
// token imported with 15 minutes left would look 15 minutes long, the
// proactive refresh asking for 10 would be capped to 7.5 and do nothing,
// and the token would enter the safety window unrefreshed.
func (s *snapshot) need(minValid time.Duration, proactive bool) time.Duration {
	if proactive && s.cred.LastRefreshedAt == nil {
		return minValid
	}
	if s.lifetime > 0 && minValid > s.lifetime/2 {
		return s.lifetime / 2
	}
	return minValid
}

func newSnapshot(epoch uint64, c authgate.Credential, access secret.Secret, p *catalog.Provider) *snapshot {
	s := &snapshot{epoch: epoch, tenant: c.TenantID, cred: c, provider: p}
	// The token was fetched at the last refresh, or else (a connect, an
	// import) at the last write of the row.
	if exp := c.AccessTokenExpiresAt; exp != nil {
		fetched := c.UpdatedAt
		if c.LastRefreshedAt != nil {
			fetched = *c.LastRefreshedAt
		}
		if exp.After(fetched) {
			s.lifetime = exp.Sub(fetched)
		}
	}
	typ := c.TokenType
	if typ == "" || strings.EqualFold(typ, "bearer") || typ == "bot" || typ == "user" {
		typ = "Bearer"
	}
	s.token = &Token{CredentialID: c.ID, Provider: c.Provider, AccessToken: access, TokenType: typ, ExpiresAt: c.AccessTokenExpiresAt,
		Scopes: c.GrantedScopes, MinValidMet: true}
	return s
}

// entryFor returns id's coordinator, creating it.
func (r *Refresher) entryFor(id authgate.CredentialID) *entry {
	if v, ok := r.entries.Load(id); ok {
		return v.(*entry)
	}
	v, loaded := r.entries.LoadOrStore(id, &entry{})
	if !loaded && r.count.Add(1) > int64(r.cfg.MaxCached) {
		r.evict()
	}
	return v.(*entry)
}

// evict drops about a tenth of the idle coordinators (map order is random
// enough). A dropped coordinator with a waiter still holding it is harmless:
// the lease, not the map, keeps flights apart.
func (r *Refresher) evict() {
	if !r.evicting.CompareAndSwap(false, true) {
		return
	}
	defer r.evicting.Store(false)
	target := int64(r.cfg.MaxCached) * 9 / 10
	r.entries.Range(func(k, v any) bool {
		if r.count.Load() <= target {
			return false
		}
		e := v.(*entry)
		e.mu.Lock()
		idle := e.flight == nil
		e.mu.Unlock()
		if idle && r.entries.CompareAndDelete(k, v) {
			r.count.Add(-1)
		}
		return true
	})
}

// remember builds the snapshot of what a flight read or wrote and keeps it
// for the hot path, unless a change notification arrived since the flight
// started reading (gen, epoch): the copy could then be older than the row.
func (r *Refresher) remember(e *entry, gen, epoch uint64, c authgate.Credential, access secret.Secret, p *catalog.Provider) *snapshot {
	s := newSnapshot(epoch, c, access, p)
	e.mu.Lock()
	if e.gen == gen && r.epoch.Load() == epoch && r.live.Load() {
		e.snap.Store(s)
	}
	e.mu.Unlock()
	return s
}

// invalidate drops id's copy and wakes whoever waits for its row to change.
func (r *Refresher) invalidate(id authgate.CredentialID) {
	v, ok := r.entries.Load(id)
	if !ok {
		return
	}
	e := v.(*entry)
	e.mu.Lock()
	e.gen++
	e.snap.Store(nil)
	if e.changed != nil {
		close(e.changed)
		e.changed = nil
	}
	e.mu.Unlock()
}

// invalidateAll drops every copy (the feed may have missed changes).
func (r *Refresher) invalidateAll() {
	r.epoch.Add(1)
	r.entries.Range(func(k, _ any) bool {
		r.invalidate(k.(authgate.CredentialID))
		return true
	})
}

// watch follows the store's change feed until ctx ends.
func (r *Refresher) watch(ctx context.Context) {
	if r.feed == nil {
		return
	}
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := r.feed.WatchCredentials(ctx, func(c storage.CredentialChange) {
			if c.All {
				r.invalidateAll()
				r.live.Store(true)
				return
			}
			r.invalidate(c.ID)
		})
		r.live.Store(false)
		r.invalidateAll()
		if ctx.Err() != nil {
			return
		}
		r.cfg.Logger.Warn("credential change feed stopped; serving from the database until it is back", slog.String("error", errString(err)))
		if sleep(ctx, backoff) != nil {
			return
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
