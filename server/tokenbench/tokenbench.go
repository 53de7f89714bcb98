// Package tokenbench measures authgate's token hot path the way an outside
// client sees it, which is how issue 16 states its targets: `authgate
// serve` with its default settings (default log level and format) in a
// process of its own, a trivial net/http handler of the same shape (same
// route pattern, bearer check, strict JSON body, the same answer bytes) in
// another, and the load generator (internal/loadgen, keep-alive
// connections, one thread like `wrk -t1`) in the calling process. Every
// comparison is made in one run, alternating the two servers round by
// round, so the ratios hold even when the machine's load moves the
// absolute figures. `authgate bench` prints its report.
//
// It also keeps an in-process Env for the server package's `go test -bench`
// benchmarks (quick regression checks, not the published figures).
//
// It runs real servers (SQLite files in a temporary directory, PostgreSQL
// on a schema of its own that it drops) and must never reach beyond
// loopback or change how the server behaves: it only measures.
package tokenbench

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/internal/loadgen"
	"github.com/authgate/authgate/server"
)

// The targets issue 16 sets, as ratios of one run.
const (
	TargetThroughput = 0.8 // token/trivial req/s at every concurrency
	TargetP99        = 1.3 // token/trivial p99 at the highest concurrency, at most
	TargetMany       = 0.8 // many/one credential req/s
)

// Config sizes a run. Zero values take the defaults.
type Config struct {
	// Dir holds the databases, key and logs (required; the caller removes it).
	Dir string
	// Executable is the authgate binary run as `serve` and as the trivial
	// handler (default: this process's own executable).
	Executable string
	// Duration is one measurement (default 500ms: short rounds keep each
	// pair inside one spell of the machine's load); Requests, if set, ends
	// it earlier.
	Duration time.Duration
	Requests int
	// Rounds alternates trivial and token measurements this many times per
	// cell (default 10); a cell's figures pool its rounds, its ratios are
	// the median of the rounds' ratios.
	Rounds int
	// Concurrency lists the connection counts compared (default 1, 16, 64).
	Concurrency []int
	// Credentials is how many distinct credentials are served against one
	// (default 100000), at ManyConcurrency connections (default 16).
	Credentials     int
	ManyConcurrency int
	// Postgres is a PostgreSQL URL to measure on too ("" skips it, saying so).
	Postgres string
	// NoSQLite skips SQLite (to look at PostgreSQL alone).
	NoSQLite bool
	// ServerEnv adds KEY=VALUE settings to the authgate servers (the default
	// is none: authgate's defaults), e.g. AUTHGATE_ACCESS_LOG=full.
	ServerEnv []string
	// ClientThreads is the load generator's GOMAXPROCS while it measures
	// (default 1, like `wrk -t1`): the client stays light and leaves the
	// rest of the machine to the servers.
	ClientThreads int
	// Progress, if set, receives a line before each step.
	Progress io.Writer
}

func (c Config) withDefaults() (Config, error) {
	if c.Dir == "" {
		return c, errors.New("tokenbench: Config.Dir is required")
	}
	if c.Executable == "" {
		exe, err := os.Executable()
		if err != nil {
			return c, fmt.Errorf("tokenbench: find the authgate binary: %w", err)
		}
		c.Executable = exe
	}
	if c.Duration <= 0 {
		c.Duration = 500 * time.Millisecond
	}
	if c.Rounds <= 0 {
		c.Rounds = 10
	}
	if len(c.Concurrency) == 0 {
		c.Concurrency = []int{1, 16, 64}
	}
	for _, n := range c.Concurrency {
		if n <= 0 {
			return c, fmt.Errorf("tokenbench: concurrency %d: want at least 1", n)
		}
	}
	if c.Credentials <= 0 {
		c.Credentials = 100000
	}
	if c.ManyConcurrency <= 0 {
		c.ManyConcurrency = 16
	}
	if c.ClientThreads <= 0 {
		c.ClientThreads = 1
	}
	for _, kv := range c.ServerEnv {
		if k, _, ok := strings.Cut(kv, "="); !ok || !strings.HasPrefix(k, "AUTHGATE_") {
			return c, fmt.Errorf("tokenbench: server setting %q: want AUTHGATE_NAME=value", kv)
		}
	}
	return c, nil
}

