package loadgen_test

import (
	"context"
	"crypto/sha256"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/loadgen"
)

func TestRunStopsAtRequestCount(t *testing.T) {
	t.Parallel()
	var served atomic.Int64
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		if r.Header.Get("Authorization") != "Bearer k" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Write([]byte(`{"ok":true}`))
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()

	res, err := loadgen.Run(context.Background(), loadgen.Config{Concurrency: 4, Requests: 400, Warmup: 1},
		loadgen.JSONPost(srv.URL, "k", []byte(`{}`)))
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 400 || res.Errors != 0 || served.Load() != 404 {
		t.Fatalf("%v; served %d; want 400 measured + 4 warm-up, no errors", res, served.Load())
	}
	if res.P50 <= 0 || res.P99 < res.P50 || res.Max < res.P99 || res.Throughput() <= 0 {
		t.Fatalf("implausible figures: %v", res)
	}
	if res.BodyBytes != len(`{"ok":true}`) {
		t.Errorf("body size %d; want %d", res.BodyBytes, len(`{"ok":true}`))
	}
	// Keep-alive: exactly one connection per client for 404 requests.
	if n := conns.Load(); n != 4 {
		t.Fatalf("%d connections opened for 404 requests; want 4 kept alive", n)
	}

	bad, err := loadgen.Run(context.Background(), loadgen.Config{Concurrency: 2, Requests: 10}, loadgen.JSONPost(srv.URL, "wrong", nil))
	if err != nil || bad.Errors != 10 || bad.FirstError != "status 401" {
		t.Fatalf("non-2xx answers: %v, first %q, %v; want 10 errors", bad, bad.FirstError, err)
	}
}

func TestRunStopsAtDuration(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	res, err := loadgen.Run(context.Background(), loadgen.Config{Concurrency: 2, Duration: 100 * time.Millisecond},
		loadgen.JSONPost(srv.URL, "k", nil))
	if err != nil || res.Requests == 0 || res.Elapsed > 5*time.Second {
		t.Fatalf("%v, %v", res, err)
	}
}

func TestPercentile(t *testing.T) {
	t.Parallel()
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i))
	}
	if p := loadgen.Percentile(d, 0.5); p != 50 {
		t.Errorf("p50 %v", p)
	}
	if p := loadgen.Percentile(d, 0.99); p != 99 {
		t.Errorf("p99 %v", p)
	}
	if p := loadgen.Percentile(d[:1], 0.99); p != 1 {
		t.Errorf("p99 of one %v", p)
	}
}

// TestRunReadsEveryBodyShape: chunked answers, paths cycled in turn, and a
// server that closes the connection after each answer (the next request
// dials again) are all answered requests, not errors.
func TestRunReadsEveryBodyShape(t *testing.T) {
	t.Parallel()
	var paths sync.Map
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		paths.Store(r.URL.Path, true)
		if r.URL.Path == "/base/close" {
			w.Header().Set("Connection", "close")
		}
		w.(http.Flusher).Flush() // forces a chunked body
		w.Write([]byte(`{"chunked":true}`))
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	res, err := loadgen.Run(context.Background(), loadgen.Config{Concurrency: 1, Requests: 30},
		loadgen.JSONPost(srv.URL+"/base", "k", []byte(`{}`), "/a", "/b", "/close"))
	if err != nil || res.Requests != 30 || res.Errors != 0 {
		t.Fatalf("%v, first error %q, %v", res, res.FirstError, err)
	}
	for _, p := range []string{"/base/a", "/base/b", "/base/close"} {
		if _, ok := paths.Load(p); !ok {
			t.Errorf("no request reached %s", p)
		}
	}
	if res.BodyBytes != len(`{"chunked":true}`) {
		t.Errorf("body size %d", res.BodyBytes)
	}
	// Every third request closes its connection: 10 connections in all.
	if n := conns.Load(); n != 10 {
		t.Errorf("%d connections; want 10 (one per Connection: close)", n)
	}
}

func TestMerge(t *testing.T) {
	t.Parallel()
	a := loadgen.Result{Concurrency: 4, Requests: 2, Elapsed: time.Second, Latencies: []time.Duration{1, 3}}
	b := loadgen.Result{Concurrency: 4, Requests: 2, Elapsed: time.Second, Latencies: []time.Duration{2, 4}, Errors: 1, FirstError: "status 500"}
	m := loadgen.Merge(a, b)
	if m.Requests != 4 || m.Elapsed != 2*time.Second || m.Throughput() != 2 || m.P50 != 2 || m.Max != 4 || m.Errors != 1 || m.FirstError != "status 500" {
		t.Fatalf("%+v", m)
	}
}

func TestProcessCPU(t *testing.T) {
	t.Parallel()
	// Burn some CPU first: a fresh test process may not have used one
	// 10 ms tick yet.
	sum := sha256.Sum256(nil)
	for range 200_000 {
		sum = sha256.Sum256(sum[:])
	}
	d, err := loadgen.ProcessCPU(os.Getpid())
	if runtime.GOOS != "linux" {
		if err == nil {
			t.Fatal("ProcessCPU worked without /proc")
		}
		return
	}
	if err != nil || d <= 0 {
		t.Fatalf("own CPU time %v, %v; want > 0 after 200,000 SHA-256 rounds", d, err)
	}
}
