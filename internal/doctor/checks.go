package doctor

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/internal/catalog"
	"github.com/authgate/authgate/internal/storage"
	"github.com/authgate/authgate/internal/vault"
)

const (
	pass = authgate.CheckPass
	warn = authgate.CheckWarn
	fail = authgate.CheckFail
)

// googleIssuanceLimit is Google's live refresh tokens per client+account.
const googleIssuanceLimit = 100

// newerConsents counts consents for the same client and provider account,
// on other credentials of the tenant, after this credential's refresh token
// was issued: each mints a refresh token, and past the provider's limit the
// oldest (this one) stops working.
func (g *diag) newerConsents(ctx context.Context) (newer, total int) {
	var issued time.Time
	for _, e := range g.events {
		if e.Type == authgate.EventTokenIssued && (g.cred.RefreshTokenFingerprint == "" || info(e).RefreshFP == g.cred.RefreshTokenFingerprint) {
			issued = e.At
		}
	}
	var after authgate.CredentialID
	for {
		page, next, err := g.d.cfg.Vault.List(ctx, vault.ListParams{TenantID: g.tenant, Provider: g.cred.Provider, After: after, Limit: 500})
		if err != nil {
			return newer, total
		}
		for _, c := range page {
			if c.ID == g.cred.ID || c.Account.Subject != g.cred.Account.Subject {
				continue
			}
			evs, err := g.d.allEvents(ctx, g.tenant, c.ID)
			if err != nil {
				continue
			}
			for _, e := range evs {
				if e.Type != authgate.EventTokenIssued || info(e).RefreshFP == "" || info(e).RefreshKept {
					continue
				}
				if g.d.cfg.Clock.Now().Sub(e.At) < g.d.cfg.ConsentWindow {
					total++
				}
				if !issued.IsZero() && e.At.After(issued) {
					newer++
				}
			}
		}
		if next == "" {
			return newer, total
		}
		after = next
	}
}

// lifecycleCause decides what "reauth required" means for this credential.
func (g *diag) lifecycleCause(ctx context.Context) {
	switch g.cred.StatusReason {
	case authgate.StatusReasonIdentityMismatch:
		g.reauth = authgate.CauseWrongPrincipal
		return
	case authgate.StatusReasonNoRefreshToken:
		g.reauth = authgate.CauseNoRefreshToken
		return
	case authgate.StatusReasonAdminPolicy:
		g.reauth = authgate.CauseAdminPolicy
		return
	case authgate.StatusReasonScopeRemoved:
		g.reauth = authgate.CauseMissingScope
		return
	}
	if !g.cred.HasRefreshToken && g.cred.Status == authgate.CredentialStatusActive && expires(g.p) {
		g.reauth = authgate.CauseNoRefreshToken
		return
	}
	if newer, _ := g.newerConsents(ctx); newer > 0 {
		g.reauth = authgate.CauseIssuanceLimit
		return
	}
	g.reauth = authgate.CauseRevoked
}

// causeOf maps a failed provider call's class to a cause.
func (g *diag) causeOf(c authgate.Class) authgate.DiagnosisCause {
	switch c {
	case authgate.ClassReauthRequired:
		return g.reauth
	case authgate.ClassInsufficientScope:
		return authgate.CauseMissingScope
	case authgate.ClassAdminPolicy:
		return authgate.CauseAdminPolicy
	case authgate.ClassNotSharedOrNotFound:
		return authgate.CauseNotShared
	case authgate.ClassClientMisconfigured:
		return authgate.CauseClientMisconfigured
	case authgate.ClassTransient, authgate.ClassRateLimited:
		return authgate.CauseProviderOutage
	}
	return ""
}

var identityChecks = []string{"google.userinfo", "notion.users_me", "slack.auth_test", "identity_matches_stored"}

