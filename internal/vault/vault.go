// Package vault is the credential store in domain terms: it validates,
// encrypts and decrypts credentials, and makes every state change together
// with its lifecycle event in one transaction.
//
// Secrets are sealed with the keyring, bound to (credential id, field name),
// before they reach storage, and come back as secret.Secret. The vault never
// logs a plaintext and never returns one except through Load, whose callers
// (the refresher, the token API) are the only ones that need it.
package vault

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/internal/clock"
	"github.com/authgate/authgate/internal/keyring"
	"github.com/authgate/authgate/internal/secret"
	"github.com/authgate/authgate/internal/storage"
)

// Secret field names; with the credential id they form the associated data
// every ciphertext is bound to.
const (
	FieldAccessToken  = "access_token"
	FieldRefreshToken = "refresh_token"
)

// Vault stores credentials. It is safe for concurrent use.
type Vault struct {
	store storage.Store
	keys  Keys
	clock clock.Clock
	// onChange, when set, runs in the transaction of every status change.
	onChange func(ctx context.Context, q storage.Queries, ch Change) error
}

// Change is a credential's status change (or its renewal by the user), as
// a hook sees it inside the transaction that makes it.
type Change struct {
	Credential authgate.Credential // after the change
	From       authgate.CredentialStatus
	// Renewed: the user connected again or the credential was re-imported
	// (new tokens and grant from outside), whatever the status was before.
	Renewed bool
	// Revocation: the provider said the grant is gone (invalid_grant or a
	// revocation), as opposed to a scope or policy problem.
	Revocation bool
	Actor      string
}

// OnChange sets fn to run inside the transaction of every credential status
// change and renewal, after the row and its events are written: what must
// happen exactly once per change (webhook deliveries, resuming blocked
// runs) is enqueued there, so it commits or rolls back with the change. An
// error from fn rolls the change back. Set it before the vault is used.
func (v *Vault) OnChange(fn func(ctx context.Context, q storage.Queries, ch Change) error) {
	v.onChange = fn
}

func (v *Vault) changed(ctx context.Context, q storage.Queries, ch Change) error {
	if v.onChange == nil {
		return nil
	}
	return v.onChange(ctx, q, ch)
}

// Keys seals and opens secrets: a *keyring.Keyring, or a *keyring.Source
// that follows its key file.
type Keys interface {
	Seal(plaintext, ad []byte) keyring.Sealed
	Open(s keyring.Sealed, ad []byte) ([]byte, error)
	Primary() string
}

var (
	_ Keys = (*keyring.Keyring)(nil)
	_ Keys = (*keyring.Source)(nil)
)

// New returns a vault over store, sealing with keys and telling time with clk.
func New(store storage.Store, keys Keys, clk clock.Clock) *Vault {
	if clk == nil {
		clk = clock.Real{}
	}
	return &Vault{store: store, keys: keys, clock: clk}
}

// AssociatedData is what a credential field's ciphertext is bound to.
func AssociatedData(id authgate.CredentialID, field string) []byte {
	return []byte("authgate/v1\x00" + string(id) + "\x00" + field)
}

func (v *Vault) seal(id authgate.CredentialID, field string, s secret.Secret) keyring.Sealed {
	if s.IsZero() {
		return keyring.Sealed{}
	}
	return v.keys.Seal([]byte(s.Reveal()), AssociatedData(id, field))
}

func (v *Vault) open(id authgate.CredentialID, field string, s keyring.Sealed) (secret.Secret, error) {
	if s.IsZero() {
		return secret.Secret{}, nil
	}
	pt, err := v.keys.Open(s, AssociatedData(id, field))
	if err != nil {
		// An operator problem (missing key, moved ciphertext): say which key
		// or which field, which are not secrets, instead of a bare 500.
		return secret.Secret{}, authgate.Errorf(authgate.ClassInternal, "cannot decrypt %s of %s: %s", field, id, err.Error()).WithCause(err)
	}
	return secret.New(string(pt)), nil
}

// Loaded is a credential with its secrets decrypted.
type Loaded struct {
	authgate.Credential
	AccessToken  secret.Secret
	RefreshToken secret.Secret
	// The refresh lease as stored (the refresher waits on it).
	LeaseHolder    string
	LeaseExpiresAt time.Time
	// The in-doubt record of the last refresh sent (see
	// storage.CredentialSendMark): a takeover never presents SendRefreshFP
	// again before SendDeadline.
	SendHolder    string
	SendRefreshFP string
	SendDeadline  time.Time
}

// Get returns a credential's metadata (no decryption).
func (v *Vault) Get(ctx context.Context, tenant authgate.TenantID, id authgate.CredentialID) (authgate.Credential, error) {
	rec, err := v.get(ctx, v.store, tenant, id)
	if err != nil {
		return authgate.Credential{}, err
	}
	return Public(rec), nil
}

// Load returns a credential with its tokens decrypted. A ciphertext sealed
// with a key this process lacks, or moved from another row, is an error that
// says so; it never yields a wrong token.
func (v *Vault) Load(ctx context.Context, tenant authgate.TenantID, id authgate.CredentialID) (*Loaded, error) {
	rec, err := v.get(ctx, v.store, tenant, id)
	if err != nil {
		return nil, err
	}
	return v.decrypt(rec)
}

