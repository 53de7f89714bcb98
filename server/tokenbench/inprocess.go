package tokenbench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/sync/errgroup"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/internal/loadgen"
	"github.com/authgate/authgate/internal/refresh"
	"github.com/authgate/authgate/internal/secret"
	"github.com/authgate/authgate/internal/vault"
	"github.com/authgate/authgate/sandbox"
	"github.com/authgate/authgate/server"
)

// Env is a server with the sandbox and a trivial handler, both in this
// process: for the `go test -bench` benchmarks of the server package, which
// are quick regression checks. Load generator and servers share one process
// here, so its ratios are not the ones `authgate bench` reports.
type Env struct {
	Server     *server.Server
	URL        string // the authgate server
	TrivialURL string // the trivial handler's base URL
	AdminKey   string
	Tenant     authgate.TenantID

	cancel context.CancelFunc
	done   chan error
	trivHS *http.Server
}

// Start opens a server on a SQLite file in dir and serves it and the
// trivial handler on loopback. The server logs as `serve` does by default
// (JSON at info), into io.Discard: formatting the lines is part of the cost.
func Start(ctx context.Context, dir string) (*Env, error) {
	var stdout bytes.Buffer
	srv, err := server.Open(ctx, server.Config{
		Addr:        "127.0.0.1:0",
		Database:    "sqlite:" + filepath.Join(dir, "authgate.db"),
		KeyFile:     filepath.Join(dir, "authgate.key"),
		Logger:      slog.New(slog.NewJSONHandler(io.Discard, nil)),
		Stdout:      &stdout,
		Sandbox:     server.SandboxOn,
		SandboxSeed: 1,
	})
	if err != nil {
		return nil, err
	}
	e := &Env{Server: srv, done: make(chan error, 1)}
	e.AdminKey = adminKeyIn(stdout.String())
	if e.AdminKey == "" {
		srv.Close()
		return nil, errors.New("tokenbench: the server printed no admin key (is the database new?)")
	}
	p, err := srv.Tenancy.Authenticate(ctx, "Bearer "+e.AdminKey)
	if err != nil {
		srv.Close()
		return nil, err
	}
	e.Tenant = p.TenantID
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		srv.Close()
		return nil, err
	}
	e.URL = "http://" + ln.Addr().String()
	if err := srv.SetPublicURL(e.URL); err != nil {
		ln.Close()
		srv.Close()
		return nil, err
	}
	sctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	go func() { e.done <- srv.Serve(sctx, ln) }()

	tln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		e.Close()
		return nil, err
	}
	e.TrivialURL = "http://" + tln.Addr().String()
	exp := time.Now().Add(time.Hour).UTC()
	e.trivHS = httpServer(Trivial(e.AdminKey, authgate.AccessToken{Provider: "google", AccessToken: madeUpToken("ya29.", 0), TokenType: "Bearer",
		ExpiresAt: &exp, Scopes: []string{"openid"}, Fingerprint: "0123456789", MinValidMet: true}))
	go func() { _ = e.trivHS.Serve(tln) }()
	return e, nil
}

func adminKeyIn(stdout string) string {
	for _, line := range strings.Split(stdout, "\n") {
		if k, ok := strings.CutPrefix(line, "admin key: "); ok {
			return strings.TrimSpace(k)
		}
	}
	return ""
}

// Close stops both listeners and the server.
func (e *Env) Close() error {
	if e.trivHS != nil {
		_ = e.trivHS.Close()
	}
	e.cancel()
	err := <-e.done
	return errors.Join(err, e.Server.Close())
}

