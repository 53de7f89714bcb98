package main

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/authgate/authgate/internal/diagnose"
)

// newDemoCheckCmd is the pre-demo checklist (internal/diagnose does it).
func newDemoCheckCmd() *cobra.Command {
	var o diagnose.DemoCheckOptions
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "democheck",
		Short: "Pre-demo fresh sign-in checklist through a running server: reconnect, identity, scopes, Docs, refresh, Notion, concurrency",
		Long: `Runs the pre-demo checklist as the demo user would live it, through a running
server (AUTHGATE_URL + AUTHGATE_API_KEY): disconnect and reconnect each provider
(prints the connect link and waits for the sign-in; against a sandbox server it
completes the consent itself), confirm the account, verify the required scopes,
create → read → update a Google Doc in --target-folder, force a refresh and use
the new token, Notion read → write (a row in --target-database; on a sandbox
server a database it shares is found), and 50 parallel token requests that must
cause exactly one refresh (read from the credential's lifecycle events).

Prints ✓/✗ per item and a summary line; --json prints authgate.DemoCheck.
Exit status: 0 all passed, 1 an item failed, 2 could not run.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cmd.SilenceUsage = true
			o.ServerURL, o.APIKey = serverAndKey(o.ServerURL, o.APIKey)
			if o.ServerURL == "" || o.APIKey == "" {
				return couldNotRun(errors.New("democheck talks to a running server: " + serverEnvHelp))
			}
			for _, p := range o.Providers {
				if diagnose.DemoCheckActions[p] == nil {
					return couldNotRun(oneOf("--providers", p, slices.Sorted(maps.Keys(diagnose.DemoCheckActions))))
				}
			}
			progress := cmd.OutOrStdout()
			if asJSON {
				progress = cmd.ErrOrStderr()
			}
			rep, err := diagnose.RunDemoCheck(cmd.Context(), o, progress)
			if err != nil {
				return couldNotRun(err)
			}
			if asJSON {
				if err := writeJSON(cmd.OutOrStdout(), rep); err != nil {
					return couldNotRun(err)
				}
			} else {
				diagnose.PrintDemoCheck(cmd.OutOrStdout(), rep)
			}
			if !rep.OK {
				return &exitError{code: 1, err: fmt.Errorf("democheck: %d of %d items failed", rep.Failed, rep.Passed+rep.Failed)}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&o.Providers, "providers", []string{"google", "notion"}, "providers to check")
	f.StringVar(&o.Folder, "target-folder", "", "Drive folder the demo writes its Doc into")
	f.StringVar(&o.Database, "target-database", "", "Notion database the demo adds a row to")
	f.StringVar(&o.User, "user", "demo-user", "the demo's user id")
	f.StringVar(&o.Account, "account", "", "the account the demo must sign in with (sandbox: the account to consent as; default the previous one)")
	f.DurationVar(&o.Wait, "wait", 5*time.Minute, "how long to wait for each sign-in")
	f.StringVar(&o.ServerURL, "server", "", "authgate base URL (default $AUTHGATE_URL)")
	f.StringVar(&o.APIKey, "api-key", "", "tenant API key (default $AUTHGATE_API_KEY)")
	f.BoolVar(&asJSON, "json", false, "print the checklist as JSON")
	return cmd
}
