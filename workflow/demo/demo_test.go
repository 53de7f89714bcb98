package demo_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/authgatetest"
	"github.com/authgate/authgate/internal/clock"
	"github.com/authgate/authgate/sandbox"
	"github.com/authgate/authgate/workflow"
	"github.com/authgate/authgate/workflow/demo"
)

const account = "demo@acme.example"

type fixture struct {
	env      *authgatetest.Env
	ctx      context.Context
	bindings map[string]authgate.CredentialID
	targets  json.RawMessage
	db       string
}

func start(t *testing.T) *fixture { return startWith(t, authgatetest.Options{}) }

func startWith(t *testing.T, opts authgatetest.Options) *fixture {
	t.Helper()
	env := authgatetest.Start(t, opts)
	f := &fixture{env: env, ctx: context.Background(), bindings: map[string]authgate.CredentialID{}}
	for p, actions := range map[string][]string{
		"google": {"drive.files.list", "docs.documents.create", "docs.documents.get", "docs.documents.update"},
		"notion": {"notion.read", "notion.insert"},
		"slack":  {"slack.chat.post"},
	} {
		c := env.Connect(t, authgatetest.ConnectParams{UserID: "u", Provider: p, Actions: actions, Choice: sandbox.Choice{Account: account}})
		f.bindings[p] = c.ID
	}
	sb := env.Server.Sandbox
	f.db = sb.Notion().ObjectID("", "Tasks")
	f.targets, _ = json.Marshal(authgate.VerifyTargets{NotionDatabase: f.db, SlackChannel: sb.Slack().ChannelID("", "general")})
	return f
}

// goRunner renames the demo: in sandbox mode the server runs workflow
// "demo" itself, and these tests drive the same steps from Go.
func goRunner(wf workflow.Workflow) workflow.Workflow {
	wf.Name = "demo-go"
	return wf
}

// sideEffects counts what the demo leaves at the providers: Docs, Notion
// rows under the database, Slack messages in #general.
func (f *fixture) sideEffects() (docs, rows, messages int) {
	sb := f.env.Server.Sandbox
	for _, name := range sb.Google().FilesOf(account) {
		if strings.HasPrefix(name, "authgate demo ") {
			docs++
		}
	}
	for _, o := range sb.Notion().Snapshot().Objects {
		if o.ParentID == f.db && strings.HasPrefix(o.Title, "authgate demo ") {
			rows++
		}
	}
	return docs, rows, sb.Slack().MessageCount("", "general")
}

