package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/internal/diagnose"
	"github.com/authgate/authgate/server"
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
	full, err := diagnose.RunDemo(ctx, diagnose.Demo{Client: authgate.NewClient(srv.PublicURL(), key.get()), Sandbox: srv.Sandbox, Out: out, Revoke: revoke})
	if err != nil {
		return err
	}
	printRun(out, full)
	if full.State != authgate.RunStateSucceeded {
		return fmt.Errorf("the demo run ended %s", full.State)
	}
	return nil
}
