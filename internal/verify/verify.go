// Package verify proves a connector works, live: the runbook's step 0 for
// one credential. It gets a token from the refresher, asks the provider who
// the token belongs to, runs the connector's minimal checks — one provider
// call each, no retries — on the targets a workflow will touch, computes the
// scope diff for the actions declared, and records the result on the
// credential with a verified event. A live identity that is not the stored
// one moves the credential to reauth_required (identity_mismatch).
//
// Every provider failure is classified by internal/classify from the
// connectors' *authgate.ProviderError (the one parser). It must never make a
// provider call that is not one of the checks it reports, nor put a token in
// a result, an event or a log line.
package verify

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/connector/gdocs"
	"github.com/authgate/authgate/connector/gdrive"
	"github.com/authgate/authgate/connector/notion"
	"github.com/authgate/authgate/connector/slack"
	"github.com/authgate/authgate/internal/catalog"
	"github.com/authgate/authgate/internal/classify"
	"github.com/authgate/authgate/internal/clock"
	"github.com/authgate/authgate/internal/refresh"
	"github.com/authgate/authgate/internal/vault"
)

// Providers resolves a credential's provider (the catalog).
type Providers interface {
	Get(name string) (*catalog.Provider, bool)
}

// Reconnector makes a connect link that reconnects a credential, asking for
// scopes (nil: what it had).
type Reconnector func(ctx context.Context, tenant authgate.TenantID, c authgate.Credential, scopes []string) (string, error)

// Config is what a Verifier calls into.
type Config struct {
	Vault     *vault.Vault
	Refresher *refresh.Refresher
	Providers Providers
	Clock     clock.Clock
	// Transport carries provider calls (default http.DefaultTransport).
	Transport http.RoundTripper
	// Reconnect, when set, adds a reconnect link to results that need one.
	Reconnect Reconnector
}

// Verifier runs verifications. It is safe for concurrent use.
type Verifier struct{ cfg Config }

// New returns a Verifier.
func New(cfg Config) *Verifier {
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Transport == nil {
		cfg.Transport = http.DefaultTransport
	}
	return &Verifier{cfg: cfg}
}

// run is one verification in progress.
type run struct {
	v       *Verifier
	tenant  authgate.TenantID
	cred    authgate.Credential
	p       *catalog.Provider
	actions []string
	targets authgate.VerifyTargets
	ts      oauth2.TokenSource
	res     authgate.Verification
	// liveMissing are scopes a check proved absent at the provider.
	liveMissing []string
	mismatch    *vault.LiveMismatch
	// preflight skips the checks that write (Docs create → read → delete):
	// a run's start proves access without side effects, and asks for a
	// token valid for the whole safety window.
	preflight bool
	// identityOnly stops after the identity call (the health sweep).
	identityOnly bool
}

// Verify verifies credential id of tenant and records the result.
func (v *Verifier) Verify(ctx context.Context, tenant authgate.TenantID, id authgate.CredentialID, req authgate.VerifyRequest, actor string) (authgate.Verification, error) {
	return v.verify(ctx, tenant, id, req, actor, false)
}

