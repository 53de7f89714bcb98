package main

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/internal/storage"
	"github.com/authgate/authgate/internal/worker"
	"github.com/authgate/authgate/server"
)

func newTenantWebhooksCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "webhooks", Short: "Manage a tenant's webhook endpoints (signed run and credential events)"}
	open := func(cmd *cobra.Command, tenant string) (*server.Core, authgate.TenantID, server.Config, error) {
		cfg, err := g.config()
		if err != nil {
			return nil, "", cfg, err
		}
		core, t, err := g.openTenant(cmd.Context(), tenant)
		if err != nil {
			return nil, "", cfg, err
		}
		return core, t.ID, cfg, nil
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "add TENANT URL",
		Short: "Add an endpoint and print its signing secret once",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			core, tenant, cfg, err := open(cmd, args[0])
			if err != nil {
				return err
			}
			defer core.Close()
			e, err := server.NewWebhooks(core, cfg).AddEndpoint(cmd.Context(), tenant, args[1])
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "endpoint: %s %s\n", e.ID, e.URL)
			fmt.Fprintf(cmd.OutOrStdout(), "signing secret (shown once): %s\n", e.Secret)
			fmt.Fprintln(cmd.OutOrStdout(), "verify each delivery's Authgate-Signature header with package github.com/authgate/authgate/webhook")
			return nil
		},
	}, &cobra.Command{
		Use:   "list TENANT",
		Short: "List a tenant's endpoints",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			core, tenant, cfg, err := open(cmd, args[0])
			if err != nil {
				return err
			}
			defer core.Close()
			es, err := server.NewWebhooks(core, cfg).Endpoints(cmd.Context(), tenant)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tURL\tCREATED")
			for _, e := range es {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", e.ID, e.URL, e.CreatedAt.Format(time.RFC3339))
			}
			return tw.Flush()
		},
	}, newWebhookDeliveriesCmd(open), &cobra.Command{
		Use:   "delete TENANT ID",
		Short: "Delete an endpoint and its pending deliveries",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			core, tenant, cfg, err := open(cmd, args[0])
			if err != nil {
				return err
			}
			defer core.Close()
			return server.NewWebhooks(core, cfg).DeleteEndpoint(cmd.Context(), tenant, authgate.WebhookEndpointID(args[1]))
		},
	})
	return cmd
}

func newWebhookDeliveriesCmd(open func(cmd *cobra.Command, tenant string) (*server.Core, authgate.TenantID, server.Config, error)) *cobra.Command {
	var status string
	var limit int
	cmd := &cobra.Command{
		Use:   "deliveries TENANT",
		Short: "List a tenant's webhook deliveries, newest first (--status dead: what a receiver never got)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			core, tenant, cfg, err := open(cmd, args[0])
			if err != nil {
				return err
			}
			defer core.Close()
			ds, err := server.NewWebhooks(core, cfg).Deliveries(cmd.Context(), tenant, worker.DeliveriesParams{Status: storage.WebhookDeliveryStatus(status), Limit: limit})
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tENDPOINT\tEVENT\tSTATUS\tATTEMPTS\tCREATED\tLAST ERROR")
			for _, d := range ds {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", d.ID, d.EndpointID, d.EventType, d.Status(), d.Attempts, d.CreatedAt.Format(time.RFC3339), d.LastError)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&status, "status", "", "only pending, delivered or dead deliveries")
	cmd.Flags().IntVar(&limit, "limit", 100, "at most this many (1 to 1000)")
	return cmd
}
