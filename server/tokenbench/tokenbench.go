// Package tokenbench measures authgate's token hot path the way issue 7
// states its targets: the HTTP token route against a trivial net/http
// handler of the same shape (Bearer check, small JSON in, small JSON out) in
// one run on one machine, the in-process Refresher.Token against
// oauth2.ReuseTokenSource, and the token route with one credential against
// many distinct ones. `authgate bench` prints its report; the server
// package's benchmarks reuse its pieces.
//
// It runs a real server (a SQLite file, the sandbox mounted, loopback HTTP)
// and must never reach beyond loopback or change how the server behaves: it
// only measures.
package tokenbench

import (
	"bytes"
	"context"
	"crypto/subtle"
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

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/internal/loadgen"
	"github.com/authgate/authgate/internal/refresh"
	"github.com/authgate/authgate/internal/secret"
	"github.com/authgate/authgate/internal/vault"
	"github.com/authgate/authgate/sandbox"
	"github.com/authgate/authgate/server"
)

// Body is what both handlers are sent: the token route's usual request.
var Body = []byte(`{"min_valid_seconds":300}`)

// Env is a running server with the sandbox, plus a trivial handler on its
// own loopback listener.
type Env struct {
	Server     *server.Server
	URL        string // the authgate server
	TrivialURL string // the trivial handler
	AdminKey   string
	Tenant     authgate.TenantID

	cancel context.CancelFunc
	done   chan error
	trivHS *http.Server
}

// Start opens a server on a SQLite file in dir (logging nothing: log writes
// would be measured too) and serves it and the trivial handler on loopback.
func Start(ctx context.Context, dir string) (*Env, error) {
	var stdout bytes.Buffer
	srv, err := server.Open(ctx, server.Config{
		Addr:        "127.0.0.1:0",
		Database:    "sqlite:" + filepath.Join(dir, "authgate.db"),
		KeyFile:     filepath.Join(dir, "authgate.key"),
		Logger:      slog.New(slog.DiscardHandler),
		Stdout:      &stdout,
		Sandbox:     server.SandboxOn,
		SandboxSeed: 1,
	})
	if err != nil {
		return nil, err
	}
	e := &Env{Server: srv, done: make(chan error, 1)}
	for _, line := range strings.Split(stdout.String(), "\n") {
		if k, ok := strings.CutPrefix(line, "admin key: "); ok {
			e.AdminKey = k
		}
	}
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
	e.TrivialURL = "http://" + tln.Addr().String() + "/v1/credentials/cred_trivial/token"
	e.trivHS = &http.Server{Handler: Trivial(e.AdminKey), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = e.trivHS.Serve(tln) }()
	return e, nil
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

// trivialResponse has the token route's response shape.
type trivialResponse struct {
	CredentialID string    `json:"credential_id"`
	Provider     string    `json:"provider"`
	AccessToken  string    `json:"access_token"`
	TokenType    string    `json:"token_type"`
	ExpiresAt    time.Time `json:"expires_at"`
	Scopes       []string  `json:"scopes"`
	Fingerprint  string    `json:"fingerprint"`
}

// Trivial is the yardstick: what any handler of the token route's shape
// costs with no storage, no crypto and no refresher. It checks the bearer
// key, decodes the body strictly, and answers a fixed token.
func Trivial(key string) http.Handler {
	want := []byte("Bearer " + key)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			http.Error(w, `{"type":"unauthorized"}`, http.StatusUnauthorized)
			return
		}
		var body struct {
			MinValidSeconds *int     `json:"min_valid_seconds"`
			Actions         []string `json:"actions"`
		}
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<10))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&body); err != nil {
			http.Error(w, `{"type":"invalid_request"}`, http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(trivialResponse{CredentialID: "cred_trivial", Provider: "google", AccessToken: "ya29.trivial-access-token",
			TokenType: "Bearer", ExpiresAt: time.Now().Add(time.Hour).UTC(), Scopes: []string{"openid"}, Fingerprint: "0123456789"})
	})
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