// repro: the connector's minimal checks, one provider call each.
func (g *diag) repro() {
	if g.ver == nil {
		g.add(authgate.SectionRepro, "minimal_repro", warn, "", "not run: the doctor opened the database directly and calls no provider",
			"Run it against the server (AUTHGATE_URL and AUTHGATE_API_KEY) for the live checks.")
		return
	}
	sawMe := false
	for _, c := range g.ver.Checks {
		section := authgate.SectionRepro
		if slices.Contains(identityChecks, c.Name) {
			section = authgate.SectionIdentity
		}
		if c.Name == "notion.users_me" && c.Status == pass {
			sawMe = true
		}
		ev := c.Detail
		if c.HTTPStatus != 0 {
			ev += fmt.Sprintf(" [HTTP %d", c.HTTPStatus)
			if c.ProviderRequestID != "" {
				ev += ", request " + c.ProviderRequestID
			}
			ev += "]"
		}
		fix := c.Fix
		if sawMe && c.Class == authgate.ClassNotSharedOrNotFound && strings.HasPrefix(c.Name, "notion.") {
			ev = "users/me works but the target answers object_not_found: almost certainly not shared with the integration. " + ev
		}
		cause := authgate.DiagnosisCause("")
		if c.Status == fail {
			cause = g.causeOf(c.Class)
			if c.Name == "identity_matches_stored" {
				cause = authgate.CauseWrongPrincipal
			}
			if c.Class == authgate.ClassReauthRequired {
				fix = g.reauthFix()
			}
		}
		f := finding{DiagnosisCheck: authgate.DiagnosisCheck{Section: section, Name: c.Name, Status: c.Status, Evidence: ev, Fix: fix, Class: c.Class}, cause: cause}
		g.found = append(g.found, f)
	}
}

func (g *diag) reauthFix() string {
	name := g.p.DisplayName
	switch g.reauth {
	case authgate.CauseNoRefreshToken:
		return fmt.Sprintf("Reconnect %s with offline access forced (the reconnect link asks for consent again so %s issues a refresh token).", name, name)
	case authgate.CauseIssuanceLimit:
		return fmt.Sprintf("Reconnect %s once, then stop whatever keeps forcing new consents for this account (each one mints a refresh token; past the limit the oldest dies).", name)
	case authgate.CauseWrongPrincipal:
		return fmt.Sprintf("Reconnect %s signed in as %s.", name, cmp.Or(g.cred.Account.Email, g.cred.Account.Subject))
	case authgate.CauseRevoked:
		return fmt.Sprintf("Ask the user to reconnect %s: the grant was revoked or expired at the provider.", name)
	}
	return fmt.Sprintf("Reconnect %s.", name)
}

// identity: who the provider says the token is, against what is stored.
func (g *diag) identity() {
	stored := fmt.Sprintf("stored: subject %s, %s", g.cred.Account.Subject, cmp.Or(g.cred.Account.Email, "no email"))
	if g.cred.Account.Domain != "" {
		stored += ", domain " + g.cred.Account.Domain
	}
	if g.cred.WorkspaceID != "" {
		stored += ", workspace " + g.cred.WorkspaceID
	}
	stored += ", account type " + cmp.Or(string(g.cred.Account.Type), "unknown")
	if g.ver == nil || g.ver.Identity.Subject == "" && g.ver.Identity.Label == "" {
		g.out.Identity = authgate.VerifiedIdentity{Subject: g.cred.Account.Subject, Email: g.cred.Account.Email, Domain: g.cred.Account.Domain,
			Workspace: g.cred.WorkspaceID, AccountType: g.cred.Account.Type, Label: cmp.Or(g.cred.Account.Email, g.cred.Account.Subject)}
		g.out.IdentityMatchesStored = g.cred.StatusReason != authgate.StatusReasonIdentityMismatch
		st, fix := warn, ""
		if !g.out.IdentityMatchesStored {
			st, fix = fail, g.reauthFix()
		}
		g.add(authgate.SectionIdentity, "identity", st, cmp.Or(g.reauthIf(!g.out.IdentityMatchesStored), ""), stored+"; not confirmed live", fix)
		return
	}
	g.out.Identity, g.out.IdentityMatchesStored = g.ver.Identity, g.ver.IdentityMatchesStored
	live := fmt.Sprintf("live: %s (subject %s", g.ver.Identity.Label, g.ver.Identity.Subject)
	if g.ver.Identity.Domain != "" {
		live += ", domain " + g.ver.Identity.Domain
	}
	live += ", account type " + cmp.Or(string(g.ver.Identity.AccountType), "unknown") + ")"
	if g.ver.IdentityMatchesStored {
		g.add(authgate.SectionIdentity, "identity", pass, "", live+"; matches "+stored, "")
		return
	}
	g.add(authgate.SectionIdentity, "wrong_principal", fail, authgate.CauseWrongPrincipal, live+"; does NOT match "+stored, g.reauthFix())
}

