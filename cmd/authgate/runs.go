package main

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/authgate/authgate"
)

func newRunsCmd() *cobra.Command {
	var serverURL, apiKey, state, user string
	var asJSON bool
	client := func() (*authgate.Client, error) {
		serverURL, apiKey = serverAndKey(serverURL, apiKey)
		if serverURL == "" || apiKey == "" {
			return nil, errors.New("runs calls a running server: " + serverEnvHelp)
		}
		return authgate.NewClient(serverURL, apiKey), nil
	}
	cmd := &cobra.Command{Use: "runs", Short: "List and show workflow runs (through a running authgate serve)"}
	cmd.PersistentFlags().StringVar(&serverURL, "server", "", "authgate base URL (default $AUTHGATE_URL)")
	cmd.PersistentFlags().StringVar(&apiKey, "api-key", "", "tenant API key (default $AUTHGATE_API_KEY)")
	cmd.PersistentFlags().BoolVar(&asJSON, "json", false, "print JSON")
	list := &cobra.Command{
		Use:   "list",
		Short: "List runs, newest id last",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := oneOf("--state", state, runStates); err != nil {
				return err
			}
			c, err := client()
			if err != nil {
				return err
			}
			page, err := c.Runs(cmd.Context(), authgate.RunFilter{State: authgate.RunState(state), UserID: user})
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), page)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tWORKFLOW\tUSER\tSTATE\tUPDATED")
			for _, r := range page.Runs {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.ID, r.Workflow, r.UserID, r.State, r.UpdatedAt.Format(time.RFC3339))
			}
			return tw.Flush()
		},
	}
	list.Flags().StringVar(&state, "state", "", "only runs in this state")
	list.Flags().StringVar(&user, "user", "", "only this user's runs")
	cmd.AddCommand(list, &cobra.Command{
		Use:   "show RUN_ID",
		Short: "Show a run: bindings, steps, timeline and, when blocked, the reconnect link",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client()
			if err != nil {
				return err
			}
			r, err := c.Run(cmd.Context(), authgate.RunID(args[0]))
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), r)
			}
			printRun(cmd.OutOrStdout(), r)
			return nil
		},
	})
	return cmd
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// printRun prints a run for a person: never a token (runs hold none).
func printRun(w io.Writer, r authgate.Run) {
	fmt.Fprintf(w, "run %s  workflow %s  user %s  state %s\n", r.ID, r.Workflow, r.UserID, r.State)
	for _, b := range slices.Sorted(maps.Keys(r.Bindings)) {
		fmt.Fprintf(w, "  binding %s → %s\n", b, r.Bindings[b])
	}
	if r.Blocked != nil {
		fmt.Fprintf(w, "  blocked on %s (%s): %s\n  reconnect: %s\n", r.Blocked.Binding, r.Blocked.Class, r.Blocked.Reason, r.Blocked.ReconnectURL)
	}
	if len(r.Steps) > 0 {
		fmt.Fprintln(w, "steps:")
		for _, s := range r.Steps {
			fmt.Fprintf(w, "  %-12s %-9s attempts %d  %s\n", s.Key, s.Status, s.Attempts, s.Output)
		}
	}
	if len(r.Timeline) > 0 {
		fmt.Fprintln(w, "timeline:")
		for _, e := range r.Timeline {
			line := fmt.Sprintf("  %s  %-14s", e.At.Format("15:04:05.000"), e.Kind)
			if e.ToState != "" {
				line += fmt.Sprintf(" %s→%s", e.FromState, e.ToState)
			}
			if e.StepKey != "" {
				line += " step " + e.StepKey
			}
			if e.Reason != "" {
				line += "  " + e.Reason
			}
			fmt.Fprintln(w, line)
		}
	}
}