func (v *Verifier) verify(ctx context.Context, tenant authgate.TenantID, id authgate.CredentialID, req authgate.VerifyRequest, actor string, preflight bool) (authgate.Verification, error) {
	cred, err := v.cfg.Vault.Get(ctx, tenant, id)
	if err != nil {
		return authgate.Verification{}, err
	}
	p, ok := v.cfg.Providers.Get(cred.Provider)
	if !ok {
		return authgate.Verification{}, authgate.Errorf(authgate.ClassClientMisconfigured, "provider %s is not configured here", cred.Provider)
	}
	r := &run{v: v, tenant: tenant, cred: cred, p: p, actions: req.Actions, preflight: preflight}
	if req.Targets != nil {
		r.targets = *req.Targets
	}
	if err := r.validate(); err != nil {
		return authgate.Verification{}, err
	}
	r.res = authgate.Verification{Checks: []authgate.VerifyCheck{}, Identity: authgate.VerifiedIdentity{}}
	r.res.Scopes.Granted = nonNil(cred.GrantedScopes)
	r.res.Scopes.Required = r.required()
	r.ts = v.cfg.Refresher.TokenSource(ctx, tenant, id, nil)
	if r.credentialUsable() && r.token(ctx) {
		if !r.connectorChecks(ctx) {
			r.add(authgate.VerifyCheck{Name: "connector", Status: authgate.CheckWarn, Detail: fmt.Sprintf("authgate has no connector checks for %s yet; only the token was verified", p.DisplayName)})
		}
	}
	r.finish(ctx)
	if err := r.record(ctx, actor); err != nil {
		return authgate.Verification{}, err
	}
	return r.res, nil
}

// connectorChecks runs the checks of the credential's connector, identity
// first (with identityOnly, the identity call alone); false when authgate
// has no connector for the provider's kind.
func (r *run) connectorChecks(ctx context.Context) bool {
	switch r.p.Kind {
	case catalog.KindGoogle:
		r.google(ctx)
	case catalog.KindNotion:
		r.notion(ctx)
	case catalog.KindSlack:
		r.slack(ctx)
	default:
		return false
	}
	return true
}

// record stores the finished result on the credential. A live identity
// that is not the stored one is a state change: made under the refresh
// lease, like a disconnect, so no refresh is in flight, and this process's
// cached copy is dropped before the next token request can be served from it.
func (r *run) record(ctx context.Context, actor string) error {
	rec := func(ctx context.Context) error {
		_, err := r.v.cfg.Vault.RecordVerification(ctx, r.tenant, r.cred.ID, &r.res, r.mismatch, actor)
		return err
	}
	if r.mismatch != nil {
		return r.v.cfg.Refresher.WithLease(ctx, r.tenant, r.cred.ID, rec)
	}
	return rec(ctx)
}

// defaultActions are the actions the minimal checks exercise; a
// verification without actions requires those the credential was granted.
var defaultActions = map[catalog.Kind][]string{
	catalog.KindGoogle: {"drive.files.list", "docs.documents.create"},
	catalog.KindNotion: {"notion.read"},
	catalog.KindSlack:  {"slack.identity"},
}

func (r *run) validate() error {
	var bad []authgate.FieldError
	for _, a := range r.actions {
		if _, ok := r.p.Actions[a]; !ok {
			bad = append(bad, authgate.FieldError{Field: "actions", Message: fmt.Sprintf("%s has no action %q", r.p.DisplayName, a)})
		}
	}
	t := r.targets
	for field, set := range map[string]bool{"targets.drive_folder": t.DriveFolder != "", "targets.notion_page": t.NotionPage != "", "targets.notion_database": t.NotionDatabase != "", "targets.slack_channel": t.SlackChannel != ""} {
		want := map[string]catalog.Kind{"targets.drive_folder": catalog.KindGoogle, "targets.notion_page": catalog.KindNotion, "targets.notion_database": catalog.KindNotion, "targets.slack_channel": catalog.KindSlack}[field]
		if set && r.p.Kind != want {
			bad = append(bad, authgate.FieldError{Field: field, Message: fmt.Sprintf("is not a %s resource", r.p.DisplayName)})
		}
	}
	if len(bad) > 0 {
		slices.SortFunc(bad, func(a, b authgate.FieldError) int { return strings.Compare(a.Field+a.Message, b.Field+b.Message) })
		e := authgate.Errorf(authgate.ClassInvalidRequest, "%s %s", bad[0].Field, bad[0].Message)
		e.Errors = bad
		return e
	}
	if len(r.actions) == 0 {
		// Without declared actions, verify what the credential was granted
		// for: the default actions its stored scopes allow (all of them, to
		// report what is missing, when they allow none).
		defs := defaultActions[r.p.Kind]
		for _, a := range defs {
			if m, _ := r.p.Missing([]string{a}, r.cred.GrantedScopes); len(m) == 0 {
				r.actions = append(r.actions, a)
			}
		}
		if len(r.actions) == 0 {
			r.actions = defs
		}
	}
	return nil
}