func (g *diag) reauthIf(b bool) authgate.DiagnosisCause {
	if b {
		return authgate.CauseWrongPrincipal
	}
	return ""
}

// scopes: requested, granted, required, missing.
func (g *diag) scopes() {
	s := authgate.DiagnosisScopes{Requested: nonNil(g.cred.RequestedScopes), Granted: nonNil(g.cred.GrantedScopes), Required: []string{}, Missing: []string{}}
	if g.ver != nil {
		s.Granted, s.Required, s.Missing = nonNil(g.ver.Scopes.Granted), nonNil(g.ver.Scopes.Required), nonNil(g.ver.Scopes.Missing)
	} else {
		// Offline: what was asked for and not granted, by the provider's
		// own names (Google grants "email" as ".../userinfo.email").
		s.Missing = nonNil(g.p.Ungranted(s.Requested, s.Granted))
	}
	g.out.Scopes = s
	ev := fmt.Sprintf("requested %d, granted %d, required %d", len(s.Requested), len(s.Granted), len(s.Required))
	if len(s.Missing) == 0 {
		g.add(authgate.SectionScopes, "scope_diff", pass, "", ev+"; nothing missing", "")
	} else {
		g.add(authgate.SectionScopes, "scope_diff", fail, authgate.CauseMissingScope, ev+"; missing "+strings.Join(s.Missing, " "),
			fmt.Sprintf("Reconnect %s and allow exactly %s (the reconnect link asks for them).", g.p.DisplayName, strings.Join(s.Missing, ", ")))
	}
	if g.ver != nil && g.ver.ReconnectURL != "" {
		g.out.ReconnectURL = g.ver.ReconnectURL
	}
}