// Cell is one comparison at one concurrency on one backend.
type Cell struct {
	Backend     string
	Concurrency int
	// Trivial and Token pool the rounds; the CPU fields are the server
	// processes' CPU time (user + system) over the same requests.
	Trivial, Token       loadgen.Result
	TrivialCPU, TokenCPU time.Duration
	// TrivialRounds and TokenRounds are the rounds, paired by index.
	TrivialRounds, TokenRounds []loadgen.Result
	trivialSent                int // requests incl. warm-up, for CPU per request
	tokenSent                  int
}

// ThroughputRatio is token/trivial requests per second: the median of the
// rounds' ratios (each round measures both back to back, so a burst of
// load from elsewhere on the machine moves one round, not the verdict).
func (c Cell) ThroughputRatio() float64 {
	return medianRatio(c.TokenRounds, c.TrivialRounds, loadgen.Result.Throughput)
}

// P99Ratio is token/trivial p99 latency, the median of the rounds' ratios.
func (c Cell) P99Ratio() float64 {
	return medianRatio(c.TokenRounds, c.TrivialRounds, func(r loadgen.Result) float64 { return float64(r.P99) })
}

// medianRatio is the median over paired rounds of f(a[i]) / f(b[i]).
func medianRatio(a, b []loadgen.Result, f func(loadgen.Result) float64) float64 {
	var rs []float64
	for i := range min(len(a), len(b)) {
		rs = append(rs, ratio(f(a[i]), f(b[i])))
	}
	if len(rs) == 0 {
		return 0
	}
	slices.Sort(rs)
	if n := len(rs); n%2 == 0 {
		return (rs[n/2-1] + rs[n/2]) / 2
	}
	return rs[len(rs)/2]
}

// CPUPerRequest is each server's CPU time per request (0: not measured).
func (c Cell) CPUPerRequest() (trivial, token time.Duration) {
	return perRequest(c.TrivialCPU, c.trivialSent), perRequest(c.TokenCPU, c.tokenSent)
}

func perRequest(d time.Duration, n int) time.Duration {
	if n == 0 {
		return 0
	}
	return d / time.Duration(n)
}

// Many is the token route with one credential against many on one backend.
type Many struct {
	Backend     string
	Credentials int
	Import      time.Duration // importing them (from this process, in batches)
	One, Many   loadgen.Result
	// OneRounds and ManyRounds are the rounds, paired by index.
	OneRounds, ManyRounds []loadgen.Result
}

// Ratio is many/one requests per second, the median of the rounds' ratios.
func (m Many) Ratio() float64 {
	return medianRatio(m.ManyRounds, m.OneRounds, loadgen.Result.Throughput)
}

// ServerLog is what one authgate server logged while it was measured.
type ServerLog struct {
	Backend      string
	Lines, Bytes int64
	Requests     int            // token requests it answered meanwhile (incl. warm-up)
	Messages     map[string]int // lines by message
}

// Report is one run's figures.
type Report struct {
	Config Config
	Cells  []Cell
	Many   []Many
	Logs   []ServerLog
	// Skipped says which backends were not measured and why.
	Skipped []string
	// TokenBytes and TrivialBytes are the two answers' body sizes.
	TokenBytes, TrivialBytes int
}

// backend is one database the token route is measured on.
type backend struct{ name, db string }