// ImportMany stores n credentials with fresh (made-up) tokens in one
// transaction and returns their ids. Their tokens are valid for an hour, so
// serving them never calls a provider: what is measured is the hot path.
func (e *Env) ImportMany(ctx context.Context, n int) ([]authgate.CredentialID, error) {
	exp := time.Now().Add(time.Hour)
	ps := make([]vault.ImportParams, n)
	for i := range ps {
		ps[i] = vault.ImportParams{TenantID: e.Tenant, UserID: fmt.Sprintf("bulk-%06d", i), Provider: "google", Subject: fmt.Sprintf("sub-%06d", i),
			Scopes: []string{"openid"}, AccessToken: secret.New(fmt.Sprintf("ya29.bulk-access-%06d", i)), RefreshToken: secret.New(fmt.Sprintf("1//bulk-refresh-%06d", i)),
			ExpiresAt: exp, Actor: "bench"}
	}
	creds, err := e.Server.Vault.ImportBatch(ctx, ps)
	if err != nil {
		return nil, err
	}
	ids := make([]authgate.CredentialID, len(creds))
	for i, c := range creds {
		ids[i] = c.ID
	}
	return ids, nil
}

// TokenTarget requests tokens for ids in turn through the HTTP API.
func (e *Env) TokenTarget(ids ...authgate.CredentialID) loadgen.Target {
	urls := make([]string, len(ids))
	for i, id := range ids {
		urls[i] = e.URL + "/v1/credentials/" + string(id) + "/token"
	}
	return func(i int) (*http.Request, error) {
		return loadgen.JSONPost(urls[i%len(urls)], e.AdminKey, Body)(i)
	}
}

// TrivialTarget requests the trivial handler.
func (e *Env) TrivialTarget() loadgen.Target { return loadgen.JSONPost(e.TrivialURL, e.AdminKey, Body) }

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

// Config sizes a Run. Zero values take the defaults.
type Config struct {
	// Requests bounds each HTTP measurement (default 20000); Duration caps
	// it (default 10s).
	Requests int
	Duration time.Duration
	// Concurrency is where throughput is compared (default 16);
	// TailConcurrency is where p99 is compared (default 64).
	Concurrency, TailConcurrency int
	// Credentials is how many distinct credentials the last comparison
	// rotates over (default 100000).
	Credentials int
	// Progress, if set, receives a line before each measurement.
	Progress io.Writer
}

func (c Config) withDefaults() Config {
	if c.Requests <= 0 {
		c.Requests = 20000
	}
	if c.Duration <= 0 {
		c.Duration = 10 * time.Second
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 16
	}
	if c.TailConcurrency <= 0 {
		c.TailConcurrency = 64
	}
	if c.Credentials <= 0 {
		c.Credentials = 100000
	}
	return c
}

// Report is one run's figures.
type Report struct {
	Config                           Config
	Trivial, Token                   loadgen.Result // at Concurrency
	TrivialTail, TokenTail           loadgen.Result // at TailConcurrency
	RefresherToken, ReuseTokenSource testing.BenchmarkResult
	OneCredential, ManyCredentials   loadgen.Result // token route at Concurrency
	ImportTime                       time.Duration  // creating the many credentials
	// ThroughputRatio is token/trivial at Concurrency; ManyToOneRatio is
	// many/one credentials' throughput; InProcessRatio is Token's ns/op over
	// ReuseTokenSource's.
	ThroughputRatio, ManyToOneRatio, InProcessRatio float64
}

