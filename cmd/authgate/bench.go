package main

import (
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/authgate/authgate/server/tokenbench"
)

func newBenchCmd() *cobra.Command {
	var cfg tokenbench.Config
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure the token hot path against a trivial handler, in process and with many credentials",
		Long: `Start a throw-away authgate (a SQLite file in a temporary directory, the
provider sandbox mounted, loopback only) and a trivial net/http handler of the
token route's shape, then print: throughput at --concurrency and p99 at
--tail-concurrency for both and their ratio; in-process Refresher.Token against
oauth2.ReuseTokenSource (ns/op, allocs/op); and the token route's throughput
with one credential against --credentials distinct ones.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, err := os.MkdirTemp("", "authgate-bench-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			env, err := tokenbench.Start(cmd.Context(), dir)
			if err != nil {
				return err
			}
			defer env.Close()
			cfg.Progress = cmd.ErrOrStderr()
			r, err := tokenbench.Measure(cmd.Context(), env, cfg)
			if err != nil {
				return err
			}
			r.WriteTable(cmd.OutOrStdout())
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&cfg.Requests, "requests", 20000, "requests per HTTP measurement")
	f.DurationVar(&cfg.Duration, "duration", 10*time.Second, "time cap per HTTP measurement")
	f.IntVar(&cfg.Concurrency, "concurrency", 16, "clients for the throughput comparison")
	f.IntVar(&cfg.TailConcurrency, "tail-concurrency", 64, "clients for the p99 comparison")
	f.IntVar(&cfg.Credentials, "credentials", 100000, "distinct credentials for the many-credentials comparison")
	return cmd
}
