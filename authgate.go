// Package authgate is the vocabulary of authgate — credentials, lifecycle
// events, states, error classes, typed ids — and the Go client for its HTTP API.
//
// authgate keeps OAuth working for long-running agent and automation workflows:
// an encrypted credential vault, an OAuth broker, a concurrency-safe refresher,
// run gates and a provider sandbox. This package is what callers import; it
// depends only on the standard library (and x/oauth2 once the broker exposes
// token sources). It must never import storage, CLI or metrics libraries: a
// structure test keeps it so.
package authgate

import (
	"crypto/rand"
	"encoding/base32"
	"regexp"
	"time"
)

// CredentialID identifies one stored credential. Runs reference credentials
// by this id only, never by "the latest token for the user".
type CredentialID string

// TenantID identifies a tenant: the unit of isolation for every API call.
type TenantID string

// APIKeyID identifies one API key of a tenant (not the key itself).
type APIKeyID string

const (
	credentialIDPrefix = "cred_"
	tenantIDPrefix     = "ten_"
	apiKeyIDPrefix     = "key_"
)

// idEncoding is lowercase base32 without padding: ids stay URL-, shell- and
// filename-safe and are case-insensitive to read aloud.
var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// randomToken returns prefix followed by the base32 form of n random bytes.
func randomToken(prefix string, n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms.
	return prefix + idEncoding.EncodeToString(b)
}

// NewCredentialID returns a fresh random credential id ("cred_" + 26 chars).
func NewCredentialID() CredentialID { return CredentialID(randomToken(credentialIDPrefix, 16)) }

// NewTenantID returns a fresh random tenant id ("ten_" + 26 chars).
func NewTenantID() TenantID { return TenantID(randomToken(tenantIDPrefix, 16)) }

// NewAPIKeyID returns a fresh random API key id ("key_" + 26 chars).
func NewAPIKeyID() APIKeyID { return APIKeyID(randomToken(apiKeyIDPrefix, 16)) }

var (
	credentialIDPattern = regexp.MustCompile(`^cred_[a-z2-7]{26}$`)
	tenantIDPattern     = regexp.MustCompile(`^ten_[a-z2-7]{26}$`)
)

// Valid reports whether id has the shape of a credential id. It says nothing
// about whether such a credential exists.
func (id CredentialID) Valid() bool { return credentialIDPattern.MatchString(string(id)) }

// Valid reports whether id has the shape of a tenant id.
func (id TenantID) Valid() bool { return tenantIDPattern.MatchString(string(id)) }

// Tenant is a unit of isolation: one tenant never sees another's data.
type Tenant struct {
	ID        TenantID  `json:"id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
	// ReturnURLAllowList holds URL prefixes connect sessions may return to.
	ReturnURLAllowList []string `json:"return_url_allowlist,omitempty"`
}