// LoadAccess is Load without decrypting the refresh token: the token API's
// hot path needs only the access token. RefreshToken stays empty.
func (v *Vault) LoadAccess(ctx context.Context, tenant authgate.TenantID, id authgate.CredentialID) (*Loaded, error) {
	rec, err := v.get(ctx, v.store, tenant, id)
	if err != nil {
		return nil, err
	}
	at, err := v.open(rec.ID, FieldAccessToken, rec.AccessToken)
	if err != nil {
		return nil, err
	}
	return &Loaded{Credential: Public(rec), AccessToken: at, LeaseHolder: rec.LeaseHolder, LeaseExpiresAt: rec.LeaseExpiresAt,
		SendHolder: rec.SendHolder, SendRefreshFP: rec.SendRefreshFP, SendDeadline: rec.SendDeadline}, nil
}

func (v *Vault) decrypt(rec *storage.Credential) (*Loaded, error) {
	at, err := v.open(rec.ID, FieldAccessToken, rec.AccessToken)
	if err != nil {
		return nil, err
	}
	rt, err := v.open(rec.ID, FieldRefreshToken, rec.RefreshToken)
	if err != nil {
		return nil, err
	}
	return &Loaded{Credential: Public(rec), AccessToken: at, RefreshToken: rt, LeaseHolder: rec.LeaseHolder, LeaseExpiresAt: rec.LeaseExpiresAt,
		SendHolder: rec.SendHolder, SendRefreshFP: rec.SendRefreshFP, SendDeadline: rec.SendDeadline}, nil
}

func (v *Vault) get(ctx context.Context, q storage.Queries, tenant authgate.TenantID, id authgate.CredentialID) (*storage.Credential, error) {
	if !id.Valid() {
		return nil, authgate.Errorf(authgate.ClassInvalidRequest, "%q is not a credential id (they look like cred_ followed by 26 letters and digits)", truncate(string(id), 64))
	}
	rec, err := q.CredentialGetByID(ctx, storage.CredentialGetByIDParams{TenantID: tenant, ID: id})
	if errors.Is(err, storage.ErrNotFound) {
		return nil, authgate.Errorf(authgate.ClassNotFound, "no credential %s", id).WithCause(err)
	}
	if err != nil {
		return nil, fmt.Errorf("get credential %s: %w", id, err)
	}
	return rec, nil
}

// ListParams filters a tenant's credentials.
type ListParams struct {
	TenantID   authgate.TenantID
	AllTenants bool // operator tools only
	UserID     string
	Provider   string
	Status     authgate.CredentialStatus
	After      authgate.CredentialID
	Limit      int
}

// List returns one page of credentials ordered by id, and the id to continue
// after when the page is full.
func (v *Vault) List(ctx context.Context, p ListParams) ([]authgate.Credential, authgate.CredentialID, error) {
	if p.Status != "" && !p.Status.Valid() {
		return nil, "", authgate.Errorf(authgate.ClassInvalidRequest, "status must be one of active, reauth_required, revoked")
	}
	if p.After != "" && !p.After.Valid() {
		return nil, "", authgate.Errorf(authgate.ClassInvalidRequest, "after must be a credential id")
	}
	limit := storage.ClampLimit(p.Limit, 100, 1000)
	recs, err := v.store.CredentialList(ctx, storage.CredentialListParams{
		TenantID: p.TenantID, AllTenants: p.AllTenants, UserID: p.UserID, Provider: p.Provider, Status: p.Status, AfterID: p.After, Limit: limit,
	})
	if err != nil {
		return nil, "", fmt.Errorf("list credentials: %w", err)
	}
	out := make([]authgate.Credential, len(recs))
	for i, r := range recs {
		out[i] = Public(r)
	}
	var next authgate.CredentialID
	if len(recs) == limit {
		next = recs[len(recs)-1].ID
	}
	return out, next, nil
}

// Events returns one page of a credential's lifecycle events, oldest first.
// An unknown credential (or another tenant's) is ClassNotFound.
func (v *Vault) Events(ctx context.Context, tenant authgate.TenantID, id authgate.CredentialID, after int64, limit int) ([]authgate.Event, int64, error) {
	if _, err := v.get(ctx, v.store, tenant, id); err != nil {
		return nil, 0, err
	}
	limit = storage.ClampLimit(limit, 100, 1000)
	evs, err := v.store.EventList(ctx, storage.EventListParams{TenantID: tenant, CredentialID: id, AfterID: after, Limit: limit})
	if err != nil {
		return nil, 0, fmt.Errorf("list events of %s: %w", id, err)
	}
	out := make([]authgate.Event, len(evs))
	for i, e := range evs {
		out[i] = authgate.Event{ID: e.ID, CredentialID: e.CredentialID, Type: e.Type, At: e.At, Actor: e.Actor, Details: e.Details}
	}
	var next int64
	if len(evs) == limit {
		next = evs[len(evs)-1].ID
	}
	return out, next, nil
}

