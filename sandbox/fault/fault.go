// Package fault holds the sandbox's injected faults: what to break, for which
// provider and account, and for how many requests. Stateful faults (revoke,
// expire_access_tokens, drop_scope, unshare) change provider state once, when
// injected; standing faults (admin_policy, clock_offset) hold until cleared;
// request faults (invalid_grant_next, rate_limit, server_error, latency) are
// consumed by matching requests. Each provider renders the consequence in its
// own wire format; this package only decides.
package fault

import (
	"fmt"
	"slices"
	"sync"
	"time"
)

// Name is a fault's name, as the admin API spells it.
type Name string

const (
	Revoke             Name = "revoke"
	ExpireAccessTokens Name = "expire_access_tokens"
	DropScope          Name = "drop_scope"
	AdminPolicy        Name = "admin_policy"
	Unshare            Name = "unshare"
	InvalidGrantNext   Name = "invalid_grant_next"
	RateLimit          Name = "rate_limit"
	ServerError        Name = "server_error"
	Latency            Name = "latency"
	ClockOffset        Name = "clock_offset"
)

// Names lists every fault.
var Names = []Name{Revoke, ExpireAccessTokens, DropScope, AdminPolicy, Unshare, InvalidGrantNext, RateLimit, ServerError, Latency, ClockOffset}

// Target says which requests a request fault hits.
const (
	TargetAll   = ""      // token endpoint and API alike
	TargetToken = "token" // the token endpoint only
	TargetAPI   = "api"   // the provider's API only
)

// Spec is one fault as injected through the admin API or the Go API.
type Spec struct {
	Provider string `json:"provider"`
	Fault    Name   `json:"fault"`
	// Account is the account's email (Slack/Notion: the user's); "" hits every account.
	Account string `json:"account,omitempty"`
	// Scope is the scope to drop (drop_scope; Notion: a capability).
	Scope string `json:"scope,omitempty"`
	// Domain is the Workspace domain an admin policy blocks (admin_policy;
	// "" takes the account's domain).
	Domain string `json:"domain,omitempty"`
	// Resource is the page, database, file or channel id to un-share (unshare).
	Resource string `json:"resource,omitempty"`
	// Count is how many matching requests the fault hits (request faults;
	// default 1, latency: 0 means until cleared).
	Count int `json:"count,omitempty"`
	// RetryAfterSeconds is the Retry-After of rate_limit answers (default 1).
	RetryAfterSeconds int `json:"retry_after_seconds,omitempty"`
	// Status overrides the HTTP status: server_error 500-599 (default 503);
	// rate_limit on Google APIs 403 or 429 (default 429).
	Status int `json:"status,omitempty"`
	// LatencyMS is the delay added to each hit request (latency).
	LatencyMS int `json:"latency_ms,omitempty"`
	// OffsetSeconds shifts the provider's clock: its Date header and token
	// iat/exp claims (clock_offset).
	OffsetSeconds int `json:"offset_seconds,omitempty"`
	// Target limits request faults to "token" or "api" requests.
	Target string `json:"target,omitempty"`
}

// Validate checks the spec's shape (the provider checks the provider name).
func (s *Spec) Validate() error {
	if !slices.Contains(Names, s.Fault) {
		return fmt.Errorf("unknown fault %q (one of %v)", s.Fault, Names)
	}
	if s.Target != TargetAll && s.Target != TargetToken && s.Target != TargetAPI {
		return fmt.Errorf("target must be token, api or empty")
	}
	if s.Count < 0 || s.RetryAfterSeconds < 0 || s.LatencyMS < 0 {
		return fmt.Errorf("count, retry_after_seconds and latency_ms cannot be negative")
	}
	switch s.Fault {
	case DropScope:
		if s.Scope == "" {
			return fmt.Errorf("drop_scope needs scope")
		}
	case Unshare:
		if s.Resource == "" {
			return fmt.Errorf("unshare needs resource (a page, database, file or channel id)")
		}
	case ServerError:
		if s.Status != 0 && (s.Status < 500 || s.Status > 599) {
			return fmt.Errorf("server_error status must be 500-599")
		}
	case RateLimit:
		if s.Status != 0 && s.Status != 403 && s.Status != 429 {
			return fmt.Errorf("rate_limit status must be 403 or 429")
		}
	case Latency:
		if s.LatencyMS == 0 {
			return fmt.Errorf("latency needs latency_ms")
		}
		if s.LatencyMS > 120000 {
			return fmt.Errorf("latency_ms is at most 120000")
		}
	case ClockOffset:
		if s.OffsetSeconds == 0 {
			return fmt.Errorf("clock_offset needs offset_seconds")
		}
	}
	return nil
}

