package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/server"
)

// globals are the flags every command shares.
type globals struct {
	db      string
	keyFile string
}

func newRootCmd() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:           "authgate",
		Short:         "Keep OAuth working for long-running agent and automation workflows",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&g.db, "db", envOr("AUTHGATE_DB", server.DefaultDatabase), "database: sqlite:PATH or postgres://USER:PASSWORD@HOST:PORT/DB [$AUTHGATE_DB]")
	root.PersistentFlags().StringVar(&g.keyFile, "key-file", envOr("AUTHGATE_KEY_FILE", server.DefaultKeyFile), "master key file, used when $AUTHGATE_MASTER_KEYS is unset [$AUTHGATE_KEY_FILE]")
	root.AddCommand(
		newServeCmd(g),
		newSandboxCmd(),
		newBenchCmd(),
		newCredsCmd(g),
		newDoctorCmd(g),
		newEventsCmd(g),
		newKeysCmd(g),
		newTenantsCmd(g),
		newMCPCmd(),
		newRunsCmd(),
		newDemoCmd(),
		newDemoCheckCmd(),
		newVersionCmd(),
		newUICmd(),
	)
	refuseUnknownSubcommands(root)
	return root
}

// refuseUnknownSubcommands makes every command group (creds, keys,
// tenants, …) fail on a subcommand it does not have, with cobra's "did you
// mean", instead of printing help and exiting 0: a typo in a script must
// not pass for success. Without arguments a group still prints its help.
func refuseUnknownSubcommands(cmd *cobra.Command) {
	for _, c := range cmd.Commands() {
		refuseUnknownSubcommands(c)
	}
	if !cmd.HasSubCommands() || cmd.Run != nil || cmd.RunE != nil || !cmd.HasParent() {
		return
	}
	cmd.Args = cobra.ArbitraryArgs
	cmd.SuggestionsMinimumDistance = 2
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return cmd.Help()
		}
		msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
		if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
			msg += "; did you mean " + strings.Join(s, " or ") + "?"
		}
		return errors.New(msg + " (see " + cmd.CommandPath() + " --help)")
	}
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// config builds the server configuration from flags and the environment.
func (g *globals) config() (server.Config, error) {
	logger, err := newLogger(os.Getenv("AUTHGATE_LOG_LEVEL"), os.Getenv("AUTHGATE_LOG_FORMAT"), os.Stderr)
	if err != nil {
		return server.Config{}, err
	}
	cfg := server.Config{
		Database:      g.db,
		KeyFile:       g.keyFile,
		MasterKeys:    os.Getenv("AUTHGATE_MASTER_KEYS"),
		Sandbox:       server.SandboxMode(os.Getenv("AUTHGATE_SANDBOX")),
		SandboxURL:    os.Getenv("AUTHGATE_SANDBOX_URL"),
		PublicURL:     os.Getenv("AUTHGATE_PUBLIC_URL"),
		ProvidersFile: os.Getenv("AUTHGATE_PROVIDERS_FILE"),
		Logger:        logger,
		AccessLog:     os.Getenv("AUTHGATE_ACCESS_LOG"),
	}
	for _, name := range []string{"google", "notion", "slack"} {
		up := strings.ToUpper(name)
		id, secret := os.Getenv("AUTHGATE_"+up+"_CLIENT_ID"), os.Getenv("AUTHGATE_"+up+"_CLIENT_SECRET")
		if id != "" || secret != "" {
			if cfg.Providers == nil {
				cfg.Providers = map[string]server.ProviderCredentials{}
			}
			cfg.Providers[name] = server.ProviderCredentials{ClientID: id, ClientSecret: secret}
		}
	}
	if v := os.Getenv("AUTHGATE_RETURN_URL_ALLOWLIST"); v != "" {
		cfg.ReturnURLAllowList = strings.Split(v, ",")
	}
	// How long one token call may take (default 30s): it sets how long a
	// refresh that may have landed unseen keeps others from presenting the
	// same refresh token.
	if v := os.Getenv("AUTHGATE_REFRESH_CALL_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return server.Config{}, fmt.Errorf("AUTHGATE_REFRESH_CALL_TIMEOUT=%q: want a duration such as 30s", v)
		}
		cfg.RefreshCallTimeout = d
	}
	for name, dst := range map[string]*time.Duration{"AUTHGATE_HEALTH_SWEEP_INTERVAL": &cfg.HealthSweepInterval, "AUTHGATE_JOB_RESCUE_AFTER": &cfg.JobRescueAfter} {
		if v := os.Getenv(name); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return server.Config{}, fmt.Errorf("%s=%q: want a positive duration such as 24h or 10s", name, v)
			}
			*dst = d
		}
	}
	if v := os.Getenv("AUTHGATE_PROVIDER_JOB_RATE"); v != "" {
		r, err := strconv.ParseFloat(v, 64)
		if err != nil || r <= 0 || r > 10000 || r != r {
			return server.Config{}, fmt.Errorf("AUTHGATE_PROVIDER_JOB_RATE=%q: want refreshes per second per provider, above 0 and at most 10000, such as 10", v)
		}
		cfg.ProviderJobRate = r
	}
	if v := os.Getenv("AUTHGATE_WEBHOOK_ALLOW_PRIVATE"); v != "" {
		if cfg.WebhookAllowPrivate, err = strconv.ParseBool(v); err != nil {
			return server.Config{}, fmt.Errorf("AUTHGATE_WEBHOOK_ALLOW_PRIVATE=%q: want true or false", v)
		}
	}
	if v := os.Getenv("AUTHGATE_WEBHOOK_ALLOW_CIDRS"); v != "" {
		cfg.WebhookAllowCIDRs = strings.Split(v, ",")
	}
	if v := os.Getenv("AUTHGATE_MCP_IDLE_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Second {
			return server.Config{}, fmt.Errorf("AUTHGATE_MCP_IDLE_TIMEOUT=%q: want a duration of at least 1s, such as 30m", v)
		}
		cfg.MCPIdleTimeout = d
	}
	if v := os.Getenv("AUTHGATE_MCP_MAX_SESSIONS_PER_KEY"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return server.Config{}, fmt.Errorf("AUTHGATE_MCP_MAX_SESSIONS_PER_KEY=%q: want a whole number of at least 1", v)
		}
		cfg.MCPMaxSessionsPerKey = n
	}
	return cfg.WithDefaults(), nil
}

