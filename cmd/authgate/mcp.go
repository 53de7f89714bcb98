package main

import (
	"errors"
	"io"
	"log/slog"
	"os"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/spf13/cobra"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/internal/mcpserver"
)

func newMCPCmd() *cobra.Command {
	var serverURL, apiKey, user string
	cmd := &cobra.Command{
		Use:   "mcp",
		Short: "Serve the connectors as MCP tools on stdin/stdout (for desktop agents), gated by a running authgate",
		Long: `Speaks the Model Context Protocol on stdin/stdout for one end user (--user) of
the tenant whose API key it holds. Every tool gets its token from the running
server (AUTHGATE_URL, AUTHGATE_API_KEY); when the user must connect or
reconnect an account, the tool answers with a connect link (URL-mode
elicitation when the client supports it). Logs go to stderr.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if serverURL == "" {
				serverURL = envOr("AUTHGATE_URL", "")
			}
			if apiKey == "" {
				apiKey = envOr("AUTHGATE_API_KEY", envOr("AUTHGATE_KEY", ""))
			}
			if user == "" {
				user = envOr("AUTHGATE_USER", "")
			}
			if serverURL == "" || apiKey == "" || user == "" {
				return errors.New("authgate mcp needs a running server, a tenant key and a user: set AUTHGATE_URL, AUTHGATE_API_KEY and --user")
			}
			logger := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelInfo}))
			srv, err := mcpserver.New(mcpserver.Config{Client: authgate.NewClient(serverURL, apiKey), UserID: user, Logger: logger})
			if err != nil {
				return err
			}
			var t mcp.Transport = &mcp.StdioTransport{}
			if in, out := cmd.InOrStdin(), cmd.OutOrStdout(); in != os.Stdin || out != os.Stdout {
				t = &mcp.IOTransport{Reader: io.NopCloser(in), Writer: nopWriteCloser{out}}
			}
			return srv.Run(cmd.Context(), t)
		},
	}
	f := cmd.Flags()
	f.StringVar(&serverURL, "server", "", "authgate base URL (default $AUTHGATE_URL)")
	f.StringVar(&apiKey, "api-key", "", "tenant API key (default $AUTHGATE_API_KEY, then $AUTHGATE_KEY)")
	f.StringVar(&user, "user", "", "the end user whose connections the tools use (default $AUTHGATE_USER)")
	return cmd
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }
