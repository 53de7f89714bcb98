package authgate

import (
	"encoding/json"
	"regexp"
	"time"
)

// RunID identifies one workflow run ("run_" + 26 chars).
type RunID string

// WebhookEndpointID identifies a tenant's webhook endpoint ("whe_" + 26 chars).
type WebhookEndpointID string

// WebhookDeliveryID identifies one stored webhook delivery ("whd_" + 26 chars).
type WebhookDeliveryID string

// NewRunID returns a fresh random run id.
func NewRunID() RunID { return RunID(randomToken("run_", 16)) }

// NewWebhookEndpointID returns a fresh random webhook endpoint id.
func NewWebhookEndpointID() WebhookEndpointID { return WebhookEndpointID(randomToken("whe_", 16)) }

// NewWebhookDeliveryID returns a fresh random webhook delivery id.
func NewWebhookDeliveryID() WebhookDeliveryID { return WebhookDeliveryID(randomToken("whd_", 16)) }

var runIDPattern = regexp.MustCompile(`^run_[a-z2-7]{26}$`)

// Valid reports whether id has the shape of a run id.
func (id RunID) Valid() bool { return runIDPattern.MatchString(string(id)) }

// RunState is where a run is (SPEC §3): pending → running → succeeded |
// failed | canceled, and running ⇄ blocked_on_auth. A run that fails
// preflight goes from pending straight to blocked_on_auth or failed.
type RunState string

const (
	RunStatePending   RunState = "pending"
	RunStateRunning   RunState = "running"
	RunStateSucceeded RunState = "succeeded"
	RunStateFailed    RunState = "failed"
	RunStateCanceled  RunState = "canceled"
	// RunStateBlockedOnAuth: a credential needs its user; the run resumes
	// after the reconnect, from its last completed step.
	RunStateBlockedOnAuth RunState = "blocked_on_auth"
)

// Valid reports whether s is one of the defined states.
func (s RunState) Valid() bool {
	switch s {
	case RunStatePending, RunStateRunning, RunStateSucceeded, RunStateFailed, RunStateCanceled, RunStateBlockedOnAuth:
		return true
	}
	return false
}

// Terminal reports whether a run in state s is finished for good.
func (s RunState) Terminal() bool {
	return s == RunStateSucceeded || s == RunStateFailed || s == RunStateCanceled
}

// RunEntryKind says what a run timeline entry records.
type RunEntryKind string

const (
	RunEntryCreated       RunEntryKind = "created"
	RunEntryPreflight     RunEntryKind = "preflight"
	RunEntryStateChanged  RunEntryKind = "state_changed"
	RunEntryGate          RunEntryKind = "gate"
	RunEntryBlocked       RunEntryKind = "blocked"
	RunEntryResumed       RunEntryKind = "resumed"
	RunEntryStepCompleted RunEntryKind = "step_completed"
	RunEntryStepFailed    RunEntryKind = "step_failed"
)

// StepStatus is where one step of a run is.
type StepStatus string

const (
	// StepStatusStarted: gated at least once, not finished.
	StepStatusStarted   StepStatus = "started"
	StepStatusCompleted StepStatus = "completed"
	StepStatusFailed    StepStatus = "failed"
)

// Run is a workflow run as the API shows it.
type Run struct {
	ID       RunID    `json:"id"`
	TenantID TenantID `json:"tenant_id"`
	UserID   string   `json:"user_id"`
	Workflow string   `json:"workflow"`
	// Bindings name, for each binding of the workflow ("google", "notion"),
	// the credential the run uses: by id, never "the user's latest token".
	Bindings  map[string]CredentialID `json:"bindings"`
	Actions   []string                `json:"actions"`
	Targets   json.RawMessage         `json:"targets,omitempty"`
	State     RunState                `json:"state"`
	Blocked   *RunBlocked             `json:"blocked,omitempty"`
	Preflight []PreflightCheck        `json:"preflight,omitempty"`
	Steps     []Step                  `json:"steps,omitempty"`
	Timeline  []RunEntry              `json:"timeline,omitempty"`
	CreatedAt time.Time               `json:"created_at"`
	UpdatedAt time.Time               `json:"updated_at"`
}

// RunBlocked says why a run is blocked_on_auth and how its user unblocks it.
type RunBlocked struct {
	Binding      string       `json:"binding"`
	CredentialID CredentialID `json:"credential_id"`
	Class        Class        `json:"class"`
	Reason       string       `json:"reason"`
	ReconnectURL string       `json:"reconnect_url,omitempty"`
}

