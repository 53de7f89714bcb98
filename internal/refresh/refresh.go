// Package refresh hands callers an access token valid for at least N more
// seconds, or a precise reason why it cannot.
//
// One coordinator per credential lives in memory. A fresh token is served
// from it without a query, a decryption or a write. Anything else goes
// through the credential's single flight: whatever windows the callers ask
// for, a process runs at most one flight per credential at a time, and every
// waiter re-checks its own window against the flight's result. Across
// processes sharing the store, a flight refreshes only while holding the
// credential's lease: a row lease whose holder name is unique to the flight
// (never re-entrant), short, and renewed while the provider call runs, so a
// crashed holder is taken over within one lease period. Waiters in other
// processes are woken by the store's change feed (PostgreSQL LISTEN/NOTIFY,
// SQLite's data_version) rather than by polling; the same feed drops the
// in-memory copy of any credential another process changed.
//
// New tokens, a rotated refresh token above all, are committed before anyone
// sees them, and a write lands only if the refresh token it used is still the
// stored one. invalid_grant is a state change, never a retry, unless the
// stored token moved meanwhile (a race lost, not a revocation). 429 and 5xx
// answers are retried with full-jitter backoff honouring Retry-After. A call
// that may have reached a provider that rotates refresh tokens (a timeout, a
// dropped connection, a gateway 502/504) is never retried with the same
// refresh token: presenting it twice would revoke the whole token family.
// The credential is quarantined instead (its lease kept) for long enough that
// the first request can no longer land, and callers get a transient error.
// Before a refresh token leaves for such a provider, the flight records the
// send durably, and only while it still holds its lease; a takeover that
// finds the record waits out its deadline (indoubt.go). Leases and records
// are measured with the database's clock, and a provider's answer is kept
// until the database takes it (commit.go).
//
// It must never log or return a refresh token, and never let one impatient
// caller cancel a refresh others wait for.
package refresh

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/internal/catalog"
	"github.com/authgate/authgate/internal/clock"
	"github.com/authgate/authgate/internal/secret"
	"github.com/authgate/authgate/internal/storage"
	"github.com/authgate/authgate/internal/vault"
)

// Observer receives one observation per provider refresh call (metrics).
type Observer interface {
	Refresh(provider, outcome string, d time.Duration)
}

// Providers resolves a credential's provider (the catalog).
type Providers interface {
	Get(name string) (*catalog.Provider, bool)
}

// Config configures a Refresher. Zero durations take the defaults.
type Config struct {
	Store     storage.Store
	Vault     *vault.Vault
	Providers Providers
	Clock     clock.Clock
	Logger    *slog.Logger
	// Transport carries provider calls (default http.DefaultTransport).
	Transport http.RoundTripper
	Observer  Observer
	// Holder names this process in leases (default host-pid-random); each
	// flight appends a nonce of its own.
	Holder string
	// LeaseTTL is how long a lease lasts without renewal (default 3s): the
	// longest a crashed holder can stall other processes. It is renewed
	// every LeaseTTL/4 while a provider call runs.
	LeaseTTL time.Duration
	// CallTimeout bounds one provider token call (default 30s); a provider
	// entry's token_timeout_seconds overrides it.
	CallTimeout time.Duration
	// Quarantine is how long a credential whose refresh may have landed
	// unseen at a rotating provider is left alone (default CallTimeout).
	Quarantine time.Duration
	// SendMargin is added to an in-doubt record's deadline for a provider
	// still processing a request its client gave up on (default 5s).
	SendMargin time.Duration
	// MaxAttempts bounds provider calls per refresh (default 4).
	MaxAttempts int
	// BaseBackoff and MaxBackoff shape full-jitter backoff (250ms, 5s);
	// a Retry-After beyond MaxRetryAfter (30s) ends the refresh with it.
	BaseBackoff, MaxBackoff, MaxRetryAfter time.Duration
	// Sleep waits between attempts and for promises before a refresh
	// (promise.go) (default: a timer). Tests replace it to observe waits.
	Sleep func(ctx context.Context, d time.Duration) error
	// SkewWarn is the clock offset that logs a warning (default 30s).
	SkewWarn time.Duration
	// MaxCached bounds the in-memory coordinators (default 200,000).
	MaxCached int
	// TouchFlushEvery is how often recorded uses are written (default 10s);
	// each credential's last_used_at is written at most once a minute.
	TouchFlushEvery time.Duration
}

