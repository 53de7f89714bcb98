package tenancy

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"time"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/internal/secret"
	"github.com/authgate/authgate/internal/storage"
)

var keyNamePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9 ._-]{0,62}$`)

// maxUserIDLen bounds a user key's end user, as it bounds user ids
// elsewhere in the API.
const maxUserIDLen = 255

// KeyParams describes a key to create.
type KeyParams struct {
	Name string
	Role authgate.Role
	// UserID is required for a user key and refused for the others.
	UserID string
}

// CreateKey adds an API key to a tenant (a replacement for a lost one, one
// per worker, one per end user's agent) and returns it: the only time its
// plaintext exists.
func (s *Service) CreateKey(ctx context.Context, tenant authgate.TenantID, kp KeyParams) (authgate.APIKey, secret.Secret, error) {
	name := kp.Name
	if name == "" {
		name = "key"
	}
	if !keyNamePattern.MatchString(name) {
		return authgate.APIKey{}, secret.Secret{}, fieldError("name", "key name must be 1-63 of A-Z a-z 0-9 space . _ - starting with a letter or digit")
	}
	if !kp.Role.Valid() {
		return authgate.APIKey{}, secret.Secret{}, fieldError("role", "role must be admin, service or user")
	}
	switch {
	case kp.Role == authgate.RoleUser && strings.TrimSpace(kp.UserID) == "":
		return authgate.APIKey{}, secret.Secret{}, fieldError("user_id", "a user key needs the user_id of the end user it acts for")
	case kp.Role == authgate.RoleUser && (len(kp.UserID) > maxUserIDLen || strings.TrimSpace(kp.UserID) != kp.UserID):
		return authgate.APIKey{}, secret.Secret{}, fieldError("user_id", "user_id must be at most 255 bytes without surrounding spaces")
	case kp.Role != authgate.RoleUser && kp.UserID != "":
		return authgate.APIKey{}, secret.Secret{}, fieldError("user_id", "only a user key is bound to a user_id; leave it out for admin and service keys")
	}
	if _, err := s.store.TenantGetByID(ctx, tenant); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return authgate.APIKey{}, secret.Secret{}, authgate.Errorf(authgate.ClassNotFound, "no tenant %s", tenant)
		}
		return authgate.APIKey{}, secret.Secret{}, err
	}
	key := newKey()
	k := storage.APIKey{ID: authgate.NewAPIKeyID(), TenantID: tenant, Hash: HashKey(key.Reveal()), Name: name, Role: kp.Role, UserID: kp.UserID, CreatedAt: s.clock.Now().UTC().Truncate(time.Microsecond)}
	if err := s.store.APIKeyInsert(ctx, k); err != nil {
		return authgate.APIKey{}, secret.Secret{}, err
	}
	return publicKey(k), key, nil
}

// ListKeys lists a tenant's keys, revoked ones included, oldest first.
func (s *Service) ListKeys(ctx context.Context, tenant authgate.TenantID) ([]authgate.APIKey, error) {
	ks, err := s.store.APIKeyList(ctx, tenant)
	if err != nil {
		return nil, err
	}
	out := make([]authgate.APIKey, 0, len(ks))
	for _, k := range ks {
		out = append(out, publicKey(k))
	}
	return out, nil
}

// RevokeKey revokes one of a tenant's live keys. Running servers stop
// accepting it within a second (their key cache lives at most that long).
func (s *Service) RevokeKey(ctx context.Context, tenant authgate.TenantID, id authgate.APIKeyID) error {
	keys, err := s.store.APIKeyList(ctx, tenant)
	if err != nil {
		return err
	}
	liveAdmins, lastAdmin := 0, false
	for _, k := range keys {
		if k.RevokedAt.IsZero() && k.Role == authgate.RoleAdmin {
			liveAdmins++
			lastAdmin = lastAdmin || k.ID == id
		}
	}
	if lastAdmin && liveAdmins == 1 {
		// Through the API this would leave nobody able to manage keys until
		// an operator steps in: make the replacement first.
		return authgate.Errorf(authgate.ClassConflict, "%s is this tenant's last live admin key; create another admin key (POST /v1/api-keys or authgate tenants keys create) before revoking it", id)
	}
	err = s.store.APIKeyRevoke(ctx, storage.APIKeyRevokeParams{TenantID: tenant, ID: id, At: s.clock.Now().UTC().Truncate(time.Microsecond)})
	if errors.Is(err, storage.ErrNotFound) {
		return authgate.Errorf(authgate.ClassNotFound, "no live API key %s in this tenant", id)
	}
	if err == nil {
		// This process stops accepting it at once; others within a second.
		s.mu.Lock()
		clear(s.keys)
		s.mu.Unlock()
	}
	return err
}

func publicKey(k storage.APIKey) authgate.APIKey {
	out := authgate.APIKey{ID: k.ID, Name: k.Name, Role: k.Role, UserID: k.UserID, CreatedAt: k.CreatedAt}
	if !k.RevokedAt.IsZero() {
		t := k.RevokedAt
		out.RevokedAt = &t
	}
	return out
}

func fieldError(field, msg string) error {
	e := authgate.Errorf(authgate.ClassInvalidRequest, "%s", msg)
	e.Errors = []authgate.FieldError{{Field: field, Message: msg}}
	return e
}