// PreflightCheck is one check of one binding at run start.
type PreflightCheck struct {
	Binding      string `json:"binding"`
	Check        string `json:"check"`  // "principal", "status", "identity", "scopes", "target"
	Status       string `json:"status"` // "ok", "failed" or "inconclusive"
	Class        Class  `json:"class,omitempty"`
	Detail       string `json:"detail,omitempty"`
	Fix          string `json:"fix,omitempty"`
	ReconnectURL string `json:"reconnect_url,omitempty"`
	// MissingScopes lists what the credential lacks for the run's actions.
	MissingScopes []string `json:"missing_scopes,omitempty"`
}

// Preflight check statuses.
const (
	PreflightOK     = "ok"
	PreflightFailed = "failed"
	// PreflightInconclusive: the provider was busy or unreachable
	// (rate_limited, transient). It neither blocks nor fails the run: the
	// steps retry such answers.
	PreflightInconclusive = "inconclusive"
)

// RunEntry is one line of a run's timeline: a state change, a gate, a
// block, a resume, with its reason.
type RunEntry struct {
	Seq       int64        `json:"seq"`
	At        time.Time    `json:"at"`
	Kind      RunEntryKind `json:"kind"`
	FromState RunState     `json:"from_state,omitempty"`
	ToState   RunState     `json:"to_state,omitempty"`
	StepKey   string       `json:"step_key,omitempty"`
	Binding   string       `json:"binding,omitempty"`
	Class     Class        `json:"class,omitempty"`
	Reason    string       `json:"reason,omitempty"`
}

// Step is one step of a run: gated before it runs, completed exactly once
// with its checkpoint (Output).
type Step struct {
	Key            string     `json:"key"`
	Actions        []string   `json:"actions"`
	IdempotencyKey string     `json:"idempotency_key"`
	Status         StepStatus `json:"status"`
	Attempts       int        `json:"attempts"`
	// CredentialFingerprints maps each binding to the fingerprint of the
	// access token the step was last given.
	CredentialFingerprints map[string]string `json:"credential_fingerprints,omitempty"`
	ErrorClass             Class             `json:"error_class,omitempty"`
	Output                 json.RawMessage   `json:"output,omitempty"`
	StartedAt              time.Time         `json:"started_at"`
	UpdatedAt              time.Time         `json:"updated_at"`
	CompletedAt            *time.Time        `json:"completed_at,omitempty"`
}

// RunCreateRequest is the body of POST /v1/runs.
type RunCreateRequest struct {
	Workflow string                  `json:"workflow"`
	UserID   string                  `json:"user_id"`
	Bindings map[string]CredentialID `json:"bindings"`
	Actions  []string                `json:"actions"`
	Targets  json.RawMessage         `json:"targets,omitempty"`
}

// StepGateRequest is the body of POST /v1/runs/{id}/steps.
type StepGateRequest struct {
	Key            string   `json:"key"`
	Actions        []string `json:"actions"`
	IdempotencyKey string   `json:"idempotency_key"`
	Expensive      bool     `json:"expensive,omitempty"`
}