// Measure runs every comparison against e. It imports cfg.Credentials
// credentials into e's database.
func Measure(ctx context.Context, e *Env, cfg Config) (Report, error) {
	cfg = cfg.withDefaults()
	r := Report{Config: cfg}
	say := func(format string, a ...any) {
		if cfg.Progress != nil {
			fmt.Fprintf(cfg.Progress, format+"\n", a...)
		}
	}
	cred, err := e.Connect(ctx, "bench@acme.example")
	if err != nil {
		return r, fmt.Errorf("connect a credential: %w", err)
	}
	run := func(name string, c int, t loadgen.Target) (loadgen.Result, error) {
		say("%s at concurrency %d …", name, c)
		res, err := loadgen.Run(ctx, loadgen.Client(c), loadgen.Config{Concurrency: c, Requests: cfg.Requests, Duration: cfg.Duration, Warmup: 2}, t)
		if err != nil {
			return res, fmt.Errorf("%s: %w", name, err)
		}
		if res.Errors > 0 {
			return res, fmt.Errorf("%s: %d of %d requests failed, first: %s", name, res.Errors, res.Requests, res.FirstError)
		}
		return res, nil
	}
	if r.Trivial, err = run("trivial handler", cfg.Concurrency, e.TrivialTarget()); err != nil {
		return r, err
	}
	if r.Token, err = run("token route", cfg.Concurrency, e.TokenTarget(cred.ID)); err != nil {
		return r, err
	}
	if r.TrivialTail, err = run("trivial handler", cfg.TailConcurrency, e.TrivialTarget()); err != nil {
		return r, err
	}
	if r.TokenTail, err = run("token route", cfg.TailConcurrency, e.TokenTarget(cred.ID)); err != nil {
		return r, err
	}
	say("in-process Refresher.Token …")
	r.RefresherToken = testing.Benchmark(e.RefresherToken(cred.ID))
	say("oauth2.ReuseTokenSource …")
	r.ReuseTokenSource = testing.Benchmark(ReuseTokenSource)

	say("importing %d credentials in one transaction …", cfg.Credentials)
	start := time.Now()
	ids, err := e.ImportMany(ctx, cfg.Credentials)
	if err != nil {
		return r, fmt.Errorf("import %d credentials: %w", cfg.Credentials, err)
	}
	r.ImportTime = time.Since(start)
	if r.OneCredential, err = run("token route, 1 credential", cfg.Concurrency, e.TokenTarget(cred.ID)); err != nil {
		return r, err
	}
	// Steady state: a server serving n credentials a minute has served each
	// of them before. One unmeasured pass asks for every credential once
	// (the cold reads and the once-a-minute use records happen there).
	say("warming: one request per credential …")
	if _, err := loadgen.Run(ctx, loadgen.Client(cfg.Concurrency), loadgen.Config{Concurrency: cfg.Concurrency, Requests: len(ids)}, e.TokenTarget(ids...)); err != nil {
		return r, fmt.Errorf("warm %d credentials: %w", len(ids), err)
	}
	if r.ManyCredentials, err = run(fmt.Sprintf("token route, %d credentials", len(ids)), cfg.Concurrency, e.TokenTarget(ids...)); err != nil {
		return r, err
	}
	r.ThroughputRatio = ratio(r.Token.Throughput(), r.Trivial.Throughput())
	r.ManyToOneRatio = ratio(r.ManyCredentials.Throughput(), r.OneCredential.Throughput())
	r.InProcessRatio = ratio(float64(r.RefresherToken.NsPerOp()), float64(r.ReuseTokenSource.NsPerOp()))
	return r, nil
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// WriteTable prints the report with issue 7's targets next to the figures.
func (r Report) WriteTable(w io.Writer) {
	ms := func(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }
	c, tc := r.Config.Concurrency, r.Config.TailConcurrency
	fmt.Fprintf(w, "HTTP, loopback, %d requests per row (at most %v)\n", r.Config.Requests, r.Config.Duration)
	fmt.Fprintf(w, "%-34s %14s %10s %10s %10s\n", "", "req/s", "p50", "p99", "max")
	row := func(name string, res loadgen.Result) {
		fmt.Fprintf(w, "%-34s %14.0f %10s %10s %10s\n", name, res.Throughput(), ms(res.P50), ms(res.P99), ms(res.Max))
	}
	row(fmt.Sprintf("trivial handler c%d", c), r.Trivial)
	row(fmt.Sprintf("token route c%d", c), r.Token)
	row(fmt.Sprintf("trivial handler c%d", tc), r.TrivialTail)
	row(fmt.Sprintf("token route c%d", tc), r.TokenTail)
	fmt.Fprintf(w, "token/trivial throughput at c%d: %.2fx (target >= 0.5x)\n", c, r.ThroughputRatio)
	fmt.Fprintf(w, "token route p99 at c%d: %s (target < 10 ms)\n\n", tc, ms(r.TokenTail.P99))

	fmt.Fprintf(w, "in process\n%-34s %14s %10s %10s\n", "", "ns/op", "B/op", "allocs/op")
	bench := func(name string, b testing.BenchmarkResult) {
		fmt.Fprintf(w, "%-34s %14d %10d %10d\n", name, b.NsPerOp(), b.AllocedBytesPerOp(), b.AllocsPerOp())
	}
	bench("Refresher.Token (fresh)", r.RefresherToken)
	bench("oauth2.ReuseTokenSource", r.ReuseTokenSource)
	fmt.Fprintf(w, "Token/ReuseTokenSource: %.1fx (target <= 20x)\n\n", r.InProcessRatio)

	fmt.Fprintf(w, "credentials served (token route c%d; %d imported in %v)\n", c, r.Config.Credentials, r.ImportTime.Round(time.Millisecond))
	row("1 credential", r.OneCredential)
	row(fmt.Sprintf("%d credentials", r.Config.Credentials), r.ManyCredentials)
	fmt.Fprintf(w, "many/one throughput: %.2fx (target >= 0.8x)\n", r.ManyToOneRatio)
}
