package api_test

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
	"github.com/authgate/authgate/internal/clock"
	"github.com/authgate/authgate/sandbox"
)

const scopeDriveFile = "https://www.googleapis.com/auth/drive.file"

var demoActions = []string{"drive.files.list", "docs.documents.create", "notion.read", "notion.insert"}

type runFixture struct {
	env            *authgatetest.Env
	ctx            context.Context
	google, notion authgate.Credential
	db             string
}

func startRuns(t *testing.T, googleChoice sandbox.Choice) *runFixture {
	return startRunsWith(t, googleChoice, authgatetest.Options{})
}

func startRunsWith(t *testing.T, googleChoice sandbox.Choice, opts authgatetest.Options) *runFixture {
	t.Helper()
	env := authgatetest.Start(t, opts)
	f := &runFixture{env: env, ctx: context.Background()}
	f.google = env.Connect(t, authgatetest.ConnectParams{UserID: "u", Provider: "google", Actions: []string{"drive.files.list", "docs.documents.create"}, Choice: googleChoice})
	f.notion = env.Connect(t, authgatetest.ConnectParams{UserID: "u", Provider: "notion", Actions: []string{"notion.read", "notion.insert"}, Choice: sandbox.Choice{Account: "nia@acme.example"}})
	f.db = env.Server.Sandbox.Notion().ObjectID("", "Tasks")
	return f
}

