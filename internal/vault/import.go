package vault

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/internal/secret"
	"github.com/authgate/authgate/internal/storage"
)

// ImportParams describes a credential obtained elsewhere (another system, a
// migration, a test) to store in its slot.
type ImportParams struct {
	TenantID    authgate.TenantID
	UserID      string
	Provider    string
	WorkspaceID string
	Subject     string
	Email       string
	AccountType authgate.AccountType
	Domain      string
	// Scopes are the granted scopes. Nil keeps the stored ones on re-import.
	Scopes       []string
	TokenType    string
	AccessToken  secret.Secret
	RefreshToken secret.Secret
	// ExpiresAt is when the access token expires; zero means unknown (the
	// refresher treats an unknown expiry as expired).
	ExpiresAt time.Time
	// Actor is recorded on the events ("api:key_…", "cli").
	Actor string
	// Source names where the tokens came from on events ("import", "connect").
	Source string
	// RequestedScopes are what was asked for (connect); nil uses Scopes.
	RequestedScopes []string
	// ClockSkew is the provider's clock minus ours at the token response,
	// when SkewKnown.
	ClockSkew time.Duration
	SkewKnown bool
	// ReconnectID, when set, must be the credential this identity lands in:
	// a different provider account is refused with *IdentityMismatchError
	// and the credential is left as it was (but for the event).
	ReconnectID authgate.CredentialID
	// FirstCheckAt, in ImportBatch only, is when the health sweep first
	// checks the credential, written in the import's transaction (a bulk
	// load of credentials verified elsewhere just now; the bench, whose
	// made-up tokens a check would rightly find invalid). Zero: the
	// planner spreads the first check over the sweep period.
	FirstCheckAt time.Time
}

// IdentityMismatchError is a reconnect that came back as another account.
type IdentityMismatchError struct {
	CredentialID      authgate.CredentialID
	Expected, Got     string // account labels (email or subject)
	ExpectedSubject   string // the provider's account ids, which tell apart
	GotSubject        string // two accounts that share an email
	ExpectedWorkspace string
	GotWorkspace      string
	event             *storage.Event
}

func (e *IdentityMismatchError) Error() string {
	return fmt.Sprintf("credential %s belongs to %s%s, but the provider signed in %s%s", e.CredentialID, e.Expected, wsLabel(e.ExpectedWorkspace), e.Got, wsLabel(e.GotWorkspace))
}

func wsLabel(ws string) string {
	if ws == "" {
		return ""
	}
	return " (workspace " + ws + ")"
}

// Field limits. Tokens are generous: Google reserves 2048 bytes for access
// tokens and 512 for refresh tokens; others are larger JWTs.
const (
	maxIDLen     = 255
	maxTokenLen  = 16 << 10
	maxScopes    = 200
	maxScopeLen  = 512
	maxEmailLen  = 320
	maxDomainLen = 253
)

var providerPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

// Validate checks p and returns every problem at once, as a ClassInvalidRequest error.
func (p *ImportParams) Validate() error {
	var errs []authgate.FieldError
	bad := func(field, format string, args ...any) {
		errs = append(errs, authgate.FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
	}
	text := func(field, v string, required bool, max int) {
		switch {
		case v == "" && required:
			bad(field, "is required")
		case len(v) > max:
			bad(field, "is longer than %d bytes", max)
		case !utf8.ValidString(v) || strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }):
			bad(field, "must be printable UTF-8 text")
		}
	}
	text("user_id", p.UserID, true, maxIDLen)
	if p.Provider == "" {
		bad("provider", "is required")
	} else if !providerPattern.MatchString(p.Provider) {
		bad("provider", "must be 1-64 of a-z 0-9 _ - (e.g. google, notion, slack)")
	}
	text("workspace_id", p.WorkspaceID, false, maxIDLen)
	text("subject", p.Subject, true, maxIDLen)
	text("email", p.Email, false, maxEmailLen)
	if p.Email != "" && !strings.Contains(p.Email, "@") {
		bad("email", "must be an email address")
	}
	text("domain", p.Domain, false, maxDomainLen)
	if !p.AccountType.Valid() {
		bad("account_type", "must be consumer or workspace")
	}
	text("token_type", p.TokenType, false, 32)
	if p.AccessToken.IsZero() && p.RefreshToken.IsZero() {
		bad("access_token", "an access_token or a refresh_token is required")
	}
	for _, f := range []struct {
		name string
		s    secret.Secret
	}{{"access_token", p.AccessToken}, {"refresh_token", p.RefreshToken}} {
		if len(f.s.Reveal()) > maxTokenLen {
			bad(f.name, "is longer than %d bytes", maxTokenLen)
		} else if strings.ContainsFunc(f.s.Reveal(), func(r rune) bool { return r <= 0x20 || r == 0x7f }) {
			bad(f.name, "must not contain spaces or control characters")
		}
	}
	if len(p.Scopes) > maxScopes {
		bad("scopes", "has more than %d entries", maxScopes)
	}
	for i, s := range p.Scopes {
		if s == "" || len(s) > maxScopeLen || strings.ContainsFunc(s, func(r rune) bool { return r <= 0x20 || r == 0x7f }) {
			bad(fmt.Sprintf("scopes[%d]", i), "must be a non-empty scope without spaces, at most %d bytes", maxScopeLen)
		}
	}
	if len(errs) == 0 {
		return nil
	}
	e := authgate.Errorf(authgate.ClassInvalidRequest, "%s %s", errs[0].Field, errs[0].Message)
	if len(errs) > 1 {
		e.Detail += fmt.Sprintf(" (and %d more problems)", len(errs)-1)
	}
	e.Errors = errs
	return e
}

