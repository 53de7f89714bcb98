package storage

import (
	"context"
	"encoding/json"
	"time"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/internal/keyring"
)

// RunQueries is the run ledger: runs, their timelines and steps, and the
// webhooks that report on them. Part of Queries.
type RunQueries interface {
	// RunInsert stores a new run; ErrConflict if the id is taken.
	RunInsert(ctx context.Context, r *Run) error
	// RunGetByID reads one run of one tenant. Inside a transaction on a
	// backend with row locks it locks the run until commit, so read-then-
	// compare-and-swap transactions on one run queue rather than conflict.
	RunGetByID(ctx context.Context, p RunGetByIDParams) (*Run, error)
	// RunList pages a tenant's runs by id, filtered by state and user.
	RunList(ctx context.Context, p RunListParams) ([]*Run, error)
	// RunListBlockedOn lists, by id, the runs blocked_on_auth on one
	// credential (what a reconnect resumes).
	RunListBlockedOn(ctx context.Context, p RunListBlockedOnParams) ([]*Run, error)
	// RunUpdateCAS writes r's state, blocked info and UpdatedAt if the
	// stored version still equals r.Version, and sets r.Version to the new
	// one. ErrVersionConflict if it moved on; ErrNotFound if there is no such
	// run for the tenant.
	RunUpdateCAS(ctx context.Context, r *Run) error

	// RunEntryInsert appends an entry to a run's timeline and sets its Seq.
	RunEntryInsert(ctx context.Context, e *RunEntry) error
	// RunEntryList pages a run's timeline in order.
	RunEntryList(ctx context.Context, p RunEntryListParams) ([]RunEntry, error)

	// StepStart records a gate for a step: the first creates it (attempt 1);
	// later ones count an attempt and record the fingerprints, unless the
	// step is finished, which is returned unchanged. ErrConflict if the
	// run already has another step with this idempotency key, or this step
	// has another key.
	StepStart(ctx context.Context, p StepStartParams) (*Step, error)
	// StepComplete records a step's output once: the first call for a
	// started step completes it and reports true; any later call returns
	// the step as first completed and false. ErrNotFound if the step was
	// never started; ErrConflict if the idempotency key differs.
	StepComplete(ctx context.Context, p StepCompleteParams) (*Step, bool, error)
	// StepFail marks a started step failed with an error class; a
	// completed step stays completed (false).
	StepFail(ctx context.Context, p StepFailParams) (bool, error)
	StepGet(ctx context.Context, p StepGetParams) (*Step, error)
	// StepList lists a run's steps in the order they were first gated.
	StepList(ctx context.Context, p StepListParams) ([]*Step, error)

	WebhookEndpointInsert(ctx context.Context, e *WebhookEndpoint) error
	// WebhookEndpointList lists a tenant's endpoints, oldest first.
	WebhookEndpointList(ctx context.Context, tenant authgate.TenantID) ([]*WebhookEndpoint, error)
	// WebhookEndpointDelete removes an endpoint; ErrNotFound if the tenant
	// has no such endpoint. Its stored deliveries are deleted with it.
	WebhookEndpointDelete(ctx context.Context, p WebhookEndpointDeleteParams) error
	// WebhookEndpointListSealedNotWith lists endpoints whose secret is sealed
	// with a key other than KeyID, across tenants, by id (key rotation).
	WebhookEndpointListSealedNotWith(ctx context.Context, p WebhookEndpointListSealedNotWithParams) ([]*WebhookEndpoint, error)
	// WebhookEndpointReseal replaces an endpoint's sealed secret if it is
	// still sealed with OldKeyID; ErrNotFound if the endpoint is gone,
	// ErrVersionConflict if the secret changed meanwhile.
	WebhookEndpointReseal(ctx context.Context, p WebhookEndpointResealParams) error

	// WebhookDeliveryInsert stores a delivery before anything is sent, so a
	// restart loses none.
	WebhookDeliveryInsert(ctx context.Context, d *WebhookDelivery) error
	// WebhookDeliveryRecordAttempt counts one attempt: delivered (At) or
	// failed with LastError and a NextAttemptAt. ErrNotFound if the delivery
	// is gone or was delivered already.
	WebhookDeliveryRecordAttempt(ctx context.Context, p WebhookDeliveryRecordAttemptParams) error
	WebhookDeliveryGet(ctx context.Context, id authgate.WebhookDeliveryID) (*WebhookDelivery, error)
	// WebhookDeliveryList pages a tenant's deliveries by id, newest first,
	// optionally only one endpoint's or only those in one status.
	WebhookDeliveryList(ctx context.Context, p WebhookDeliveryListParams) ([]*WebhookDelivery, error)
	// WebhookDeliveryDeleteFinished deletes at most Limit deliveries,
	// delivered or dead, created before Before, and reports how many.
	WebhookDeliveryDeleteFinished(ctx context.Context, p WebhookDeliveryDeleteFinishedParams) (int64, error)

	// CredentialListBoundExpiring pages the active credentials bound to an
	// unfinished run whose access token expires before Before and whose
	// refresh is not planned for that token yet (RefreshPlanned), ordered
	// by expiry then id, after the cursor (AfterExpiry, AfterID).
	CredentialListBoundExpiring(ctx context.Context, p CredentialListBoundExpiringParams) ([]*Credential, error)
	// CredentialListCheckDue pages, by id after AfterID, the active
	// credentials bound to no unfinished run whose health check is due by
	// Before or was never planned (NextCheckAt zero).
	CredentialListCheckDue(ctx context.Context, p CredentialListCheckDueParams) ([]CredentialCheckDue, error)
	// CredentialCheckSchedule sets when a credential's next health check is due.
	CredentialCheckSchedule(ctx context.Context, p CredentialCheckScheduleParams) error

	// RefreshPlanned records that a credential's proactive refresh is
	// planned for the token expiring at expiresAt.
	RefreshPlanned(ctx context.Context, id authgate.CredentialID, expiresAt time.Time) error
	// RefreshSlotsGet reads every provider's next free proactive-refresh
	// slot (inside a transaction on PostgreSQL it locks them until commit).
	RefreshSlotsGet(ctx context.Context) (map[string]time.Time, error)
	// RefreshSlotSet stores a provider's next free proactive-refresh slot.
	RefreshSlotSet(ctx context.Context, provider string, next time.Time) error

	// IdempotentResultPut stores Result under (tenant, scope, key) unless a
	// result is stored there already; either way it returns the stored
	// result and whether this call stored it.
	IdempotentResultPut(ctx context.Context, p IdempotentResultPutParams) ([]byte, bool, error)
	// IdempotentResultGet reads a stored result; ErrNotFound if none.
	IdempotentResultGet(ctx context.Context, p IdempotentResultGetParams) ([]byte, error)
	// IdempotentResultDeleteBefore deletes at most Limit results created
	// before Before and reports how many.
	IdempotentResultDeleteBefore(ctx context.Context, before time.Time, limit int) (int64, error)
}

