// Package storage is the port between authgate's domain packages and its
// databases: the records, the queries every backend must answer, and the
// sentinel errors callers branch on.
//
// Backends (sqlitestore, pgstore) implement Store and prove it by passing
// storagetest.Run, the one conformance suite. Storage knows nothing of
// encryption: secrets arrive here already sealed (keyring.Sealed) and leave
// sealed. Storage never decides policy (who may see what beyond the tenant
// filter every query takes, what a state change means): vault and tenancy do.
package storage

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/internal/keyring"
)

var (
	// ErrNotFound: no such row for this tenant.
	ErrNotFound = errors.New("not found")
	// ErrVersionConflict: a compare-and-swap lost; the row changed since it was read.
	ErrVersionConflict = errors.New("version conflict: the row changed since it was read")
	// ErrConflict: a uniqueness constraint refused the write.
	ErrConflict = errors.New("already exists")
)

// Store is a database: Queries outside any transaction (each one commits on
// its own), plus Tx to run several in one transaction.
type Store interface {
	Queries
	// Tx runs fn in one transaction: it commits if fn returns nil and rolls
	// back otherwise. Write transactions take the write lock up front, so two
	// writers never deadlock upgrading a read lock.
	Tx(ctx context.Context, fn func(q Queries) error) error
	// Ping checks the database answers (readiness).
	Ping(ctx context.Context) error
	// ClockNow is the database's time: what leases, in-doubt records and
	// every other comparison that crosses processes measure against, so two
	// hosts whose clocks disagree still agree on who holds a lease.
	// PostgreSQL answers with its server clock; SQLite, whose processes all
	// run on one host, with the clock the store was opened with.
	ClockNow(ctx context.Context) (time.Time, error)
	Close() error
}

