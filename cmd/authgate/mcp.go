package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

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
			if serverURL == "" || apiKey == "" {
				return errors.New("authgate mcp needs a running server and an API key: set AUTHGATE_URL and AUTHGATE_API_KEY (a user key: authgate tenants keys create TENANT --role user --user U)")
			}
			client := authgate.NewClient(serverURL, apiKey)
			// Before the client's initialize is answered: a wrong key or a
			// stopped server is a one-line reason and a non-zero exit now,
			// not an agent that starts and fails on every tool call.
			user, err := mcpUser(cmd.Context(), client, user)
			if err != nil {
				return err
			}
			logger := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelInfo}))
			srv, err := mcpserver.New(mcpserver.Config{Client: client, UserID: user, Logger: logger})
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
	f.StringVar(&user, "user", "", "the end user whose connections the tools use (default $AUTHGATE_USER; a user key's own user)")
	return cmd
}

// mcpUser asks the server who the key is and settles the end user: a user
// key's own (another is refused), or the one named for other keys.
func mcpUser(ctx context.Context, c *authgate.Client, user string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	me, err := c.Me(ctx)
	var ae *authgate.Error
	switch {
	case errors.As(err, &ae) && ae.Class == authgate.ClassUnauthorized:
		return "", fmt.Errorf("the authgate server at %s refuses this API key (unknown or revoked); check AUTHGATE_API_KEY", c.BaseURL)
	case errors.As(err, &ae):
		return "", fmt.Errorf("the authgate server at %s answered %s: %s", c.BaseURL, ae.Class, ae.Detail)
	case err != nil:
		return "", fmt.Errorf("cannot reach authgate at %s (is `authgate serve` running there? check AUTHGATE_URL): %s", c.BaseURL, rootCause(err))
	}
	switch {
	case me.Role == authgate.RoleUser && user == "":
		return me.UserID, nil
	case me.Role == authgate.RoleUser && user != me.UserID:
		return "", fmt.Errorf("this API key acts only for user %q; leave --user out or set it to %q", me.UserID, me.UserID)
	case user == "":
		return "", fmt.Errorf("this %s key acts for any user: name one with --user or AUTHGATE_USER (or use a user key)", me.Role)
	}
	return user, nil
}

// rootCause is the innermost error's text ("connection refused"), without
// the URL and method wrappers around it.
func rootCause(err error) string {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err.Error()
		}
		err = next
	}
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }
