// Package tenancy owns tenants and their API keys. Keys are random 256-bit
// values shown once at creation ("ag_…") and stored only as their SHA-256:
// a fast hash is right here because the keys are high-entropy, not
// passwords, and lookup happens on every API call. This package must never
// store or log a key in plaintext.
package tenancy

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/internal/clock"
	"github.com/authgate/authgate/internal/returnurl"
	"github.com/authgate/authgate/internal/secret"
	"github.com/authgate/authgate/internal/storage"
)

// KeyPrefix starts every API key.
const KeyPrefix = "ag_"

// DefaultTenantName is the tenant created on first start.
const DefaultTenantName = "default"

var (
	keyEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)
	namePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)
)

// Service manages tenants and keys.
type Service struct {
	store storage.Store
	clock clock.Clock
	// keys caches successful key lookups for at most keyCacheTTL, so the
	// hot path makes no query per request while a revoked key still stops
	// working within a second on every server. (A plain map under a read
	// lock: a sync.Map would box the array key, one allocation per request.)
	mu   sync.RWMutex
	keys map[[sha256.Size]byte]cachedKey
}

// keyCacheTTL is how long a looked-up key is trusted without the database.
const keyCacheTTL = 900 * time.Millisecond

// maxCachedKeys bounds the key cache (it is cleared when full).
const maxCachedKeys = 10_000

type cachedKey struct {
	p  Principal
	at time.Time
}

// validKey reports whether key has the shape of an API key ("ag_" and 52
// base32 letters), without a regular expression on the hot path.
func validKey(key string) bool {
	if len(key) != len(KeyPrefix)+52 || !strings.HasPrefix(key, KeyPrefix) {
		return false
	}
	for _, c := range key[len(KeyPrefix):] {
		if (c < 'a' || c > 'z') && (c < '2' || c > '7') {
			return false
		}
	}
	return true
}

// New returns a tenancy service over store.
func New(store storage.Store, clk clock.Clock) *Service {
	if clk == nil {
		clk = clock.Real{}
	}
	return &Service{store: store, clock: clk, keys: map[[sha256.Size]byte]cachedKey{}}
}

// HashKey is the stored form of an API key.
func HashKey(key string) []byte {
	sum := sha256.Sum256([]byte(key))
	return sum[:]
}

func newKey() secret.Secret {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return secret.New(KeyPrefix + keyEncoding.EncodeToString(b))
}

// Principal is who an API call acts as: a tenant's key, its role and, for a
// user key, the one end user it may act for. It comes with the cached key,
// so checking a role costs nothing per request.
type Principal struct {
	TenantID authgate.TenantID
	KeyID    authgate.APIKeyID
	Role     authgate.Role
	// UserID is set only for a user key.
	UserID string
}

// Allows reports whether the principal's role reaches required.
func (p Principal) Allows(required authgate.Role) bool { return p.Role.Allows(required) }

// User resolves the end user a request names (a body's user_id or a
// ?user_id=) against the key: a user key acts only as its own user (an
// empty name means that user; another name is refused), other keys act as
// whichever user is named.
func (p Principal) User(named string) (string, error) {
	if p.Role != authgate.RoleUser {
		return named, nil
	}
	if named == "" || named == p.UserID {
		return p.UserID, nil
	}
	e := authgate.Errorf(authgate.ClassForbidden, "this API key acts only for its own user; user_id must be %q or left out", p.UserID)
	e.Errors = []authgate.FieldError{{Field: "user_id", Message: "must be the key's own user"}}
	return "", e
}

// Owns reports whether the principal may see a resource of end user
// owner: every key but a user key, and a user key for its own user.
func (p Principal) Owns(owner string) bool {
	return p.Role != authgate.RoleUser || owner == p.UserID
}

// Actor names the principal on lifecycle events.
func (p Principal) Actor() string { return "api:" + string(p.KeyID) }

// ErrUnauthenticated: no key, a malformed key or an unknown key.
var ErrUnauthenticated = errors.New("missing or unknown API key")

// Authenticate resolves an Authorization header value ("Bearer ag_…").
func (s *Service) Authenticate(ctx context.Context, authorization string) (Principal, error) {
	scheme, key, ok := strings.Cut(strings.TrimSpace(authorization), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return Principal{}, ErrUnauthenticated
	}
	key = strings.TrimSpace(key)
	if !validKey(key) {
		return Principal{}, ErrUnauthenticated
	}
	// Hash from a stack copy: a key is 55 bytes, and []byte(key) would
	// allocate.
	var buf [64]byte
	sum := sha256.Sum256(buf[:copy(buf[:], key)])
	now := s.clock.Now()
	s.mu.RLock()
	c, ok := s.keys[sum]
	s.mu.RUnlock()
	if ok {
		if d := now.Sub(c.at); d >= 0 && d < keyCacheTTL {
			return c.p, nil
		}
	}
	k, err := s.store.APIKeyGetByHash(ctx, sum[:])
	if errors.Is(err, storage.ErrNotFound) {
		s.mu.Lock()
		delete(s.keys, sum)
		s.mu.Unlock()
		return Principal{}, ErrUnauthenticated
	}
	if err != nil {
		return Principal{}, fmt.Errorf("authenticate: %w", err)
	}
	p := Principal{TenantID: k.TenantID, KeyID: k.ID, Role: k.Role, UserID: k.UserID}
	s.mu.Lock()
	if _, had := s.keys[sum]; !had && len(s.keys) >= maxCachedKeys {
		clear(s.keys)
	}
	s.keys[sum] = cachedKey{p: p, at: now}
	s.mu.Unlock()
	return p, nil
}

