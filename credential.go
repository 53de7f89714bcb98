package authgate

import "time"

// CredentialStatus is where a credential is in its life (SPEC §3).
type CredentialStatus string

const (
	// CredentialStatusActive: usable; the refresher may renew its access token.
	CredentialStatusActive CredentialStatus = "active"
	// CredentialStatusReauthRequired: only the user can fix it, by reconnecting.
	// StatusReason says why.
	CredentialStatusReauthRequired CredentialStatus = "reauth_required"
	// CredentialStatusRevoked: disconnected on purpose; its tokens are erased.
	CredentialStatusRevoked CredentialStatus = "revoked"
)

// Valid reports whether s is one of the defined statuses.
func (s CredentialStatus) Valid() bool {
	switch s {
	case CredentialStatusActive, CredentialStatusReauthRequired, CredentialStatusRevoked:
		return true
	}
	return false
}

// StatusReason says why a credential needs the user to reconnect.
type StatusReason string

const (
	StatusReasonNone             StatusReason = ""
	StatusReasonInvalidGrant     StatusReason = "invalid_grant"
	StatusReasonRevoked          StatusReason = "revoked"
	StatusReasonNoRefreshToken   StatusReason = "no_refresh_token"
	StatusReasonScopeRemoved     StatusReason = "scope_removed"
	StatusReasonAdminPolicy      StatusReason = "admin_policy"
	StatusReasonIdentityMismatch StatusReason = "identity_mismatch"
	// StatusReasonDisconnected goes with CredentialStatusRevoked: the
	// credential was disconnected through authgate.
	StatusReasonDisconnected StatusReason = "disconnected"
)

// AccountType records whether the provider account is a personal (consumer)
// account or belongs to an organisation's workspace (e.g. Google Workspace),
// because admin policies only ever hit the latter.
type AccountType string

const (
	AccountTypeUnknown   AccountType = ""
	AccountTypeConsumer  AccountType = "consumer"
	AccountTypeWorkspace AccountType = "workspace"
)

// Valid reports whether t is a defined account type (unknown included).
func (t AccountType) Valid() bool {
	switch t {
	case AccountTypeUnknown, AccountTypeConsumer, AccountTypeWorkspace:
		return true
	}
	return false
}

// Account is the provider-side identity a credential is bound to.
type Account struct {
	// Subject is the provider's stable account id (Google `sub`, Notion bot or
	// owner user id, Slack user id). Credentials are keyed on it, never on email.
	Subject string      `json:"subject"`
	Email   string      `json:"email,omitempty"`
	Type    AccountType `json:"type,omitempty"`
	// Domain is the Workspace domain (Google `hd`) or team domain, if any.
	Domain string `json:"domain,omitempty"`
}

// Credential is the metadata of one stored OAuth credential, as the API and
// CLI show it. It never carries a token, only token fingerprints: the first 10
// hex digits of the token's SHA-256.
//
// A credential is unique per (tenant, user, provider, workspace, account subject).
type Credential struct {
	ID          CredentialID `json:"id"`
	TenantID    TenantID     `json:"tenant_id"`
	UserID      string       `json:"user_id"`
	Provider    string       `json:"provider"`
	WorkspaceID string       `json:"workspace_id"`
	Account     Account      `json:"account"`

	GrantedScopes   []string `json:"granted_scopes"`
	RequestedScopes []string `json:"requested_scopes"`

	TokenType               string     `json:"token_type,omitempty"`
	AccessTokenFingerprint  string     `json:"access_token_fingerprint,omitempty"`
	AccessTokenExpiresAt    *time.Time `json:"access_token_expires_at,omitempty"`
	HasRefreshToken         bool       `json:"has_refresh_token"`
	RefreshTokenFingerprint string     `json:"refresh_token_fingerprint,omitempty"`

	Status       CredentialStatus `json:"status"`
	StatusReason StatusReason     `json:"status_reason,omitempty"`
	// Version increases by one with every change; updates are compare-and-swap on it.
	Version int64 `json:"version"`

	// ClockSkewSeconds is the provider's clock minus ours, as last measured
	// from its Date header (absent until measured).
	ClockSkewSeconds *float64   `json:"clock_skew_seconds,omitempty"`
	ClockSkewAt      *time.Time `json:"clock_skew_measured_at,omitempty"`

	CreatedAt       time.Time  `json:"created_at"`
	UpdatedAt       time.Time  `json:"updated_at"`
	LastUsedAt      *time.Time `json:"last_used_at,omitempty"`
	LastRefreshedAt *time.Time `json:"last_refreshed_at,omitempty"`

	// Connector is the connector's own state (authorized, reauth_required,
	// revoked; verified or not), kept apart from anything about the app's
	// own session: a user signed into the app may still have a connector
	// that cannot act (SPEC failure 4).
	Connector ConnectorState `json:"connector"`
}
