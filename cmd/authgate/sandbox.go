package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/authgate/authgate/sandbox"
	"github.com/authgate/authgate/server"
)

func newSandboxCmd() *cobra.Command {
	var addr string
	var seed uint64
	var stateFile string
	cmd := &cobra.Command{
		Use:   "sandbox",
		Short: "Run the provider emulator alone (Google, Notion, Slack, a rotating OIDC server) with its admin API",
		Long: `Run the provider sandbox on its own listener. Every provider lives under
/sandbox/<provider>/ and the control API under /sandbox/admin/: register clients,
preset consent, inject faults (revoke, expire_access_tokens, drop_scope,
admin_policy, unshare, invalid_grant_next, rate_limit, server_error, latency,
clock_offset) and read counters. GET /sandbox/admin/providers lists every
endpoint and default client. Everything is kept in memory; with --state FILE the
clients, grants and live tokens are loaded from FILE at start and saved to it every
2 seconds while they change and on shutdown, so connected apps keep working across
restarts, crashes included.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := newLogger(os.Getenv("AUTHGATE_LOG_LEVEL"), os.Getenv("AUTHGATE_LOG_FORMAT"), os.Stderr)
			if err != nil {
				return err
			}
			sb := sandbox.New(sandbox.Options{Seed: seed})
			if stateFile != "" {
				if err := sb.LoadFile(stateFile); err != nil {
					return err
				}
				// Save at once: a path that cannot be written fails now,
				// not at shutdown with the state lost.
				if err := sb.SaveFile(stateFile); err != nil {
					return err
				}
				actx, stop := context.WithCancel(cmd.Context())
				defer stop()
				go sb.AutoSave(actx, stateFile, 2*time.Second, func(err error) { log.Warn("save sandbox state", slog.String("error", err.Error())) })
			}
			mux := http.NewServeMux()
			server.MountSandbox(mux, sb)
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return err
			}
			hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
			fmt.Fprintf(cmd.OutOrStdout(), "authgate sandbox is serving on http://%s (Ctrl-C stops it)\n", ln.Addr())
			log.Info("sandbox listening", slog.String("addr", ln.Addr().String()), slog.Any("providers", sb.Providers()))
			errc := make(chan error, 1)
			go func() { errc <- hs.Serve(ln) }()
			select {
			case err := <-errc:
				return err
			case <-cmd.Context().Done():
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err = hs.Shutdown(ctx)
			if serveErr := <-errc; serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
				err = errors.Join(err, serveErr)
			}
			if stateFile != "" {
				err = errors.Join(err, sb.SaveFile(stateFile))
			}
			return err
		},
	}
	cmd.Flags().StringVar(&addr, "addr", envOr("AUTHGATE_SANDBOX_ADDR", "127.0.0.1:9090"), "listen address [$AUTHGATE_SANDBOX_ADDR]")
	cmd.Flags().Uint64Var(&seed, "seed", 0, "make generated tokens and ids deterministic")
	cmd.Flags().StringVar(&stateFile, "state", "", "load the sandbox's state from FILE at start and keep saving it there (every 2 s while it changes, and on shutdown)")
	return cmd
}