// Import stores a credential in its (tenant, user, provider, workspace,
// subject) slot. A new slot gets a new credential and a `token_issued` event.
// An occupied slot keeps its id: the tokens are replaced (a missing refresh
// token keeps the stored one), the status becomes active, and the events say
// what changed (`token_issued`, plus `scopes_changed` and `reconnected` when
// they apply). created reports which case it was.
func (v *Vault) Import(ctx context.Context, p ImportParams) (cred authgate.Credential, created bool, err error) {
	if p.TokenType == "" {
		p.TokenType = "Bearer"
	}
	if p.Source == "" {
		p.Source = "import"
	}
	if err := p.Validate(); err != nil {
		return authgate.Credential{}, false, err
	}
	if p.Scopes != nil {
		p.Scopes = normalizeScopes(p.Scopes)
	}
	// Two importers racing for one new slot: the loser's insert conflicts;
	// once more and it finds the winner's row and updates it.
	for attempt := 0; ; attempt++ {
		err = v.store.Tx(ctx, func(q storage.Queries) error {
			var err error
			cred, created, err = v.importTx(ctx, q, p)
			return err
		})
		if attempt < 3 && (errors.Is(err, storage.ErrConflict) || errors.Is(err, storage.ErrVersionConflict)) {
			continue
		}
		// The refusal rolled the transaction back; its event still belongs
		// in the credential's history.
		var mm *IdentityMismatchError
		if errors.As(err, &mm) && mm.event != nil {
			if eerr := v.store.EventInsert(ctx, mm.event); eerr != nil {
				return cred, false, errors.Join(err, eerr)
			}
		}
		return cred, created, err
	}
}

