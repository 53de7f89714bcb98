package server_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/authgate/authgate/server"
)

func TestSandboxMountRules(t *testing.T) {
	t.Parallel()
	providers := filepath.Join(t.TempDir(), "providers.yaml")
	if err := os.WriteFile(providers, []byte("providers:\n  - name: legacy\n    kind: oauth2\n    authorization_url: https://legacy.example/a\n    token_url: https://legacy.example/t\n    client_id: id\n    client_secret: s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		cfg     server.Config
		mounted bool
		warn    string
	}{
		{"zero config on loopback", server.Config{Addr: "127.0.0.1:0"}, true, ""},
		{"providers file only", server.Config{Addr: "127.0.0.1:0", ProvidersFile: providers}, false, ""},
		{"real google", server.Config{Addr: "127.0.0.1:0", Providers: map[string]server.ProviderCredentials{"google": {ClientID: "a", ClientSecret: "b"}}}, false, ""},
		{"public address", server.Config{Addr: "0.0.0.0:0", PublicURL: "http://192.0.2.10:8080"}, false, "not mounted"},
		{"public address, switched on", server.Config{Addr: "0.0.0.0:0", PublicURL: "http://192.0.2.10:8080", Sandbox: server.SandboxOn}, true, "NON-LOOPBACK"},
		{"loopback behind a public URL (a reverse proxy)", server.Config{Addr: "127.0.0.1:0", PublicURL: "https://auth.example.com"}, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			var logs bytes.Buffer
			cfg := tc.cfg
			cfg.Database, cfg.KeyFile, cfg.Stdout = "sqlite:"+filepath.Join(dir, "db"), filepath.Join(dir, "key"), &bytes.Buffer{}
			cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
			srv, err := server.Open(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			if (srv.Sandbox != nil) != tc.mounted {
				t.Errorf("mounted = %v, want %v", srv.Sandbox != nil, tc.mounted)
			}
			if tc.warn != "" && !strings.Contains(logs.String(), tc.warn) {
				t.Errorf("no warning %q in %s", tc.warn, logs.String())
			}
		})
	}
}
