package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/internal/vault"
	"github.com/authgate/authgate/server"
)

func newCredsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "creds", Short: "List and inspect stored credentials (metadata and fingerprints only)"}
	cmd.AddCommand(newCredsListCmd(g), newCredsShowCmd(g), newCredsVerifyCmd())
	return cmd
}

func newCredsListCmd(g *globals) *cobra.Command {
	var tenant, user, provider, status string
	var limit int
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List credentials (every tenant unless --tenant)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := oneOf("--status", status, credentialStatuses); err != nil {
				return err
			}
			core, err := g.openMetadata(cmd.Context())
			if err != nil {
				return err
			}
			defer core.Close()
			p := vault.ListParams{AllTenants: true, UserID: user, Provider: provider, Status: authgate.CredentialStatus(status), Limit: limit}
			if tenant != "" {
				t, err := core.Tenancy.Resolve(cmd.Context(), tenant)
				if err != nil {
					return err
				}
				p.AllTenants, p.TenantID = false, t.ID
			}
			var all []authgate.Credential
			for {
				page, next, err := core.Vault.List(cmd.Context(), p)
				if err != nil {
					return err
				}
				all = append(all, page...)
				if next == "" || (limit > 0 && len(all) >= limit) {
					break
				}
				p.After = next
			}
			// A provider this installation does not know, with nothing
			// stored under it, is a typo: fail with the likely name. (One
			// with credentials is listed whatever the catalog says now.)
			if len(all) == 0 {
				if err := checkProvider(provider); err != nil {
					return err
				}
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), all)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tTENANT\tUSER\tPROVIDER\tWORKSPACE\tACCOUNT\tCONNECTOR\tACCESS EXPIRES")
			for _, c := range all {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.ID, c.TenantID, c.UserID, c.Provider, dash(c.WorkspaceID),
					dash(cmp.Or(c.Account.Email, c.Account.Subject)), connectorText(c.Connector), timeText(c.AccessTokenExpiresAt))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&tenant, "tenant", "", "only this tenant (id or name)")
	cmd.Flags().StringVar(&user, "user", "", "only this user id")
	cmd.Flags().StringVar(&provider, "provider", "", "only this provider")
	cmd.Flags().StringVar(&status, "status", "", "only this status (active, reauth_required, revoked)")
	cmd.Flags().IntVar(&limit, "limit", 0, "at most this many (default: all)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newCredsShowCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show CREDENTIAL_ID",
		Short: "Show one credential's metadata, scopes, identity and token fingerprints",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			core, err := g.openMetadata(cmd.Context())
			if err != nil {
				return err
			}
			defer core.Close()
			c, err := findCredential(cmd.Context(), core, authgate.CredentialID(args[0]))
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), c)
			}
			w := cmd.OutOrStdout()
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			row := func(k, v string) { fmt.Fprintf(tw, "%s\t%s\n", k, v) }
			row("id", string(c.ID))
			row("tenant", string(c.TenantID))
			row("user", c.UserID)
			row("provider", c.Provider)
			row("workspace", dash(c.WorkspaceID))
			row("account", fmt.Sprintf("%s (subject %s)", dash(c.Account.Email), c.Account.Subject))
			row("account type", dash(string(c.Account.Type))+domainText(c.Account.Domain))
			row("status", statusText(c))
			row("connector", connectorText(c.Connector))
			row("app session", "not tracked by authgate: signing into your app says nothing about this connector")
			row("granted scopes", dash(strings.Join(c.GrantedScopes, " ")))
			row("requested scopes", dash(strings.Join(c.RequestedScopes, " ")))
			row("access token", fmt.Sprintf("fp %s, expires %s", dash(c.AccessTokenFingerprint), timeText(c.AccessTokenExpiresAt)))
			if c.HasRefreshToken {
				row("refresh token", "fp "+c.RefreshTokenFingerprint)
			} else {
				row("refresh token", "none")
			}
			row("version", fmt.Sprint(c.Version))
			row("created", c.CreatedAt.Format(time.RFC3339))
			row("updated", c.UpdatedAt.Format(time.RFC3339))
			row("last used", timeText(c.LastUsedAt))
			row("last refreshed", timeText(c.LastRefreshedAt))
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// findCredential looks a credential up in every tenant: the operator CLI
// works across tenants, the API never does.
func findCredential(ctx context.Context, core *server.Core, id authgate.CredentialID) (authgate.Credential, error) {
	tenants, err := core.Tenancy.List(ctx)
	if err != nil {
		return authgate.Credential{}, err
	}
	for _, t := range tenants {
		c, err := core.Vault.Get(ctx, t.ID, id)
		var ae *authgate.Error
		if errors.As(err, &ae) && ae.Class == authgate.ClassNotFound {
			continue
		}
		return c, err
	}
	return authgate.Credential{}, authgate.Errorf(authgate.ClassNotFound, "no credential %s in any tenant", id)
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func domainText(d string) string {
	if d == "" {
		return ""
	}
	return " (" + d + ")"
}

func statusText(c authgate.Credential) string {
	if c.StatusReason != "" {
		return string(c.Status) + " (" + string(c.StatusReason) + ")"
	}
	return string(c.Status)
}

func timeText(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}