// Revoke disconnects a credential on purpose: status revoked (reason
// disconnected), tokens erased, a `disconnected` event recording the erased
// tokens' fingerprints. Revoking a revoked credential changes nothing.
// (Calling the provider's revocation endpoint first is the broker's job.)
func (v *Vault) Revoke(ctx context.Context, tenant authgate.TenantID, id authgate.CredentialID, actor string) (authgate.Credential, error) {
	return v.RevokeWith(ctx, tenant, id, actor, RevokeOptions{})
}

// RevokeOptions records what happened at the provider before a revoke.
type RevokeOptions struct {
	ProviderCalled  bool
	ProviderRevoked bool
	ProviderError   string
}

// RevokeWith is Revoke with the provider-side outcome on the event.
func (v *Vault) RevokeWith(ctx context.Context, tenant authgate.TenantID, id authgate.CredentialID, actor string, opts RevokeOptions) (authgate.Credential, error) {
	var out authgate.Credential
	err := v.store.Tx(ctx, func(q storage.Queries) error {
		rec, err := v.get(ctx, q, tenant, id)
		if err != nil {
			return err
		}
		if rec.Status == authgate.CredentialStatusRevoked {
			out = Public(rec)
			return nil
		}
		details := eventDetails(map[string]any{
			"previous_status":   rec.Status,
			"access_token_fp":   rec.AccessTokenFP,
			"refresh_token_fp":  rec.RefreshTokenFP,
			"tokens_erased":     true,
			"provider_called":   opts.ProviderCalled,
			"provider_revoked":  opts.ProviderRevoked,
			"provider_error":    opts.ProviderError,
			"previous_reason":   rec.StatusReason,
			"granted_scopes":    rec.GrantedScopes,
			"account_subject":   rec.Subject,
			"account_email":     rec.Email,
			"provider":          rec.Provider,
			"workspace_id":      rec.WorkspaceID,
			"credential_status": authgate.CredentialStatusRevoked,
		})
		now, prev := v.now(), rec.Status
		rec.Status, rec.StatusReason = authgate.CredentialStatusRevoked, authgate.StatusReasonDisconnected
		rec.AccessToken, rec.AccessTokenFP, rec.AccessTokenExpiresAt = keyring.Sealed{}, "", time.Time{}
		rec.RefreshToken, rec.RefreshTokenFP = keyring.Sealed{}, ""
		rec.UpdatedAt = now
		if err := q.CredentialUpdateCAS(ctx, rec); err != nil {
			return err
		}
		if err := q.EventInsert(ctx, &storage.Event{TenantID: tenant, CredentialID: id, Type: authgate.EventDisconnected, At: now, Actor: actor, Details: details}); err != nil {
			return err
		}
		out = Public(rec)
		return v.changed(ctx, q, Change{Credential: out, From: prev, Actor: actor})
	})
	return out, err
}

// Public converts a stored row into the credential metadata callers see.
func Public(r *storage.Credential) authgate.Credential {
	c := authgate.Credential{
		ID: r.ID, TenantID: r.TenantID, UserID: r.UserID, Provider: r.Provider, WorkspaceID: r.WorkspaceID,
		Account:                 authgate.Account{Subject: r.Subject, Email: r.Email, Type: r.AccountType, Domain: r.Domain},
		GrantedScopes:           nonNil(r.GrantedScopes),
		RequestedScopes:         nonNil(r.RequestedScopes),
		TokenType:               r.TokenType,
		AccessTokenFingerprint:  r.AccessTokenFP,
		HasRefreshToken:         !r.RefreshToken.IsZero(),
		RefreshTokenFingerprint: r.RefreshTokenFP,
		Status:                  r.Status,
		StatusReason:            r.StatusReason,
		Version:                 r.Version,
		CreatedAt:               r.CreatedAt,
		UpdatedAt:               r.UpdatedAt,
		AccessTokenExpiresAt:    timePtr(r.AccessTokenExpiresAt),
		LastUsedAt:              timePtr(r.LastUsedAt),
		LastRefreshedAt:         timePtr(r.LastRefreshedAt),
	}
	c.Connector = authgate.ConnectorStateOf(r.Status, r.StatusReason, timePtr(r.LastVerifiedAt), authgate.Verdict(r.LastVerdict))
	if !r.ClockSkewAt.IsZero() {
		skew := r.ClockSkew.Seconds()
		c.ClockSkewSeconds, c.ClockSkewAt = &skew, timePtr(r.ClockSkewAt)
	}
	return c
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return slices.Clone(s)
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// eventDetails marshals event details; values are fingerprints, ids and
// provider facts, never secrets.
func eventDetails(m map[string]any) json.RawMessage {
	for k, v := range m {
		if s, ok := v.(string); ok && s == "" {
			delete(m, k)
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		// Only plain values go in; a failure here is a programming error
		// that must not lose the state change, so record that instead.
		return json.RawMessage(`{"details_error":"unmarshallable details"}`)
	}
	return b
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// now is the clock's time at the precision storage keeps (microseconds), so
// what Import returns equals what a later Get reads.
func (v *Vault) now() time.Time { return v.clock.Now().UTC().Truncate(time.Microsecond) }
