package verify_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/authgatetest"
	"github.com/authgate/authgate/sandbox"
)

const (
	scopeDriveFile = "https://www.googleapis.com/auth/drive.file"
	scopeMetaRO    = "https://www.googleapis.com/auth/drive.metadata.readonly"
)

type fixture struct {
	env *authgatetest.Env
	ctx context.Context
}

func start(t *testing.T) *fixture {
	t.Helper()
	return &fixture{env: authgatetest.Start(t, authgatetest.Options{}), ctx: context.Background()}
}

func (f *fixture) sb() *sandbox.Sandbox { return f.env.Server.Sandbox }

func (f *fixture) google(t *testing.T, account string) authgate.Credential {
	t.Helper()
	c := f.env.Connect(t, authgatetest.ConnectParams{Provider: "google", Actions: []string{"drive.files.list", "docs.documents.create"}, Choice: sandbox.Choice{Account: account}})
	f.sb().ResetCounters()
	return c
}

// verify runs a verification through the SDK and checks the promise about
// provider calls: the sandbox saw exactly the calls the checks report.
func (f *fixture) verify(t *testing.T, id authgate.CredentialID, req authgate.VerifyRequest) authgate.Verification {
	t.Helper()
	before := f.sb().Counters()
	v, err := f.env.Client.Verify(f.ctx, id, req)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	after := f.sb().Counters()
	var seen int64
	for name, c := range after {
		seen += c.APIRequests - before[name].APIRequests + c.TokenRequests - before[name].TokenRequests
	}
	listed := 0
	for _, c := range v.Checks {
		listed += c.ProviderCalls
	}
	if seen != int64(listed) {
		t.Fatalf("the sandbox saw %d provider calls; the checks list %d: %+v", seen, listed, v.Checks)
	}
	return v
}

