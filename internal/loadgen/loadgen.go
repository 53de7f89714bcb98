// Package loadgen drives an HTTP endpoint with N concurrent keep-alive
// connections and reports throughput and latency percentiles, the way wrk
// does: each connection writes a prepared HTTP/1.1 request and reads the
// answer, so the client costs a few microseconds per request and what is
// measured is the server. `authgate bench` runs it in its own process
// against servers in other processes.
//
// It owns load generation only: it knows nothing about authgate's routes,
// and it never sleeps to pace requests (each connection sends its next
// request as soon as the previous answer is read). A run always ends by
// itself: it stops after Requests answers or after Duration, whichever comes
// first. It speaks just enough HTTP/1.1 for servers it is pointed at on
// loopback (Content-Length and chunked bodies, keep-alive, Connection:
// close); it is not a general client.
package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Config bounds one run. Requests or Duration must be set.
type Config struct {
	// Concurrency is the number of connections, each with one request in
	// flight at a time (default 1).
	Concurrency int
	// Requests stops the run after this many requests in total (0: no bound).
	Requests int
	// Duration stops the run after this long (0: no bound).
	Duration time.Duration
	// Warmup requests per connection are sent first and not measured (they
	// open the connections).
	Warmup int
}

// Target is what a run sends: every request goes to Addr, and Append
// writes the i-th one (i counts from 0 across all connections) as raw
// HTTP/1.1 bytes. Build targets with JSONPost.
type Target struct {
	Addr   string
	Append func(b []byte, i int) []byte
	err    error
}

// JSONPost returns a target that POSTs body with a bearer key to base+path,
// cycling through paths (one request per path in turn); with no paths it
// posts to base itself.
func JSONPost(base, key string, body []byte, paths ...string) Target {
	u, err := url.Parse(base)
	if err != nil {
		return Target{err: err}
	}
	if u.Scheme != "http" || u.Host == "" {
		return Target{err: fmt.Errorf("loadgen: %q: want http://host:port/…", base)}
	}
	prefix := u.EscapedPath()
	if len(paths) == 0 {
		paths = []string{""}
	}
	if prefix == "" && paths[0] == "" {
		prefix = "/"
	}
	// Everything but the request line is the same for every request.
	tail := []byte(" HTTP/1.1\r\nHost: " + u.Host + "\r\nAuthorization: Bearer " + key +
		"\r\nContent-Type: application/json\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n")
	tail = append(tail, body...)
	return Target{Addr: u.Host, Append: func(b []byte, i int) []byte {
		b = append(b, "POST "...)
		b = append(b, prefix...)
		b = append(b, paths[i%len(paths)]...)
		return append(b, tail...)
	}}
}

// Result is what one run measured.
type Result struct {
	Concurrency int
	Requests    int           // answered requests (any status)
	Errors      int           // transport errors and non-2xx answers
	FirstError  string        // the first of them, for the report
	Elapsed     time.Duration // wall time of the measured part
	P50, P99    time.Duration
	Max         time.Duration
	// BodyBytes is the size of the last answer's body.
	BodyBytes int
	// Latencies holds every measured request's latency, sorted (for
	// pooling several runs into one percentile).
	Latencies []time.Duration
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

// Merge pools several runs at one concurrency into one result: requests
// and time add up, percentiles come from every latency together.
func Merge(rs ...Result) Result {
	var m Result
	var all [][]time.Duration
	for _, r := range rs {
		m.Concurrency = r.Concurrency
		m.Requests += r.Requests
		m.Errors += r.Errors
		m.Elapsed += r.Elapsed
		if m.FirstError == "" {
			m.FirstError = r.FirstError
		}
		m.BodyBytes = r.BodyBytes
		all = append(all, r.Latencies)
	}
	m.Latencies = slices.Concat(all...)
	slices.Sort(m.Latencies)
	m.P50, m.P99 = Percentile(m.Latencies, 0.50), Percentile(m.Latencies, 0.99)
	if n := len(m.Latencies); n > 0 {
		m.Max = m.Latencies[n-1]
	}
	return m
}

// conn is one keep-alive connection and its reusable buffers.
type conn struct {
	addr string
	mu   sync.Mutex // guards c against the end-of-run deadline
	c    net.Conn
	r    *bufio.Reader
	req  []byte
	body int // size of the last answer's body
}

// errClosed says the server closed the connection after the answer
// (Connection: close); the next request dials again.
var errClosed = errors.New("connection closed by the server")

// do sends one request and reads its answer, dialling when needed.
func (c *conn) do(ctx context.Context, t Target, i int) (status int, err error) {
	if c.c == nil {
		var d net.Dialer
		nc, err := d.DialContext(ctx, "tcp", c.addr)
		if err != nil {
			return 0, err
		}
		c.mu.Lock()
		c.c = nc
		c.mu.Unlock()
		c.r = bufio.NewReaderSize(nc, 16<<10)
	}
	c.req = t.Append(c.req[:0], i)
	if _, err := c.c.Write(c.req); err != nil {
		c.close()
		return 0, err
	}
	status, err = c.readResponse()
	if err != nil {
		c.close()
		if errors.Is(err, errClosed) {
			return status, nil
		}
		return status, err
	}
	return status, nil
}

func (c *conn) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.c != nil {
		c.c.Close()
		c.c = nil
	}
}

// interrupt makes a blocked read or write return at once.
func (c *conn) interrupt() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.c != nil {
		_ = c.c.SetDeadline(time.Unix(1, 0))
	}
}