// CredentialListBoundExpiringParams pages credentials to refresh ahead.
type CredentialListBoundExpiringParams struct {
	Before      time.Time
	AfterExpiry time.Time // zero: from the start
	AfterID     authgate.CredentialID
	Limit       int
}

// CredentialListCheckDueParams pages credentials due a health check.
type CredentialListCheckDueParams struct {
	Before  time.Time
	AfterID authgate.CredentialID
	Limit   int
}

// CredentialCheckDue is a credential due a health check.
type CredentialCheckDue struct {
	ID          authgate.CredentialID
	TenantID    authgate.TenantID
	Provider    string
	NextCheckAt time.Time // zero: never planned
}

// CredentialCheckScheduleParams plans a credential's next health check.
type CredentialCheckScheduleParams struct {
	ID       authgate.CredentialID
	TenantID authgate.TenantID
	Next     time.Time
}

// IdempotentResultPutParams is one write's result, by key.
type IdempotentResultPutParams struct {
	TenantID authgate.TenantID
	Scope    string
	Key      string
	Result   []byte
	At       time.Time
}

// IdempotentResultGetParams names a stored result.
type IdempotentResultGetParams struct {
	TenantID authgate.TenantID
	Scope    string
	Key      string
}

// WebhookDeliveryStatus is where a delivery stands.
type WebhookDeliveryStatus string

const (
	WebhookDeliveryPending   WebhookDeliveryStatus = "pending"
	WebhookDeliveryDelivered WebhookDeliveryStatus = "delivered"
	// WebhookDeliveryDead: every attempt failed; nothing retries it.
	WebhookDeliveryDead WebhookDeliveryStatus = "dead"
)

// WebhookDeliveryListParams filters and pages a tenant's deliveries.
type WebhookDeliveryListParams struct {
	TenantID   authgate.TenantID
	EndpointID authgate.WebhookEndpointID // "": every endpoint
	Status     WebhookDeliveryStatus      // "": any
	BeforeID   authgate.WebhookDeliveryID // "": from the newest
	Limit      int
}

// WebhookDeliveryDeleteFinishedParams bounds one pruning pass.
type WebhookDeliveryDeleteFinishedParams struct {
	Before time.Time
	Limit  int
}

// Run is a stored run.
type Run struct {
	ID       authgate.RunID
	TenantID authgate.TenantID
	UserID   string
	Workflow string
	Bindings map[string]authgate.CredentialID
	Actions  []string
	Targets  json.RawMessage // a JSON document; nil stores {}
	State    authgate.RunState
	// Blocked is set while State is blocked_on_auth (zero otherwise).
	Blocked   RunBlocked
	CreatedAt time.Time
	UpdatedAt time.Time
	Version   int64
}

// RunBlocked is why a run waits and on which credential.
type RunBlocked struct {
	Binding      string
	CredentialID authgate.CredentialID
	Class        authgate.Class
	Reason       string
	ReconnectURL string
}

// RunGetByIDParams selects one run of one tenant.
type RunGetByIDParams struct {
	TenantID authgate.TenantID
	ID       authgate.RunID
}