// Queries is every read and write the domain needs. Methods read
// noun-then-verb with a params struct where there is more than one argument.
type Queries interface {
	RunQueries
	ConsoleQueries

	TenantInsert(ctx context.Context, t Tenant) error
	TenantGetByID(ctx context.Context, id authgate.TenantID) (Tenant, error)
	TenantGetByName(ctx context.Context, name string) (Tenant, error)
	TenantList(ctx context.Context) ([]Tenant, error)
	// TenantSetReturnURLs replaces a tenant's return-URL allow-list.
	TenantSetReturnURLs(ctx context.Context, id authgate.TenantID, prefixes []string) error

	APIKeyInsert(ctx context.Context, k APIKey) error
	// APIKeyGetByHash returns the live (not revoked) key with this hash.
	APIKeyGetByHash(ctx context.Context, hash []byte) (APIKey, error)

	// CredentialInsert stores a new credential; ErrConflict if its slot
	// (tenant, user, provider, workspace, subject) or id is taken.
	CredentialInsert(ctx context.Context, c *Credential) error
	CredentialGetByID(ctx context.Context, p CredentialGetByIDParams) (*Credential, error)
	CredentialGetBySlot(ctx context.Context, s Slot) (*Credential, error)
	CredentialList(ctx context.Context, p CredentialListParams) ([]*Credential, error)
	// CredentialUpdateCAS writes every mutable field of c if the stored
	// version still equals c.Version, and sets c.Version to the new version.
	// ErrVersionConflict if the stored version moved on; ErrNotFound if the
	// row is gone. Identity fields (tenant, user, provider, workspace,
	// subject) and CreatedAt never change.
	CredentialUpdateCAS(ctx context.Context, c *Credential) error
	// CredentialListSealedNotWith lists credentials holding a secret sealed
	// with a key other than KeyID, across all tenants (key rotation).
	CredentialListSealedNotWith(ctx context.Context, p CredentialListSealedNotWithParams) ([]*Credential, error)
	// CredentialReseal replaces the two ciphertexts if the version still
	// matches, and bumps the version: re-encryption changes no token, but a
	// writer that read the old ciphertexts must lose its compare-and-swap
	// rather than write them back after the old key is retired.
	CredentialReseal(ctx context.Context, p CredentialResealParams) error

	// CredentialTouchBatch records uses: for each entry it sets last_used_at
	// to At when the stored value is older (or unset), without changing the
	// version, all in one statement batch (the refresher flushes at most once
	// a minute per credential). Unknown ids are ignored.
	CredentialTouchBatch(ctx context.Context, touches []CredentialTouch) error
	// CredentialLeaseAcquire takes the refresh lease on a credential for
	// Holder until Until, only if it is free or expired (at Now). It is not
	// re-entrant: a Holder that already holds it gets false, so two flights
	// can never both believe they hold one lease; every flight uses a holder
	// name of its own. It reports whether Holder holds it now. Leases never
	// change the version.
	CredentialLeaseAcquire(ctx context.Context, p CredentialLeaseParams) (bool, error)
	// CredentialLeaseRenew moves the lease's expiry to Until if Holder still
	// holds it (even if it expired at Now and nobody took it over); false
	// means the lease was lost.
	CredentialLeaseRenew(ctx context.Context, p CredentialLeaseParams) (bool, error)
	// CredentialLeaseRelease frees the lease if Holder holds it.
	CredentialLeaseRelease(ctx context.Context, p CredentialLeaseParams) error
	// CredentialSendMark records, only if Holder still holds the lease
	// (expired or not, as long as nobody took it over), that Holder is about
	// to present the refresh token with fingerprint RefreshFP, and moves the
	// lease's expiry to LeaseUntil. false: the lease was lost and nothing was
	// recorded. Never changes the version.
	CredentialSendMark(ctx context.Context, p CredentialSendParams) (bool, error)
	// CredentialSendClear removes the in-doubt record if Holder wrote it.
	CredentialSendClear(ctx context.Context, p CredentialSendParams) error

	// CredentialPromiseExtend and CredentialPromiseSeal keep the promise
	// horizon of a credential's access token (see CredentialPromise).
	CredentialPromiseExtend(ctx context.Context, p CredentialPromiseParams) (CredentialPromise, error)
	CredentialPromiseSeal(ctx context.Context, p CredentialPromiseParams) (CredentialPromise, error)

	// CredentialSetVerified records a live verification's time, verdict and
	// result (JSON) on a tenant's credential, without changing its version
	// (no token changed); ErrNotFound if there is no such credential.
	CredentialSetVerified(ctx context.Context, p CredentialSetVerifiedParams) error

	EventInsert(ctx context.Context, e *Event) error
	EventList(ctx context.Context, p EventListParams) ([]Event, error)

	ConnectSessionInsert(ctx context.Context, s *ConnectSession) error
	// ConnectSessionGet finds a session by id (any tenant: the browser leg
	// of the flow carries no API key).
	ConnectSessionGet(ctx context.Context, id string) (*ConnectSession, error)
	// ConnectSessionGetByState finds a session by the hash of its state.
	ConnectSessionGetByState(ctx context.Context, stateHash []byte) (*ConnectSession, error)
	// ConnectSessionConsume marks a session used if it is unused and not
	// expired at now; ErrNotFound otherwise. It is what makes state single-use.
	ConnectSessionConsume(ctx context.Context, id string, now time.Time) error
	// ConnectSessionListSealedNotWith lists connect sessions, unused and
	// unexpired at Now, whose PKCE verifier is sealed with a key other than
	// KeyID, across all tenants, ordered by id (key rotation).
	ConnectSessionListSealedNotWith(ctx context.Context, p ConnectSessionListSealedNotWithParams) ([]*ConnectSession, error)
	// ConnectSessionReseal replaces a session's sealed verifier if it is
	// still sealed with OldKeyID; ErrNotFound if the session is gone,
	// ErrVersionConflict if the verifier changed meanwhile.
	ConnectSessionReseal(ctx context.Context, p ConnectSessionResealParams) error

	// APIKeyList lists a tenant's API keys, revoked ones included, oldest first.
	APIKeyList(ctx context.Context, tenant authgate.TenantID) ([]APIKey, error)
	// APIKeyRevoke sets revoked_at on a tenant's live key; ErrNotFound if
	// the tenant has no such live key.
	APIKeyRevoke(ctx context.Context, p APIKeyRevokeParams) error

	// SealedKeyIDs lists, sorted, every master-key id some stored secret
	// (credential token, connect-session verifier, webhook secret) is sealed with: the
	// keys this database cannot be read without.
	SealedKeyIDs(ctx context.Context) ([]string, error)
	// SealedSample returns one stored secret sealed with keyID (a
	// credential token or a connect-session verifier), so start-up can
	// prove a loaded key with that id really opens this database's
	// ciphertexts; ErrNotFound if none.
	SealedSample(ctx context.Context, keyID string) (SealedSample, error)

	// ConnectSessionOpen binds an unused, unexpired (at Now), not yet opened
	// session to one browser (the hash of its cookie): ErrConflict if it was
	// opened already, ErrNotFound if it is used, expired or gone.
	ConnectSessionOpen(ctx context.Context, p ConnectSessionOpenParams) error
	// ConnectSessionFinish records a session's outcome.
	ConnectSessionFinish(ctx context.Context, p ConnectSessionFinishParams) error
	// ConnectSessionListReusable lists a tenant's sessions for one
	// credential that are unopened, unused and expire after Until, newest first.
	ConnectSessionListReusable(ctx context.Context, p ConnectSessionListReusableParams) ([]*ConnectSession, error)
	// ConnectSessionDeleteExpired deletes at most Limit sessions that expired
	// before Before and reports how many it deleted.
	ConnectSessionDeleteExpired(ctx context.Context, p ConnectSessionDeleteExpiredParams) (int64, error)
}