// readResponse reads one answer: status line, headers, body.
func (c *conn) readResponse() (int, error) {
	line, err := c.r.ReadSlice('\n')
	if err != nil {
		return 0, err
	}
	// "HTTP/1.1 200 OK\r\n"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, fmt.Errorf("malformed status line %q", bytes.TrimSpace(line))
	}
	status, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, fmt.Errorf("malformed status line %q", bytes.TrimSpace(line))
	}
	length, chunked, closing := -1, false, false
	for {
		line, err := c.r.ReadSlice('\n')
		if err != nil {
			return status, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		value = bytes.TrimSpace(value)
		switch {
		case asciiEqualFold(name, "Content-Length"):
			if length, err = strconv.Atoi(string(value)); err != nil {
				return status, fmt.Errorf("malformed Content-Length %q", value)
			}
		case asciiEqualFold(name, "Transfer-Encoding"):
			chunked = asciiEqualFold(value, "chunked")
		case asciiEqualFold(name, "Connection"):
			closing = asciiEqualFold(value, "close")
		}
	}
	switch {
	case chunked:
		n, err := c.readChunked()
		if err != nil {
			return status, err
		}
		c.body = n
	case length >= 0:
		if _, err := c.r.Discard(length); err != nil {
			return status, err
		}
		c.body = length
	case status == 204 || status == 304 || status/100 == 1:
		c.body = 0
	default: // the body runs to the end of the connection
		n, err := io.Copy(io.Discard, c.r)
		if err != nil {
			return status, err
		}
		c.body = int(n)
		return status, errClosed
	}
	if closing {
		return status, errClosed
	}
	return status, nil
}

func (c *conn) readChunked() (int, error) {
	total := 0
	for {
		line, err := c.r.ReadSlice('\n')
		if err != nil {
			return total, err
		}
		size, _, _ := bytes.Cut(bytes.TrimRight(line, "\r\n"), []byte(";"))
		n, err := strconv.ParseInt(string(size), 16, 32)
		if err != nil {
			return total, fmt.Errorf("malformed chunk size %q", size)
		}
		if n == 0 {
			// Trailers, then the empty line.
			for {
				line, err := c.r.ReadSlice('\n')
				if err != nil {
					return total, err
				}
				if len(bytes.TrimRight(line, "\r\n")) == 0 {
					return total, nil
				}
			}
		}
		if _, err := c.r.Discard(int(n) + 2); err != nil {
			return total, err
		}
		total += int(n)
	}
}

func asciiEqualFold(b []byte, s string) bool {
	return len(b) == len(s) && strings.EqualFold(string(b), s)
}

// Run sends t's requests until cfg's bounds.
func Run(ctx context.Context, cfg Config, t Target) (Result, error) {
	if t.err != nil {
		return Result{}, t.err
	}
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
	// do returns the latency of one answered request.
	do := func(ctx context.Context, c *conn, i int) (time.Duration, bool) {
		start := time.Now()
		status, err := c.do(ctx, t, i)
		d := time.Since(start)
		switch {
		case err != nil && ctx.Err() != nil:
			return 0, false // the run ended mid-request
		case err != nil:
			fail(err.Error())
			return 0, false
		case status/100 != 2:
			fail("status " + strconv.Itoa(status))
		}
		return d, true
	}

	conns := make([]*conn, cfg.Concurrency)
	for i := range conns {
		conns[i] = &conn{addr: t.Addr}
	}
	defer func() {
		for _, c := range conns {
			c.close()
		}
	}()
	// Warm-up: open every connection before the clock starts.
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Go(func() {
			for range cfg.Warmup {
				do(ctx, c, 0)
			}
		})
	}
	wg.Wait()
	res.Errors, res.FirstError = 0, ""

	runCtx := ctx
	if cfg.Duration > 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeout(ctx, cfg.Duration)
		defer cancel()
	}
	// A connection blocked in a read when the run ends is unblocked by
	// closing it.
	stop := context.AfterFunc(runCtx, func() {
		for _, c := range conns {
			c.interrupt()
		}
	})
	defer stop()
	var next atomic.Int64
	lat := make([][]time.Duration, cfg.Concurrency)
	start := time.Now()
	for ci, c := range conns {
		wg.Go(func() {
			for runCtx.Err() == nil {
				i := int(next.Add(1) - 1)
				if cfg.Requests > 0 && i >= cfg.Requests {
					return
				}
				if d, ok := do(runCtx, c, i); ok {
					lat[ci] = append(lat[ci], d)
				}
			}
		})
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	for _, c := range conns {
		res.BodyBytes = max(res.BodyBytes, c.body)
	}
	res.Latencies = slices.Concat(lat...)
	slices.Sort(res.Latencies)
	res.Requests = len(res.Latencies)
	if res.Requests > 0 {
		res.P50, res.P99, res.Max = Percentile(res.Latencies, 0.50), Percentile(res.Latencies, 0.99), res.Latencies[res.Requests-1]
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

// ProcessCPU returns the CPU time (user + system) process pid has used so
// far, from /proc (Linux); elsewhere it returns an error.
func ProcessCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; fields count from after
	// its closing parenthesis. utime and stime are fields 14 and 15.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("loadgen: malformed /proc stat")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("loadgen: malformed /proc stat")
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("loadgen: malformed /proc stat")
	}
	// Linux reports clock ticks of 1/100 s (USER_HZ) on every architecture
	// Go supports.
	return time.Duration(ut+st) * 10 * time.Millisecond, nil
}