func (r *run) wants(prefix string) bool {
	return slices.ContainsFunc(r.actions, func(a string) bool { return strings.HasPrefix(a, prefix) })
}

// required lists the scopes the actions need: for each, the granted
// alternative if there is one, else the one authgate would ask for.
func (r *run) required() []string {
	var out []string
	for _, a := range r.actions {
		alts := r.p.Actions[a]
		if len(alts) == 0 {
			continue
		}
		i := slices.IndexFunc(alts, func(s string) bool { return r.p.HasScope(r.cred.GrantedScopes, s) })
		out = append(out, alts[max(i, 0)])
	}
	slices.Sort(out)
	return nonNil(slices.Compact(out))
}

func (r *run) add(c authgate.VerifyCheck) { r.res.Checks = append(r.res.Checks, c) }

func (r *run) credentialUsable() bool {
	if r.cred.Status == authgate.CredentialStatusActive {
		return true
	}
	c := authgate.VerifyCheck{Name: "credential", Status: authgate.CheckFail, Class: authgate.ClassReauthRequired,
		Detail: fmt.Sprintf("the credential is %s", r.cred.Status)}
	if r.cred.StatusReason != "" {
		c.Detail += " (" + string(r.cred.StatusReason) + ")"
	}
	c.Fix = fmt.Sprintf("Reconnect %s.", r.p.DisplayName)
	r.add(c)
	return false
}

// token gets an access token valid for a minute (a refresh when the stored
// one is not: a token-endpoint call, counted).
func (r *run) token(ctx context.Context) bool {
	start := r.v.cfg.Clock.Now()
	minValid := time.Minute
	if r.preflight {
		minValid = refresh.DefaultMinValid
	}
	t, err := r.v.cfg.Refresher.Token(ctx, refresh.Request{TenantID: r.tenant, ID: r.cred.ID, MinValid: minValid})
	c := authgate.VerifyCheck{Name: "token", DurationMS: since(r.v.cfg.Clock, start)}
	if err != nil {
		var ae *authgate.Error
		if !errors.As(err, &ae) {
			ae = authgate.Errorf(authgate.ClassInternal, "could not get a token")
		}
		c.Status, c.Class, c.Detail, c.Fix = authgate.CheckFail, ae.Class, ae.Detail, fixFor(ae.Class, r.p, nil, "")
		c.ProviderCalls = 1 // counted as a call: a failed refresh may have reached the provider
		r.add(c)
		return false
	}
	c.Status, c.Detail = authgate.CheckPass, "an access token valid for at least a minute is available"
	if t.Refreshed {
		c.ProviderCalls, c.Detail = 1, "the access token was refreshed; the new one is valid for at least a minute"
	}
	r.add(c)
	return true
}

// call runs one check's provider call and records it.
func (r *run) call(name, action string, fn func() (string, error)) (ok bool) {
	start := r.v.cfg.Clock.Now()
	detail, err := fn()
	c := authgate.VerifyCheck{Name: name, DurationMS: since(r.v.cfg.Clock, start), ProviderCalls: 1}
	if err == nil {
		c.Status, c.Detail = authgate.CheckPass, detail
		r.add(c)
		return true
	}
	r.fail(&c, action, err)
	r.add(c)
	return false
}