func (f *runFixture) create(t *testing.T) authgate.Run {
	t.Helper()
	r, err := f.env.Client.CreateRun(f.ctx, authgate.RunCreateRequest{Workflow: "w", UserID: "u", Actions: demoActions,
		Bindings: map[string]authgate.CredentialID{"google": f.google.ID, "notion": f.notion.ID}, Targets: json.RawMessage(`{"notion_database":"` + f.db + `"}`)})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func failedChecks(r authgate.Run) []authgate.PreflightCheck {
	var out []authgate.PreflightCheck
	for _, c := range r.Preflight {
		if c.Status != authgate.PreflightOK {
			out = append(out, c)
		}
	}
	return out
}

// TestRunPreflight: a healthy run starts; an un-shared Notion database fails
// preflight with the sharing fix before any step; a grant without the Docs
// scope blocks with a reconnect link asking for exactly it.
func TestRunPreflight(t *testing.T) {
	t.Parallel()
	t.Run("healthy_then_unshared", func(t *testing.T) {
		t.Parallel()
		f := startRuns(t, sandbox.Choice{Account: "ann@acme.example"})
		r := f.create(t)
		if r.State != authgate.RunStateRunning || len(failedChecks(r)) != 0 || !slices.ContainsFunc(r.Preflight, func(c authgate.PreflightCheck) bool {
			return c.Binding == "notion" && c.Check == "target"
		}) {
			t.Fatalf("healthy run %+v", r)
		}
		if err := f.env.Server.Sandbox.InjectFault(sandbox.Fault{Provider: "notion", Fault: "unshare", Resource: f.db}); err != nil {
			t.Fatal(err)
		}
		r = f.create(t)
		bad := failedChecks(r)
		if r.State != authgate.RunStateFailed || len(bad) != 1 || bad[0].Class != authgate.ClassNotSharedOrNotFound || !strings.Contains(bad[0].Fix, "Add connections") {
			t.Fatalf("unshared run %s %+v", r.State, bad)
		}
		got, _ := f.env.Client.Run(f.ctx, r.ID)
		if len(got.Steps) != 0 {
			t.Fatalf("steps ran: %+v", got.Steps)
		}
		if _, err := f.env.Client.GateStep(f.ctx, r.ID, authgate.StepGateRequest{Key: "s1", IdempotencyKey: "k1"}); !isClass(err, authgate.ClassConflict) {
			t.Fatalf("gate on a failed run: %v", err)
		}
	})
	t.Run("docs_scope_dropped", func(t *testing.T) {
		t.Parallel()
		f := startRuns(t, sandbox.Choice{Account: "dan@acme.example", Scopes: []string{"openid", "email", "profile", "https://www.googleapis.com/auth/drive.metadata.readonly"}})
		r := f.create(t)
		bad := failedChecks(r)
		if r.State != authgate.RunStateBlockedOnAuth || len(bad) != 1 || bad[0].Check != "scopes" || bad[0].Class != authgate.ClassInsufficientScope ||
			!slices.Equal(bad[0].MissingScopes, []string{scopeDriveFile}) || bad[0].ReconnectURL == "" {
			t.Fatalf("run %s %+v", r.State, bad)
		}
		if r.Blocked == nil || r.Blocked.ReconnectURL != bad[0].ReconnectURL || r.Blocked.CredentialID != f.google.ID {
			t.Fatalf("blocked %+v", r.Blocked)
		}
		q := authorizeQuery(t, bad[0].ReconnectURL)
		if q.Get("include_granted_scopes") != "true" || !slices.Contains(strings.Fields(q.Get("scope")), scopeDriveFile) {
			t.Fatalf("reconnect asks %v", q)
		}
	})
}

func isClass(err error, c authgate.Class) bool {
	var ae *authgate.Error
	return errors.As(err, &ae) && ae.Class == c
}

func authorizeQuery(t *testing.T, link string) url.Values {
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
	return loc.Query()
}

// TestRunSteps: gate → tokens; complete twice records once; a completed
// step's gate returns its output; a 401 whose refresh fails blocks the run
// with a reconnect link and the next gate answers 409 blocked_on_auth;
// rate limits answer retry_after.
func TestRunSteps(t *testing.T) {
	t.Parallel()
	fc := clock.NewFake(time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC))
	f := startRunsWith(t, sandbox.Choice{Account: "sue@acme.example"}, authgatetest.Options{Clock: fc})
	r := f.create(t)
	c := f.env.Client
	g, err := c.GateStep(f.ctx, r.ID, authgate.StepGateRequest{Key: "list", Actions: []string{"drive.files.list"}, IdempotencyKey: "run-list"})
	if err != nil || g.Completed || g.Tokens["google"].AccessToken == "" || g.Tokens["notion"].AccessToken == "" || g.Step.Attempts != 1 {
		t.Fatalf("gate %+v %v", g, err)
	}
	exp, err := c.GateStep(f.ctx, r.ID, authgate.StepGateRequest{Key: "big", Actions: []string{"drive.files.list"}, IdempotencyKey: "run-big", Expensive: true})
	if err != nil || exp.Tokens["google"].ExpiresAt.Before(fc.Now().Add(15*time.Minute)) {
		t.Fatalf("an expensive step's token %+v %v", exp.Tokens["google"].ExpiresAt, err)
	}
	for range 2 {
		st, err := c.CompleteStep(f.ctx, r.ID, "list", authgate.StepCompleteRequest{IdempotencyKey: "run-list", Output: json.RawMessage(`{"n":1}`)})
		if err != nil || st.Status != authgate.StepStatusCompleted || string(st.Output) != `{"n":1}` {
			t.Fatalf("complete %+v %v", st, err)
		}
	}
	g, err = c.GateStep(f.ctx, r.ID, authgate.StepGateRequest{Key: "list", IdempotencyKey: "run-list"})
	if err != nil || !g.Completed || g.Tokens != nil || string(g.Step.Output) != `{"n":1}` {
		t.Fatalf("gate of a completed step %+v %v", g, err)
	}

	// A 429 is a retry after the provider's Retry-After.
	if _, err := c.GateStep(f.ctx, r.ID, authgate.StepGateRequest{Key: "doc", IdempotencyKey: "run-doc"}); err != nil {
		t.Fatal(err)
	}
	fr, err := c.FailStep(f.ctx, r.ID, "doc", authgate.StepFailRequest{Binding: "google", Status: 429, Headers: map[string]string{"Retry-After": "7"},
		Body: `{"error":{"code":429,"message":"Quota exceeded","status":"RESOURCE_EXHAUSTED","errors":[{"reason":"rateLimitExceeded"}]}}`})
	if err != nil || fr.Outcome != authgate.StepFailRetry || fr.Class != authgate.ClassRateLimited || fr.RetryAfterSeconds != 7 {
		t.Fatalf("429 %+v %v", fr, err)
	}

	// The provider expired the access token early: the 401 makes one
	// refresh and the step retries with the new token; the run runs on.
	if err := f.env.Server.Sandbox.InjectFault(sandbox.Fault{Provider: "google", Fault: "expire_access_tokens", Account: "sue@acme.example"}); err != nil {
		t.Fatal(err)
	}
	unauth := `{"error":{"code":401,"message":"Request had invalid authentication credentials.","status":"UNAUTHENTICATED"}}`
	fr, err = c.FailStep(f.ctx, r.ID, "doc", authgate.StepFailRequest{Binding: "google", Status: 401, Body: unauth})
	if err != nil || fr.Outcome != authgate.StepFailRetry || fr.RunState != authgate.RunStateRunning {
		t.Fatalf("401 after early expiry %+v %v", fr, err)
	}
	g2, err := c.GateStep(f.ctx, r.ID, authgate.StepGateRequest{Key: "doc", IdempotencyKey: "run-doc"})
	if err != nil || g2.Tokens["google"].AccessToken == g.Tokens["google"].AccessToken {
		t.Fatalf("gate after the refresh %+v %v", g2, err)
	}

	// Google revoked: the 401 refreshes once, the refresh fails, the run
	// blocks. (A token fetched under 2 s ago is not refreshed on a report:
	// time passes.)
	fc.Advance(3 * time.Second)
	if err := f.env.Server.Sandbox.InjectFault(sandbox.Fault{Provider: "google", Fault: "revoke", Account: "sue@acme.example"}); err != nil {
		t.Fatal(err)
	}
	fr, err = c.FailStep(f.ctx, r.ID, "doc", authgate.StepFailRequest{Binding: "google", Status: 401, Body: unauth})
	if err != nil || fr.Outcome != authgate.StepFailBlocked || fr.RunState != authgate.RunStateBlockedOnAuth || fr.Blocked == nil || fr.Blocked.ReconnectURL == "" {
		t.Fatalf("401 after revoke %+v %v", fr, err)
	}
	_, err = c.GateStep(f.ctx, r.ID, authgate.StepGateRequest{Key: "doc", IdempotencyKey: "run-doc"})
	var ae *authgate.Error
	if !errors.As(err, &ae) || ae.Class != authgate.ClassBlockedOnAuth || ae.Status != 409 || ae.ReconnectURL == "" || ae.AgentHint == "" {
		t.Fatalf("gate of a blocked run: %v", err)
	}
	got, err := c.Run(f.ctx, r.ID)
	if err != nil || got.State != authgate.RunStateBlockedOnAuth || got.Blocked.Binding != "google" || len(got.Steps) != 3 || got.Steps[2].Key != "doc" || got.Steps[2].Status != authgate.StepStatusFailed {
		t.Fatalf("run %+v %v", got, err)
	}
	page, err := c.Runs(f.ctx, authgate.RunFilter{State: authgate.RunStateBlockedOnAuth, UserID: "u"})
	if err != nil || len(page.Runs) != 1 || page.Runs[0].ID != r.ID {
		t.Fatalf("list %+v %v", page, err)
	}

	// A reconnect as another account is refused and resumes nothing; the
	// same account's reconnect resumes the run, whose next gate goes on.
	if cred, outcome := f.env.ConnectOutcome(t, authgatetest.ConnectParams{UserID: "u", Provider: "google", CredentialID: f.google.ID,
		Choice: sandbox.Choice{Account: "eve@acme.example"}}); cred.ID != "" || outcome != "identity_mismatch" {
		t.Fatalf("reconnect as another account: %q %+v", outcome, cred)
	}
	if got, _ := c.Run(f.ctx, r.ID); got.State != authgate.RunStateBlockedOnAuth {
		t.Fatalf("a reconnect for another account resumed the run: %s", got.State)
	}
	f.env.Connect(t, authgatetest.ConnectParams{UserID: "u", Provider: "google", CredentialID: f.google.ID, Choice: sandbox.Choice{Account: "sue@acme.example"}})
	got = authgatetest.WaitRun(t, c, r.ID, authgate.RunStateRunning)
	if got.State != authgate.RunStateRunning || got.Timeline[len(got.Timeline)-1].Kind != authgate.RunEntryResumed {
		t.Fatalf("after reconnect %s %+v", got.State, got.Timeline)
	}
	if g, err := c.GateStep(f.ctx, r.ID, authgate.StepGateRequest{Key: "doc", IdempotencyKey: "run-doc"}); err != nil || g.Completed || g.Tokens["google"].AccessToken == "" {
		t.Fatalf("gate after resume %+v %v", g, err)
	}
	if got, err := c.CancelRun(f.ctx, r.ID); err != nil || got.State != authgate.RunStateCanceled {
		t.Fatalf("cancel %+v %v", got, err)
	}
}

