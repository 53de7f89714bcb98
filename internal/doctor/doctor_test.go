package doctor_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/authgatetest"
	"github.com/authgate/authgate/sandbox"
	"github.com/authgate/authgate/server"
)

const scopeDriveFile = "https://www.googleapis.com/auth/drive.file"

var googleActions = []string{"drive.files.list", "docs.documents.create"}

func diagnose(t *testing.T, env *authgatetest.Env, id authgate.CredentialID, req authgate.DiagnoseRequest) authgate.Diagnosis {
	t.Helper()
	d, err := env.Client.Diagnose(context.Background(), id, req)
	if err != nil {
		t.Fatalf("diagnose: %v", err)
	}
	return d
}

func findCheck(d authgate.Diagnosis, name string) (authgate.DiagnosisCheck, bool) {
	for _, c := range d.Checks {
		if c.Name == name {
			return c, true
		}
	}
	return authgate.DiagnosisCheck{}, false
}

// TestDoctorScenarios builds one sandbox scenario per SPEC §1 failure mode
// and checks the verdict names the cause and a fix that fits it.
func TestDoctorScenarios(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		cfg  func(*server.Config)
		// setup returns the credential to diagnose and the request.
		setup     func(t *testing.T, env *authgatetest.Env) (authgate.CredentialID, authgate.DiagnoseRequest)
		cause     authgate.DiagnosisCause
		nextHas   []string
		reconnect bool
	}{
		{
			name: "healthy",
			setup: func(t *testing.T, env *authgatetest.Env) (authgate.CredentialID, authgate.DiagnoseRequest) {
				return google(t, env, "user-1", "hana@acme.example").ID, authgate.DiagnoseRequest{}
			},
			cause: authgate.CauseHealthy, nextHas: []string{"Nothing to do"},
		},
		{
			name: "missing scope",
			setup: func(t *testing.T, env *authgatetest.Env) (authgate.CredentialID, authgate.DiagnoseRequest) {
				c := google(t, env, "user-1", "dora@acme.example")
				inject(t, env, sandbox.Fault{Provider: "google", Fault: "drop_scope", Account: "dora@acme.example", Scope: scopeDriveFile})
				return c.ID, authgate.DiagnoseRequest{}
			},
			cause: authgate.CauseMissingScope, nextHas: []string{scopeDriveFile, "Reconnect link: http"}, reconnect: true,
		},
		{
			name: "no refresh token",
			setup: func(t *testing.T, env *authgatetest.Env) (authgate.CredentialID, authgate.DiagnoseRequest) {
				past := time.Now().Add(-time.Minute)
				c, err := env.Client.ImportCredential(context.Background(), authgate.ImportCredentialRequest{UserID: "user-1", Provider: "google", Subject: "sub-nora",
					Email: "nora@acme.example", Scopes: []string{"openid", "email"}, AccessToken: "imported-access", ExpiresAt: &past})
				if err != nil {
					t.Fatal(err)
				}
				return c.ID, authgate.DiagnoseRequest{}
			},
			cause: authgate.CauseNoRefreshToken, nextHas: []string{"offline access", "Reconnect link"}, reconnect: true,
		},
		{
			name: "invalid_grant by revocation",
			setup: func(t *testing.T, env *authgatetest.Env) (authgate.CredentialID, authgate.DiagnoseRequest) {
				c := google(t, env, "user-1", "rex@acme.example")
				inject(t, env, sandbox.Fault{Provider: "google", Fault: "revoke", Account: "rex@acme.example"})
				forceRefresh(t, env, c.ID)
				return c.ID, authgate.DiagnoseRequest{}
			},
			cause: authgate.CauseRevoked, nextHas: []string{"revoked", "Reconnect link"}, reconnect: true,
		},
		{
			name: "invalid_grant by issuance limit",
			cfg:  func(c *server.Config) { c.SandboxGoogleIssuanceLimit = 2 },
			setup: func(t *testing.T, env *authgatetest.Env) (authgate.CredentialID, authgate.DiagnoseRequest) {
				c := google(t, env, "user-1", "ivy@acme.example")
				// The same account consents for two more users: past two
				// live refresh tokens, Google drops the oldest.
				google(t, env, "user-2", "ivy@acme.example")
				google(t, env, "user-3", "ivy@acme.example")
				forceRefresh(t, env, c.ID)
				return c.ID, authgate.DiagnoseRequest{}
			},
			cause: authgate.CauseIssuanceLimit, nextHas: []string{"forcing new consents"}, reconnect: true,
		},
		{
			name: "admin policy",
			setup: func(t *testing.T, env *authgatetest.Env) (authgate.CredentialID, authgate.DiagnoseRequest) {
				c := google(t, env, "user-1", "ada@globex.example")
				inject(t, env, sandbox.Fault{Provider: "google", Fault: "admin_policy", Domain: "globex.example"})
				return c.ID, authgate.DiagnoseRequest{}
			},
			cause: authgate.CauseAdminPolicy, nextHas: []string{"globex.example", "admin console"},
		},
		{
			name: "notion not shared",
			setup: func(t *testing.T, env *authgatetest.Env) (authgate.CredentialID, authgate.DiagnoseRequest) {
				c := env.Connect(t, authgatetest.ConnectParams{Provider: "notion", Actions: []string{"notion.read", "notion.insert"}, Choice: sandbox.Choice{Account: "nia@acme.example"}})
				db := env.Server.Sandbox.Notion().ObjectID("", "Tasks")
				inject(t, env, sandbox.Fault{Provider: "notion", Fault: "unshare", Resource: db})
				return c.ID, authgate.DiagnoseRequest{Targets: &authgate.VerifyTargets{NotionDatabase: db}}
			},
			cause: authgate.CauseNotShared, nextHas: []string{"Add connections"},
		},
		{
			name: "wrong principal",
			setup: func(t *testing.T, env *authgatetest.Env) (authgate.CredentialID, authgate.DiagnoseRequest) {
				alice := google(t, env, "user-1", "alice@acme.example")
				bob := grantGoogle(t, env, "bob@acme.example")
				exp := time.Now().Add(time.Hour)
				c, err := env.Client.ImportCredential(context.Background(), authgate.ImportCredentialRequest{UserID: "user-2", Provider: "google", Subject: alice.Account.Subject,
					Email: "alice@acme.example", Domain: "acme.example", AccountType: authgate.AccountTypeWorkspace, Scopes: bob.scopes, AccessToken: bob.access, RefreshToken: bob.refresh, ExpiresAt: &exp})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() {
					// Secrets never leave: only fingerprints.
					d, _ := env.Client.Diagnose(context.Background(), c.ID, authgate.DiagnoseRequest{})
					b, _ := json.Marshal(d)
					if strings.Contains(string(b), bob.access) || strings.Contains(string(b), bob.refresh) {
						t.Error("the diagnosis carries a token")
					}
				})
				return c.ID, authgate.DiagnoseRequest{}
			},
			cause: authgate.CauseWrongPrincipal, nextHas: []string{"signed in as alice@acme.example"}, reconnect: true,
		},
		{
			name: "clock skew",
			setup: func(t *testing.T, env *authgatetest.Env) (authgate.CredentialID, authgate.DiagnoseRequest) {
				c := google(t, env, "user-1", "sky@acme.example")
				inject(t, env, sandbox.Fault{Provider: "google", Fault: "clock_offset", OffsetSeconds: 600})
				return c.ID, authgate.DiagnoseRequest{}
			},
			cause: authgate.CauseClockSkew, nextHas: []string{"time sync"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := authgatetest.Start(t, authgatetest.Options{Configure: tc.cfg})
			id, req := tc.setup(t, env)
			d := diagnose(t, env, id, req)
			if d.Verdict.Cause != tc.cause {
				t.Fatalf("cause %q; want %q\nverdict %+v\nchecks %+v", d.Verdict.Cause, tc.cause, d.Verdict, d.Checks)
			}
			for _, s := range tc.nextHas {
				if !strings.Contains(d.Verdict.NextAction, s) {
					t.Errorf("next action %q lacks %q", d.Verdict.NextAction, s)
				}
			}
			if tc.reconnect != (d.ReconnectURL != "") {
				t.Errorf("reconnect link %q; want one: %t", d.ReconnectURL, tc.reconnect)
			}
			if !d.Live || len(d.Events) == 0 || d.Credential.ID != id {
				t.Errorf("report %+v", d)
			}
			// The checks come in the runbook's order.
			order := []string{authgate.SectionRepro, authgate.SectionIdentity, authgate.SectionScopes, authgate.SectionLifecycle, authgate.SectionStorage, authgate.SectionClock, authgate.SectionEnvironment}
			last := 0
			for _, c := range d.Checks {
				i := indexOf(order, c.Section)
				if i < last {
					t.Errorf("check %s/%s out of order", c.Section, c.Name)
				}
				last = max(last, i)
			}
		})
	}
}