// fail fills a failed check from err: a provider answer classified, a token
// problem as the token API said it, or a refusal of ours.
func (r *run) fail(c *authgate.VerifyCheck, action string, err error) {
	c.Status = authgate.CheckFail
	var pe *authgate.ProviderError
	var ae *authgate.Error
	switch {
	case errors.As(err, &pe):
		cl := classify.Classify(pe)
		c.Class, c.HTTPStatus, c.ProviderRequestID = cl.Class, pe.Status, pe.RequestID
		c.Detail = cl.Message
		// The code the class was decided on, so the label and the class agree.
		if code := cmp.Or(cl.ErrorCode, pe.Code()); code != "" {
			c.Detail = fmt.Sprintf("%s (%s, HTTP %d)", cl.Message, code, pe.Status)
		}
		var missing []string
		if cl.Class == authgate.ClassInsufficientScope {
			missing = cl.MissingScopes
			if len(missing) == 0 && action != "" {
				missing = r.droppedFor(action)
			}
			r.liveMissing = append(r.liveMissing, missing...)
		}
		c.Fix = fixFor(cl.Class, r.p, missing, r.cred.Account.Domain)
	case errors.As(err, &ae):
		c.Class, c.Detail, c.Fix = ae.Class, ae.Detail, fixFor(ae.Class, r.p, ae.MissingScopes, r.cred.Account.Domain)
		if ae.Class == authgate.ClassInvalidRequest {
			c.ProviderCalls = 0 // refused before the call
		}
	default:
		c.Class, c.Detail = authgate.ClassTransient, "the provider could not be reached"
	}
}

// droppedFor names the scopes that must have gone for action: the
// alternatives the stored grant claims (the provider evidently no longer
// honours them), else the one authgate asks for.
func (r *run) droppedFor(action string) []string {
	alts := r.p.Actions[action]
	var out []string
	for _, s := range alts {
		if r.p.HasScope(r.cred.GrantedScopes, s) {
			out = append(out, s)
		}
	}
	if len(out) == 0 && len(alts) > 0 {
		out = alts[:1]
	}
	return out
}

// fixFor is the fix, in words, for a class.
func fixFor(c authgate.Class, p *catalog.Provider, missing []string, domain string) string {
	name := p.DisplayName
	switch c {
	case authgate.ClassReauthRequired:
		return fmt.Sprintf("Reconnect %s: the grant no longer works.", name)
	case authgate.ClassInsufficientScope:
		if len(missing) > 0 {
			return fmt.Sprintf("Reconnect %s and allow %s.", name, strings.Join(missing, ", "))
		}
		return fmt.Sprintf("Reconnect %s and allow every requested permission.", name)
	case authgate.ClassAdminPolicy:
		if domain != "" {
			return fmt.Sprintf("An administrator of %s must allow this app in the %s admin console; reconnecting will not help until then.", domain, name)
		}
		return fmt.Sprintf("Your organization's %s administrator must allow this app; reconnecting will not help until then.", name)
	case authgate.ClassNotSharedOrNotFound:
		if p.Kind == catalog.KindNotion {
			return "In Notion, open the page or database, choose ••• → Add connections (Connections) and pick this integration; or check the id."
		}
		if p.Kind == catalog.KindSlack {
			return "Invite the app to the channel (/invite @app in Slack), or check the channel id."
		}
		return fmt.Sprintf("Share the item with the account in %s (or open it with the app), or check the id.", name)
	case authgate.ClassRateLimited, authgate.ClassTransient:
		return "Try the verification again shortly; nothing needs to change."
	case authgate.ClassClientMisconfigured:
		return "The app's OAuth client configuration must be fixed by its developer."
	}
	return ""
}

func since(c clock.Clock, start time.Time) int64 { return c.Now().Sub(start).Milliseconds() }

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return slices.Clone(s)
}

