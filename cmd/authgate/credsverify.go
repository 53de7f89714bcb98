package main

import (
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/authgate/authgate"
)

// newCredsVerifyCmd verifies a credential live through a running server's
// API: the providers (and the sandbox's grants) live in that process.
func newCredsVerifyCmd() *cobra.Command {
	var serverURL, apiKey string
	var targets authgate.VerifyTargets
	var actions []string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "verify CREDENTIAL_ID",
		Short: "Verify a connector live: identity, scopes and one-call checks (through a running authgate serve)",
		Long: `Runs the provider's minimal checks through POST /v1/credentials/{id}/verify of a
running server (--server or AUTHGATE_URL, --api-key or AUTHGATE_API_KEY) and prints
each check with its class and fix. The result is stored on the credential.
Exits 1 when the verdict is fail.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			serverURL, apiKey = serverAndKey(serverURL, apiKey)
			if serverURL == "" || apiKey == "" {
				return errors.New("creds verify calls a running server: " + serverEnvHelp)
			}
			req := authgate.VerifyRequest{Actions: actions}
			if targets != (authgate.VerifyTargets{}) {
				req.Targets = &targets
			}
			v, err := authgate.NewClient(serverURL, apiKey).Verify(cmd.Context(), authgate.CredentialID(args[0]), req)
			if err != nil {
				return err
			}
			if asJSON {
				if err := writeJSON(cmd.OutOrStdout(), v); err != nil {
					return err
				}
			} else if err := printVerification(cmd, v); err != nil {
				return err
			}
			if v.Verdict == authgate.VerdictFail {
				cmd.SilenceUsage = true
				return fmt.Errorf("verification failed: %s", v.Summary)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&serverURL, "server", "", "authgate base URL (default $AUTHGATE_URL)")
	f.StringVar(&apiKey, "api-key", "", "tenant API key (default $AUTHGATE_API_KEY)")
	f.StringVar(&targets.DriveFolder, "drive-folder", "", "Drive folder id the workflow uses")
	f.StringVar(&targets.NotionPage, "notion-page", "", "Notion page id the workflow uses")
	f.StringVar(&targets.NotionDatabase, "notion-database", "", "Notion database id the workflow uses")
	f.StringVar(&targets.SlackChannel, "slack-channel", "", "Slack channel id or name the workflow posts to")
	f.StringSliceVar(&actions, "action", nil, "catalog action the workflow performs (repeatable; default: what the checks exercise)")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func printVerification(cmd *cobra.Command, v authgate.Verification) error {
	w := cmd.OutOrStdout()
	fmt.Fprintf(w, "connector: %s\n", connectorText(v.Credential.Connector))
	fmt.Fprintf(w, "identity:  %s (matches stored: %t)\n", dash(v.Identity.Label), v.IdentityMatchesStored)
	fmt.Fprintf(w, "scopes:    required %s; missing %s\n", dash(strings.Join(v.Scopes.Required, " ")), dash(strings.Join(v.Scopes.Missing, " ")))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CHECK\tSTATUS\tCLASS\tMS\tDETAIL\tFIX")
	for _, c := range v.Checks {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", c.Name, c.Status, dash(string(c.Class)), c.DurationMS, c.Detail, dash(c.Fix))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "verdict:   %s — %s\n", v.Verdict, v.Summary)
	if v.ReconnectURL != "" {
		fmt.Fprintf(w, "reconnect: %s\n", v.ReconnectURL)
	}
	return nil
}

// connectorText is the connector half of a credential view: its own state
// and whether it was proven to work, never anything about an app session.
func connectorText(c authgate.ConnectorState) string {
	s := string(c.State)
	if c.Reason != "" && c.State != authgate.ConnectorAuthorized {
		s += " (" + string(c.Reason) + ")"
	}
	switch c.Verification {
	case authgate.VerificationUnverified:
		s += ", unverified"
	default:
		s += fmt.Sprintf(", %s at %s", c.Verification, timeText(c.LastVerifiedAt))
	}
	return s
}