func indexOf(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

// TestDoctorStorageAndScopesTable: the storage section names the key id and
// the refresh-token fingerprint; the scopes table lists requested, granted
// and required.
func TestDoctorStorageAndScopesTable(t *testing.T) {
	t.Parallel()
	env := authgatetest.Start(t, authgatetest.Options{})
	c := google(t, env, "user-1", "sam@acme.example")
	d := diagnose(t, env, c.ID, authgate.DiagnoseRequest{})
	dec, ok := findCheck(d, "decrypts")
	if !ok || dec.Status != authgate.CheckPass || !strings.Contains(dec.Evidence, "key id") {
		t.Fatalf("decrypts %+v", dec)
	}
	fp, _ := findCheck(d, "refresh_fingerprint")
	if fp.Status != authgate.CheckPass || !strings.Contains(fp.Evidence, c.RefreshTokenFingerprint) {
		t.Fatalf("fingerprint %+v", fp)
	}
	if row, _ := findCheck(d, "one_row_per_slot"); row.Status != authgate.CheckPass {
		t.Fatalf("slot %+v", row)
	}
	if len(d.Scopes.Requested) == 0 || len(d.Scopes.Granted) == 0 || len(d.Scopes.Required) == 0 || len(d.Scopes.Missing) != 0 {
		t.Fatalf("scopes %+v", d.Scopes)
	}
	// The key file sits next to the database in the test kit: a warning.
	if k, _ := findCheck(d, "master_keys"); k.Status != authgate.CheckWarn {
		t.Fatalf("master keys %+v", k)
	}
}

func google(t *testing.T, env *authgatetest.Env, user, account string) authgate.Credential {
	t.Helper()
	return env.Connect(t, authgatetest.ConnectParams{UserID: user, Provider: "google", Actions: googleActions, Choice: sandbox.Choice{Account: account}})
}

func inject(t *testing.T, env *authgatetest.Env, f sandbox.Fault) {
	t.Helper()
	if err := env.Server.Sandbox.InjectFault(f); err != nil {
		t.Fatal(err)
	}
}

// forceRefresh reports the current access token rejected: one refresh.
func forceRefresh(t *testing.T, env *authgatetest.Env, id authgate.CredentialID) {
	t.Helper()
	c, err := env.Client.Credential(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = env.Client.Token(context.Background(), id, authgate.TokenRequest{RejectedFingerprint: c.AccessTokenFingerprint})
}

type rawGrant struct {
	access, refresh string
	scopes          []string
}

// grantGoogle obtains real sandbox tokens for account outside authgate.
func grantGoogle(t *testing.T, env *authgatetest.Env, account string) rawGrant {
	t.Helper()
	sb := env.Server.Sandbox
	if err := sb.SetConsent("google", sandbox.Consent{Account: account}); err != nil {
		t.Fatal(err)
	}
	defer sb.ClearConsent("google")
	c, _ := sb.DefaultClient("google")
	base := env.URL + "/sandbox/google"
	q := url.Values{"client_id": {c.ClientID}, "redirect_uri": {"http://127.0.0.1:9/cb"}, "response_type": {"code"},
		"scope": {"openid email " + scopeDriveFile + " https://www.googleapis.com/auth/drive.metadata.readonly"}, "state": {"state-0123456789"}, "access_type": {"offline"}}
	loc, err := sandbox.CompleteConsent(context.Background(), nil, base+"/o/oauth2/v2/auth?"+q.Encode(), sandbox.Choice{})
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

// TestDoctorHealedHistory: another account's tokens under a credential make
// it wrong_principal; once the right account reconnects, the mismatch is
// history in the storage section and the verdict is healthy.
func TestDoctorHealedHistory(t *testing.T) {
	t.Parallel()
	env := authgatetest.Start(t, authgatetest.Options{})
	alice := google(t, env, "user-1", "alice@acme.example")
	bob := grantGoogle(t, env, "bob@acme.example")
	exp := time.Now().Add(time.Hour)
	c, err := env.Client.ImportCredential(context.Background(), authgate.ImportCredentialRequest{UserID: "user-2", Provider: "google", Subject: alice.Account.Subject,
		Email: "alice@acme.example", Domain: "acme.example", AccountType: authgate.AccountTypeWorkspace, Scopes: bob.scopes, AccessToken: bob.access, RefreshToken: bob.refresh, ExpiresAt: &exp})
	if err != nil {
		t.Fatal(err)
	}
	if d := diagnose(t, env, c.ID, authgate.DiagnoseRequest{}); d.Verdict.Cause != authgate.CauseWrongPrincipal {
		t.Fatalf("before the reconnect: %+v", d.Verdict)
	}
	again := env.Connect(t, authgatetest.ConnectParams{UserID: "user-2", Provider: "google", Actions: googleActions, CredentialID: c.ID, Choice: sandbox.Choice{Account: "alice@acme.example"}})
	if again.ID != c.ID || again.Status != authgate.CredentialStatusActive {
		t.Fatalf("reconnect: %+v", again)
	}
	d := diagnose(t, env, c.ID, authgate.DiagnoseRequest{})
	if d.Verdict.Cause != authgate.CauseHealthy {
		t.Fatalf("after the reconnect: %+v\n%+v", d.Verdict, d.Checks)
	}
	if sc, _ := findCheck(d, "second_consent"); sc.Status != authgate.CheckPass || !strings.Contains(sc.Evidence, "history") {
		t.Fatalf("second_consent %+v", sc)
	}
}