// Measure starts the servers, measures every cell and stops them.
func Measure(ctx context.Context, cfg Config) (r Report, err error) {
	cfg, err = cfg.withDefaults()
	if err != nil {
		return r, err
	}
	r.Config = cfg
	say := func(format string, a ...any) {
		if cfg.Progress != nil {
			fmt.Fprintf(cfg.Progress, format+"\n", a...)
		}
	}
	prev := runtime.GOMAXPROCS(cfg.ClientThreads)
	defer runtime.GOMAXPROCS(prev)

	key := make([]byte, 32)
	_, _ = rand.Read(key)
	masterKeys := "bench:" + base64.StdEncoding.EncodeToString(key)

	var backends []backend
	if !cfg.NoSQLite {
		backends = append(backends, backend{"SQLite", "sqlite:" + filepath.Join(cfg.Dir, "sqlite", "authgate.db")})
	}
	if cfg.Postgres == "" {
		r.Skipped = append(r.Skipped, "PostgreSQL not measured: set AUTHGATE_TEST_POSTGRES or pass --postgres postgres://…")
	} else {
		db, drop, err := postgresSchema(ctx, cfg.Postgres)
		if err != nil {
			return r, err
		}
		defer drop()
		backends = append(backends, backend{"PostgreSQL", db})
	}

	var trivial *proc
	var trivialKey string
	defer func() {
		if trivial != nil {
			err = errors.Join(err, trivial.stop())
		}
	}()
	for _, b := range backends {
		dir := filepath.Join(cfg.Dir, strings.ToLower(b.name))
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return r, err
		}
		say("%s: starting authgate serve …", b.name)
		env := childEnv(append([]string{"AUTHGATE_MASTER_KEYS=" + masterKeys, "AUTHGATE_SANDBOX=on"}, cfg.ServerEnv...)...)
		srv, err := start(ctx, "authgate serve ("+b.name+")", cfg.Executable, dir, env, filepath.Join(dir, "serve.log"), "authgate is serving on ",
			"serve", "--addr", "127.0.0.1:0", "--db", b.db, "--key-file", filepath.Join(dir, "authgate.key"))
		if err != nil {
			return r, err
		}
		err = func() error {
			adminKey := adminKeyIn(srv.Stdout())
			if adminKey == "" {
				return fmt.Errorf("%s: authgate serve printed no admin key", b.name)
			}
			say("%s: importing 1 + %d credentials …", b.name, cfg.Credentials)
			one, many, took, err := importCredentials(ctx, b.db, masterKeys, dir, adminKey, cfg.Credentials)
			if err != nil {
				return fmt.Errorf("%s: import credentials: %w", b.name, err)
			}
			answer, err := oneAnswer(ctx, srv.URL, adminKey, one)
			if err != nil {
				return fmt.Errorf("%s: %w", b.name, err)
			}
			r.TokenBytes = len(answer)
			if trivial == nil {
				say("starting the trivial handler …")
				trivialKey = adminKey
				trivial, err = start(ctx, "trivial handler", cfg.Executable, dir,
					childEnv("AUTHGATE_BENCH_KEY="+trivialKey, "AUTHGATE_BENCH_ANSWER="+string(answer)), "", TrivialReady, "bench", "trivial")
				if err != nil {
					return err
				}
			}
			srv.waitIdle(ctx, time.Minute)
			tokenT := loadgen.JSONPost(srv.URL, adminKey, Body, TokenPath(one))
			trivialT := loadgen.JSONPost(trivial.URL, trivialKey, Body, TokenPath(one))
			manyT := loadgen.JSONPost(srv.URL, adminKey, Body, tokenPaths(many)...)

			lines0, bytes0 := srv.logSize()
			sent := 0
			run := func(p *proc, t loadgen.Target, c int, what string) (loadgen.Result, time.Duration, int, error) {
				const warmup = 2
				cpu0 := p.CPU()
				res, err := loadgen.Run(ctx, loadgen.Config{Concurrency: c, Requests: cfg.Requests, Duration: cfg.Duration, Warmup: warmup}, t)
				cpu := p.CPU() - cpu0
				if err == nil && res.Errors > 0 {
					err = fmt.Errorf("%d of %d requests failed, first: %s", res.Errors, res.Requests, res.FirstError)
				}
				if err != nil {
					return res, 0, 0, fmt.Errorf("%s, %s at c%d: %w", b.name, what, c, err)
				}
				n := res.Requests + c*warmup
				if p == srv {
					sent += n
				}
				return res, cpu, n, nil
			}
			for _, c := range cfg.Concurrency {
				cell := Cell{Backend: b.name, Concurrency: c}
				var triv, tok []loadgen.Result
				for round := range cfg.Rounds {
					say("%s: c%d, round %d of %d …", b.name, c, round+1, cfg.Rounds)
					// Alternate which goes first, so a drift in the
					// machine's load does not favour one side.
					for i := range 2 {
						if (i+round)%2 == 0 {
							res, cpu, n, err := run(trivial, trivialT, c, "trivial handler")
							if err != nil {
								return err
							}
							triv, cell.TrivialCPU, cell.trivialSent = append(triv, res), cell.TrivialCPU+cpu, cell.trivialSent+n
							say("  trivial %.0f req/s, p99 %v", res.Throughput(), res.P99)
							r.TrivialBytes = res.BodyBytes
						} else {
							res, cpu, n, err := run(srv, tokenT, c, "token route")
							if err != nil {
								return err
							}
							tok, cell.TokenCPU, cell.tokenSent = append(tok, res), cell.TokenCPU+cpu, cell.tokenSent+n
							say("  token %.0f req/s, p99 %v", res.Throughput(), res.P99)
						}
					}
				}
				cell.Trivial, cell.Token = loadgen.Merge(triv...), loadgen.Merge(tok...)
				cell.TrivialRounds, cell.TokenRounds = triv, tok
				r.Cells = append(r.Cells, cell)
			}

			// Steady state: a server serving n credentials a minute has
			// served each of them before. One unmeasured pass asks for
			// every credential once (the cold reads happen there), then
			// the server's writes of their last-use times settle.
			say("%s: warming: one request per credential …", b.name)
			if _, err := loadgen.Run(ctx, loadgen.Config{Concurrency: cfg.ManyConcurrency, Requests: len(many)}, manyT); err != nil {
				return fmt.Errorf("%s: warm %d credentials: %w", b.name, len(many), err)
			}
			srv.waitIdle(ctx, time.Minute)
			m := Many{Backend: b.name, Credentials: len(many), Import: took}
			var ones, manys []loadgen.Result
			for round := range cfg.Rounds {
				say("%s: 1 vs %d credentials, round %d of %d …", b.name, len(many), round+1, cfg.Rounds)
				for i := range 2 {
					if (i+round)%2 == 0 {
						res, _, _, err := run(srv, tokenT, cfg.ManyConcurrency, "1 credential")
						if err != nil {
							return err
						}
						ones = append(ones, res)
						say("  1 credential %.0f req/s", res.Throughput())
					} else {
						res, _, _, err := run(srv, manyT, cfg.ManyConcurrency, fmt.Sprintf("%d credentials", len(many)))
						if err != nil {
							return err
						}
						manys = append(manys, res)
						say("  %d credentials %.0f req/s", len(many), res.Throughput())
					}
				}
			}
			m.One, m.Many = loadgen.Merge(ones...), loadgen.Merge(manys...)
			m.OneRounds, m.ManyRounds = ones, manys
			r.Many = append(r.Many, m)
			lines1, bytes1 := srv.logSize()
			r.Logs = append(r.Logs, ServerLog{Backend: b.name, Lines: lines1 - lines0, Bytes: bytes1 - bytes0, Requests: sent, Messages: srv.logMessages(bytes0)})
			return nil
		}()
		if serr := srv.stop(); err == nil {
			err = serr
		}
		if err != nil {
			return r, err
		}
	}
	return r, nil
}

