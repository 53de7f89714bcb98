package main

import (
	"cmp"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/authgate/authgate"
)

func newUICmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ui",
		Short: "The web console (/ui/ of a running authgate serve)",
	}
	cmd.AddCommand(newUILoginLinkCmd())
	return cmd
}

func newUILoginLinkCmd() *cobra.Command {
	var serverURL, apiKey string
	cmd := &cobra.Command{
		Use:   "login-link",
		Short: "Print a one-time link that signs a browser into the web console",
		Long: `Asks a running server (--server or AUTHGATE_URL) with an admin API key
(--api-key or AUTHGATE_API_KEY) for a console sign-in link and prints it. The
link opens once, within a few minutes, and signs that browser in as the key's
tenant; only its hash is stored.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			serverURL = cmp.Or(serverURL, envOr("AUTHGATE_URL", ""))
			apiKey = cmp.Or(apiKey, envOr("AUTHGATE_API_KEY", ""), envOr("AUTHGATE_KEY", ""))
			if serverURL == "" || apiKey == "" {
				return errors.New("ui login-link calls a running server: set AUTHGATE_URL and AUTHGATE_API_KEY (or --server and --api-key)")
			}
			l, err := authgate.NewClient(serverURL, apiKey).CreateConsoleLoginLink(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), l.URL)
			fmt.Fprintf(cmd.ErrOrStderr(), "opens once, until %s\n", l.ExpiresAt.Local().Format("15:04:05"))
			return nil
		},
	}
	cmd.Flags().StringVar(&serverURL, "server", "", "authgate base URL (default $AUTHGATE_URL)")
	cmd.Flags().StringVar(&apiKey, "api-key", "", "admin API key (default $AUTHGATE_API_KEY)")
	return cmd
}
