package loadgen_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
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

	res, err := loadgen.Run(context.Background(), loadgen.Client(4), loadgen.Config{Concurrency: 4, Requests: 400, Warmup: 1},
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
	// Keep-alive: about one connection per client for 404 requests (the
	// transport may dial one spare while a request waits for a connection).
	if n := conns.Load(); n < 4 || n > 8 {
		t.Fatalf("%d connections opened for 404 requests; want 4 kept alive (at most a few spares)", n)
	}

	bad, err := loadgen.Run(context.Background(), loadgen.Client(2), loadgen.Config{Concurrency: 2, Requests: 10}, loadgen.JSONPost(srv.URL, "wrong", nil))
	if err != nil || bad.Errors != 10 || bad.FirstError != "status 401" {
		t.Fatalf("non-2xx answers: %v, first %q, %v; want 10 errors", bad, bad.FirstError, err)
	}
}

func TestRunStopsAtDuration(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	res, err := loadgen.Run(context.Background(), loadgen.Client(2), loadgen.Config{Concurrency: 2, Duration: 100 * time.Millisecond},
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