func check(t *testing.T, v authgate.Verification, name string) authgate.VerifyCheck {
	t.Helper()
	for _, c := range v.Checks {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no check %q in %+v", name, v.Checks)
	return authgate.VerifyCheck{}
}

func events(t *testing.T, f *fixture, id authgate.CredentialID) []string {
	t.Helper()
	page, err := f.env.Client.CredentialEvents(f.ctx, id, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range page.Events {
		out = append(out, string(e.Type))
	}
	return out
}

// TestVerifyGoogleHealthy: every check passes on a fresh credential, the
// live identity is the stored one, the result is stored (verified event,
// connector state "verified") and the sandbox saw only the listed calls.
func TestVerifyGoogleHealthy(t *testing.T) {
	t.Parallel()
	f := start(t)
	cred := f.google(t, "ana@acme.example")
	if cred.Connector.State != authgate.ConnectorAuthorized || cred.Connector.Verification != authgate.VerificationUnverified {
		t.Fatalf("connector state before verifying: %+v", cred.Connector)
	}
	v := f.verify(t, cred.ID, authgate.VerifyRequest{})
	if v.Verdict != authgate.VerdictPass || !v.IdentityMatchesStored || v.Identity.Email != "ana@acme.example" || v.Identity.Domain != "acme.example" ||
		v.Identity.AccountType != authgate.AccountTypeWorkspace || len(v.Scopes.Missing) != 0 || v.ReconnectURL != "" {
		t.Fatalf("healthy verification %+v", v)
	}
	var names []string
	for _, c := range v.Checks {
		names = append(names, c.Name)
		if c.Status != authgate.CheckPass {
			t.Errorf("check %s: %+v", c.Name, c)
		}
	}
	if want := []string{"token", "google.userinfo", "drive.list", "docs.create", "docs.read_back", "docs.delete"}; !slices.Equal(names, want) {
		t.Fatalf("checks %v; want %v", names, want)
	}
	got, _ := f.env.Client.Credential(f.ctx, cred.ID)
	if got.Connector.Verification != authgate.VerificationVerified || got.Connector.LastVerifiedAt == nil || got.Connector.LastVerdict != authgate.VerdictPass ||
		got.Status != authgate.CredentialStatusActive || got.Version != cred.Version {
		t.Fatalf("credential after verify %+v", got)
	}
	if ev := events(t, f, cred.ID); ev[len(ev)-1] != "verified" {
		t.Fatalf("events %v", ev)
	}
	// The verification document was deleted: nothing left behind.
	for _, name := range f.sb().Google().FilesOf("ana@acme.example") {
		if strings.Contains(name, "authgate verification") {
			t.Fatalf("verification left %q in Drive", name)
		}
	}
}

// TestVerifyDropScope: the user removed drive.file at Google; verify names
// exactly it and hands back a reconnect link that asks for it.
func TestVerifyDropScope(t *testing.T) {
	t.Parallel()
	f := start(t)
	cred := f.google(t, "dora@acme.example")
	if err := f.sb().InjectFault(sandbox.Fault{Provider: "google", Fault: "drop_scope", Account: "dora@acme.example", Scope: scopeDriveFile}); err != nil {
		t.Fatal(err)
	}
	v := f.verify(t, cred.ID, authgate.VerifyRequest{})
	c := check(t, v, "docs.create")
	if v.Verdict != authgate.VerdictFail || c.Status != authgate.CheckFail || c.Class != authgate.ClassInsufficientScope || !strings.Contains(c.Fix, scopeDriveFile) {
		t.Fatalf("docs.create %+v", c)
	}
	if check(t, v, "drive.list").Status != authgate.CheckPass {
		t.Fatal("drive.metadata.readonly still lists")
	}
	if !slices.Equal(v.Scopes.Missing, []string{scopeDriveFile}) || v.ReconnectURL == "" {
		t.Fatalf("scopes %+v reconnect %q", v.Scopes, v.ReconnectURL)
	}
	// The link asks for the missing scope (a reconnect also re-asks for
	// what the credential holds: the broker never lets a reconnect narrow
	// a grant at providers without incremental consent).
	if scopes := authorizeScopes(t, v.ReconnectURL); !slices.Contains(scopes, scopeDriveFile) {
		t.Fatalf("the reconnect link asks for %v; want %s among them", scopes, scopeDriveFile)
	}
}

// authorizeScopes opens a connect link and reads the scopes it asks the
// provider for.
func authorizeScopes(t *testing.T, link string) []string {
	t.Helper()
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := hc.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := resp.Location()
	if err != nil {
		t.Fatalf("connect link answered %d", resp.StatusCode)
	}
	q, _ := url.ParseQuery(loc.RawQuery)
	return strings.Fields(q.Get("scope"))
}

// TestVerifyAdminPolicy: a Workspace admin blocks Drive apps; verify says
// admin_policy and names the domain; reconnecting is not offered as the fix.
func TestVerifyAdminPolicy(t *testing.T) {
	t.Parallel()
	f := start(t)
	cred := f.google(t, "ada@globex.example")
	if err := f.sb().InjectFault(sandbox.Fault{Provider: "google", Fault: "admin_policy", Domain: "globex.example"}); err != nil {
		t.Fatal(err)
	}
	v := f.verify(t, cred.ID, authgate.VerifyRequest{})
	c := check(t, v, "drive.list")
	if c.Class != authgate.ClassAdminPolicy || !strings.Contains(c.Fix, "globex.example") || !strings.Contains(v.Summary, "globex.example") || c.HTTPStatus != 403 {
		t.Fatalf("drive.list under admin policy %+v; summary %q", c, v.Summary)
	}
	if check(t, v, "google.userinfo").Status != authgate.CheckPass {
		t.Fatal("identity should still answer")
	}
}

// TestVerifyRevoked: the user revoked the app at Google; verify reports
// reauth_required with a reconnect link.
func TestVerifyRevoked(t *testing.T) {
	t.Parallel()
	f := start(t)
	cred := f.google(t, "rex@acme.example")
	if err := f.sb().InjectFault(sandbox.Fault{Provider: "google", Fault: "revoke", Account: "rex@acme.example"}); err != nil {
		t.Fatal(err)
	}
	v := f.verify(t, cred.ID, authgate.VerifyRequest{})
	c := check(t, v, "google.userinfo")
	if v.Verdict != authgate.VerdictFail || c.Class != authgate.ClassReauthRequired || c.HTTPStatus != 401 || v.ReconnectURL == "" {
		t.Fatalf("revoked %+v", v)
	}
	// Labelled by the code the class came from (the Bearer challenge's
	// invalid_token), not the body's invalid_request.
	if !strings.Contains(c.Detail, "(invalid_token, HTTP 401)") || strings.Contains(c.Detail, "invalid_request") {
		t.Fatalf("revoked token labelled %q", c.Detail)
	}
	got, _ := f.env.Client.Credential(f.ctx, cred.ID)
	if got.Connector.Verification != authgate.VerificationFailed || got.Connector.LastVerdict != authgate.VerdictFail {
		t.Fatalf("connector state %+v", got.Connector)
	}
}

// TestVerifyIdentityMismatch: the tokens stored under a credential answer
// for another account than the one it is bound to — what a migration that
// attached tokens to the wrong user leaves behind (SPEC failure 6). The
// sandbox tells the truth about the token; verify records identity_mismatch
// and blocks the credential.
func TestVerifyIdentityMismatch(t *testing.T) {
	t.Parallel()
	f := start(t)
	alice := f.google(t, "alice@acme.example")
	bob := grantGoogle(t, f, "bob@acme.example")
	// The import binds Bob's tokens to Alice's slot.
	exp := time.Now().Add(time.Hour)
	cred, err := f.env.Client.ImportCredential(f.ctx, authgate.ImportCredentialRequest{UserID: "user-2", Provider: "google", Subject: alice.Account.Subject,
		Email: "alice@acme.example", Domain: "acme.example", AccountType: authgate.AccountTypeWorkspace, Scopes: bob.scopes, AccessToken: bob.access, RefreshToken: bob.refresh, ExpiresAt: &exp})
	if err != nil {
		t.Fatal(err)
	}
	f.sb().ResetCounters()
	v := f.verify(t, cred.ID, authgate.VerifyRequest{})
	c := check(t, v, "identity_matches_stored")
	if v.IdentityMatchesStored || v.Identity.Email != "bob@acme.example" || c.Class != authgate.ClassReauthRequired || !strings.Contains(c.Detail, "alice@acme.example") ||
		!strings.Contains(c.Detail, "bob@acme.example") || v.Credential.Status != authgate.CredentialStatusReauthRequired || v.Credential.StatusReason != authgate.StatusReasonIdentityMismatch {
		t.Fatalf("mismatch %+v", v)
	}
	// No check ran on Bob's data after the identity was found wrong.
	if len(v.Checks) != 3 {
		t.Fatalf("checks after a mismatch %+v", v.Checks)
	}
	got, _ := f.env.Client.Credential(f.ctx, cred.ID)
	if got.Status != authgate.CredentialStatusReauthRequired || got.StatusReason != authgate.StatusReasonIdentityMismatch || got.Connector.State != authgate.ConnectorReauthRequired {
		t.Fatalf("credential %+v", got)
	}
	ev := events(t, f, cred.ID)
	if !slices.Contains(ev, "identity_mismatch") || !slices.Contains(ev, "reauth_required_set") || ev[len(ev)-1] != "verified" {
		t.Fatalf("events %v", ev)
	}
	// The token API refuses it now.
	_, err = f.env.Client.Token(f.ctx, cred.ID, authgate.TokenRequest{})
	var ae *authgate.Error
	if !errors.As(err, &ae) || ae.Class != authgate.ClassReauthRequired {
		t.Fatalf("token after mismatch: %v", err)
	}
	// Verifying again makes no provider call: the credential is blocked.
	again := f.verify(t, cred.ID, authgate.VerifyRequest{})
	if len(again.Checks) != 1 || again.Checks[0].Name != "credential" || again.ReconnectURL == "" {
		t.Fatalf("verify of a blocked credential %+v", again)
	}
}

type rawGrant struct {
	access, refresh string
	scopes          []string
}

// grantGoogle obtains real sandbox tokens for account outside authgate.
func grantGoogle(t *testing.T, f *fixture, account string) rawGrant {
	t.Helper()
	sb := f.sb()
	if err := sb.SetConsent("google", sandbox.Consent{Account: account}); err != nil {
		t.Fatal(err)
	}
	defer sb.ClearConsent("google")
	c, _ := sb.DefaultClient("google")
	base := f.env.URL + "/sandbox/google"
	q := url.Values{"client_id": {c.ClientID}, "redirect_uri": {"http://127.0.0.1:9/cb"}, "response_type": {"code"},
		"scope": {"openid email " + scopeDriveFile + " " + scopeMetaRO}, "state": {"state-0123456789"}, "access_type": {"offline"}}
	loc, err := sandbox.CompleteConsent(f.ctx, nil, base+"/o/oauth2/v2/auth?"+q.Encode(), sandbox.Choice{})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.PostForm(base+"/token", url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")}, "redirect_uri": {"http://127.0.0.1:9/cb"},
		"client_id": {c.ClientID}, "client_secret": {c.ClientSecret}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
		Scope        string `json:"scope"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || tok.AccessToken == "" {
		t.Fatalf("tokens: %v", err)
	}
	return rawGrant{access: tok.AccessToken, refresh: tok.RefreshToken, scopes: strings.Fields(tok.Scope)}
}

// TestVerifyNotionUnshared: users/me works, the target page answers 404
// once un-shared: a sharing problem with the "Add connections" fix, while
// the still-shared database passes.
func TestVerifyNotionUnshared(t *testing.T) {
	t.Parallel()
	f := start(t)
	cred := f.env.Connect(t, authgatetest.ConnectParams{Provider: "notion", Actions: []string{"notion.read", "notion.insert"}, Choice: sandbox.Choice{Account: "nia@acme.example"}})
	page, db := f.sb().Notion().ObjectID("", "Roadmap"), f.sb().Notion().ObjectID("", "Tasks")
	targets := &authgate.VerifyTargets{NotionPage: page, NotionDatabase: db}
	f.sb().ResetCounters()
	v := f.verify(t, cred.ID, authgate.VerifyRequest{Targets: targets})
	if v.Verdict != authgate.VerdictPass || !v.IdentityMatchesStored || v.Identity.Workspace != cred.WorkspaceID {
		t.Fatalf("healthy notion %+v", v)
	}
	if err := f.sb().InjectFault(sandbox.Fault{Provider: "notion", Fault: "unshare", Resource: page}); err != nil {
		t.Fatal(err)
	}
	v = f.verify(t, cred.ID, authgate.VerifyRequest{Targets: targets})
	me, pc, dc := check(t, v, "notion.users_me"), check(t, v, "notion.page"), check(t, v, "notion.database")
	if me.Status != authgate.CheckPass || dc.Status != authgate.CheckPass {
		t.Fatalf("users/me %+v database %+v", me, dc)
	}
	if pc.Status != authgate.CheckFail || pc.Class != authgate.ClassNotSharedOrNotFound || !strings.Contains(pc.Fix, "Add connections") || pc.HTTPStatus != 404 || pc.ProviderRequestID == "" {
		t.Fatalf("unshared page %+v", pc)
	}
	if v.ReconnectURL != "" {
		t.Fatal("sharing is not fixed by reconnecting")
	}
}

// TestVerifySlack: auth.test and channel membership; an app removed from
// the channel is a sharing problem.
func TestVerifySlack(t *testing.T) {
	t.Parallel()
	f := start(t)
	cred := f.env.Connect(t, authgatetest.ConnectParams{Provider: "slack", Actions: []string{"slack.chat.post", "slack.channels.list"}, Choice: sandbox.Choice{Account: "sam@acme.example"}})
	general := f.sb().Slack().ChannelID("", "general")
	f.sb().ResetCounters()
	v := f.verify(t, cred.ID, authgate.VerifyRequest{Targets: &authgate.VerifyTargets{SlackChannel: general}, Actions: []string{"slack.chat.post"}})
	if v.Verdict != authgate.VerdictPass || !v.IdentityMatchesStored || check(t, v, "slack.channel").Status != authgate.CheckPass {
		t.Fatalf("healthy slack %+v", v)
	}
	if err := f.sb().InjectFault(sandbox.Fault{Provider: "slack", Fault: "unshare", Resource: general}); err != nil {
		t.Fatal(err)
	}
	v = f.verify(t, cred.ID, authgate.VerifyRequest{Targets: &authgate.VerifyTargets{SlackChannel: general}})
	if c := check(t, v, "slack.channel"); c.Class != authgate.ClassNotSharedOrNotFound || !strings.Contains(c.Fix, "/invite") {
		t.Fatalf("removed from channel %+v", c)
	}
}

// TestVerifyRefusals: problems with the request are problem+json, not
// findings; another tenant's credential does not exist.
func TestVerifyRefusals(t *testing.T) {
	t.Parallel()
	f := start(t)
	cred := f.google(t, "rita@acme.example")
	var ae *authgate.Error
	_, err := f.env.Client.Verify(f.ctx, cred.ID, authgate.VerifyRequest{Targets: &authgate.VerifyTargets{NotionPage: "x"}})
	if !errors.As(err, &ae) || ae.Class != authgate.ClassInvalidRequest || ae.Errors[0].Field != "targets.notion_page" {
		t.Fatalf("notion target on google: %v", err)
	}
	_, err = f.env.Client.Verify(f.ctx, cred.ID, authgate.VerifyRequest{Actions: []string{"drive.explode"}})
	if !errors.As(err, &ae) || ae.Class != authgate.ClassInvalidRequest {
		t.Fatalf("unknown action: %v", err)
	}
	other, _ := f.env.NewTenant(t, "other")
	_, err = other.Verify(f.ctx, cred.ID, authgate.VerifyRequest{})
	if !errors.As(err, &ae) || ae.Class != authgate.ClassNotFound {
		t.Fatalf("another tenant: %v", err)
	}
	if c := f.sb().Counters()["google"]; c.APIRequests != 0 || c.TokenRequests != 0 {
		t.Fatalf("refused verifications called the provider: %+v", c)
	}
}
