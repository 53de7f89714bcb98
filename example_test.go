package authgate_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/server"
)

// The SDK client against an in-process server: import a credential from
// another system and read it back. Tokens never come back, only fingerprints.
func ExampleClient() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "authgate-example-")
	defer os.RemoveAll(dir)
	var stdout bytes.Buffer
	srv, err := server.Open(ctx, server.Config{
		Database: "sqlite:" + filepath.Join(dir, "authgate.db"), KeyFile: filepath.Join(dir, "authgate.key"),
		Logger: slog.New(slog.DiscardHandler), Stdout: &stdout, Sandbox: server.SandboxOff,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	adminKey := strings.TrimSpace(strings.TrimPrefix(stdout.String(), "admin key: "))

	client := authgate.NewClient(hs.URL, adminKey)
	cred, err := client.ImportCredential(ctx, authgate.ImportCredentialRequest{
		UserID: "alice", Provider: "google", Subject: "1093847561", Email: "alice@example.com",
		Scopes: []string{"openid", "email"}, AccessToken: "ya29.example-access", RefreshToken: "1//example-refresh",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	got, _ := client.Credential(ctx, cred.ID)
	fmt.Println(got.Status, got.Account.Email, got.HasRefreshToken, got.AccessTokenFingerprint)

	_, err = client.Credential(ctx, "cred_nope")
	fmt.Println(err)
	// Output:
	// active alice@example.com true 1e598898cc
	// invalid_request: "cred_nope" is not a credential id (they look like cred_ followed by 26 letters and digits)
}