// RunListParams filters and pages a tenant's runs.
type RunListParams struct {
	TenantID authgate.TenantID
	State    authgate.RunState
	UserID   string
	AfterID  authgate.RunID
	Limit    int
}

// RunListBlockedOnParams selects the runs blocked on one credential.
type RunListBlockedOnParams struct {
	TenantID     authgate.TenantID
	CredentialID authgate.CredentialID
	AfterID      authgate.RunID
	Limit        int
}

// RunEntry is one stored timeline entry.
type RunEntry struct {
	Seq       int64 // set by RunEntryInsert; orders a run's timeline
	TenantID  authgate.TenantID
	RunID     authgate.RunID
	At        time.Time
	Kind      authgate.RunEntryKind
	FromState authgate.RunState
	ToState   authgate.RunState
	StepKey   string
	Binding   string
	Class     authgate.Class
	Reason    string
	Details   json.RawMessage // a JSON object; nil stores {}
}

// RunEntryListParams pages one run's timeline.
type RunEntryListParams struct {
	TenantID authgate.TenantID
	RunID    authgate.RunID
	AfterSeq int64
	Limit    int
}

// Step is a stored step.
type Step struct {
	TenantID       authgate.TenantID
	RunID          authgate.RunID
	Key            string
	Actions        []string
	IdempotencyKey string
	Status         authgate.StepStatus
	Attempts       int
	// CredentialFingerprints maps binding → fingerprint of the token the
	// last gate handed out.
	CredentialFingerprints map[string]string
	ErrorClass             authgate.Class
	Output                 json.RawMessage // the checkpoint; nil until completed
	StartedAt              time.Time
	UpdatedAt              time.Time
	CompletedAt            time.Time // zero: not completed
}

// StepStartParams records one gate of a step.
type StepStartParams struct {
	TenantID               authgate.TenantID
	RunID                  authgate.RunID
	Key                    string
	Actions                []string
	IdempotencyKey         string
	CredentialFingerprints map[string]string
	At                     time.Time
}

// StepCompleteParams records a step's checkpoint.
type StepCompleteParams struct {
	TenantID       authgate.TenantID
	RunID          authgate.RunID
	Key            string
	IdempotencyKey string
	Output         json.RawMessage // a JSON document; nil stores null
	At             time.Time
}

// StepFailParams records a step's failure.
type StepFailParams struct {
	TenantID authgate.TenantID
	RunID    authgate.RunID
	Key      string
	Class    authgate.Class
	At       time.Time
}

// StepGetParams names one step.
type StepGetParams struct {
	TenantID authgate.TenantID
	RunID    authgate.RunID
	Key      string
}

// StepListParams names a run.
type StepListParams struct {
	TenantID authgate.TenantID
	RunID    authgate.RunID
}

// WebhookEndpoint is a stored endpoint; its signing secret arrives sealed.
type WebhookEndpoint struct {
	ID        authgate.WebhookEndpointID
	TenantID  authgate.TenantID
	URL       string
	Secret    keyring.Sealed
	CreatedAt time.Time
}

// WebhookEndpointDeleteParams names an endpoint.
type WebhookEndpointDeleteParams struct {
	TenantID authgate.TenantID
	ID       authgate.WebhookEndpointID
}

// WebhookEndpointListSealedNotWithParams pages endpoints needing re-encryption.
type WebhookEndpointListSealedNotWithParams struct {
	KeyID   string
	AfterID authgate.WebhookEndpointID
	Limit   int
}

// WebhookEndpointResealParams carries a new ciphertext for the same secret.
type WebhookEndpointResealParams struct {
	ID       authgate.WebhookEndpointID
	OldKeyID string
	Secret   keyring.Sealed
}

// WebhookDelivery is one event for one endpoint, stored before it is sent.
type WebhookDelivery struct {
	ID            authgate.WebhookDeliveryID
	TenantID      authgate.TenantID
	EndpointID    authgate.WebhookEndpointID
	EventType     authgate.WebhookEventType
	Payload       json.RawMessage // the exact body to sign and send
	Attempts      int
	NextAttemptAt time.Time
	DeliveredAt   time.Time // zero: not yet
	DeadAt        time.Time // zero: not dead
	LastError     string
	CreatedAt     time.Time
}

// Status is where the delivery stands.
func (d *WebhookDelivery) Status() WebhookDeliveryStatus {
	switch {
	case !d.DeliveredAt.IsZero():
		return WebhookDeliveryDelivered
	case !d.DeadAt.IsZero():
		return WebhookDeliveryDead
	}
	return WebhookDeliveryPending
}

// WebhookDeliveryRecordAttemptParams is one attempt's result.
type WebhookDeliveryRecordAttemptParams struct {
	ID        authgate.WebhookDeliveryID
	At        time.Time
	Delivered bool
	// Dead marks a failed attempt the last one: nothing retries it.
	Dead          bool
	LastError     string
	NextAttemptAt time.Time
}
