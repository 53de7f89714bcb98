package server

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
)

// TestConsoleOffTheTokenPath: the token route is routed to the API handler
// exactly as before the console existed (the server mux's "/" entry); only
// /ui/ reaches the console. The console adds no middleware, lookup or
// allocation to a token request beyond the mux choosing between patterns.
func TestConsoleOffTheTokenPath(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	srv, err := Open(context.Background(), Config{Addr: "127.0.0.1:0", Database: "sqlite:" + filepath.Join(dir, "a.db"), KeyFile: filepath.Join(dir, "a.key"),
		Logger: slog.New(slog.DiscardHandler), Stdout: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	mux, ok := srv.handler.(*http.ServeMux)
	if !ok {
		t.Fatalf("the server's handler is %T, not the mux this test reads", srv.handler)
	}
	for path, want := range map[string]string{
		"/v1/credentials/cred_x/token": "/",
		"/v1/credentials":              "/",
		"/ui/":                         "/ui/",
		"/ui/runs/run_x":               "/ui/",
	} {
		method := http.MethodGet
		if want == "/" && path != "/v1/credentials" {
			method = http.MethodPost
		}
		_, pattern := mux.Handler(httptest.NewRequest(method, path, nil))
		if pattern != want {
			t.Errorf("%s %s is routed by pattern %q; want %q", method, path, pattern, want)
		}
	}
}
