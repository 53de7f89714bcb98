package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/internal/clock"
)

// lockedBuffer is a log sink for concurrent handlers.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// lines decodes every JSON log line written so far.
func (l *lockedBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, s := range strings.Split(strings.TrimSpace(l.b.String()), "\n") {
		if s == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(s), &m); err != nil {
			t.Fatalf("log line %q: %v", s, err)
		}
		out = append(out, m)
	}
	return out
}

// accessLogFixture is an API's middleware around handlers that behave
// like the real routes: a token served from memory or refreshed, a read, a
// write, an error, a slow request.
type accessLogFixture struct {
	a    *API
	h    http.Handler
	logs *lockedBuffer
	clk  *clock.Fake
}

func newAccessLogFixture(t *testing.T, mode AccessLogMode) *accessLogFixture {
	t.Helper()
	f := &accessLogFixture{logs: &lockedBuffer{}, clk: clock.NewFake(time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC))}
	f.a = New(Deps{Logger: slog.New(slog.NewJSONHandler(f.logs, nil)), Clock: f.clk, AccessLog: AccessLog{Mode: mode}})
	t.Cleanup(f.a.Close)
	mux := http.NewServeMux()
	mux.Handle("POST /v1/credentials/{id}/token", f.a.handle(func(w http.ResponseWriter, r *http.Request) error {
		switch r.PathValue("id") {
		case "cred_refresh":
			markRefreshed(w)
		case "cred_gone":
			return authgate.Errorf(authgate.ClassReauthRequired, "reconnect")
		case "cred_slow":
			f.clk.Advance(2 * time.Second) // the handler took two seconds
			markServedFromMemory(w)
		case "cred_panic":
			panic("boom")
		default:
			markServedFromMemory(w)
		}
		_, err := w.Write([]byte(`{"access_token":"ya29.SECRET-TOKEN"}`))
		return err
	}))
	mux.HandleFunc("GET /v1/credentials", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{"credentials":[]}`)) })
	mux.HandleFunc("DELETE /v1/credentials/{id}", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.Handle("POST /v1/broken", f.a.handle(func(w http.ResponseWriter, r *http.Request) error { return errors.New("database is on fire") }))
	f.h = f.a.middleware(mux)
	return f
}

func (f *accessLogFixture) do(t *testing.T, method, path string) int {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(`{}`))
	req.Header.Set("Authorization", "Bearer ag_SECRET-KEY")
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req)
	if rec.Header().Get("X-Request-Id") == "" {
		t.Errorf("%s %s: no X-Request-Id", method, path)
	}
	return rec.Code
}

// byMsg returns the lines with msg, keyed by path (requests) or route
// (summaries).
func byMsg(lines []map[string]any, msg string) map[string][]map[string]any {
	out := map[string][]map[string]any{}
	for _, l := range lines {
		if l["msg"] != msg {
			continue
		}
		k, _ := l["path"].(string)
		if r, ok := l["route"].(string); ok {
			k = l["method"].(string) + " " + r
		}
		out[k] = append(out[k], l)
	}
	return out
}

func TestAccessLogSummaryCountsRoutineRequests(t *testing.T) {
	t.Parallel()
	f := newAccessLogFixture(t, "") // the default
	for range 500 {
		f.do(t, "POST", "/v1/credentials/cred_a/token")
	}
	for range 3 {
		f.do(t, "GET", "/v1/credentials")
	}
	f.do(t, "POST", "/v1/credentials/cred_refresh/token")
	if code := f.do(t, "POST", "/v1/credentials/cred_gone/token"); code != 409 {
		t.Fatalf("reauth_required answered %d", code)
	}
	f.do(t, "POST", "/v1/credentials/cred_slow/token")
	f.do(t, "DELETE", "/v1/credentials/cred_a")
	f.do(t, "POST", "/v1/broken")
	f.do(t, "POST", "/v1/credentials/cred_panic/token")
	f.do(t, "GET", "/v1/nothing")

	requests := byMsg(f.logs.lines(t), "http request")
	if n := len(requests["/v1/credentials/cred_a/token"]) + len(requests["/v1/credentials"]); n != 0 {
		t.Errorf("%d lines for tokens served from memory and reads; want 0 (counted in the summary)", n)
	}
	want := map[string]func(map[string]any) bool{
		"/v1/credentials/cred_refresh/token": func(l map[string]any) bool { return l["refreshed"] == true && l["status"] == 200.0 },
		"/v1/credentials/cred_gone/token":    func(l map[string]any) bool { return l["status"] == 409.0 },
		"/v1/credentials/cred_slow/token":    func(l map[string]any) bool { return l["slow"] == true && l["duration_ms"] == 2000.0 },
		"/v1/credentials/cred_a":             func(l map[string]any) bool { return l["status"] == 204.0 && l["method"] == "DELETE" },
		"/v1/broken":                         func(l map[string]any) bool { return l["status"] == 500.0 },
		"/v1/credentials/cred_panic/token":   func(l map[string]any) bool { return l["status"] == 500.0 },
		"/v1/nothing":                        func(l map[string]any) bool { return l["status"] == 404.0 },
	}
	for path, ok := range want {
		if ls := requests[path]; len(ls) != 1 || !ok(ls[0]) {
			t.Errorf("%s: lines %v; want one line of its own", path, ls)
		}
	}

	if s := byMsg(f.logs.lines(t), "http summary"); len(s) != 0 {
		t.Fatalf("summary written before its interval: %v", s)
	}
	f.clk.Advance(time.Minute)
	f.a.FlushAccessSummary()
	sum := byMsg(f.logs.lines(t), "http summary")
	if l := sum["POST /v1/credentials/{id}/token"]; len(l) != 1 || l[0]["requests"] != 500.0 || l[0]["status"] != 200.0 || l[0]["interval_s"] != 62.0 {
		t.Errorf("token summary %v; want one line counting 500 requests over 62 s (a minute, and the slow request's two seconds)", l)
	}
	if l := sum["GET /v1/credentials"]; len(l) != 1 || l[0]["requests"] != 3.0 {
		t.Errorf("read summary %v; want 3 requests", l)
	}
	if len(sum) != 2 {
		t.Errorf("summary lines for %d routes; want 2: %v", len(sum), sum)
	}
	// A flush with nothing new writes nothing.
	before := len(f.logs.lines(t))
	f.a.FlushAccessSummary()
	if after := len(f.logs.lines(t)); after != before {
		t.Errorf("an empty interval wrote %d lines", after-before)
	}
	assertNoSecrets(t, f.logs)
}

func TestAccessLogFullWritesEveryRequest(t *testing.T) {
	t.Parallel()
	f := newAccessLogFixture(t, AccessLogFull)
	for range 20 {
		f.do(t, "POST", "/v1/credentials/cred_a/token")
	}
	f.do(t, "GET", "/v1/credentials")
	f.a.FlushAccessSummary()
	lines := f.logs.lines(t)
	requests := byMsg(lines, "http request")
	if n := len(requests["/v1/credentials/cred_a/token"]); n != 20 {
		t.Errorf("%d lines for 20 token requests; want 20", n)
	}
	if n := len(requests["/v1/credentials"]); n != 1 {
		t.Errorf("%d lines for one read", n)
	}
	if s := byMsg(lines, "http summary"); len(s) != 0 {
		t.Errorf("full mode wrote summaries: %v", s)
	}
	assertNoSecrets(t, f.logs)
}

// TestAccessLogSummaryConcurrent counts exactly under concurrency (run
// with -race).
func TestAccessLogSummaryConcurrent(t *testing.T) {
	t.Parallel()
	f := newAccessLogFixture(t, AccessLogSummary)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				f.do(t, "POST", "/v1/credentials/cred_a/token")
			}
		})
	}
	wg.Go(func() {
		for range 10 {
			f.a.FlushAccessSummary()
		}
	})
	wg.Wait()
	f.a.FlushAccessSummary()
	total := 0.0
	for _, l := range byMsg(f.logs.lines(t), "http summary")["POST /v1/credentials/{id}/token"] {
		total += l["requests"].(float64)
	}
	if total != 800 {
		t.Errorf("summaries count %v requests; want 800", total)
	}
}

func assertNoSecrets(t *testing.T, logs *lockedBuffer) {
	t.Helper()
	logs.mu.Lock()
	defer logs.mu.Unlock()
	for _, s := range []string{"SECRET-TOKEN", "SECRET-KEY"} {
		if strings.Contains(logs.b.String(), s) {
			t.Errorf("the access log contains %s", s)
		}
	}
}

func TestParseAccessLogMode(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]AccessLogMode{"": AccessLogSummary, "summary": AccessLogSummary, "FULL": AccessLogFull, "full": AccessLogFull} {
		if got, err := ParseAccessLogMode(in); err != nil || got != want {
			t.Errorf("ParseAccessLogMode(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ParseAccessLogMode("sampled"); err == nil || !strings.Contains(err.Error(), "want summary or full") {
		t.Errorf("ParseAccessLogMode(sampled): %v", err)
	}
}