func (v *Vault) importTx(ctx context.Context, q storage.Queries, p ImportParams) (authgate.Credential, bool, error) {
	now := v.now()
	slot := storage.Slot{TenantID: p.TenantID, UserID: p.UserID, Provider: p.Provider, WorkspaceID: p.WorkspaceID, Subject: p.Subject}
	if p.ReconnectID != "" {
		x, err := v.get(ctx, q, p.TenantID, p.ReconnectID)
		if err != nil {
			return authgate.Credential{}, false, err
		}
		if x.Subject != p.Subject || x.WorkspaceID != p.WorkspaceID || x.Provider != p.Provider || x.UserID != p.UserID {
			mm := &IdentityMismatchError{CredentialID: x.ID, Expected: cmp.Or(x.Email, x.Subject), Got: cmp.Or(p.Email, p.Subject),
				ExpectedSubject: x.Subject, GotSubject: p.Subject, ExpectedWorkspace: x.WorkspaceID, GotWorkspace: p.WorkspaceID}
			mm.event = &storage.Event{TenantID: p.TenantID, CredentialID: x.ID, Type: authgate.EventIdentityMismatch, At: now, Actor: p.Actor,
				Details: eventDetails(map[string]any{"expected_subject": x.Subject, "expected_account": mm.Expected, "got_subject": p.Subject, "got_account": mm.Got,
					"expected_workspace": x.WorkspaceID, "got_workspace": p.WorkspaceID, "got_access_token_fp": p.AccessToken.Fingerprint()})}
			return Public(x), false, mm
		}
	}
	rec, err := q.CredentialGetBySlot(ctx, slot)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		id := authgate.NewCredentialID()
		rec = &storage.Credential{
			ID: id, Slot: slot, Email: p.Email, AccountType: p.AccountType, Domain: p.Domain,
			GrantedScopes: nonNil(p.Scopes), RequestedScopes: nonNil(cmpOrSlice(p.RequestedScopes, p.Scopes)), TokenType: p.TokenType,
			AccessToken: v.seal(id, FieldAccessToken, p.AccessToken), AccessTokenFP: p.AccessToken.Fingerprint(),
			AccessTokenExpiresAt: p.ExpiresAt.UTC(),
			RefreshToken:         v.seal(id, FieldRefreshToken, p.RefreshToken), RefreshTokenFP: p.RefreshToken.Fingerprint(),
			Status: authgate.CredentialStatusActive, Version: 1, CreatedAt: now, UpdatedAt: now,
		}
		if p.SkewKnown {
			rec.ClockSkew, rec.ClockSkewAt = p.ClockSkew, now
		}
		if err := q.CredentialInsert(ctx, rec); err != nil {
			return authgate.Credential{}, false, err
		}
		err = q.EventInsert(ctx, &storage.Event{TenantID: p.TenantID, CredentialID: id, Type: authgate.EventTokenIssued, At: now, Actor: p.Actor,
			Details: eventDetails(map[string]any{
				"source": p.Source, "access_token_fp": rec.AccessTokenFP, "refresh_token_fp": rec.RefreshTokenFP,
				"has_refresh_token": !p.RefreshToken.IsZero(), "granted_scopes": rec.GrantedScopes, "expires_at": expiry(rec.AccessTokenExpiresAt),
			})})
		return Public(rec), true, err
	case err != nil:
		return authgate.Credential{}, false, err
	}

	prevStatus, prevReason, prevScopes := rec.Status, rec.StatusReason, rec.GrantedScopes
	rec.Email = cmp.Or(p.Email, rec.Email)
	rec.AccountType = cmp.Or(p.AccountType, rec.AccountType)
	rec.Domain = cmp.Or(p.Domain, rec.Domain)
	rec.TokenType = p.TokenType
	if p.Scopes != nil {
		rec.GrantedScopes = p.Scopes
		rec.RequestedScopes = normalizeScopes(append(slices.Clone(rec.RequestedScopes), cmpOrSlice(p.RequestedScopes, p.Scopes)...))
	}
	rec.AccessToken, rec.AccessTokenFP = v.seal(rec.ID, FieldAccessToken, p.AccessToken), p.AccessToken.Fingerprint()
	rec.AccessTokenExpiresAt = p.ExpiresAt.UTC()
	keptRefresh := p.RefreshToken.IsZero() && !rec.RefreshToken.IsZero()
	if !p.RefreshToken.IsZero() {
		rec.RefreshToken, rec.RefreshTokenFP = v.seal(rec.ID, FieldRefreshToken, p.RefreshToken), p.RefreshToken.Fingerprint()
	}
	rec.Status, rec.StatusReason = authgate.CredentialStatusActive, authgate.StatusReasonNone
	rec.UpdatedAt = now
	if p.SkewKnown {
		rec.ClockSkew, rec.ClockSkewAt = p.ClockSkew, now
	}
	if err := q.CredentialUpdateCAS(ctx, rec); err != nil {
		return authgate.Credential{}, false, err
	}
	insert := func(typ authgate.EventType, d map[string]any) error {
		return q.EventInsert(ctx, &storage.Event{TenantID: p.TenantID, CredentialID: rec.ID, Type: typ, At: now, Actor: p.Actor, Details: eventDetails(d)})
	}
	if err := insert(authgate.EventTokenIssued, map[string]any{
		"source": p.Source, "reimport": p.Source == "import", "access_token_fp": rec.AccessTokenFP, "refresh_token_fp": rec.RefreshTokenFP,
		"refresh_token_kept": keptRefresh, "granted_scopes": rec.GrantedScopes, "expires_at": expiry(rec.AccessTokenExpiresAt),
	}); err != nil {
		return authgate.Credential{}, false, err
	}
	if added, removed := diffScopes(prevScopes, rec.GrantedScopes); len(added)+len(removed) > 0 {
		if err := insert(authgate.EventScopesChanged, map[string]any{"added": added, "removed": removed, "granted_scopes": rec.GrantedScopes}); err != nil {
			return authgate.Credential{}, false, err
		}
	}
	if prevStatus != authgate.CredentialStatusActive {
		if err := insert(authgate.EventReconnected, map[string]any{"previous_status": prevStatus, "previous_reason": prevReason, "source": p.Source}); err != nil {
			return authgate.Credential{}, false, err
		}
	}
	out := Public(rec)
	if err := v.changed(ctx, q, Change{Credential: out, From: prevStatus, Renewed: true, Actor: p.Actor}); err != nil {
		return authgate.Credential{}, false, err
	}
	return out, false, nil
}

func cmpOrSlice(a, b []string) []string {
	if a != nil {
		return a
	}
	return b
}

func expiry(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Format(time.RFC3339)
}

// normalizeScopes sorts and de-duplicates, so comparisons and diffs are stable.
func normalizeScopes(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return slices.Compact(out)
}

// diffScopes returns the scopes in after but not before, and the reverse.
func diffScopes(before, after []string) (added, removed []string) {
	for _, s := range after {
		if !slices.Contains(before, s) {
			added = append(added, s)
		}
	}
	for _, s := range before {
		if !slices.Contains(after, s) {
			removed = append(removed, s)
		}
	}
	return added, removed
}