// StepToken is an access token a gate hands a step for one binding.
type StepToken struct {
	AccessToken string `json:"access_token"`
	// ExpiresAt is absent when the token has no known expiry (Notion's
	// never expire), rather than a zero time that reads as long expired.
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

// StepGateResponse answers a gate: tokens valid for the step, or, for a
// step already completed, its recorded output (Completed).
type StepGateResponse struct {
	Tokens    map[string]StepToken `json:"tokens,omitempty"`
	Step      Step                 `json:"step"`
	Completed bool                 `json:"completed"`
}

// StepCompleteRequest is the body of POST /v1/runs/{id}/steps/{key}/complete.
type StepCompleteRequest struct {
	IdempotencyKey string          `json:"idempotency_key"`
	Output         json.RawMessage `json:"output"`
}

// WebhookEventType names what a webhook delivery reports.
type WebhookEventType string

const (
	WebhookEventRunBlockedOnAuth         WebhookEventType = "run.blocked_on_auth"
	WebhookEventRunResumed               WebhookEventType = "run.resumed"
	WebhookEventRunFinished              WebhookEventType = "run.finished"
	WebhookEventCredentialReauthRequired WebhookEventType = "credential.reauth_required"
	WebhookEventCredentialReconnected    WebhookEventType = "credential.reconnected"
)

// WebhookEndpoint is where a tenant receives webhooks. Its signing secret
// is shown once, when it is created, and never again.
type WebhookEndpoint struct {
	ID        WebhookEndpointID `json:"id"`
	URL       string            `json:"url"`
	CreatedAt time.Time         `json:"created_at"`
	Secret    string            `json:"secret,omitempty"`
}

// RunPage is a page of runs (GET /v1/runs), newest id order by id.
type RunPage struct {
	Runs      []Run `json:"runs"`
	NextAfter RunID `json:"next_after,omitempty"`
}

// RunFinishRequest is the body of POST /v1/runs/{id}/finish: the workflow
// says it is done (succeeded) or gave up (failed).
type RunFinishRequest struct {
	State  RunState `json:"state"`
	Reason string   `json:"reason,omitempty"`
}

// StepFailRequest is the body of POST /v1/runs/{id}/steps/{key}/fail: the
// provider's answer to the step's call, as the worker received it.
type StepFailRequest struct {
	Binding string            `json:"binding"`
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers,omitempty"`
	Body    string            `json:"body,omitempty"`
	// TokenFingerprint is the fingerprint of the access token the step
	// used (default: the one its last gate handed out). A report about a
	// token that is no longer the stored one never changes the credential.
	TokenFingerprint string `json:"token_fingerprint,omitempty"`
}

// StepFailOutcome says what a step does after a provider failure.
type StepFailOutcome string

const (
	// StepFailRetry: gate the step again (after RetryAfter): the token was
	// refreshed, or the provider is busy.
	StepFailRetry StepFailOutcome = "retry"
	// StepFailBlocked: the run is blocked_on_auth until the user reconnects.
	StepFailBlocked StepFailOutcome = "blocked"
	// StepFailFailed: the step failed for good; reconnecting will not help.
	StepFailFailed StepFailOutcome = "failed"
)

// StepFailResponse answers a step failure with its class and what to do.
type StepFailResponse struct {
	Class   Class           `json:"class"`
	Outcome StepFailOutcome `json:"outcome"`
	Message string          `json:"message"`
	// RetryAfterSeconds is how long to wait before gating again.
	RetryAfterSeconds int64       `json:"retry_after_seconds,omitempty"`
	RunState          RunState    `json:"run_state"`
	Blocked           *RunBlocked `json:"blocked,omitempty"`
}

// WebhookEvent is the body of a webhook delivery (signed; see package
// webhook). Data is a Run for run.* events and a Credential for
// credential.* events.
type WebhookEvent struct {
	ID        WebhookDeliveryID `json:"id"`
	Type      WebhookEventType  `json:"type"`
	TenantID  TenantID          `json:"tenant_id"`
	CreatedAt time.Time         `json:"created_at"`
	Data      json.RawMessage   `json:"data"`
}

// WebhookEndpointCreateRequest is the body of POST /v1/webhooks.
type WebhookEndpointCreateRequest struct {
	URL string `json:"url"`
}

// WebhookDeliveryStatus is where a webhook delivery stands: pending (an
// attempt is due or running), delivered, or dead (every attempt failed;
// nothing retries it).
type WebhookDeliveryStatus string

const (
	WebhookDeliveryPending   WebhookDeliveryStatus = "pending"
	WebhookDeliveryDelivered WebhookDeliveryStatus = "delivered"
	WebhookDeliveryDead      WebhookDeliveryStatus = "dead"
)

// WebhookDelivery is one event sent (or being sent) to one endpoint, as GET
// /v1/webhooks/deliveries lists it: status and attempts, never the body.
type WebhookDelivery struct {
	ID            WebhookDeliveryID     `json:"id"`
	EndpointID    WebhookEndpointID     `json:"endpoint_id"`
	EventType     WebhookEventType      `json:"event_type"`
	Status        WebhookDeliveryStatus `json:"status"`
	Attempts      int                   `json:"attempts"`
	LastError     string                `json:"last_error,omitempty"`
	NextAttemptAt *time.Time            `json:"next_attempt_at,omitempty"`
	CreatedAt     time.Time             `json:"created_at"`
	DeliveredAt   *time.Time            `json:"delivered_at,omitempty"`
	DeadAt        *time.Time            `json:"dead_at,omitempty"`
}

// WebhookDeliveryPage is one page of deliveries, newest first; pass
// NextBefore as before= for the next.
type WebhookDeliveryPage struct {
	Deliveries []WebhookDelivery `json:"deliveries"`
	NextBefore WebhookDeliveryID `json:"next_before,omitempty"`
}

// WebhookEndpointList is the answer of GET /v1/webhooks (secrets never
// shown again).
type WebhookEndpointList struct {
	Endpoints []WebhookEndpoint `json:"endpoints"`
}
