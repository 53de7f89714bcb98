package authgate

import (
	"encoding/json"
	"time"
)

// EventType names a lifecycle event of a credential (SPEC §2.6).
type EventType string

const (
	EventTokenIssued       EventType = "token_issued"
	EventRefreshSucceeded  EventType = "refresh_succeeded"
	EventRefreshFailed     EventType = "refresh_failed"
	EventRevokedDetected   EventType = "revoked_detected"
	EventReauthRequiredSet EventType = "reauth_required_set"
	EventScopesChanged     EventType = "scopes_changed"
	EventIdentityMismatch  EventType = "identity_mismatch"
	EventReconnected       EventType = "reconnected"
	EventDisconnected      EventType = "disconnected"
)

// Event is one append-only lifecycle record of a credential. Details hold
// fingerprints and provider facts (status, request id, scopes), never secrets.
type Event struct {
	ID           int64           `json:"id"`
	CredentialID CredentialID    `json:"credential_id"`
	Type         EventType       `json:"type"`
	At           time.Time       `json:"at"`
	Actor        string          `json:"actor"`
	Details      json.RawMessage `json:"details"`
}