// importCredentials stores one credential and n others, with made-up tokens
// valid for an hour, from this process (as `authgate` operator commands
// do), in batches: through the API 100,000 imports would take minutes.
func importCredentials(ctx context.Context, db, masterKeys, dir, adminKey string, n int) (one authgate.CredentialID, many []authgate.CredentialID, took time.Duration, err error) {
	core, err := server.OpenCore(ctx, server.Config{Database: db, MasterKeys: masterKeys, KeyFile: filepath.Join(dir, "authgate.key"),
		Logger: slog.New(slog.DiscardHandler)}.WithDefaults(), server.CoreOptions{MustExist: true})
	if err != nil {
		return "", nil, 0, err
	}
	defer core.Close()
	p, err := core.Tenancy.Authenticate(ctx, "Bearer "+adminKey)
	if err != nil {
		return "", nil, 0, err
	}
	ones, err := importMany(ctx, core.Vault, p.TenantID, "one", 0, 1, 1)
	if err != nil {
		return "", nil, 0, err
	}
	start := time.Now()
	if !strings.HasPrefix(db, "postgres") {
		many, err = importMany(ctx, core.Vault, p.TenantID, "many", 0, n, 1) // SQLite has one writer
		return ones[0], many, time.Since(start), err
	}
	// PostgreSQL plans the slot lookup of a prepared statement once, from
	// the statistics of a table that was empty; a bulk load then scans
	// every row for every insert and 100,000 take many minutes. Load a
	// first batch, ANALYZE (which also drops the cached plans), then the
	// rest, several transactions at once.
	first := min(n, 2000)
	many, err = importMany(ctx, core.Vault, p.TenantID, "many", 0, first, 1)
	if err != nil {
		return "", nil, 0, err
	}
	if err := analyzeCredentials(ctx, db); err != nil {
		return "", nil, 0, err
	}
	rest, err := importMany(ctx, core.Vault, p.TenantID, "many", first, n-first, 8)
	return ones[0], append(many, rest...), time.Since(start), err
}

