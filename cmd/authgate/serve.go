package main

import (
	"fmt"
	"net"

	"github.com/spf13/cobra"

	"github.com/authgate/authgate/server"
)

func newServeCmd(g *globals) *cobra.Command {
	var addr string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the authgate HTTP API (zero configuration: SQLite file and key file in the working directory)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg := g.config()
			cfg.Addr = addr
			cfg.Stdout = cmd.OutOrStdout()
			srv, err := server.Open(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			defer srv.Close()
			return srv.ListenAndServe(cmd.Context(), func(a net.Addr) {
				fmt.Fprintf(cmd.OutOrStdout(), "authgate is serving on http://%s (Ctrl-C stops it)\n", a)
			})
		},
	}
	cmd.Flags().StringVar(&addr, "addr", envOr("AUTHGATE_ADDR", "127.0.0.1:8080"), "listen address [$AUTHGATE_ADDR]")
	return cmd
}
