// Package authgatetest starts a real authgate on loopback for tests — ours and
// our users': a SQLite file in a temporary directory, a generated key, a real
// HTTP server, and an SDK client holding the admin key. It never mocks
// storage or HTTP; later it also starts the provider sandbox and drives consent.
package authgatetest

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/internal/clock"
	"github.com/authgate/authgate/sandbox"
	"github.com/authgate/authgate/server"
)

// Env is one running authgate.
type Env struct {
	URL      string
	AdminKey string
	Client   *authgate.Client
	Server   *server.Server
	DBPath   string
	KeyFile  string
	// Logs holds every log line the server wrote (JSON, one per line).
	Logs *SyncBuffer
	// Stdout holds what the server printed (the admin key line).
	Stdout *SyncBuffer
}

// Options tunes Start.
type Options struct {
	// Clock, if set, replaces the wall clock (for the server and its sandbox).
	Clock clock.Clock
	// Configure adjusts the server configuration before it opens.
	Configure func(*server.Config)
}

// Start runs authgate for the duration of the test.
func Start(t testing.TB, opts Options) *Env {
	t.Helper()
	dir := t.TempDir()
	env := &Env{DBPath: filepath.Join(dir, "authgate.db"), KeyFile: filepath.Join(dir, "authgate.key"), Logs: &SyncBuffer{}, Stdout: &SyncBuffer{}}
	cfg := server.Config{
		Database:    "sqlite:" + env.DBPath,
		KeyFile:     env.KeyFile,
		Logger:      slog.New(slog.NewJSONHandler(env.Logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Clock:       opts.Clock,
		Stdout:      env.Stdout,
		SandboxSeed: 1,
	}
	if opts.Configure != nil {
		opts.Configure(&cfg)
	}
	srv, err := server.Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("authgatetest: open server: %v", err)
	}
	env.Server = srv
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		hs.Close()
		srv.Close()
	})
	env.URL = hs.URL
	if cfg.PublicURL == "" {
		if err := srv.SetPublicURL(hs.URL); err != nil {
			t.Fatalf("authgatetest: %v", err)
		}
	}
	for _, line := range strings.Split(env.Stdout.String(), "\n") {
		if k, ok := strings.CutPrefix(line, "admin key: "); ok {
			env.AdminKey = k
		}
	}
	if env.AdminKey == "" {
		t.Fatalf("authgatetest: server printed no admin key; stdout: %q", env.Stdout.String())
	}
	env.Client = authgate.NewClient(env.URL, env.AdminKey)
	return env
}

// NewTenant creates another tenant and returns a client holding its key.
func (e *Env) NewTenant(t testing.TB, name string) (*authgate.Client, string) {
	t.Helper()
	_, key, err := e.Server.Tenancy.CreateTenant(context.Background(), name)
	if err != nil {
		t.Fatalf("authgatetest: create tenant %s: %v", name, err)
	}
	return authgate.NewClient(e.URL, key.Reveal()), key.Reveal()
}

// SyncBuffer is a bytes.Buffer safe for concurrent writers.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// ConnectParams is one connect flow run as the end user.
type ConnectParams struct {
	UserID   string
	Provider string
	Actions  []string
	Scopes   []string
	// CredentialID makes it a reconnect.
	CredentialID authgate.CredentialID
	// Choice is what the user does on the sandbox's consent page.
	Choice sandbox.Choice
}

// Connect runs a whole connect flow through the mounted sandbox as a user
// with a browser of its own: create the connect session with the SDK, open
// the link, consent, land on the callback. It returns the credential the
// flow stored, with the identity the broker captured.
func (e *Env) Connect(t testing.TB, p ConnectParams) authgate.Credential {
	t.Helper()
	c, outcome := e.ConnectOutcome(t, p)
	if c.ID == "" {
		t.Fatalf("authgatetest: connect flow ended %q without a credential", outcome)
	}
	return c
}

// ConnectOutcome runs a connect flow like Connect and returns the session's
// outcome; the credential is zero when the flow stored none (a refusal such
// as identity_mismatch).
func (e *Env) ConnectOutcome(t testing.TB, p ConnectParams) (authgate.Credential, string) {
	t.Helper()
	ctx := context.Background()
	if p.UserID == "" {
		p.UserID = "user-1"
	}
	s, err := e.Client.CreateConnectSession(ctx, authgate.ConnectSessionRequest{UserID: p.UserID, Provider: p.Provider, Actions: p.Actions, Scopes: p.Scopes, CredentialID: p.CredentialID})
	if err != nil {
		t.Fatalf("authgatetest: connect session: %v", err)
	}
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := browser.Get(s.ConnectURL)
	if err != nil {
		t.Fatalf("authgatetest: open connect link: %v", err)
	}
	resp.Body.Close()
	loc, err := resp.Location()
	if err != nil {
		t.Fatalf("authgatetest: connect link answered %d without a redirect", resp.StatusCode)
	}
	back, err := sandbox.CompleteConsent(ctx, browser, loc.String(), p.Choice)
	if err != nil {
		t.Fatalf("authgatetest: consent: %v", err)
	}
	resp, err = browser.Get(back.String())
	if err != nil {
		t.Fatalf("authgatetest: callback: %v", err)
	}
	resp.Body.Close()
	var st struct {
		State        string                `json:"state"`
		ErrorCode    string                `json:"error_code"`
		CredentialID authgate.CredentialID `json:"credential_id"`
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.URL+"/v1/connect-sessions/"+s.ID, nil)
	req.Header.Set("Authorization", "Bearer "+e.AdminKey)
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("authgatetest: connect session status: %v", err)
	}
	defer r.Body.Close()
	if err := json.NewDecoder(r.Body).Decode(&st); err != nil {
		t.Fatalf("authgatetest: connect session status: %v", err)
	}
	if st.CredentialID == "" || st.State != "connected" && st.State != "partial" {
		return authgate.Credential{}, cmp.Or(st.ErrorCode, st.State)
	}
	c, err := e.Client.Credential(ctx, st.CredentialID)
	if err != nil {
		t.Fatalf("authgatetest: read connected credential: %v", err)
	}
	return c, st.State
}

// SandboxAPI is the base URL of a sandbox API the connectors call: "drive",
// "docs", "notion" or "slack".
func (e *Env) SandboxAPI(name string) string {
	switch name {
	case "drive":
		return e.URL + "/sandbox/google/drive/v3/"
	case "docs":
		return e.URL + "/sandbox/google/"
	case "notion":
		return e.URL + "/sandbox/notion/v1/"
	case "slack":
		return e.URL + "/sandbox/slack/api/"
	}
	return ""
}

// WaitRun waits until the run is in one of states (resuming after a
// reconnect is a job, not part of the callback's request) and returns it;
// the 30 s deadline only turns a hang into a failure.
func WaitRun(t testing.TB, c *authgate.Client, id authgate.RunID, states ...authgate.RunState) authgate.Run {
	t.Helper()
	deadline := time.After(30 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond) // polling the API: the only view a client has
	defer tick.Stop()
	for {
		r, err := c.Run(context.Background(), id)
		if err == nil && slices.Contains(states, r.State) {
			return r
		}
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("run %s is %s (%v); want one of %v", id, r.State, err, states)
		}
	}
}