// analyzeCredentials refreshes PostgreSQL's statistics of the credentials
// table in the bench's schema (db's search_path).
func analyzeCredentials(ctx context.Context, db string) error {
	conn, err := pgx.Connect(ctx, db)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "ANALYZE credentials")
	return err
}

// oneAnswer asks the token route once and returns its body.
func oneAnswer(ctx context.Context, base, key string, id authgate.CredentialID) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+TokenPath(id), strings.NewReader(string(Body)))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("the token route answered %d: %s", resp.StatusCode, b)
	}
	return b, nil
}

// postgresSchema creates a schema of its own in the database at base and
// returns a URL whose search_path selects it, and a func that drops it.
func postgresSchema(ctx context.Context, base string) (string, func(), error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", nil, fmt.Errorf("PostgreSQL URL: want postgres://…")
	}
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		return "", nil, fmt.Errorf("PostgreSQL at %s: %w", u.Redacted(), err)
	}
	defer conn.Close(ctx)
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema := "authgate_bench_" + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		return "", nil, fmt.Errorf("PostgreSQL at %s: create a schema for the bench: %w", u.Redacted(), err)
	}
	drop := func() {
		if c, err := pgx.Connect(context.Background(), base); err == nil {
			_, _ = c.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
			c.Close(context.Background())
		}
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), drop, nil
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// Meets reports whether the run met every target, and what it missed.
func (r Report) Meets() (bool, []string) {
	var missed []string
	top := slices.Max(r.Config.Concurrency)
	for _, c := range r.Cells {
		if x := c.ThroughputRatio(); x < TargetThroughput {
			missed = append(missed, fmt.Sprintf("%s c%d throughput %.2fx < %.1fx", c.Backend, c.Concurrency, x, TargetThroughput))
		}
		if x := c.P99Ratio(); c.Concurrency == top && x > TargetP99 {
			missed = append(missed, fmt.Sprintf("%s c%d p99 %.2fx > %.1fx", c.Backend, c.Concurrency, x, TargetP99))
		}
	}
	for _, m := range r.Many {
		if x := m.Ratio(); x < TargetMany {
			missed = append(missed, fmt.Sprintf("%s %d/1 credentials %.2fx < %.1fx", m.Backend, m.Credentials, x, TargetMany))
		}
	}
	return len(missed) == 0, missed
}