// newLogger writes to w at level (debug, info, warn, error; default info)
// in format: text for a person at a terminal, JSON for everything else
// (a pipe, a file, a log collector); "json" or "text" choose explicitly.
// A value it does not know is an error, not a silent default.
func newLogger(level, format string, w *os.File) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(cmp.Or(level, "info"))); err != nil {
		return nil, fmt.Errorf("AUTHGATE_LOG_LEVEL=%q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch strings.ToLower(format) {
	case "":
		if isTerminal(w) {
			return slog.New(slog.NewTextHandler(w, opts)), nil
		}
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("AUTHGATE_LOG_FORMAT=%q: want json or text", format)
}

// isTerminal reports whether f is a character device (a terminal).
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// openCore opens the database and keys of an existing installation.
func (g *globals) openCore(ctx context.Context) (*server.Core, error) {
	return g.open(ctx, server.CoreOptions{MustExist: true})
}

// openMetadata opens an existing database without master keys: for
// commands that show metadata and fingerprints only.
func (g *globals) openMetadata(ctx context.Context) (*server.Core, error) {
	return g.open(ctx, server.CoreOptions{MustExist: true, MetadataOnly: true})
}

// openTenant opens the installation and resolves a tenant by id or name;
// the caller closes the core.
func (g *globals) openTenant(ctx context.Context, idOrName string) (*server.Core, authgate.Tenant, error) {
	core, err := g.openCore(ctx)
	if err != nil {
		return nil, authgate.Tenant{}, err
	}
	t, err := core.Tenancy.Resolve(ctx, idOrName)
	if err != nil {
		core.Close()
		return nil, authgate.Tenant{}, err
	}
	return core, t, nil
}

func (g *globals) open(ctx context.Context, opts server.CoreOptions) (*server.Core, error) {
	cfg, err := g.config()
	if err != nil {
		return nil, err
	}
	return server.OpenCore(ctx, cfg, opts)
}
