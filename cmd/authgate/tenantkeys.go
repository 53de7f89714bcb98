package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/internal/tenancy"
)

func newTenantKeysCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "keys", Short: "Create, list and revoke a tenant's API keys (replace a lost admin key)"}
	var name, role, user string
	var asJSON bool
	create := &cobra.Command{
		Use:   "create TENANT",
		Short: "Add an API key to a tenant and print it once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			core, t, err := g.openTenant(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			defer core.Close()
			k, key, err := core.Tenancy.CreateKey(cmd.Context(), t.ID, tenancy.KeyParams{Name: name, Role: authgate.Role(role), UserID: user})
			if err != nil {
				return err
			}
			bound := ""
			if k.UserID != "" {
				bound = ", user " + k.UserID
			}
			fmt.Fprintf(cmd.OutOrStdout(), "key id: %s (%s, role %s%s, tenant %s)\n", k.ID, k.Name, k.Role, bound, t.Name)
			fmt.Fprintf(cmd.OutOrStdout(), "api key: %s\n", key.Reveal())
			return nil
		},
	}
	create.Flags().StringVar(&name, "name", "admin", "a label for the key")
	create.Flags().StringVar(&role, "role", string(authgate.RoleAdmin), "admin (everything), service (runs workflows for any user; no keys or webhooks) or user (one end user: agent and MCP configurations)")
	create.Flags().StringVar(&user, "user", "", "the end user a --role user key acts for")
	list := &cobra.Command{
		Use:   "list TENANT",
		Short: "List a tenant's API keys (ids and names; never the keys)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			core, t, err := g.openTenant(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			defer core.Close()
			ks, err := core.Tenancy.ListKeys(cmd.Context(), t.ID)
			if err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(map[string][]authgate.APIKey{"api_keys": ks})
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tROLE\tUSER\tCREATED\tREVOKED")
			for _, k := range ks {
				revoked := "-"
				if k.RevokedAt != nil {
					revoked = k.RevokedAt.Format(time.RFC3339)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Name, k.Role, cmp.Or(k.UserID, "-"), k.CreatedAt.Format(time.RFC3339), revoked)
			}
			return tw.Flush()
		},
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	revoke := &cobra.Command{
		Use:   "revoke TENANT KEY_ID",
		Short: "Revoke an API key; running servers refuse it within a second",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			core, t, err := g.openTenant(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			defer core.Close()
			if err := core.Tenancy.RevokeKey(cmd.Context(), t.ID, authgate.APIKeyID(args[1])); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "revoked %s\n", args[1])
			return nil
		},
	}
	cmd.AddCommand(create, list, revoke)
	return cmd
}
