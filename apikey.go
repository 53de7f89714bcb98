package authgate

import "time"

// Role is what an API key may do in its tenant. The roles are ordered: an
// admin key may do all a service key may, and a service key all a user key
// may (for any user).
type Role string

const (
	// RoleAdmin is the tenant's operator: everything, including API keys
	// and webhooks. Keys made before roles existed are admin keys.
	RoleAdmin Role = "admin"
	// RoleService is a backend that runs workflows for many users: connect
	// sessions, tokens, runs, verify, diagnose, classify and import, for any
	// user of the tenant; no API keys, no webhooks.
	RoleService Role = "service"
	// RoleUser is bound to one end user (APIKey.UserID): what an agent's or
	// MCP client's configuration holds. It sees only that user's
	// credentials, tokens, runs and connect sessions, and a user_id it
	// sends must be its own.
	RoleUser Role = "user"
)

// Valid reports whether r is one of the three roles.
func (r Role) Valid() bool {
	return r == RoleAdmin || r == RoleService || r == RoleUser
}

// rank orders the roles; an unknown role ranks below every route.
func (r Role) rank() int {
	switch r {
	case RoleAdmin:
		return 3
	case RoleService:
		return 2
	case RoleUser:
		return 1
	}
	return 0
}

// Allows reports whether a key with role r may call something that needs
// required. An unknown role allows nothing.
func (r Role) Allows(required Role) bool {
	return r.rank() > 0 && r.rank() >= required.rank()
}

// APIKey is an API key as GET /v1/api-keys and `authgate tenants keys list`
// show it: never the key itself, which exists in plaintext only in the
// response that creates it (NewAPIKey).
type APIKey struct {
	ID   APIKeyID `json:"id"`
	Name string   `json:"name"`
	Role Role     `json:"role"`
	// UserID is the end user a user key is bound to ("" for the others).
	UserID    string     `json:"user_id,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
	RevokedAt *time.Time `json:"revoked_at"`
}

// NewAPIKey is a just-created key: Key is shown this once.
type NewAPIKey struct {
	APIKey
	Key string `json:"key"`
}

// NewAPIKeyRequest is POST /v1/api-keys's body. Role is required: nobody
// mints an admin key by leaving it out.
type NewAPIKeyRequest struct {
	Name string `json:"name"`
	Role Role   `json:"role"`
	// UserID binds a user key to its end user; required for RoleUser and
	// refused for the others.
	UserID string `json:"user_id,omitempty"`
}

// Caller is what GET /v1/me answers: who the presented API key is. `authgate
// mcp` asks it before it answers an MCP client, so that a wrong key or a
// stopped server is a one-line error at start, not a broken tool later.
type Caller struct {
	TenantID TenantID `json:"tenant_id"`
	KeyID    APIKeyID `json:"key_id"`
	Role     Role     `json:"role"`
	// UserID is the end user a user key acts for ("" for other keys).
	UserID string `json:"user_id,omitempty"`
}
