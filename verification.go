package authgate

import "time"

// ConnectorStatus is the connector's own authorization state, as every
// credential view shows it: whether authgate can act at the provider for the
// user. It says nothing about the app's own sign-in session (SPEC failure 4):
// "signed into the app" and "connector authorized" are different facts.
type ConnectorStatus string

const (
	// ConnectorAuthorized: the provider granted access and authgate holds a
	// usable grant (verification says whether it was proven to work).
	ConnectorAuthorized ConnectorStatus = "authorized"
	// ConnectorReauthRequired: only the user can fix it, by reconnecting.
	ConnectorReauthRequired ConnectorStatus = "reauth_required"
	// ConnectorRevoked: disconnected on purpose.
	ConnectorRevoked ConnectorStatus = "revoked"
)

// VerificationState says whether a connector was proven to work by live calls.
type VerificationState string

const (
	VerificationUnverified VerificationState = "unverified"
	VerificationVerified   VerificationState = "verified"
	// VerificationFailed: the last live verification found a problem.
	VerificationFailed VerificationState = "failed"
)

// ConnectorState is the connector half of a credential view. Its State comes
// from the credential's status; Verification from the last live check
// (POST /v1/credentials/{id}/verify).
type ConnectorState struct {
	State          ConnectorStatus   `json:"state"`
	Reason         StatusReason      `json:"reason,omitempty"`
	Verification   VerificationState `json:"verification"`
	LastVerifiedAt *time.Time        `json:"last_verified_at,omitempty"`
	LastVerdict    Verdict           `json:"last_verdict,omitempty"`
}

// ConnectorStateOf derives the connector state from a credential's status and
// its last verification (nil when never verified).
func ConnectorStateOf(status CredentialStatus, reason StatusReason, lastVerifiedAt *time.Time, lastVerdict Verdict) ConnectorState {
	s := ConnectorState{State: ConnectorAuthorized, Reason: reason, Verification: VerificationUnverified, LastVerifiedAt: lastVerifiedAt, LastVerdict: lastVerdict}
	switch status {
	case CredentialStatusReauthRequired:
		s.State = ConnectorReauthRequired
	case CredentialStatusRevoked:
		s.State = ConnectorRevoked
	}
	if lastVerifiedAt != nil {
		s.Verification = VerificationVerified
		if lastVerdict == VerdictFail {
			s.Verification = VerificationFailed
		}
	}
	return s
}

// VerifyTargets names the resources a workflow will touch, so verification
// can prove access to them and not just that the token works.
type VerifyTargets struct {
	DriveFolder    string `json:"drive_folder,omitempty"`
	NotionPage     string `json:"notion_page,omitempty"`
	NotionDatabase string `json:"notion_database,omitempty"`
	SlackChannel   string `json:"slack_channel,omitempty"`
}

// VerifyRequest is the body of POST /v1/credentials/{id}/verify. Both fields
// are optional: without actions, every catalog action of the provider that
// the minimal checks exercise is required.
type VerifyRequest struct {
	Targets *VerifyTargets `json:"targets,omitempty"`
	Actions []string       `json:"actions,omitempty"`
}

// CheckStatus is one check's outcome.
type CheckStatus string

const (
	CheckPass CheckStatus = "pass"
	CheckWarn CheckStatus = "warn"
	CheckFail CheckStatus = "fail"
)

// Verdict sums a verification up: fail if any check failed, warn if any
// warned, else pass.
type Verdict string

const (
	VerdictPass Verdict = "pass"
	VerdictWarn Verdict = "warn"
	VerdictFail Verdict = "fail"
)

// VerifyCheck is one minimal check: at most one provider call, no retries.
type VerifyCheck struct {
	Name   string      `json:"name"`
	Status CheckStatus `json:"status"`
	// Class is the classifier's class of a failure ("" when it passed).
	Class  Class  `json:"class,omitempty"`
	Detail string `json:"detail"`
	// Fix is what to do about a warning or failure, for the end user.
	Fix        string `json:"fix,omitempty"`
	DurationMS int64  `json:"duration_ms"`
	// ProviderCalls is how many provider API calls the check made (0 or 1).
	ProviderCalls     int    `json:"provider_calls"`
	ProviderRequestID string `json:"provider_request_id,omitempty"`
	HTTPStatus        int    `json:"http_status,omitempty"`
}

// VerifiedIdentity is who the provider says the token belongs to, live.
type VerifiedIdentity struct {
	Subject     string      `json:"subject,omitempty"`
	Email       string      `json:"email,omitempty"`
	Domain      string      `json:"domain,omitempty"`
	Workspace   string      `json:"workspace,omitempty"`
	AccountType AccountType `json:"account_type,omitempty"`
	// Label is how a person would name the account ("alice@acme.example",
	// "Acme workspace (bot Sandbox app)").
	Label string `json:"label,omitempty"`
}

// VerifiedScopes is the scope diff for the actions verified.
type VerifiedScopes struct {
	Granted  []string `json:"granted"`
	Required []string `json:"required"`
	Missing  []string `json:"missing"`
}

// VerifiedCredential is the credential's state after verification.
type VerifiedCredential struct {
	ID           CredentialID     `json:"id"`
	Provider     string           `json:"provider"`
	Status       CredentialStatus `json:"status"`
	StatusReason StatusReason     `json:"status_reason,omitempty"`
	Connector    ConnectorState   `json:"connector"`
}

// Verification is the answer of POST /v1/credentials/{id}/verify: live
// proof (or disproof) that the connector can do its job.
type Verification struct {
	Credential            VerifiedCredential `json:"credential"`
	Identity              VerifiedIdentity   `json:"identity"`
	IdentityMatchesStored bool               `json:"identity_matches_stored"`
	Scopes                VerifiedScopes     `json:"scopes"`
	Checks                []VerifyCheck      `json:"checks"`
	Verdict               Verdict            `json:"verdict"`
	// Summary is one sentence for the end user.
	Summary string `json:"summary"`
	// ReconnectURL is a connect link that fixes what failed, when
	// reconnecting can (missing scopes: asking for exactly them).
	ReconnectURL string    `json:"reconnect_url,omitempty"`
	VerifiedAt   time.Time `json:"verified_at"`
}

// EventVerified records a live verification and its verdict.
const EventVerified EventType = "verified"