// matchIdentity compares the live identity with the stored one.
func (r *run) matchIdentity(live authgate.VerifiedIdentity, same bool) {
	r.res.Identity = live
	r.res.IdentityMatchesStored = same
	if !same {
		stored := cmp.Or(r.cred.Account.Email, r.cred.Account.Subject)
		if r.cred.WorkspaceID != "" {
			stored += " (workspace " + r.cred.WorkspaceID + ")"
		}
		r.mismatch = &vault.LiveMismatch{Stored: stored, Live: live.Label}
		r.add(authgate.VerifyCheck{Name: "identity_matches_stored", Status: authgate.CheckFail, Class: authgate.ClassReauthRequired,
			Detail: fmt.Sprintf("this credential belongs to %s, but %s says the token is %s", stored, r.p.DisplayName, live.Label),
			Fix:    fmt.Sprintf("Reconnect %s signed in as %s; the credential is blocked until then (identity_mismatch).", r.p.DisplayName, stored)})
	}
}

// finish computes the scope diff, the verdict, the summary and a reconnect
// link when one helps.
func (r *run) finish(ctx context.Context) {
	missing, _ := r.p.Missing(r.actions, r.cred.GrantedScopes)
	missing = append(missing, r.liveMissing...)
	slices.Sort(missing)
	r.res.Scopes.Missing = nonNil(slices.Compact(missing))
	r.res.Verdict = authgate.VerdictPass
	var firstFail *authgate.VerifyCheck
	for i, c := range r.res.Checks {
		switch c.Status {
		case authgate.CheckFail:
			r.res.Verdict = authgate.VerdictFail
			if firstFail == nil {
				firstFail = &r.res.Checks[i]
			}
		case authgate.CheckWarn:
			if r.res.Verdict == authgate.VerdictPass {
				r.res.Verdict = authgate.VerdictWarn
			}
		}
	}
	if len(r.res.Scopes.Missing) > 0 && r.res.Verdict == authgate.VerdictPass {
		r.res.Verdict = authgate.VerdictFail
	}
	switch {
	case firstFail != nil:
		r.res.Summary = fmt.Sprintf("%s is connected but cannot do its job: %s %s", r.p.DisplayName, firstFail.Detail, firstFail.Fix)
	case len(r.res.Scopes.Missing) > 0:
		r.res.Summary = fmt.Sprintf("%s works, but the actions need %s, which were not granted. Reconnect and allow them.", r.p.DisplayName, strings.Join(r.res.Scopes.Missing, ", "))
	case r.res.Verdict == authgate.VerdictWarn:
		r.res.Summary = fmt.Sprintf("%s works, with warnings.", r.p.DisplayName)
	default:
		r.res.Summary = fmt.Sprintf("%s works: every check passed.", r.p.DisplayName)
	}
	if r.v.cfg.Reconnect == nil {
		return
	}
	needLink := len(r.res.Scopes.Missing) > 0 || r.mismatch != nil || r.cred.Status != authgate.CredentialStatusActive ||
		slices.ContainsFunc(r.res.Checks, func(c authgate.VerifyCheck) bool { return c.Class == authgate.ClassReauthRequired })
	if needLink {
		if u, err := r.v.cfg.Reconnect(ctx, r.tenant, r.cred, r.res.Scopes.Missing); err == nil {
			r.res.ReconnectURL = u
		}
	}
}

