package main

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

func newTenantsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "tenants", Short: "Create and list tenants; manage their API keys"}
	cmd.AddCommand(newTenantKeysCmd(g), newTenantWebhooksCmd(g), &cobra.Command{
		Use:   "create NAME",
		Short: "Create a tenant and print its API key once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			core, err := g.openCore(cmd.Context())
			if err != nil {
				return err
			}
			defer core.Close()
			t, key, err := core.Tenancy.CreateTenant(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "tenant: %s (%s)\n", t.Name, t.ID)
			fmt.Fprintf(cmd.OutOrStdout(), "admin key: %s\n", key.Reveal())
			return nil
		},
	}, &cobra.Command{
		Use:   "allow-return-url TENANT URL_PREFIX...",
		Short: "Set the URL prefixes a tenant's connect sessions may send users back to (replaces the list; none clears it)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			core, err := g.openCore(cmd.Context())
			if err != nil {
				return err
			}
			defer core.Close()
			t, err := core.Tenancy.SetReturnURLs(cmd.Context(), args[0], args[1:])
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "tenant %s may return to: %s\n", t.Name, strings.Join(t.ReturnURLAllowList, " "))
			return nil
		},
	}, &cobra.Command{
		Use:   "list",
		Short: "List tenants",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			core, err := g.openCore(cmd.Context())
			if err != nil {
				return err
			}
			defer core.Close()
			ts, err := core.Tenancy.List(cmd.Context())
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tCREATED")
			for _, t := range ts {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", t.ID, t.Name, t.CreatedAt.Format(time.RFC3339))
			}
			return tw.Flush()
		},
	})
	return cmd
}