// Refresher is safe for concurrent use. Start its background work with Run
// (the change feed and the last-used flusher) and stop it with Close.
type Refresher struct {
	cfg      Config
	feed     storage.ChangeFeed // nil: the store has none, nothing is cached
	live     atomic.Bool        // the feed is running: cached copies are trustworthy
	epoch    atomic.Uint64      // bumped when every cached copy must go
	count    atomic.Int64       // coordinators in entries
	closed   atomic.Bool
	evicting atomic.Bool

	entries sync.Map // authgate.CredentialID → *entry
	flights sync.WaitGroup
	offset  atomic.Int64   // the database's clock minus ours, in ns (indoubt.go)
	commits pendingCommits // refresh answers received and not yet stored (commit.go)
	touches touchBuffer

	closeMu sync.RWMutex // orders flight starts against Close
	runMu   sync.Mutex
	cancel  context.CancelFunc
	done    chan struct{}
}

// New returns a refresher.
func New(cfg Config) *Refresher {
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Transport == nil {
		cfg.Transport = http.DefaultTransport
	}
	if cfg.Holder == "" {
		host, _ := os.Hostname()
		cfg.Holder = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), nonce())
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.LeaseTTL, 3*time.Second)
	def(&cfg.CallTimeout, 30*time.Second)
	def(&cfg.Quarantine, cfg.CallTimeout)
	def(&cfg.SendMargin, 5*time.Second)
	def(&cfg.BaseBackoff, 250*time.Millisecond)
	def(&cfg.MaxBackoff, 5*time.Second)
	def(&cfg.MaxRetryAfter, 30*time.Second)
	def(&cfg.SkewWarn, 30*time.Second)
	def(&cfg.TouchFlushEvery, 10*time.Second)
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 4
	}
	if cfg.MaxCached <= 0 {
		cfg.MaxCached = 200_000
	}
	if cfg.Sleep == nil {
		cfg.Sleep = sleep
	}
	r := &Refresher{cfg: cfg}
	r.feed, _ = cfg.Store.(storage.ChangeFeed)
	return r
}