// Decision is what the request faults say about one request.
type Decision struct {
	Latency     time.Duration
	RateLimited bool
	RetryAfter  int // seconds
	RateStatus  int // 429 or 403 (Google APIs may use either)
	ServerError int // an HTTP status, or 0
}

type entry struct {
	spec      Spec
	remaining int // -1: until cleared
}

// Registry holds active faults. Safe for concurrent use.
type Registry struct {
	mu      sync.Mutex
	entries []*entry
}

// Add records a fault that has a lasting or counted effect. Stateful faults
// are applied by the provider and not kept here.
func (r *Registry) Add(s Spec) {
	n := s.Count
	switch s.Fault {
	case Revoke, ExpireAccessTokens, DropScope, Unshare:
		return
	case AdminPolicy, ClockOffset:
		n = -1
	case Latency:
		if n == 0 {
			n = -1
		}
	default:
		if n == 0 {
			n = 1
		}
	}
	r.mu.Lock()
	r.entries = append(r.entries, &entry{spec: s, remaining: n})
	r.mu.Unlock()
}

// Clear removes the faults of provider ("" for all).
func (r *Registry) Clear(provider string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.entries = slices.DeleteFunc(r.entries, func(e *entry) bool { return provider == "" || e.spec.Provider == provider })
}

// List returns the active faults with their remaining counts (-1: until cleared).
func (r *Registry) List() []Active {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Active, 0, len(r.entries))
	for _, e := range r.entries {
		out = append(out, Active{Spec: e.spec, Remaining: e.remaining})
	}
	return out
}

// Active is a fault still in force.
type Active struct {
	Spec
	Remaining int `json:"remaining"`
}

func matches(e *entry, provider, account string) bool {
	return e.spec.Provider == provider && (e.spec.Account == "" || e.spec.Account == account)
}

func (r *Registry) take(provider, account, target string, name Name) (Spec, bool) {
	for _, e := range r.entries {
		if e.spec.Fault != name || !matches(e, provider, account) || e.remaining == 0 {
			continue
		}
		if e.spec.Target != TargetAll && e.spec.Target != target {
			continue
		}
		if e.remaining > 0 {
			e.remaining--
		}
		return e.spec, true
	}
	return Spec{}, false
}

func (r *Registry) gc() {
	r.entries = slices.DeleteFunc(r.entries, func(e *entry) bool { return e.remaining == 0 })
}

// Decide consumes the request faults that hit one request to provider on
// behalf of account ("" if unknown) at target (TargetToken or TargetAPI).
// Latency adds to whatever else happens; a rate limit wins over a server error.
func (r *Registry) Decide(provider, account, target string) Decision {
	r.mu.Lock()
	defer r.mu.Unlock()
	var d Decision
	if s, ok := r.take(provider, account, target, Latency); ok {
		d.Latency = time.Duration(s.LatencyMS) * time.Millisecond
	}
	if s, ok := r.take(provider, account, target, RateLimit); ok {
		d.RateLimited = true
		d.RetryAfter = max(s.RetryAfterSeconds, 1)
		d.RateStatus = s.Status
		if d.RateStatus == 0 {
			d.RateStatus = 429
		}
	} else if s, ok := r.take(provider, account, target, ServerError); ok {
		d.ServerError = s.Status
		if d.ServerError == 0 {
			d.ServerError = 503
		}
	}
	r.gc()
	return d
}

// TakeInvalidGrant consumes one invalid_grant_next fault for a refresh.
func (r *Registry) TakeInvalidGrant(provider, account string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.take(provider, account, TargetToken, InvalidGrantNext)
	r.gc()
	return ok
}

// AdminBlocked reports whether an admin policy blocks account (whose
// Workspace domain is domain) at provider.
func (r *Registry) AdminBlocked(provider, account, domain string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.entries {
		if e.spec.Fault != AdminPolicy || e.spec.Provider != provider {
			continue
		}
		if e.spec.Domain != "" && e.spec.Domain == domain && domain != "" {
			return true
		}
		if e.spec.Domain == "" && (e.spec.Account == "" || e.spec.Account == account) {
			return true
		}
	}
	return false
}

// ClockOffset is the provider's injected clock offset.
func (r *Registry) ClockOffset(provider string) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	var d time.Duration
	for _, e := range r.entries {
		if e.spec.Fault == ClockOffset && e.spec.Provider == provider {
			d += time.Duration(e.spec.OffsetSeconds) * time.Second
		}
	}
	return d
}
