package diagnose

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/internal/clock"
	"github.com/authgate/authgate/sandbox"
	"github.com/authgate/authgate/workflow/demo"
)

// Demo is the demo's setting: a server in sandbox mode and its sandbox.
type Demo struct {
	Client  *authgate.Client
	Sandbox *sandbox.Sandbox
	// Out receives the narration.
	Out io.Writer
	// Revoke revokes Google first, to show the block and the resume.
	Revoke bool
	// Clock tells the time (default the wall clock).
	Clock clock.Clock
}

// demoProviders are what the demo connects, with the actions it asks for.
var demoProviders = []struct {
	name    string
	actions []string
}{
	{"google", []string{"drive.files.list", "docs.documents.create", "docs.documents.get", "docs.documents.update"}},
	{"notion", []string{"notion.read", "notion.insert"}},
	{"slack", []string{"slack.chat.post"}},
}

// RunDemo connects the demo user to every provider through the sandbox's
// consent page and has the server run workflow demo (Drive → Docs → Notion
// → Slack); with Revoke the run blocks at preflight, the user reconnects and
// the server resumes it. It returns the run as it ended.
func RunDemo(ctx context.Context, d Demo) (authgate.Run, error) {
	if d.Clock == nil {
		d.Clock = clock.Real{}
	}
	const user, account = "demo-user", "demo@acme.example"
	bindings := map[string]authgate.CredentialID{}
	for _, p := range demoProviders {
		id, err := sandboxConnect(ctx, d.Client, user, p.name, p.actions, "", account)
		if err != nil {
			return authgate.Run{}, fmt.Errorf("connect %s: %w", p.name, err)
		}
		bindings[p.name] = id
		fmt.Fprintf(d.Out, "connected %-6s as %s: %s\n", p.name, account, id)
	}
	targets, _ := json.Marshal(authgate.VerifyTargets{NotionDatabase: d.Sandbox.Notion().ObjectID("", "Tasks"), SlackChannel: d.Sandbox.Slack().ChannelID("", "general")})
	if d.Revoke {
		fmt.Fprintln(d.Out, "revoking Google access at the provider (as a user would)…")
		if err := d.Sandbox.InjectFault(sandbox.Fault{Provider: "google", Fault: "revoke", Account: account}); err != nil {
			return authgate.Run{}, err
		}
	}
	// The server runs workflow "demo" itself in sandbox mode.
	run, err := d.Client.CreateRun(ctx, authgate.RunCreateRequest{Workflow: demo.Name, UserID: user, Bindings: bindings, Actions: demo.Actions, Targets: targets})
	if err != nil {
		return authgate.Run{}, err
	}
	fmt.Fprintf(d.Out, "started run %s (%s)\n", run.ID, run.State)
	full, err := d.waitRun(ctx, run.ID)
	if err != nil {
		return full, err
	}
	if full.State == authgate.RunStateBlockedOnAuth {
		fmt.Fprintf(d.Out, "run %s is blocked_on_auth (%s: %s)\n  reconnect link: %s\n", run.ID, full.Blocked.Binding, full.Blocked.Class, full.Blocked.ReconnectURL)
		fmt.Fprintln(d.Out, "the user reconnects Google; the run resumes by itself…")
		if _, err := sandboxConnect(ctx, d.Client, user, "google", nil, bindings["google"], account); err != nil {
			return full, fmt.Errorf("reconnect: %w", err)
		}
		// The resume is a job the reconnect enqueued: wait for the run to
		// leave blocked_on_auth, then for it to stop again.
		if full, err = d.waitRunState(ctx, run.ID, func(r authgate.Run) bool { return r.State != authgate.RunStateBlockedOnAuth }); err != nil {
			return full, err
		}
		if full, err = d.waitRun(ctx, run.ID); err != nil {
			return full, err
		}
	}
	return full, nil
}

// waitRun polls a run the server executes until it stops: blocked or
// finished.
func (d Demo) waitRun(ctx context.Context, id authgate.RunID) (authgate.Run, error) {
	return d.waitRunState(ctx, id, func(r authgate.Run) bool {
		return r.State == authgate.RunStateBlockedOnAuth || r.State.Terminal()
	})
}

// waitRunState polls a run until done says it is where the caller wants it.
func (d Demo) waitRunState(ctx context.Context, id authgate.RunID, done func(authgate.Run) bool) (authgate.Run, error) {
	deadline := d.Clock.Now().Add(time.Minute)
	for {
		r, err := d.Client.Run(ctx, id)
		if err != nil || done(r) {
			return r, err
		}
		if d.Clock.Now().After(deadline) {
			return r, fmt.Errorf("run %s is still %s after a minute", id, r.State)
		}
		t := time.NewTimer(20 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return r, ctx.Err()
		case <-t.C:
		}
	}
}

// sandboxConnect runs a connect flow (a reconnect of id when set) as the
// user, signing in on the sandbox's consent page.
func sandboxConnect(ctx context.Context, c *authgate.Client, user, provider string, actions []string, id authgate.CredentialID, account string) (authgate.CredentialID, error) {
	s, err := c.CreateConnectSession(ctx, authgate.ConnectSessionRequest{UserID: user, Provider: provider, Actions: actions, CredentialID: id})
	if err != nil {
		return "", err
	}
	if err := SandboxSignIn(ctx, s.ConnectURL, account); err != nil {
		return "", err
	}
	st, err := c.ConnectSessionStatus(ctx, s.ID)
	if err != nil {
		return "", err
	}
	if st.CredentialID == "" || st.State != authgate.ConnectStateConnected {
		return "", fmt.Errorf("the connect flow ended %s %s", st.State, st.ErrorCode)
	}
	return st.CredentialID, nil
}