// google: userinfo (identity), Drive (list one file, or the target folder),
// Docs (create → read back the mimeType → delete).
func (r *run) google(ctx context.Context) {
	hc := &http.Client{Transport: &oauth2.Transport{Source: r.ts, Base: r.v.cfg.Transport}}
	identityOK := r.call("google.userinfo", "", func() (string, error) {
		var ui struct {
			Sub, Email, HD string
		}
		if err := r.getJSON(ctx, hc, "google", r.p.UserinfoURL, &ui); err != nil {
			return "", err
		}
		live := authgate.VerifiedIdentity{Subject: ui.Sub, Email: ui.Email, Domain: ui.HD, AccountType: authgate.AccountTypeConsumer, Label: cmp.Or(ui.Email, ui.Sub)}
		if ui.HD != "" {
			live.AccountType = authgate.AccountTypeWorkspace
		}
		r.matchIdentity(live, ui.Sub == r.cred.Account.Subject)
		return "Google says the token belongs to " + live.Label, nil
	})
	if !identityOK || r.mismatch != nil || r.identityOnly {
		return
	}
	d, err := gdrive.New(ctx, r.ts, gdrive.Options{Endpoint: r.p.APIURL("drive"), Transport: r.v.cfg.Transport})
	if err != nil {
		return
	}
	if r.wants("drive.") {
		if f := r.targets.DriveFolder; f != "" {
			r.call("drive.folder", "drive.files.get", func() (string, error) {
				got, err := d.Get(ctx, f, "id, name, mimeType")
				if err != nil {
					return "", err
				}
				if got.MimeType != gdrive.MimeFolder {
					return "", authgate.Errorf(authgate.ClassInvalidRequest, "%s is a %s, not a folder", f, got.MimeType)
				}
				return fmt.Sprintf("the folder %q is reachable", got.Name), nil
			})
		} else {
			r.call("drive.list", "drive.files.list", func() (string, error) {
				l, err := d.List(ctx, gdrive.ListParams{PageSize: 1, Fields: "files(id, mimeType)"})
				if err != nil {
					return "", err
				}
				return fmt.Sprintf("Drive listed %d file(s) with a page size of 1", len(l.Files)), nil
			})
		}
	}
	if !r.wants("docs.") || r.preflight {
		return
	}
	g, err := gdocs.New(ctx, r.ts, gdocs.Options{Endpoint: r.p.APIURL("docs"), DriveEndpoint: r.p.APIURL("drive"), Transport: r.v.cfg.Transport})
	if err != nil {
		return
	}
	var docID string
	if !r.call("docs.create", "docs.documents.create", func() (string, error) {
		doc, err := g.CreateUnchecked(ctx, "authgate verification (safe to delete)")
		if err != nil {
			return "", err
		}
		docID = doc.DocumentId
		return "documents.create made a document", nil
	}) {
		return
	}
	r.call("docs.read_back", "drive.files.get", func() (string, error) {
		f, err := d.Get(ctx, docID, "id, mimeType")
		if err != nil {
			return "", err
		}
		if f.MimeType != gdrive.MimeGoogleDoc {
			return "", authgate.Errorf(authgate.ClassInvalidRequest, "the document came back as %s, not a Google Doc", f.MimeType)
		}
		return "the new file reads back as " + gdrive.MimeGoogleDoc, nil
	})
	r.call("docs.delete", "drive.files.create", func() (string, error) {
		if err := g.Delete(ctx, docID); err != nil {
			return "", err
		}
		return "the verification document was deleted", nil
	})
}

// notion: users/me (identity), then the target page and database.
func (r *run) notion(ctx context.Context) {
	n := notion.New(r.ts, notion.Options{BaseURL: r.p.APIURL("notion"), Transport: r.v.cfg.Transport})
	if !r.call("notion.users_me", "", func() (string, error) {
		u, err := n.Me(ctx)
		if err != nil {
			return "", err
		}
		owner := u.ID
		if u.Bot.Owner.User != nil {
			owner = u.Bot.Owner.User.ID
		}
		live := authgate.VerifiedIdentity{Subject: owner, Workspace: u.Bot.WorkspaceID, AccountType: authgate.AccountTypeWorkspace,
			Label: fmt.Sprintf("%s workspace (integration %s)", cmp.Or(u.Bot.WorkspaceName, u.Bot.WorkspaceID), u.Name)}
		r.matchIdentity(live, owner == r.cred.Account.Subject && u.Bot.WorkspaceID == r.cred.WorkspaceID)
		return "users/me answers as the integration in " + live.Label, nil
	}) || r.mismatch != nil || r.identityOnly {
		return
	}
	if id := r.targets.NotionPage; id != "" {
		r.call("notion.page", "notion.read", func() (string, error) {
			o, err := n.Page(ctx, id)
			if err != nil {
				return "", err
			}
			return fmt.Sprintf("the page %s is shared with the integration", o.ID()), nil
		})
	}
	if id := r.targets.NotionDatabase; id != "" {
		r.call("notion.database", "notion.read", func() (string, error) {
			o, err := n.Database(ctx, id)
			if err != nil {
				return "", err
			}
			return fmt.Sprintf("the database %s is shared with the integration (%d data source(s))", o.ID(), len(notion.DataSourceIDs(o))), nil
		})
	}
}