func nonce() string {
	b := make([]byte, 6)
	_, _ = crand.Read(b)
	return hex.EncodeToString(b)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Request asks for a token.
type Request struct {
	TenantID authgate.TenantID
	// UserID, when set, is the only end user whose credential may be
	// served (a user API key): another user's is not found.
	UserID string
	ID     authgate.CredentialID
	// MinValid is how long the token must stay valid (default 5 minutes).
	MinValid time.Duration
	// Actions the caller is about to perform; missing scopes are refused.
	Actions []string
	// RejectedFingerprint reports that the provider refused the access token
	// with this fingerprint (an HTTP 401 at its API). The credential is
	// refreshed only if that token is still the stored one; otherwise the
	// newer token is returned. Many workers reporting one rejection make one
	// refresh.
	RejectedFingerprint string
	// Proactive marks the planner's refresh ahead of need: its window is
	// capped at half the token's lifetime only once a refresh has shown
	// that lifetime (see snapshot.need).
	Proactive bool
}

// Token is an access token ready to use. Tokens returned by Token may be
// shared between callers: treat them as read-only.
type Token struct {
	CredentialID authgate.CredentialID
	Provider     string
	AccessToken  secret.Secret
	TokenType    string
	ExpiresAt    *time.Time
	Scopes       []string
	// Refreshed says whether a provider refresh produced this token for the
	// flight the caller waited on (for logs, metrics and tests).
	Refreshed bool
	// MinValidMet is false when the caller's window is longer than the
	// provider makes its tokens last: the freshest token is served anyway
	// (see Refresher.Token).
	MinValidMet bool
}

// DefaultMinValid is the safety window when the caller names none.
const DefaultMinValid = 5 * time.Minute

// Token returns an access token valid for at least req.MinValid.
//
// A window the provider cannot meet (longer than half the token lifetime
// the provider was last seen to issue) does not make every request refresh:
// a token in the first half of its life is never refreshed for a window, and
// the freshest token is served with MinValidMet false. So 5-minute tokens
// stay usable with the default 5-minute window (they are refreshed once
// half-way through their life), and Google with a 3600 s window refreshes at
// most every half hour.
func (r *Refresher) Token(ctx context.Context, req Request) (*Token, error) {
	if req.MinValid <= 0 {
		req.MinValid = DefaultMinValid
	}
	if req.RejectedFingerprint == "" && r.live.Load() {
		if v, ok := r.entries.Load(req.ID); ok {
			e := v.(*entry)
			if s := e.snap.Load(); s != nil && s.epoch == r.epoch.Load() && s.tenant == req.TenantID {
				if req.UserID != "" && s.cred.UserID != req.UserID {
					return nil, notOwned(req.ID)
				}
				if t, err, done := r.serve(e, s, req, false, false); done {
					return t, err
				}
			}
		}
	}
	if req.UserID != "" {
		// Off the hot path: read the owner before any flight can start.
		c, err := r.cfg.Vault.Get(ctx, req.TenantID, req.ID)
		if err != nil {
			return nil, err
		}
		if c.UserID != req.UserID {
			return nil, notOwned(req.ID)
		}
	}
	return r.slow(ctx, req)
}

// serve answers from a snapshot if it can. done is false when the snapshot
// cannot decide and a flight must: the token is too old for the window, or
// (on the hot path, where the copy could lag the database by a moment) the
// credential is not active. afterFlight says s is what a flight just read or
// wrote, and refreshed that this flight made a provider refresh: a token that
// fresh is served even when it cannot meet the caller's window.
func (r *Refresher) serve(e *entry, s *snapshot, req Request, afterFlight, refreshed bool) (t *Token, err error, done bool) {
	if s.cred.Status != authgate.CredentialStatusActive {
		return nil, checkUsable(&s.cred), afterFlight
	}
	if len(req.Actions) > 0 {
		if err := missingScopes(s, req.Actions); err != nil {
			return nil, err, true
		}
	}
	if req.RejectedFingerprint != "" && req.RejectedFingerprint == s.cred.AccessTokenFingerprint {
		return nil, nil, false
	}
	now := r.now()
	if s.token.ExpiresAt == nil {
		if unknownExpiryNeedsRefresh(s) && !refreshed {
			return nil, nil, false
		}
		r.touch(e, req.ID, now)
		return s.token, nil, true
	}
	left := s.token.ExpiresAt.Sub(now)
	if left >= s.need(req.MinValid, req.Proactive) || (refreshed && left > 0) {
		if keepsPromises(s) && (left < req.MinValid || refreshed || !covered(e, s, now, req.MinValid)) {
			return nil, nil, false // the promise is recorded first (promise.go)
		}
		r.touch(e, req.ID, now)
		if left >= req.MinValid && !refreshed {
			return s.token, nil, true
		}
		c := *s.token
		c.MinValidMet, c.Refreshed = left >= req.MinValid, refreshed
		return &c, nil, true
	}
	return nil, nil, false
}

func missingScopes(s *snapshot, actions []string) error {
	missing, err := s.provider.Missing(actions, s.cred.GrantedScopes)
	if err != nil {
		return authgate.Errorf(authgate.ClassInvalidRequest, "%s", err.Error())
	}
	if len(missing) > 0 {
		e := authgate.Errorf(authgate.ClassInsufficientScope, "%s did not grant %s, which the requested actions need. Reconnect with those permissions.", s.provider.DisplayName, strings.Join(missing, ", "))
		e.CredentialID, e.MissingScopes = s.cred.ID, missing
		return e
	}
	return nil
}

func checkUsable(c *authgate.Credential) error {
	switch c.Status {
	case authgate.CredentialStatusActive:
		return nil
	case authgate.CredentialStatusRevoked:
		e := authgate.Errorf(authgate.ClassReauthRequired, "this %s connection was disconnected; connect it again to continue", c.Provider)
		e.CredentialID = c.ID
		return e
	}
	e := authgate.Errorf(authgate.ClassReauthRequired, "the %s connection needs the user to reconnect (%s)", c.Provider, c.StatusReason)
	e.CredentialID = c.ID
	return e
}

func (r *Refresher) provider(name string) (*catalog.Provider, error) {
	if r.cfg.Providers == nil {
		return nil, authgate.Errorf(authgate.ClassClientMisconfigured, "no providers are configured")
	}
	p, ok := r.cfg.Providers.Get(name)
	if !ok {
		return nil, authgate.Errorf(authgate.ClassClientMisconfigured, "provider %q is not configured on this server", name)
	}
	return p, nil
}

// callTimeout is the provider's own token timeout or the default.
func (r *Refresher) callTimeout(p *catalog.Provider) time.Duration {
	if p.TokenTimeoutSeconds > 0 {
		return time.Duration(p.TokenTimeoutSeconds) * time.Second
	}
	return r.cfg.CallTimeout
}

// unknownExpiryNeedsRefresh decides for a token with no known expiry. Where
// tokens expire, one refresh is made to learn the lifetime; a provider that
// still answers without expires_in issues tokens authgate cannot age, so
// they are served until a caller reports one rejected (rejected_fingerprint)
// rather than refreshed on every request.
func unknownExpiryNeedsRefresh(s *snapshot) bool {
	return s.provider.Expires() && s.cred.LastRefreshedAt == nil
}

// notOwned answers a user key asking for another user's credential exactly
// as the vault answers for another tenant's: not found.
func notOwned(id authgate.CredentialID) error {
	return authgate.Errorf(authgate.ClassNotFound, "no credential %s", id)
}
