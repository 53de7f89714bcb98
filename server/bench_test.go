package server_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/internal/loadgen"
	"github.com/authgate/authgate/server/tokenbench"
)

// The token hot path against a trivial handler of the same shape, with
// load generator and servers in this one process: quick regression checks
// that CI runs once (-benchtime 1x). The published figures come from
// `authgate bench`, which runs each server in its own process. Each
// benchmark reports req/s and p50/p99 in ms; BenchmarkTokenVsTrivialHTTP
// reports the ratio itself.

func startBench(b *testing.B) (*tokenbench.Env, authgate.Credential) {
	b.Helper()
	e, err := tokenbench.Start(context.Background(), b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { e.Close() })
	c, err := e.Connect(context.Background(), "bench@acme.example")
	if err != nil {
		b.Fatal(err)
	}
	return e, c
}

// load sends b.N requests at concurrency c and reports what it measured.
func load(b *testing.B, c int, t loadgen.Target) loadgen.Result {
	b.Helper()
	b.ResetTimer()
	res, err := loadgen.Run(context.Background(), loadgen.Config{Concurrency: c, Requests: b.N, Warmup: 2}, t)
	b.StopTimer()
	if err != nil || res.Errors > 0 {
		b.Fatalf("%v; %d errors, first: %s", err, res.Errors, res.FirstError)
	}
	b.ReportMetric(res.Throughput(), "req/s")
	b.ReportMetric(ms(res.P50), "p50-ms")
	b.ReportMetric(ms(res.P99), "p99-ms")
	return res
}

func ms(d interface{ Seconds() float64 }) float64 { return d.Seconds() * 1000 }

func BenchmarkTrivialHTTP(b *testing.B) {
	e, _ := startBench(b)
	for _, c := range []int{16, 64} {
		b.Run("c"+strconv.Itoa(c), func(b *testing.B) { load(b, c, e.TrivialTarget()) })
	}
}

func BenchmarkTokenHTTP(b *testing.B) {
	e, cred := startBench(b)
	for _, c := range []int{16, 64} {
		b.Run("c"+strconv.Itoa(c), func(b *testing.B) { load(b, c, e.TokenTarget(cred.ID)) })
	}
}

// BenchmarkTokenVsTrivialHTTP runs both in one benchmark, b.N requests
// each: throughput ratio at c16 (target ≥ 0.5) and both p99s at c64 (the
// token route's target is under 10 ms).
func BenchmarkTokenVsTrivialHTTP(b *testing.B) {
	e, cred := startBench(b)
	run := func(c int, t loadgen.Target) loadgen.Result {
		res, err := loadgen.Run(context.Background(), loadgen.Config{Concurrency: c, Requests: b.N, Warmup: 2}, t)
		if err != nil || res.Errors > 0 {
			b.Fatalf("%v; %d errors, first: %s", err, res.Errors, res.FirstError)
		}
		return res
	}
	trivial, token := run(16, e.TrivialTarget()), run(16, e.TokenTarget(cred.ID))
	trivialTail, tokenTail := run(64, e.TrivialTarget()), run(64, e.TokenTarget(cred.ID))
	b.ReportMetric(token.Throughput()/trivial.Throughput(), "c16-throughput-ratio")
	b.ReportMetric(ms(tokenTail.P99), "token-c64-p99-ms")
	b.ReportMetric(ms(trivialTail.P99), "trivial-c64-p99-ms")
}

// BenchmarkTokenHTTPCredentials compares the token route's throughput with
// one credential and with many distinct ones (issue 7: within 20%). The
// default is 1000 so a one-pass CI run stays quick; set
// AUTHGATE_BENCH_CREDENTIALS=100000 for the figure.
func BenchmarkTokenHTTPCredentials(b *testing.B) {
	n := 1000
	if v, err := strconv.Atoi(os.Getenv("AUTHGATE_BENCH_CREDENTIALS")); err == nil && v > 0 {
		n = v
	}
	e, cred := startBench(b)
	ids, err := e.ImportMany(context.Background(), n)
	if err != nil {
		b.Fatal(err)
	}
	// Steady state: every credential has been served once (see tokenbench.Measure).
	if _, err := loadgen.Run(context.Background(), loadgen.Config{Concurrency: 16, Requests: len(ids)}, e.TokenTarget(ids...)); err != nil {
		b.Fatal(err)
	}
	b.Run("1", func(b *testing.B) { load(b, 16, e.TokenTarget(cred.ID)) })
	b.Run(strconv.Itoa(n), func(b *testing.B) { load(b, 16, e.TokenTarget(ids...)) })
}

// BenchmarkRefresherToken is the in-process hot path on a fresh credential;
// compare with BenchmarkReuseTokenSource (issue 7: within 20×).
func BenchmarkRefresherToken(b *testing.B) {
	e, cred := startBench(b)
	e.RefresherToken(cred.ID)(b)
}

// BenchmarkReuseTokenSource is oauth2.ReuseTokenSource holding a fresh
// token: the floor for serving a cached token in process.
func BenchmarkReuseTokenSource(b *testing.B) { tokenbench.ReuseTokenSource(b) }

// handlerBench calls h directly, without a network or a client, the way
// net/http would for one token request: what the handler itself costs
// (ns/op, allocs/op). The token route's figure against the trivial
// handler's is what the access log, auth lookup, JSON and middleware add.
func handlerBench(b *testing.B, h http.Handler, url, key string) {
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, url, bytes.NewReader(tokenbench.Body))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	}
}

func BenchmarkTokenHandler(b *testing.B) {
	e, _ := startBench(b)
	ids, err := e.ImportMany(context.Background(), 1)
	if err != nil {
		b.Fatal(err)
	}
	handlerBench(b, e.Server.Handler(), e.URL+tokenbench.TokenPath(ids[0]), e.AdminKey)
}

func BenchmarkTrivialHandler(b *testing.B) {
	e, _ := startBench(b)
	exp := time.Now().Add(time.Hour)
	h := tokenbench.Trivial(e.AdminKey, authgate.AccessToken{CredentialID: "cred_trivial", Provider: "google", AccessToken: "ya29.x", TokenType: "Bearer", ExpiresAt: &exp, Scopes: []string{"openid"}})
	handlerBench(b, h, e.TrivialURL+tokenbench.TokenPath("cred_trivial"), e.AdminKey)
}
