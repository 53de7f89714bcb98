package authgate

import (
	"context"
	"time"
)

// DiagnosisCause is the stable one-word root cause of a diagnosis
// (`verdict.cause` in the JSON). The list is documented in the README and
// only ever grows.
type DiagnosisCause string

const (
	CauseHealthy             DiagnosisCause = "healthy"
	CauseMissingScope        DiagnosisCause = "missing_scope"
	CauseNoRefreshToken      DiagnosisCause = "no_refresh_token"
	CauseRevoked             DiagnosisCause = "revoked"
	CauseIssuanceLimit       DiagnosisCause = "issuance_limit"
	CauseAdminPolicy         DiagnosisCause = "admin_policy"
	CauseNotShared           DiagnosisCause = "not_shared"
	CauseWrongPrincipal      DiagnosisCause = "wrong_principal"
	CauseClockSkew           DiagnosisCause = "clock_skew"
	CauseKeyMismatch         DiagnosisCause = "key_mismatch"
	CauseClientMisconfigured DiagnosisCause = "client_misconfigured"
	CauseProviderOutage      DiagnosisCause = "provider_outage"
)

// DiagnosisCauses lists every cause, in the order the doctor weighs them.
var DiagnosisCauses = []DiagnosisCause{CauseWrongPrincipal, CauseKeyMismatch, CauseAdminPolicy, CauseNoRefreshToken, CauseIssuanceLimit,
	CauseRevoked, CauseMissingScope, CauseNotShared, CauseClientMisconfigured, CauseProviderOutage, CauseClockSkew, CauseHealthy}

// DiagnoseRequest is the body of POST /v1/credentials/{id}/diagnose; both
// fields are optional, as for verify.
type DiagnoseRequest struct {
	Targets *VerifyTargets `json:"targets,omitempty"`
	Actions []string       `json:"actions,omitempty"`
}

// Diagnosis sections, in the order the doctor runs them.
const (
	SectionRepro       = "repro"
	SectionIdentity    = "identity"
	SectionScopes      = "scopes"
	SectionLifecycle   = "lifecycle"
	SectionStorage     = "storage"
	SectionClock       = "clock"
	SectionEnvironment = "environment"
)

// DiagnosisCheck is one finding: what was looked at, what was seen, what to do.
type DiagnosisCheck struct {
	Section  string      `json:"section"`
	Name     string      `json:"name"`
	Status   CheckStatus `json:"status"`
	Evidence string      `json:"evidence"`
	Fix      string      `json:"fix,omitempty"`
	// Class is the classifier's class of a failed provider call, if any.
	Class Class `json:"class,omitempty"`
}

// DiagnosisScopes is the scopes table: what was asked for, what the
// provider granted, what the actions need, and the difference.
type DiagnosisScopes struct {
	Requested []string `json:"requested"`
	Granted   []string `json:"granted"`
	Required  []string `json:"required"`
	Missing   []string `json:"missing"`
}

// DiagnosisVerdict is the one-line answer.
type DiagnosisVerdict struct {
	Cause DiagnosisCause `json:"cause"`
	// Summary names the root cause in a sentence.
	Summary string `json:"summary"`
	// NextAction is the exact thing to do next.
	NextAction string `json:"next_action"`
}

// DiagnosisEvent is one lifecycle event as the doctor read it.
type DiagnosisEvent struct {
	At   time.Time `json:"at"`
	Type EventType `json:"type"`
	// Note is the event's facts in words (fingerprints, errors), never a secret.
	Note string `json:"note,omitempty"`
}

// Diagnosis is the doctor's report on one credential: `authgate doctor`
// prints it, POST /v1/credentials/{id}/diagnose returns it.
type Diagnosis struct {
	Credential            Credential       `json:"credential"`
	Identity              VerifiedIdentity `json:"identity"`
	IdentityMatchesStored bool             `json:"identity_matches_stored"`
	Scopes                DiagnosisScopes  `json:"scopes"`
	Checks                []DiagnosisCheck `json:"checks"`
	Events                []DiagnosisEvent `json:"events"`
	Verdict               DiagnosisVerdict `json:"verdict"`
	// ReconnectURL asks for exactly what is missing, when reconnecting helps.
	ReconnectURL string `json:"reconnect_url,omitempty"`
	// Live is false when the provider was not called (the doctor ran on the
	// database alone).
	Live        bool      `json:"live"`
	DiagnosedAt time.Time `json:"diagnosed_at"`
}

// Healthy reports whether the verdict is healthy.
func (d Diagnosis) Healthy() bool { return d.Verdict.Cause == CauseHealthy }

// Diagnose runs the doctor on a credential through the API (live: the
// server calls the provider) and returns its report whatever the verdict.
func (c *Client) Diagnose(ctx context.Context, id CredentialID, req DiagnoseRequest) (Diagnosis, error) {
	var out Diagnosis
	err := c.do(ctx, "POST", "/v1/credentials/"+pathEscape(id)+"/diagnose", req, &out)
	return out, err
}