// slack: auth.test (identity and live scopes), then channel membership.
func (r *run) slack(ctx context.Context) {
	s := slack.New(r.ts, slack.Options{BaseURL: r.p.APIURL("slack"), Transport: r.v.cfg.Transport})
	var liveScopes []string
	if !r.call("slack.auth_test", "", func() (string, error) {
		id, err := s.AuthTest(ctx)
		if err != nil {
			return "", err
		}
		liveScopes = id.Scopes
		// A bot token's auth.test names the bot, not the installing user:
		// the workspace is what binds it.
		live := authgate.VerifiedIdentity{Subject: id.UserID, Workspace: id.TeamID, Domain: id.Team, AccountType: authgate.AccountTypeWorkspace,
			Label: fmt.Sprintf("%s in workspace %s (%s)", id.User, id.Team, id.TeamID)}
		r.matchIdentity(live, id.TeamID == r.cred.WorkspaceID)
		return "auth.test answers as " + live.Label, nil
	}) || r.mismatch != nil || r.identityOnly {
		return
	}
	if liveScopes != nil {
		r.res.Scopes.Granted = nonNil(liveScopes)
		if missing, _ := r.p.Missing(r.actions, liveScopes); len(missing) > 0 {
			r.liveMissing = append(r.liveMissing, missing...)
		}
	}
	ch := r.targets.SlackChannel
	if ch == "" {
		return
	}
	granted := r.res.Scopes.Granted
	if !slices.Contains(granted, "channels:read") {
		r.add(authgate.VerifyCheck{Name: "slack.channel", Status: authgate.CheckWarn,
			Detail: "channel membership cannot be checked without the channels:read scope", Fix: "Reconnect Slack and allow channels:read to let authgate check channel membership."})
		return
	}
	r.call("slack.channel", "slack.channels.list", func() (string, error) {
		types := []string{"public_channel"}
		if slices.Contains(granted, "groups:read") {
			types = append(types, "private_channel")
		}
		l, err := s.ConversationsList(ctx, slack.ListParams{Types: types, Limit: 1000})
		if err != nil {
			return "", err
		}
		for _, c := range l.Channels {
			if c.ID == ch || c.Name == strings.TrimPrefix(ch, "#") {
				if !c.IsMember {
					return "", &authgate.ProviderError{Provider: "slack", Operation: authgate.ProviderOpAPI, Status: 200, SlackError: "not_in_channel"}
				}
				return fmt.Sprintf("the app is a member of #%s", c.Name), nil
			}
		}
		return "", &authgate.ProviderError{Provider: "slack", Operation: authgate.ProviderOpAPI, Status: 200, SlackError: "channel_not_found"}
	})
}

// getJSON is one GET whose failure is parsed by the one parser.
func (r *run) getJSON(ctx context.Context, hc *http.Client, provider, url string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		var ae *authgate.Error
		if errors.As(err, &ae) {
			return ae
		}
		return &authgate.ProviderError{Provider: provider, Operation: authgate.ProviderOpAPI, Cause: err}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return authgate.ParseProviderError(authgate.ProviderResponse{Provider: provider, Operation: authgate.ProviderOpAPI, Status: resp.StatusCode, Header: resp.Header, Body: body})
	}
	return json.Unmarshal(body, out)
}
