package main

import (
	"context"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"

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
	root.PersistentFlags().StringVar(&g.db, "db", envOr("AUTHGATE_DB", server.DefaultDatabase), "database (sqlite:PATH) [$AUTHGATE_DB]")
	root.PersistentFlags().StringVar(&g.keyFile, "key-file", envOr("AUTHGATE_KEY_FILE", server.DefaultKeyFile), "master key file, used when $AUTHGATE_MASTER_KEYS is unset [$AUTHGATE_KEY_FILE]")
	root.AddCommand(
		newServeCmd(g),
		newSandboxCmd(),
		newBenchCmd(),
		newCredsCmd(g),
		newEventsCmd(g),
		newKeysCmd(g),
		newTenantsCmd(g),
		newVersionCmd(),
	)
	return root
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// config builds the server configuration from flags and the environment.
func (g *globals) config() server.Config {
	cfg := server.Config{
		Database:      g.db,
		KeyFile:       g.keyFile,
		MasterKeys:    os.Getenv("AUTHGATE_MASTER_KEYS"),
		Sandbox:       server.SandboxMode(os.Getenv("AUTHGATE_SANDBOX")),
		SandboxURL:    os.Getenv("AUTHGATE_SANDBOX_URL"),
		PublicURL:     os.Getenv("AUTHGATE_PUBLIC_URL"),
		ProvidersFile: os.Getenv("AUTHGATE_PROVIDERS_FILE"),
		Logger:        newLogger(),
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
	return cfg.WithDefaults()
}

// newLogger writes JSON (or text with AUTHGATE_LOG_FORMAT=text) to stderr at
// AUTHGATE_LOG_LEVEL (debug, info, warn, error; default info).
func newLogger() *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(envOr("AUTHGATE_LOG_LEVEL", "info"))); err != nil {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	if strings.EqualFold(os.Getenv("AUTHGATE_LOG_FORMAT"), "text") {
		return slog.New(slog.NewTextHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, opts))
}

// openCore opens the database and keys of an existing installation.
func (g *globals) openCore(ctx context.Context) (*server.Core, error) {
	return server.OpenCore(ctx, g.config(), server.CoreOptions{MustExist: true})
}