// TestDemoBlockedAndResumed is issue 11's first done-means: Google revoked
// between steps 3 and 4 → the run is blocked_on_auth at step 4 with a
// reconnect link, no Notion row and no Slack message exist; the reconnect
// (the sandbox's consent) resumes it, and it finishes with one Doc, one row
// and one message, without running steps 1–3 again. Over HTTP and
// in-process alike.
func TestDemoBlockedAndResumed(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"http", "in-process"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			f := start(t)
			var api workflow.API = f.env.Client
			if mode == "in-process" {
				api = workflow.InProcess(f.env.Server.Handler(), f.env.AdminKey)
			}
			wf := goRunner(demo.Workflow(demo.Sandbox(f.env.URL)))
			ran := map[string]int{}
			for i := range wf.Steps {
				s := &wf.Steps[i]
				do := s.Do
				s.Do = func(ctx context.Context, sc *workflow.StepContext) (any, error) {
					ran[s.Key]++
					out, err := do(ctx, sc)
					if s.Key == "doc_read" && err == nil {
						// The user revokes authgate's access at Google.
						if ferr := f.env.Server.Sandbox.InjectFault(sandbox.Fault{Provider: "google", Fault: "revoke", Account: account}); ferr != nil {
							t.Error(ferr)
						}
					}
					return out, err
				}
			}
			r := &workflow.Runner{API: api, Workflow: wf}
			run, err := r.Start(f.ctx, authgate.RunCreateRequest{UserID: "u", Bindings: f.bindings, Targets: f.targets})
			var be *workflow.BlockedError
			if !errors.Is(err, workflow.ErrBlockedOnAuth) || !errors.As(err, &be) || be.ReconnectURL() == "" || be.Blocked.Binding != "google" {
				t.Fatalf("start: %v", err)
			}
			if run.State != authgate.RunStateBlockedOnAuth {
				t.Fatalf("run %s", run.State)
			}
			got, _ := f.env.Client.Run(f.ctx, run.ID)
			if st := got.Steps[3]; st.Key != "doc_append" || st.Status != authgate.StepStatusFailed || len(got.Steps) != 4 {
				t.Fatalf("steps %+v", got.Steps)
			}
			if docs, rows, msgs := f.sideEffects(); docs != 1 || rows != 0 || msgs != 0 {
				t.Fatalf("while blocked: %d docs, %d rows, %d messages", docs, rows, msgs)
			}

			f.env.Connect(t, authgatetest.ConnectParams{UserID: "u", Provider: "google", CredentialID: f.bindings["google"], Choice: sandbox.Choice{Account: account}})
			authgatetest.WaitRun(t, f.env.Client, run.ID, authgate.RunStateRunning)
			run, err = r.Resume(f.ctx, run.ID)
			if err != nil || run.State != authgate.RunStateSucceeded {
				t.Fatalf("resume: %s %v", run.State, err)
			}
			if docs, rows, msgs := f.sideEffects(); docs != 1 || rows != 1 || msgs != 1 {
				t.Fatalf("finished with %d docs, %d rows, %d messages; want one each", docs, rows, msgs)
			}
			for _, k := range []string{"drive_list", "doc_create", "doc_read"} {
				if ran[k] != 1 {
					t.Errorf("step %s ran %d times", k, ran[k])
				}
			}
			got, _ = f.env.Client.Run(f.ctx, run.ID)
			kinds := map[authgate.RunEntryKind]int{}
			for _, e := range got.Timeline {
				kinds[e.Kind]++
			}
			if kinds[authgate.RunEntryBlocked] != 1 || kinds[authgate.RunEntryResumed] != 1 || kinds[authgate.RunEntryStepCompleted] != 6 {
				t.Fatalf("timeline %v", kinds)
			}
		})
	}
}

// TestDemoConcurrentAcrossExpiry: 200 demo runs of one user start at once
// after every access token expired: one refresh per credential, all
// succeed, each with its own Doc, row and message.
func TestDemoConcurrentAcrossExpiry(t *testing.T) {
	t.Parallel()
	fc := clock.NewFake(time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC))
	f := startWith(t, authgatetest.Options{Clock: fc})
	fc.Advance(2 * time.Hour) // past every expiring access token
	before := f.env.Server.Sandbox.Counters()
	const n = 200
	// A provider's 429 makes a step wait its Retry-After: on this clock.
	sleep := func(_ context.Context, d time.Duration) error { fc.Advance(d); return nil }
	r := &workflow.Runner{API: f.env.Client, Workflow: goRunner(demo.Workflow(demo.Sandbox(f.env.URL))), Sleep: sleep, MaxAttempts: 50}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			run, err := r.Start(f.ctx, authgate.RunCreateRequest{UserID: "u", Bindings: f.bindings, Targets: f.targets})
			if err == nil && run.State != authgate.RunStateSucceeded {
				err = errors.New(string(run.State))
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("a run failed: %v", err)
		}
	}
	after := f.env.Server.Sandbox.Counters()
	t.Logf("the runs waited %s of provider Retry-After", fc.Now().Sub(time.Date(2026, 11, 26, 11, 0, 0, 0, time.UTC)))
	for _, p := range []string{"google", "notion", "slack"} {
		if got := after[p].TokenRequests - before[p].TokenRequests; got > 1 || p == "google" && got != 1 {
			t.Errorf("%s: %d token requests; want one refresh per expired credential", p, got)
		}
	}
	if docs, rows, msgs := f.sideEffects(); docs != n || rows != n || msgs != n {
		t.Fatalf("%d docs, %d rows, %d messages; want %d each", docs, rows, msgs, n)
	}
}