// CreateTenant creates a tenant with one API key and returns the key: it is
// the only time the plaintext exists.
func (s *Service) CreateTenant(ctx context.Context, name string) (authgate.Tenant, secret.Secret, error) {
	if !namePattern.MatchString(name) {
		return authgate.Tenant{}, secret.Secret{}, authgate.Errorf(authgate.ClassInvalidRequest, "tenant name must be 1-63 of a-z 0-9 _ - starting with a letter or digit")
	}
	var t authgate.Tenant
	var key secret.Secret
	err := s.store.Tx(ctx, func(q storage.Queries) error {
		var err error
		t, key, err = s.createTx(ctx, q, name, "admin")
		return err
	})
	if errors.Is(err, storage.ErrConflict) {
		return authgate.Tenant{}, secret.Secret{}, authgate.Errorf(authgate.ClassConflict, "a tenant named %s already exists", name).WithCause(err)
	}
	return t, key, err
}

func (s *Service) createTx(ctx context.Context, q storage.Queries, name, keyName string) (authgate.Tenant, secret.Secret, error) {
	now := s.clock.Now().UTC().Truncate(time.Microsecond)
	t := storage.Tenant{ID: authgate.NewTenantID(), Name: name, CreatedAt: now, ReturnURLAllowList: []string{}}
	if err := q.TenantInsert(ctx, t); err != nil {
		return authgate.Tenant{}, secret.Secret{}, err
	}
	key := newKey()
	if err := q.APIKeyInsert(ctx, storage.APIKey{ID: authgate.NewAPIKeyID(), TenantID: t.ID, Hash: HashKey(key.Reveal()), Name: keyName, Role: authgate.RoleAdmin, CreatedAt: now}); err != nil {
		return authgate.Tenant{}, secret.Secret{}, err
	}
	return public(t), key, nil
}

// Bootstrap creates the default tenant and its admin key when the database
// has no tenant at all. It returns the key only when it created it; two
// processes starting together create one tenant between them.
func (s *Service) Bootstrap(ctx context.Context) (authgate.Tenant, secret.Secret, bool, error) {
	var t authgate.Tenant
	var key secret.Secret
	created := false
	err := s.store.Tx(ctx, func(q storage.Queries) error {
		existing, err := q.TenantList(ctx)
		if err != nil || len(existing) > 0 {
			if err == nil {
				t = public(existing[0])
			}
			return err
		}
		t, key, err = s.createTx(ctx, q, DefaultTenantName, "admin")
		created = err == nil
		return err
	})
	return t, key, created, err
}

// List returns every tenant.
func (s *Service) List(ctx context.Context) ([]authgate.Tenant, error) {
	ts, err := s.store.TenantList(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]authgate.Tenant, len(ts))
	for i, t := range ts {
		out[i] = public(t)
	}
	return out, nil
}

// Resolve finds a tenant by id or name (operator tools).
func (s *Service) Resolve(ctx context.Context, idOrName string) (authgate.Tenant, error) {
	var t storage.Tenant
	var err error
	if authgate.TenantID(idOrName).Valid() {
		t, err = s.store.TenantGetByID(ctx, authgate.TenantID(idOrName))
	} else {
		t, err = s.store.TenantGetByName(ctx, idOrName)
	}
	if errors.Is(err, storage.ErrNotFound) {
		return authgate.Tenant{}, authgate.Errorf(authgate.ClassNotFound, "no tenant %q", idOrName)
	}
	if err != nil {
		return authgate.Tenant{}, err
	}
	return public(t), nil
}

// SetReturnURLs replaces the URL prefixes a tenant's connect sessions may
// return to. Each is an http(s) origin with an optional path (see returnurl).
func (s *Service) SetReturnURLs(ctx context.Context, idOrName string, prefixes []string) (authgate.Tenant, error) {
	t, err := s.Resolve(ctx, idOrName)
	if err != nil {
		return authgate.Tenant{}, err
	}
	if _, err := returnurl.ParseRules(prefixes); err != nil {
		return authgate.Tenant{}, authgate.Errorf(authgate.ClassInvalidRequest, "%s", err.Error())
	}
	if err := s.store.TenantSetReturnURLs(ctx, t.ID, prefixes); err != nil {
		return authgate.Tenant{}, err
	}
	return s.Resolve(ctx, string(t.ID))
}

// ReturnURLs returns a tenant's return-URL allow-list.
func (s *Service) ReturnURLs(ctx context.Context, id authgate.TenantID) ([]string, error) {
	t, err := s.store.TenantGetByID(ctx, id)
	if err != nil {
		return nil, err
	}
	return t.ReturnURLAllowList, nil
}

// public is a stored tenant as callers see it.
func public(t storage.Tenant) authgate.Tenant {
	return authgate.Tenant{ID: t.ID, Name: t.Name, CreatedAt: t.CreatedAt, ReturnURLAllowList: t.ReturnURLAllowList}
}
