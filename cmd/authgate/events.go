package main

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/authgate/authgate"
)

func newEventsCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "events CREDENTIAL_ID",
		Short: "Show a credential's lifecycle events, oldest first",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			core, err := g.openCore(cmd.Context())
			if err != nil {
				return err
			}
			defer core.Close()
			c, err := findCredential(cmd.Context(), core, authgate.CredentialID(args[0]))
			if err != nil {
				return err
			}
			var all []authgate.Event
			var after int64
			for {
				page, next, err := core.Vault.Events(cmd.Context(), c.TenantID, c.ID, after, 1000)
				if err != nil {
					return err
				}
				all = append(all, page...)
				if next == 0 {
					break
				}
				after = next
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), all)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tAT\tTYPE\tACTOR\tDETAILS")
			for _, e := range all {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", e.ID, e.At.UTC().Format(time.RFC3339), e.Type, e.Actor, e.Details)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