// TestRunPrincipals: another tenant's key can neither start a run on this
// tenant's credential nor read its runs; a run for one user cannot bind
// another user's credential.
func TestRunPrincipals(t *testing.T) {
	t.Parallel()
	env := authgatetest.Start(t, authgatetest.Options{})
	ctx := context.Background()
	u, err := env.Client.ImportCredential(ctx, importReq("uma"))
	if err != nil {
		t.Fatal(err)
	}
	v, err := env.Client.ImportCredential(ctx, importReq("vic"))
	if err != nil {
		t.Fatal(err)
	}
	req := authgate.RunCreateRequest{Workflow: "w", UserID: "uma", Bindings: map[string]authgate.CredentialID{"google": u.ID}}
	run, err := env.Client.CreateRun(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := env.NewTenant(t, "other")
	if _, err := other.CreateRun(ctx, req); !isClass(err, authgate.ClassWrongPrincipal) {
		t.Fatalf("other tenant starts: %v", err)
	}
	if _, err := other.Run(ctx, run.ID); !isClass(err, authgate.ClassNotFound) {
		t.Fatalf("other tenant reads: %v", err)
	}
	if _, err := other.GateStep(ctx, run.ID, authgate.StepGateRequest{Key: "a", IdempotencyKey: "a"}); !isClass(err, authgate.ClassNotFound) {
		t.Fatalf("other tenant gates: %v", err)
	}
	if page, err := other.Runs(ctx, authgate.RunFilter{}); err != nil || len(page.Runs) != 0 {
		t.Fatalf("other tenant lists %+v %v", page, err)
	}
	bad := req
	bad.Actions = []string{"drive.files.lsit"}
	if _, err := env.Client.CreateRun(ctx, bad); !isClass(err, authgate.ClassInvalidRequest) {
		t.Fatalf("unknown action: %v", err)
	}
	req.Bindings["notion"] = v.ID
	_, err = env.Client.CreateRun(ctx, req)
	var ae *authgate.Error
	if !errors.As(err, &ae) || ae.Class != authgate.ClassWrongPrincipal || ae.Status != 403 {
		t.Fatalf("another user's credential: %v", err)
	}
	if page, _ := env.Client.Runs(ctx, authgate.RunFilter{}); len(page.Runs) != 1 {
		t.Fatalf("a refused run was stored: %+v", page)
	}
}