// Connect obtains real sandbox Google tokens for account (consent preset,
// authorization code, exchange) and imports them through the API.
func (e *Env) Connect(ctx context.Context, account string) (authgate.Credential, error) {
	sb := e.Server.Sandbox
	if err := sb.SetConsent("google", sandbox.Consent{Account: account}); err != nil {
		return authgate.Credential{}, err
	}
	defer sb.ClearConsent("google")
	c, err := sb.DefaultClient("google")
	if err != nil {
		return authgate.Credential{}, err
	}
	base := e.URL + "/sandbox/google"
	q := url.Values{"client_id": {c.ClientID}, "redirect_uri": {"http://127.0.0.1:9/cb"}, "response_type": {"code"}, "scope": {"openid"},
		"state": {"state-0123456789"}, "access_type": {"offline"}}
	loc, err := sandbox.CompleteConsent(ctx, nil, base+"/o/oauth2/v2/auth?"+q.Encode(), sandbox.Choice{})
	if err != nil {
		return authgate.Credential{}, err
	}
	resp, err := http.PostForm(base+"/token", url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")},
		"redirect_uri": {"http://127.0.0.1:9/cb"}, "client_id": {c.ClientID}, "client_secret": {c.ClientSecret}})
	if err != nil {
		return authgate.Credential{}, err
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
		ExpiresIn    int    `json:"expires_in"`
		Scope        string `json:"scope"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || tok.AccessToken == "" {
		return authgate.Credential{}, fmt.Errorf("sandbox token exchange: status %d, %v", resp.StatusCode, err)
	}
	exp := time.Now().Add(time.Duration(tok.ExpiresIn) * time.Second)
	return authgate.NewClient(e.URL, e.AdminKey).ImportCredential(ctx, authgate.ImportCredentialRequest{
		UserID: "bench", Provider: "google", Subject: "sub-" + account, Email: account, Scopes: strings.Fields(tok.Scope),
		AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken, ExpiresAt: &exp,
	})
}

// ImportMany stores n credentials with made-up tokens valid for an hour
// (serving them never calls a provider: what is measured is the hot path).
func (e *Env) ImportMany(ctx context.Context, n int) ([]authgate.CredentialID, error) {
	return importMany(ctx, e.Server.Vault, e.Tenant, "bulk", 0, n, 1)
}

// importMany imports n credentials, numbered from from, in batches (one
// transaction each), workers batches at a time.
func importMany(ctx context.Context, v *vault.Vault, tenant authgate.TenantID, user string, from, n, workers int) ([]authgate.CredentialID, error) {
	const batch = 2_000
	exp := time.Now().Add(time.Hour)
	// The tokens are made up, so a health check would rightly find them
	// invalid and make the credential reauth_required mid-measurement (the
	// sweep spreads first checks over its period from the moment they
	// appear: about one in a thousand within the first 90 s). Their first
	// check is put a year out, in the import's transaction.
	firstCheck := time.Now().AddDate(1, 0, 0)
	ids := make([]authgate.CredentialID, n)
	var g errgroup.Group
	g.SetLimit(max(1, workers))
	for start := 0; start < n; start += batch {
		g.Go(func() error {
			ps := make([]vault.ImportParams, min(batch, n-start))
			for j := range ps {
				i := from + start + j
				ps[j] = vault.ImportParams{TenantID: tenant, UserID: fmt.Sprintf("%s-%06d", user, i), Provider: "google", Subject: fmt.Sprintf("sub-%s-%06d", user, i),
					Scopes: []string{"openid"}, AccessToken: secret.New(madeUpToken("ya29.", i)), RefreshToken: secret.New(madeUpToken("1//", i)),
					ExpiresAt: exp, Actor: "bench", FirstCheckAt: firstCheck}
			}
			creds, err := v.ImportBatch(ctx, ps)
			if err != nil {
				return err
			}
			for j, c := range creds {
				ids[start+j] = c.ID
			}
			return nil
		})
	}
	return ids, g.Wait()
}

// madeUpToken is a token of a real Google access token's length (about
// 170 characters), distinct for each i: the answer's size is the real one.
func madeUpToken(prefix string, i int) string {
	s := fmt.Sprintf("%sbench-%08d-", prefix, i)
	return s + strings.Repeat("x", max(0, 170-len(s)))
}

// TokenTarget requests tokens for ids in turn through the HTTP API.
func (e *Env) TokenTarget(ids ...authgate.CredentialID) loadgen.Target {
	return loadgen.JSONPost(e.URL, e.AdminKey, Body, tokenPaths(ids)...)
}

func tokenPaths(ids []authgate.CredentialID) []string {
	paths := make([]string, len(ids))
	for i, id := range ids {
		paths[i] = TokenPath(id)
	}
	return paths
}

// TrivialTarget requests the trivial handler.
func (e *Env) TrivialTarget() loadgen.Target {
	return loadgen.JSONPost(e.TrivialURL, e.AdminKey, Body, TokenPath("cred_trivial"))
}

// RefresherToken benchmarks the in-process Refresher.Token for a credential
// whose stored token is fresh.
func (e *Env) RefresherToken(id authgate.CredentialID) func(b *testing.B) {
	return func(b *testing.B) {
		ctx := context.Background()
		req := refresh.Request{TenantID: e.Tenant, ID: id, MinValid: refresh.DefaultMinValid}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := e.Server.Refresher.Token(ctx, req); err != nil {
				b.Fatal(err)
			}
		}
	}
}

type staticSource struct{ t *oauth2.Token }

func (s staticSource) Token() (*oauth2.Token, error) { return s.t, nil }

// ReuseTokenSource benchmarks oauth2.ReuseTokenSource holding a fresh token:
// the floor for "hand out a cached token in process".
func ReuseTokenSource(b *testing.B) {
	tok := &oauth2.Token{AccessToken: "ya29.fresh", TokenType: "Bearer", Expiry: time.Now().Add(time.Hour)}
	ts := oauth2.ReuseTokenSource(tok, staticSource{tok})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ts.Token(); err != nil {
			b.Fatal(err)
		}
	}
}
