// Package loadgen drives an HTTP endpoint with N concurrent keep-alive
// clients and reports throughput and latency percentiles. Benchmarks and
// `authgate bench` use it to compare the token route with a trivial handler
// in one run, on one machine.
//
// It owns load generation only: it knows nothing about authgate's routes,
// and it never sleeps to pace requests (each client sends its next request as
// soon as the previous answer is read). A run always ends by itself: it stops
// after Requests answers or after Duration, whichever comes first.
package loadgen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Config bounds one run. Requests or Duration must be set.
type Config struct {
	// Concurrency is the number of clients, each with its own keep-alive
	// connection (default 1).
	Concurrency int
	// Requests stops the run after this many requests in total (0: no bound).
	Requests int
	// Duration stops the run after this long (0: no bound).
	Duration time.Duration
	// Warmup requests per client are sent first and not measured (they open
	// the connections).
	Warmup int
}

// Target builds the i-th request (i counts from 0 across all clients). The
// request is sent as is; its body must be re-readable per call (build a new
// one each time).
type Target func(i int) (*http.Request, error)

// Result is what one run measured.
type Result struct {
	Concurrency int
	Requests    int           // answered requests (any status)
	Errors      int           // transport errors and non-2xx answers
	FirstError  string        // the first of them, for the report
	Elapsed     time.Duration // wall time of the measured part
	P50, P99    time.Duration
	Max         time.Duration
}

// Throughput is answered requests per second.
func (r Result) Throughput() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Elapsed.Seconds()
}

func (r Result) String() string {
	return fmt.Sprintf("c%d: %d requests in %v (%.0f req/s), p50 %v, p99 %v, max %v, %d errors",
		r.Concurrency, r.Requests, r.Elapsed.Round(time.Millisecond), r.Throughput(), r.P50, r.P99, r.Max, r.Errors)
}

// Client returns an HTTP client for loopback load: enough idle connections
// that every one of concurrency clients keeps its own alive.
func Client(concurrency int) *http.Client {
	return &http.Client{
		Timeout: time.Minute,
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			MaxIdleConns:        concurrency * 2,
			MaxIdleConnsPerHost: concurrency * 2,
			IdleConnTimeout:     time.Minute,
			DisableCompression:  true,
		},
	}
}

// JSONPost returns a Target that POSTs body to url with a bearer key.
func JSONPost(url, key string, body []byte) Target {
	return func(int) (*http.Request, error) {
		req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		return req, nil
	}
}

// Run sends requests built by target through hc until cfg's bounds.
func Run(ctx context.Context, hc *http.Client, cfg Config, target Target) (Result, error) {
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 1
	}
	if cfg.Requests <= 0 && cfg.Duration <= 0 {
		return Result{}, errors.New("loadgen: set Requests or Duration")
	}
	res := Result{Concurrency: cfg.Concurrency}
	var mu sync.Mutex
	fail := func(msg string) {
		mu.Lock()
		res.Errors++
		if res.FirstError == "" {
			res.FirstError = msg
		}
		mu.Unlock()
	}
	do := func(ctx context.Context, i int) (time.Duration, bool) {
		req, err := target(i)
		if err != nil {
			fail(err.Error())
			return 0, false
		}
		start := time.Now()
		resp, err := hc.Do(req.WithContext(ctx))
		if err != nil {
			if ctx.Err() == nil {
				fail(err.Error())
			}
			return 0, false
		}
		// Read the whole body so the connection is reused.
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		d := time.Since(start)
		if err != nil && ctx.Err() != nil {
			return 0, false
		}
		switch {
		case err != nil:
			fail(fmt.Sprintf("status %d, reading the body: %v", resp.StatusCode, err))
		case resp.StatusCode/100 != 2:
			fail(fmt.Sprintf("status %d", resp.StatusCode))
		}
		return d, true
	}

	// Warm-up: open every connection before the clock starts.
	var wg sync.WaitGroup
	for range cfg.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range cfg.Warmup {
				do(ctx, 0)
			}
		}()
	}
	wg.Wait()
	mu.Lock()
	res.Errors, res.FirstError = 0, ""
	mu.Unlock()

	runCtx := ctx
	if cfg.Duration > 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeout(ctx, cfg.Duration)
		defer cancel()
	}
	var next atomic.Int64
	lat := make([][]time.Duration, cfg.Concurrency)
	start := time.Now()
	for c := range cfg.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for runCtx.Err() == nil {
				i := int(next.Add(1) - 1)
				if cfg.Requests > 0 && i >= cfg.Requests {
					return
				}
				if d, ok := do(runCtx, i); ok {
					lat[c] = append(lat[c], d)
				}
			}
		}()
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	all := slices.Concat(lat...)
	slices.Sort(all)
	res.Requests = len(all)
	if len(all) > 0 {
		res.P50, res.P99, res.Max = Percentile(all, 0.50), Percentile(all, 0.99), all[len(all)-1]
	}
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	return res, nil
}

// Percentile returns the q-quantile (0..1) of sorted durations, nearest rank.
func Percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}