// APIKeyRevokeParams names a key to revoke.
type APIKeyRevokeParams struct {
	TenantID authgate.TenantID
	ID       authgate.APIKeyID
	At       time.Time
}

// ConnectSessionOpenParams binds a session to a browser.
type ConnectSessionOpenParams struct {
	ID          string
	BrowserHash []byte
	Now         time.Time
}

// ConnectSessionFinishParams is a flow's outcome.
type ConnectSessionFinishParams struct {
	ID           string
	Outcome      ConnectOutcome
	CredentialID authgate.CredentialID
	Missing      []string
	ErrorClass   string
	ErrorCode    string
}

// ConnectSessionListReusableParams selects sessions a reconnect link may reuse.
type ConnectSessionListReusableParams struct {
	TenantID     authgate.TenantID
	CredentialID authgate.CredentialID
	Until        time.Time
	Limit        int
}

// ConnectSessionDeleteExpiredParams bounds one pruning pass.
type ConnectSessionDeleteExpiredParams struct {
	Before time.Time
	Limit  int
}

// ConnectOutcome is how a finished connect flow ended ("" while pending).
type ConnectOutcome string

const (
	ConnectOutcomeConnected ConnectOutcome = "connected"
	ConnectOutcomePartial   ConnectOutcome = "partial"
	ConnectOutcomeCanceled  ConnectOutcome = "canceled"
	ConnectOutcomeError     ConnectOutcome = "error"
)

// SealedSample is one stored ciphertext and what it is bound to.
type SealedSample struct {
	// Owner is the credential id, or the connect-session id for a verifier.
	Owner string
	// Field is "access_token", "refresh_token" or "connect_verifier".
	Field  string
	Sealed keyring.Sealed
}

// NativeTx is the driver's own transaction that q runs in (*sql.Tx for
// SQLite, pgx.Tx for PostgreSQL), or nil when q is not inside Store.Tx. Job
// queues take it to insert jobs in the caller's transaction; nothing else
// should reach below the port.
func NativeTx(q Queries) any {
	if n, ok := q.(interface{ NativeTx() any }); ok {
		return n.NativeTx()
	}
	return nil
}

// ChangeFeed tells a process when any process sharing the database changed
// a credential, so that in-memory copies are dropped and waiters woken
// without polling the rows. Both backends implement it on their Store.
type ChangeFeed interface {
	// WatchCredentials calls fn for every credential whose version or lease
	// holder changed (a committed insert, CAS update, re-seal, lease taken
	// or released, delete), made by any process including this one, until
	// ctx ends; it then returns ctx.Err(). A change with All set means the
	// feed may have missed changes (start-up, a lost connection, pruned
	// history): treat every credential as changed. fn runs on the feed's own
	// goroutine, in commit order, and must not block for long.
	WatchCredentials(ctx context.Context, fn func(CredentialChange)) error
}

// CredentialChange is one entry of the change feed.
type CredentialChange struct {
	ID  authgate.CredentialID
	All bool
}

// CredentialTouch records one credential's use.
type CredentialTouch struct {
	ID authgate.CredentialID
	At time.Time
}

// ConnectSessionListSealedNotWithParams pages live sessions needing re-encryption.
type ConnectSessionListSealedNotWithParams struct {
	KeyID   string
	Now     time.Time
	AfterID string
	Limit   int
}

// ConnectSessionResealParams carries a new ciphertext for the same verifier.
type ConnectSessionResealParams struct {
	ID       string
	OldKeyID string
	Verifier keyring.Sealed
}

// CredentialLeaseParams names a lease.
type CredentialLeaseParams struct {
	ID     authgate.CredentialID
	Holder string
	Now    time.Time
	Until  time.Time
}

// CredentialSendParams is an in-doubt record: Holder presents the refresh
// token with fingerprint RefreshFP at At; that request may land at the
// provider until Deadline. Times are the database's (Store.ClockNow).
type CredentialSendParams struct {
	ID         authgate.CredentialID
	Holder     string
	RefreshFP  string
	At         time.Time
	Deadline   time.Time
	LeaseUntil time.Time
}

// ConnectSession is one pending "connect this provider" flow.
type ConnectSession struct {
	ID              string
	TenantID        authgate.TenantID
	UserID          string
	Provider        string
	CredentialID    authgate.CredentialID // set for a reconnect
	RequestedScopes []string
	Actions         []string
	LoginHint       string
	ReturnURL       string
	ForceConsent    bool
	StateHash       []byte
	Verifier        keyring.Sealed // the PKCE verifier, sealed
	CreatedAt       time.Time
	ExpiresAt       time.Time
	UsedAt          time.Time // zero: unused
	// ExpectedAccount is the account the app expects (email, Workspace
	// domain or provider subject); "" accepts any.
	ExpectedAccount string
	// BrowserHash binds the flow to the browser that opened the link.
	BrowserHash []byte
	OpenedAt    time.Time // zero: the link was not opened yet
	// The outcome, once the flow finished.
	Outcome             ConnectOutcome
	OutcomeCredentialID authgate.CredentialID
	MissingScopes       []string
	ErrorClass          string
	ErrorCode           string
}

