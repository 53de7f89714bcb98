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
		Short: "Measure the token route against a trivial handler, as an outside client sees them",
		Long: `Start authgate serve (default settings, a SQLite file in a temporary
directory; PostgreSQL too with --postgres or $AUTHGATE_TEST_POSTGRES) and a
trivial net/http handler of the token route's shape, each in its own process,
and load both from this process over keep-alive connections, alternating
round by round. Print, per backend and concurrency: requests per second, p99
and server CPU per request for both and their ratios; the token route with
one credential against --credentials distinct ones; and what the server
logged meanwhile.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, err := os.MkdirTemp("", "authgate-bench-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			cfg.Dir = dir
			cfg.Progress = cmd.ErrOrStderr()
			r, err := tokenbench.Measure(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			r.WriteTable(cmd.OutOrStdout())
			return nil
		},
	}
	f := cmd.Flags()
	f.DurationVar(&cfg.Duration, "duration", 500*time.Millisecond, "one measurement")
	f.IntVar(&cfg.Requests, "requests", 0, "end a measurement after this many requests (0: after --duration)")
	f.IntVar(&cfg.Rounds, "rounds", 10, "trivial/token alternations per cell (ratios are the median of the rounds)")
	f.IntSliceVar(&cfg.Concurrency, "concurrency", []int{1, 16, 64}, "connections to compare at")
	f.IntVar(&cfg.Credentials, "credentials", 100000, "distinct credentials for the many-credentials comparison")
	f.IntVar(&cfg.ManyConcurrency, "many-concurrency", 16, "connections for the many-credentials comparison")
	f.StringVar(&cfg.Postgres, "postgres", os.Getenv("AUTHGATE_TEST_POSTGRES"), "PostgreSQL URL to measure on too (a schema of its own, dropped after) [$AUTHGATE_TEST_POSTGRES]")
	f.BoolVar(&cfg.NoSQLite, "no-sqlite", false, "measure on PostgreSQL only")
	f.StringArrayVar(&cfg.ServerEnv, "server-env", nil, "AUTHGATE_NAME=value for authgate serve instead of its default (repeatable), e.g. AUTHGATE_ACCESS_LOG=full")
	f.IntVar(&cfg.ClientThreads, "client-threads", 1, "threads of the load generator (GOMAXPROCS), like wrk -t")
	cmd.AddCommand(newBenchTrivialCmd())
	return cmd
}

// newBenchTrivialCmd is the trivial handler `authgate bench` runs in a
// process of its own; it is not for people.
func newBenchTrivialCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "trivial",
		Short:  "Serve the trivial handler on a free loopback port (run by authgate bench)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// main's context ends on SIGTERM: the bench stops us that way.
			return tokenbench.ServeTrivial(cmd.Context(), os.Getenv("AUTHGATE_BENCH_KEY"), []byte(os.Getenv("AUTHGATE_BENCH_ANSWER")), cmd.OutOrStdout())
		},
	}
}