// lifecycle: the patterns in the credential's events that explain failures.
func (g *diag) lifecycle(ctx context.Context) {
	now := g.d.cfg.Clock.Now()
	var issuedAt []time.Time
	var failAges []time.Duration
	var invalidGrantAt, recoveredAt time.Time
	actorsOK, actorsFail := map[string]int{}, map[string]int{}
	var lastIssue time.Time
	// Events come in commit order, so "a success after the revocation" is
	// read from the order, not from timestamps (two can share an instant).
	invalidGrantIdx, recoveredIdx := -1, -1
	for idx, e := range g.events {
		i := info(e)
		switch e.Type {
		case authgate.EventTokenIssued, authgate.EventReconnected:
			recoveredIdx, recoveredAt = idx, e.At
			if e.Type == authgate.EventReconnected || i.RefreshKept {
				break
			}
			issuedAt = append(issuedAt, e.At)
			lastIssue = e.At
		case authgate.EventRefreshSucceeded:
			actorsOK[e.Actor]++
			recoveredIdx, recoveredAt = idx, e.At
		case authgate.EventRefreshFailed:
			actorsFail[e.Actor]++
			if !lastIssue.IsZero() {
				failAges = append(failAges, e.At.Sub(lastIssue))
			}
		case authgate.EventRevokedDetected:
			invalidGrantAt, invalidGrantIdx = e.At, idx
		}
	}
	// A revocation followed by a newer consent or refresh on a credential
	// that is active again is history: the verdict is about the credential
	// as it is now, so it is reported here and blames nothing.
	revocationHealed := invalidGrantIdx >= 0 && recoveredIdx > invalidGrantIdx && g.cred.Status == authgate.CredentialStatusActive
	sec := authgate.SectionLifecycle
	g.add(sec, "events", pass, "", fmt.Sprintf("%d events; %d consents/issuances, %d refreshes succeeded, %d failed", len(g.events), len(issuedAt), sum(actorsOK), sum(actorsFail)), "")

	// No refresh token: it works about an hour, then every refresh fails.
	if !g.cred.HasRefreshToken && g.cred.Status != authgate.CredentialStatusRevoked && expires(g.p) || g.cred.StatusReason == authgate.StatusReasonNoRefreshToken {
		ev := "no refresh token is stored: the access token works until it expires (~1 h), then nothing can renew it"
		if g.cred.StatusReason == authgate.StatusReasonNoRefreshToken {
			ev = "the refresh failed because no refresh token is stored"
			for _, e := range g.events {
				if e.Type == authgate.EventReauthRequiredSet && !lastIssue.IsZero() {
					ev += fmt.Sprintf(" (%s after the token was issued)", dur(e.At.Sub(lastIssue)))
				}
			}
		}
		if len(failAges) > 1 && constant(failAges) {
			ev += fmt.Sprintf("; refresh fails ~%s after every issue", dur(failAges[0]))
		}
		g.add(sec, "refresh_token", fail, authgate.CauseNoRefreshToken, ev, g.reauthFix())
	} else if g.cred.Status != authgate.CredentialStatusRevoked && g.cred.HasRefreshToken {
		g.add(sec, "refresh_token", pass, "", "a refresh token is stored (fingerprint "+g.cred.RefreshTokenFingerprint+")", "")
	}

	// invalid_grant: revoked, or killed by newer consents (issuance limit).
	if revocationHealed {
		g.add(sec, "invalid_grant", pass, "", fmt.Sprintf("history: invalid_grant at %s, then a successful consent or refresh at %s; the credential works again",
			invalidGrantAt.UTC().Format(time.RFC3339), recoveredAt.UTC().Format(time.RFC3339)), "")
	} else if !invalidGrantAt.IsZero() || g.cred.StatusReason == authgate.StatusReasonInvalidGrant || g.cred.StatusReason == authgate.StatusReasonRevoked {
		newer, total := g.newerConsents(ctx)
		if newer > 0 {
			g.add(sec, "invalid_grant", fail, authgate.CauseIssuanceLimit,
				fmt.Sprintf("invalid_grant after %d newer consent(s) for the same account and client (%d in %s); each consent mints a refresh token and %s keeps a limited number (Google: %d), invalidating the oldest",
					newer, total, dur(g.d.cfg.ConsentWindow), g.p.DisplayName, googleIssuanceLimit), g.reauthFix())
		} else {
			ev := "invalid_grant with no newer consent for this account: the user (or an admin) revoked access, or the grant expired"
			if g.cred.LastUsedAt != nil && !invalidGrantAt.IsZero() && !g.cred.LastUsedAt.After(invalidGrantAt) {
				ev += fmt.Sprintf("; detected %s after the credential was last used", dur(invalidGrantAt.Sub(*g.cred.LastUsedAt)))
			}
			g.add(sec, "invalid_grant", fail, authgate.CauseRevoked, ev, g.reauthFix())
		}
	} else if _, total := g.newerConsents(ctx); total >= googleIssuanceLimit/2 && g.p.Kind == catalog.KindGoogle {
		g.add(sec, "issuance_limit", warn, "", fmt.Sprintf("%d consents for this account and client in %s: nearing Google's %d refresh tokens", total, dur(g.d.cfg.ConsentWindow), googleIssuanceLimit),
			"Find what forces new consents (prompt=consent on every connect) and stop it.")
	}

	// Failures only from one instance: that instance's clock or keys.
	if len(actorsFail) == 1 && len(actorsOK) > 0 {
		for a := range actorsFail {
			if actorsOK[a] == 0 {
				g.add(sec, "one_instance", warn, "", fmt.Sprintf("refreshes fail only from %s while others succeed", a),
					"Check that instance's clock and master keys against the others.")
			}
		}
	}
	// Repeated consents: something forces prompt=consent.
	recent := 0
	for _, t := range issuedAt {
		if now.Sub(t) < 24*time.Hour {
			recent++
		}
	}
	if recent >= 3 {
		g.add(sec, "repeated_consents", warn, "", fmt.Sprintf("%d consents in the last 24 h", recent),
			"Something is forcing prompt=consent or sending users through connect again; reuse the stored credential.")
	}
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// constant reports whether ages agree within 10%.
func constant(ages []time.Duration) bool {
	lo, hi := slices.Min(ages), slices.Max(ages)
	return hi-lo <= hi/10
}

// storage: one row per slot, decrypts with a loaded key, fingerprints
// explained by events, no overwrite by a second consent.
func (g *diag) storage(ctx context.Context) {
	sec := authgate.SectionStorage
	rows := 0
	var after authgate.CredentialID
	for {
		page, next, err := g.d.cfg.Vault.List(ctx, vault.ListParams{TenantID: g.tenant, UserID: g.cred.UserID, Provider: g.cred.Provider, After: after, Limit: 500})
		if err != nil {
			break
		}
		for _, c := range page {
			if c.WorkspaceID == g.cred.WorkspaceID && c.Account.Subject == g.cred.Account.Subject {
				rows++
			}
		}
		if next == "" {
			break
		}
		after = next
	}
	if rows == 1 {
		g.add(sec, "one_row_per_slot", pass, "", fmt.Sprintf("exactly one credential for (user %s, %s, workspace %q, account %s)", g.cred.UserID, g.cred.Provider, g.cred.WorkspaceID, g.cred.Account.Subject), "")
	} else {
		g.add(sec, "one_row_per_slot", fail, authgate.CauseClientMisconfigured, fmt.Sprintf("%d credentials share this slot", rows), "Disconnect the duplicates; runs must bind one credential id.")
	}

	rec, err := g.d.cfg.Store.CredentialGetByID(ctx, storage.CredentialGetByIDParams{TenantID: g.tenant, ID: g.cred.ID})
	if err == nil && g.cred.Status != authgate.CredentialStatusRevoked {
		var ids []string
		for _, s := range []string{rec.AccessToken.KeyID, rec.RefreshToken.KeyID} {
			if s != "" && !slices.Contains(ids, s) {
				ids = append(ids, s)
			}
		}
		_, lerr := g.d.cfg.Vault.Load(ctx, g.tenant, g.cred.ID)
		switch {
		case lerr == nil:
			g.add(sec, "decrypts", pass, "", "decrypts with key id "+strings.Join(ids, ", "), "")
		case len(g.d.cfg.Env.LoadedKeyIDs) == 0 && errors.Is(lerr, errNoKeys(lerr)):
			g.add(sec, "decrypts", warn, "", "sealed with key id "+strings.Join(ids, ", ")+"; not opened (no master keys loaded)", "")
		default:
			g.add(sec, "decrypts", fail, authgate.CauseKeyMismatch, fmt.Sprintf("sealed with key id %s but does not decrypt with the loaded keys (%s)", strings.Join(ids, ", "), strings.Join(g.d.cfg.Env.LoadedKeyIDs, ", ")),
				"Start authgate with the master key file the database was encrypted with (AUTHGATE_KEY_FILE / AUTHGATE_MASTER_KEYS).")
		}
	}

	// Every refresh-token fingerprint change must be a recorded issue or
	// rotation; the stored one must be the last recorded.
	var fp string
	unexplained := 0
	// identity_mismatch events count only until the right account's newer
	// consent or refresh makes the credential work again (then: history).
	subjects, healed := 0, 0
	for _, e := range g.events {
		i := info(e)
		switch e.Type {
		case authgate.EventTokenIssued, authgate.EventRefreshSucceeded, authgate.EventReconnected:
			if subjects > 0 && g.cred.Status == authgate.CredentialStatusActive {
				healed, subjects = healed+subjects, 0
			}
		}
		switch e.Type {
		case authgate.EventTokenIssued:
			fp = i.RefreshFP
		case authgate.EventRefreshSucceeded:
			if i.Rotated && i.PrevRefreshFP != "" && i.PrevRefreshFP != fp {
				unexplained++
			}
			if i.RefreshFP != "" {
				if !i.Rotated && fp != "" && i.RefreshFP != fp {
					unexplained++
				}
				fp = i.RefreshFP
			}
		case authgate.EventIdentityMismatch:
			subjects++
		case authgate.EventDisconnected:
			fp = ""
		}
	}
	switch {
	case g.cred.Status == authgate.CredentialStatusRevoked:
	case unexplained > 0 || (fp != "" && g.cred.RefreshTokenFingerprint != "" && fp != g.cred.RefreshTokenFingerprint):
		g.add(sec, "refresh_fingerprint", fail, authgate.CauseKeyMismatch, fmt.Sprintf("the stored refresh token (%s) changed without a recorded refresh or consent (last recorded %s)", g.cred.RefreshTokenFingerprint, fp),
			"Something writes this row outside authgate (a second installation, a restore): find it, then reconnect.")
	default:
		g.add(sec, "refresh_fingerprint", pass, "", "the refresh token fingerprint "+cmp.Or(g.cred.RefreshTokenFingerprint, "(none)")+" changed only with recorded consents and refreshes", "")
	}
	switch {
	case subjects > 0:
		g.add(sec, "second_consent", fail, authgate.CauseWrongPrincipal, fmt.Sprintf("%d identity_mismatch event(s): another account's tokens were offered for this credential", subjects), g.reauthFixFor(authgate.CauseWrongPrincipal))
	case healed > 0:
		g.add(sec, "second_consent", pass, "", fmt.Sprintf("history: %d identity_mismatch event(s), then the right account's consent or refresh; no other account's tokens are stored", healed), "")
	default:
		g.add(sec, "second_consent", pass, "", "no consent by another account overwrote it", "")
	}
}

func (g *diag) reauthFixFor(c authgate.DiagnosisCause) string {
	old := g.reauth
	g.reauth = c
	defer func() { g.reauth = old }()
	return g.reauthFix()
}

// errNoKeys matches the metadata-only core's refusal.
func errNoKeys(err error) error {
	if err != nil && strings.Contains(err.Error(), "without master keys") {
		return err
	}
	return errors.New("not a missing-keys error")
}

// clock: our clock against the provider's Date header.
func (g *diag) clock(ctx context.Context) {
	sec := authgate.SectionClock
	skew, source, ok := g.probeDate(ctx)
	if !ok && g.cred.ClockSkewSeconds != nil {
		skew, source, ok = time.Duration(*g.cred.ClockSkewSeconds*float64(time.Second)), "as last measured by the refresher", true
	}
	if !ok {
		g.add(sec, "provider_date", warn, "", "the provider's clock could not be read", "")
		return
	}
	abs := skew
	if abs < 0 {
		abs = -abs
	}
	ev := fmt.Sprintf("the provider's clock is %+.0f s from ours (%s)", skew.Seconds(), source)
	switch {
	case abs >= g.d.cfg.SkewFail:
		g.add(sec, "provider_date", fail, authgate.CauseClockSkew, ev,
			"Fix this host's time sync (NTP/chrony): token expiry and ID-token checks are computed from our clock.")
	case abs >= g.d.cfg.SkewWarn:
		g.add(sec, "provider_date", warn, "", ev, "Check this host's time sync.")
	default:
		g.add(sec, "provider_date", pass, "", ev, "")
	}
}

// probeDate makes one unauthenticated request to the token endpoint, only
// to read the Date header.
func (g *diag) probeDate(ctx context.Context) (time.Duration, string, bool) {
	if g.ver == nil || g.p.TokenURL == "" {
		return 0, "", false
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.p.TokenURL, strings.NewReader(""))
	if err != nil {
		return 0, "", false
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	sent := g.d.cfg.Clock.Now()
	resp, err := (&http.Client{Transport: g.d.cfg.Transport}).Do(req)
	if err != nil {
		return 0, "", false
	}
	resp.Body.Close()
	d, err := http.ParseTime(resp.Header.Get("Date"))
	if err != nil {
		return 0, "", false
	}
	return d.Sub(sent).Truncate(time.Second), "Date header of " + hostOf(g.p.TokenURL) + " just now", true
}

// environment: the operator's own mistakes.
func (g *diag) environment(ctx context.Context) {
	sec := authgate.SectionEnvironment
	env := g.d.cfg.Env
	if len(env.LoadedKeyIDs) > 0 {
		ev := "loaded master key ids: " + strings.Join(env.LoadedKeyIDs, ", ")
		if sameDir(env.KeyFile, env.DatabasePath) {
			g.add(sec, "master_keys", warn, "", ev+"; the key file sits next to the database ("+env.KeyFile+")",
				"Back the key file up somewhere other than the database's directory: a backup holding both is a backup of every token.")
		} else {
			g.add(sec, "master_keys", pass, "", ev, "")
		}
	}
	public := ""
	if env.PublicURL != nil {
		public = env.PublicURL()
	}
	if public != "" && g.ver != nil {
		hc := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		st := func(path string) (int, error) {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(public, "/")+path, nil)
			resp, err := hc.Do(req)
			if err != nil {
				return 0, err
			}
			resp.Body.Close()
			return resp.StatusCode, nil
		}
		h, herr := st("/healthz")
		c, cerr := st("/oauth/callback")
		if herr != nil || cerr != nil || h != http.StatusOK || c >= 500 {
			g.add(sec, "public_url", fail, authgate.CauseClientMisconfigured, fmt.Sprintf("%s: /healthz %d %v, /oauth/callback %d %v", public, h, herr, c, cerr),
				"Set AUTHGATE_PUBLIC_URL to the address browsers and providers reach, and register "+public+"/oauth/callback at the provider.")
		} else {
			g.add(sec, "public_url", pass, "", fmt.Sprintf("%s answers (healthz %d, callback %d)", public, h, c), "")
		}
	}
	if len(env.ReturnURLAllowList) == 0 {
		g.add(sec, "return_urls", pass, "", "no return-URL allow-list: connect flows end on authgate's own page", "")
	} else {
		var bad []string
		for _, u := range env.ReturnURLAllowList {
			if !strings.HasPrefix(u, "https://") && !isLoopbackURL(u) {
				bad = append(bad, u)
			}
		}
		if len(bad) > 0 {
			g.add(sec, "return_urls", warn, "", "return URLs allowed over plain http: "+strings.Join(bad, ", "), "Allow only https return URLs (loopback excepted).")
		} else {
			g.add(sec, "return_urls", pass, "", "return URLs allowed: "+strings.Join(env.ReturnURLAllowList, ", "), "")
		}
	}
	if env.SandboxMounted && !env.ListenLoopback {
		g.add(sec, "sandbox_exposure", fail, authgate.CauseClientMisconfigured, "the provider sandbox is mounted on a non-loopback address: anyone reaching it can mint tokens",
			"Serve on loopback, or set AUTHGATE_SANDBOX=off.")
	}
	if g.ver != nil && g.p.Issuer != "" {
		u := strings.TrimRight(g.p.Issuer, "/") + "/.well-known/openid-configuration"
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		resp, err := (&http.Client{Transport: g.d.cfg.Transport, Timeout: 5 * time.Second}).Do(req)
		if err != nil {
			g.add(sec, "discovery", warn, "", "provider discovery unreachable: "+err.Error(), "Check outbound network access to "+hostOf(u)+".")
		} else {
			resp.Body.Close()
			st := pass
			if resp.StatusCode != http.StatusOK {
				st = warn
			}
			g.add(sec, "discovery", st, "", fmt.Sprintf("%s answered %d", u, resp.StatusCode), "")
		}
	}
}

func isLoopbackURL(u string) bool {
	h := hostOf(u)
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// verdict: the highest-ranked cause among failed checks, and its fix.
func (g *diag) verdict() {
	order := []string{authgate.SectionRepro, authgate.SectionIdentity, authgate.SectionScopes, authgate.SectionLifecycle, authgate.SectionStorage, authgate.SectionClock, authgate.SectionEnvironment}
	slices.SortStableFunc(g.found, func(a, b finding) int { return slices.Index(order, a.Section) - slices.Index(order, b.Section) })
	best := -1
	var pick *finding
	for i := range g.found {
		f := &g.found[i]
		if f.Status != fail || f.cause == "" {
			continue
		}
		r := slices.Index(authgate.DiagnosisCauses, f.cause)
		if pick == nil || r < best {
			best, pick = r, f
		}
	}
	g.out.Checks = make([]authgate.DiagnosisCheck, len(g.found))
	for i, f := range g.found {
		g.out.Checks[i] = f.DiagnosisCheck
	}
	if pick == nil {
		if slices.ContainsFunc(g.found, func(f finding) bool { return f.Status == fail }) {
			// A failure with no known cause: the first one says it.
			i := slices.IndexFunc(g.found, func(f finding) bool { return f.Status == fail })
			g.out.Verdict = authgate.DiagnosisVerdict{Cause: authgate.CauseProviderOutage, Summary: g.found[i].Evidence, NextAction: cmp.Or(g.found[i].Fix, "Run the doctor again shortly.")}
			return
		}
		g.out.Verdict = authgate.DiagnosisVerdict{Cause: authgate.CauseHealthy, Summary: fmt.Sprintf("%s for %s is healthy.", g.p.DisplayName, cmp.Or(g.cred.Account.Email, g.cred.Account.Subject)),
			NextAction: "Nothing to do."}
		return
	}
	next := pick.Fix
	if g.out.ReconnectURL != "" && reconnectHelps(pick.cause) {
		next += " Reconnect link: " + g.out.ReconnectURL
	}
	g.out.Verdict = authgate.DiagnosisVerdict{Cause: pick.cause, Summary: summaries[pick.cause] + " " + pick.Evidence, NextAction: next}
}

func reconnectHelps(c authgate.DiagnosisCause) bool {
	switch c {
	case authgate.CauseMissingScope, authgate.CauseNoRefreshToken, authgate.CauseRevoked, authgate.CauseIssuanceLimit, authgate.CauseWrongPrincipal:
		return true
	}
	return false
}

var summaries = map[authgate.DiagnosisCause]string{
	authgate.CauseMissingScope:        "Missing scope:",
	authgate.CauseNoRefreshToken:      "No refresh token:",
	authgate.CauseRevoked:             "Access revoked:",
	authgate.CauseIssuanceLimit:       "Refresh token invalidated by the issuance limit:",
	authgate.CauseAdminPolicy:         "Blocked by a workspace admin policy:",
	authgate.CauseNotShared:           "Not shared with the integration:",
	authgate.CauseWrongPrincipal:      "Wrong account:",
	authgate.CauseClockSkew:           "Clock skew:",
	authgate.CauseKeyMismatch:         "Key mismatch:",
	authgate.CauseClientMisconfigured: "Misconfiguration:",
	authgate.CauseProviderOutage:      "Provider trouble:",
}

// expires reports whether the provider's access tokens expire (so a refresh
// token is needed).
func expires(p *catalog.Provider) bool { return p.AccessTokensExpire == nil || *p.AccessTokensExpire }