// Tenant is a unit of isolation.
type Tenant struct {
	ID        authgate.TenantID
	Name      string
	CreatedAt time.Time
	// ReturnURLAllowList holds URL prefixes this tenant's connect sessions
	// may send users back to.
	ReturnURLAllowList []string
}

// APIKey is a tenant's API key, stored as the SHA-256 of the key.
type APIKey struct {
	ID       authgate.APIKeyID
	TenantID authgate.TenantID
	Hash     []byte
	Name     string
	// Role is admin, service or user; UserID is a user key's end user.
	Role      authgate.Role
	UserID    string
	CreatedAt time.Time
	RevokedAt time.Time // zero: live
}

// Slot is what makes a credential unique.
type Slot struct {
	TenantID    authgate.TenantID
	UserID      string
	Provider    string
	WorkspaceID string
	Subject     string
}

// Credential is a stored credential row, secrets sealed.
type Credential struct {
	ID authgate.CredentialID
	Slot

	Email       string
	AccountType authgate.AccountType
	Domain      string

	GrantedScopes   []string
	RequestedScopes []string

	TokenType            string
	AccessToken          keyring.Sealed
	AccessTokenFP        string
	AccessTokenExpiresAt time.Time // zero: unknown
	RefreshToken         keyring.Sealed
	RefreshTokenFP       string

	Status       authgate.CredentialStatus
	StatusReason authgate.StatusReason
	Version      int64

	CreatedAt       time.Time
	UpdatedAt       time.Time
	LastUsedAt      time.Time // zero: never
	LastRefreshedAt time.Time // zero: never

	// ClockSkew is the provider's clock minus ours, measured at ClockSkewAt
	// from its Date header.
	ClockSkew   time.Duration
	ClockSkewAt time.Time

	// The last live verification (read-only here: see
	// CredentialSetVerified); LastVerifiedAt zero: never verified.
	LastVerifiedAt   time.Time
	LastVerdict      string
	LastVerification json.RawMessage

	// The refresh lease (read-only here: see CredentialLeaseAcquire).
	LeaseHolder    string
	LeaseExpiresAt time.Time

	// The in-doubt record of the last refresh sent (read-only here: see
	// CredentialSendMark); SendHolder "" when there is none.
	SendHolder    string
	SendRefreshFP string
	SendAt        time.Time
	SendDeadline  time.Time
}

// CredentialSetVerifiedParams is one verification's record.
type CredentialSetVerifiedParams struct {
	TenantID authgate.TenantID
	ID       authgate.CredentialID
	At       time.Time
	Verdict  string
	Result   json.RawMessage // a JSON object
}

// CredentialGetByIDParams selects one credential of one tenant.
type CredentialGetByIDParams struct {
	TenantID authgate.TenantID
	ID       authgate.CredentialID
}

// CredentialListParams filters and pages a tenant's credentials by id.
type CredentialListParams struct {
	TenantID authgate.TenantID
	// AllTenants lists every tenant's credentials (operator tools only); the
	// TenantID filter is then ignored.
	AllTenants bool
	UserID     string
	Provider   string
	Status     authgate.CredentialStatus
	AfterID    authgate.CredentialID
	Limit      int
}

// CredentialListSealedNotWithParams pages credentials needing re-encryption.
type CredentialListSealedNotWithParams struct {
	KeyID   string
	AfterID authgate.CredentialID
	Limit   int
}

// CredentialResealParams carries new ciphertexts for the same plaintexts.
// On success the stored version becomes Version+1.
type CredentialResealParams struct {
	ID           authgate.CredentialID
	Version      int64
	AccessToken  keyring.Sealed
	RefreshToken keyring.Sealed
}

// Event is a stored lifecycle event.
type Event struct {
	ID           int64 // set by EventInsert
	TenantID     authgate.TenantID
	CredentialID authgate.CredentialID
	Type         authgate.EventType
	At           time.Time
	Actor        string
	Details      json.RawMessage // a JSON object; nil stores {}
}

// EventListParams pages one credential's events, oldest first.
type EventListParams struct {
	TenantID     authgate.TenantID
	CredentialID authgate.CredentialID
	AfterID      int64
	Limit        int
}

// ClampLimit bounds a page size: non-positive means def, more than max means max.
func ClampLimit(limit, def, max int) int {
	if limit <= 0 {
		return def
	}
	if limit > max {
		return max
	}
	return limit
}
