package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/sandbox"
	"github.com/authgate/authgate/server"
	"github.com/authgate/authgate/workflow/demo"
)

func newDemoCmd() *cobra.Command {
	var revoke bool
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the demo workflow (Drive → Docs → Notion → Slack) against the sandbox, with no setup",
		Long: `Starts authgate with its provider sandbox in a temporary directory, connects
Google, Notion and Slack as a sandbox user, and runs the demo workflow: list a
Drive folder, create a Google Doc, read it back, append a line, add a Notion row
linking the doc, post the link to Slack. The server runs the workflow itself
(POST /v1/runs with workflow "demo"). With --revoke, Google access is revoked
first: the run stops blocked_on_auth at preflight, the user reconnects, and the
server resumes it by itself.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDemo(cmd.Context(), cmd.OutOrStdout(), revoke)
		},
	}
	cmd.Flags().BoolVar(&revoke, "revoke", false, "revoke Google first to show the block and the resume")
	return cmd
}

func runDemo(ctx context.Context, out io.Writer, revoke bool) error {
	dir, err := os.MkdirTemp("", "authgate-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	key := &keyCatcher{w: io.Discard}
	srv, err := server.Open(ctx, server.Config{Database: "sqlite:" + filepath.Join(dir, "authgate.db"), KeyFile: filepath.Join(dir, "authgate.key"),
		Addr: ln.Addr().String(), Sandbox: server.SandboxOn, Stdout: key, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		ln.Close()
		return err
	}
	defer srv.Close()
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	ready := make(chan struct{})
	go func() { _ = srv.ServeListener(sctx, ln, func(net.Addr) { close(ready) }) }()
	<-ready
	base := srv.PublicURL()
	client := authgate.NewClient(base, key.get())
	const user, account = "demo-user", "demo@acme.example"

	bindings := map[string]authgate.CredentialID{}
	for _, p := range []struct {
		name    string
		actions []string
	}{{"google", []string{"drive.files.list", "docs.documents.create", "docs.documents.get", "docs.documents.update"}}, {"notion", []string{"notion.read", "notion.insert"}}, {"slack", []string{"slack.chat.post"}}} {
		id, err := sandboxConnect(ctx, client, user, p.name, p.actions, "", account)
		if err != nil {
			return fmt.Errorf("connect %s: %w", p.name, err)
		}
		bindings[p.name] = id
		fmt.Fprintf(out, "connected %-6s as %s: %s\n", p.name, account, id)
	}
	targets, _ := json.Marshal(authgate.VerifyTargets{NotionDatabase: srv.Sandbox.Notion().ObjectID("", "Tasks"), SlackChannel: srv.Sandbox.Slack().ChannelID("", "general")})
	if revoke {
		fmt.Fprintln(out, "revoking Google access at the provider (as a user would)…")
		if err := srv.Sandbox.InjectFault(sandbox.Fault{Provider: "google", Fault: "revoke", Account: account}); err != nil {
			return err
		}
	}
	// The server runs workflow "demo" itself in sandbox mode.
	run, err := client.CreateRun(ctx, authgate.RunCreateRequest{Workflow: demo.Name, UserID: user, Bindings: bindings, Actions: demo.Actions, Targets: targets})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "started run %s (%s)\n", run.ID, run.State)
	full, err := waitRun(ctx, client, run.ID)
	if err != nil {
		return err
	}
	if full.State == authgate.RunStateBlockedOnAuth {
		fmt.Fprintf(out, "run %s is blocked_on_auth (%s: %s)\n  reconnect link: %s\n", run.ID, full.Blocked.Binding, full.Blocked.Class, full.Blocked.ReconnectURL)
		fmt.Fprintln(out, "the user reconnects Google; the run resumes by itself…")
		if _, err := sandboxConnect(ctx, client, user, "google", nil, bindings["google"], account); err != nil {
			return fmt.Errorf("reconnect: %w", err)
		}
		// The resume is a job the reconnect enqueued: wait for it, then for
		// the run to stop again.
		if full, err = waitRunLeaves(ctx, client, run.ID, authgate.RunStateBlockedOnAuth); err != nil {
			return err
		}
		if full, err = waitRun(ctx, client, run.ID); err != nil {
			return err
		}
	}
	printRun(out, full)
	if full.State != authgate.RunStateSucceeded {
		return fmt.Errorf("the demo run ended %s", full.State)
	}
	return nil
}

// waitRun polls a run the server executes until it stops: blocked or
// finished.
func waitRun(ctx context.Context, c *authgate.Client, id authgate.RunID) (authgate.Run, error) {
	deadline := time.Now().Add(time.Minute)
	for {
		r, err := c.Run(ctx, id)
		if err != nil || r.State == authgate.RunStateBlockedOnAuth || r.State.Terminal() {
			return r, err
		}
		if time.Now().After(deadline) {
			return r, fmt.Errorf("run %s is still %s after a minute", id, r.State)
		}
		select {
		case <-ctx.Done():
			return r, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// waitRunLeaves polls a run until it is no longer in state.
func waitRunLeaves(ctx context.Context, c *authgate.Client, id authgate.RunID, state authgate.RunState) (authgate.Run, error) {
	deadline := time.Now().Add(time.Minute)
	for {
		r, err := c.Run(ctx, id)
		if err != nil || r.State != state {
			return r, err
		}
		if time.Now().After(deadline) {
			return r, fmt.Errorf("run %s is still %s after a minute", id, r.State)
		}
		select {
		case <-ctx.Done():
			return r, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// sandboxConnect runs a connect flow as a user with a browser of its own
// on the sandbox's consent page.
func sandboxConnect(ctx context.Context, c *authgate.Client, user, provider string, actions []string, id authgate.CredentialID, account string) (authgate.CredentialID, error) {
	s, err := c.CreateConnectSession(ctx, authgate.ConnectSessionRequest{UserID: user, Provider: provider, Actions: actions, CredentialID: id})
	if err != nil {
		return "", err
	}
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := browser.Get(s.ConnectURL)
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	loc, err := resp.Location()
	if err != nil {
		return "", fmt.Errorf("the connect link answered %d", resp.StatusCode)
	}
	back, err := sandbox.CompleteConsent(ctx, browser, loc.String(), sandbox.Choice{Account: account})
	if err != nil {
		return "", err
	}
	if resp, err = browser.Get(back.String()); err != nil {
		return "", err
	}
	resp.Body.Close()
	st, err := c.ConnectSessionStatus(ctx, s.ID)
	if err != nil {
		return "", err
	}
	if st.CredentialID == "" || st.State != "connected" {
		return "", fmt.Errorf("the connect flow ended %s %s", st.State, st.ErrorCode)
	}
	return st.CredentialID, nil
}
