package authgate

import "time"

// APIKey is an API key as GET /v1/api-keys and `authgate tenants keys list`
// show it: never the key itself, which exists in plaintext only in the
// response that creates it (NewAPIKey).
type APIKey struct {
	ID        APIKeyID   `json:"id"`
	Name      string     `json:"name"`
	CreatedAt time.Time  `json:"created_at"`
	RevokedAt *time.Time `json:"revoked_at"`
}

// NewAPIKey is a just-created key: Key is shown this once.
type NewAPIKey struct {
	APIKey
	Key string `json:"key"`
}

// NewAPIKeyRequest is POST /v1/api-keys's body.
type NewAPIKeyRequest struct {
	Name string `json:"name"`
}