// WriteTable prints the report with issue 16's targets.
func (r Report) WriteTable(w io.Writer) {
	ms := func(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d)/float64(time.Millisecond)) }
	us := func(d time.Duration) string {
		if d == 0 {
			return "n/a"
		}
		return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond))
	}
	cfg := r.Config
	fmt.Fprintf(w, "token route POST /v1/credentials/{id}/token (answer %d bytes) vs a trivial net/http handler of the same shape (%d bytes)\n", r.TokenBytes, r.TrivialBytes)
	fmt.Fprintf(w, "servers in their own processes; load from this one (%d thread, keep-alive); %d rounds of %v per cell, alternating; latencies in ms\n", cfg.ClientThreads, cfg.Rounds, cfg.Duration)
	if len(cfg.ServerEnv) > 0 {
		fmt.Fprintf(w, "authgate serve settings: %s\n", strings.Join(cfg.ServerEnv, " "))
	} else {
		fmt.Fprintln(w, "authgate serve settings: the defaults")
	}
	fmt.Fprintf(w, "\n%-10s %4s %13s %11s %6s %17s %17s %6s %11s %9s\n", "backend", "conc", "trivial req/s", "token req/s", "ratio",
		"trivial p50/p99", "token p50/p99", "p99 x", "trivial CPU", "token CPU")
	for _, c := range r.Cells {
		tc, kc := c.CPUPerRequest()
		fmt.Fprintf(w, "%-10s %4d %13.0f %11.0f %5.2fx %17s %17s %5.2fx %11s %9s\n", c.Backend, c.Concurrency, c.Trivial.Throughput(), c.Token.Throughput(),
			c.ThroughputRatio(), ms(c.Trivial.P50)+"/"+ms(c.Trivial.P99), ms(c.Token.P50)+"/"+ms(c.Token.P99), c.P99Ratio(), us(tc)+"/req", us(kc)+"/req")
	}
	fmt.Fprintln(w, "(req/s and latencies pool the rounds; ratios are the median of the rounds' ratios; CPU is each server process's user+system time per request)")
	if len(r.Many) > 0 {
		fmt.Fprintf(w, "\ntoken route, 1 credential vs many (c%d; the many were served once before)\n", cfg.ManyConcurrency)
		fmt.Fprintf(w, "%-10s %12s %12s %14s %7s %12s\n", "backend", "credentials", "1: req/s", "many: req/s", "ratio", "import")
		for _, m := range r.Many {
			fmt.Fprintf(w, "%-10s %12d %12.0f %14.0f %6.2fx %12v\n", m.Backend, m.Credentials, m.One.Throughput(), m.Many.Throughput(), m.Ratio(), m.Import.Round(time.Millisecond))
		}
	}
	fmt.Fprintln(w)
	for _, l := range r.Logs {
		var msgs []string
		for m, n := range l.Messages {
			msgs = append(msgs, fmt.Sprintf("%dx %q", n, m))
		}
		slices.Sort(msgs)
		fmt.Fprintf(w, "%s server log while measured: %d lines, %d bytes for %d token requests", l.Backend, l.Lines, l.Bytes, l.Requests)
		if len(msgs) > 0 {
			fmt.Fprintf(w, " (%s)", strings.Join(msgs, ", "))
		}
		fmt.Fprintln(w)
	}
	for _, s := range r.Skipped {
		fmt.Fprintln(w, s)
	}
	ok, missed := r.Meets()
	if ok {
		fmt.Fprintf(w, "targets (token/trivial >= %.1fx at every concurrency, p99 <= %.1fx at c%d, many/one >= %.1fx): all met\n", TargetThroughput, TargetP99, slices.Max(cfg.Concurrency), TargetMany)
	} else {
		fmt.Fprintf(w, "targets (token/trivial >= %.1fx at every concurrency, p99 <= %.1fx at c%d, many/one >= %.1fx): missed: %s\n", TargetThroughput, TargetP99, slices.Max(cfg.Concurrency), TargetMany, strings.Join(missed, "; "))
	}
}
