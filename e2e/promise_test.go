package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"sync"
	"testing"
	"time"
)

// Promises on a provider that revokes the previous access token (issue 16,
// item 2): several `authgate serve` processes on one database, 40 workers
// asking the rotating sandbox `oidc` (which kills the old access token on
// every refresh) for windows of a few seconds, each using its token at the
// provider's protected resource at 90 % of what it was promised. No token
// may be refused before its promised time, at most 5 % of answers may say
// min_valid_met false, the provider must see no refresh-token reuse, and the
// credential must end active.
//
// One worker in twenty says it can wait at most a second (max_wait_seconds):
// the 5 % bound would hold even if every one of its answers said
// min_valid_met false, so it checks everyone else.
//
// The default run is short (6 s tokens, 1–2 s windows, 10 s); with
// AUTHGATE_TEST_PROMISES=full (set by .ci/run) it is the issue's: 20 s
// tokens, 3–8 s windows, 60 s.

type promiseRun struct {
	duration           time.Duration
	ttl                int // access-token lifetime at the provider, seconds
	minWindow, maxWind int // min_valid_seconds range
}

const promiseWorkers = 40

func promiseLength() promiseRun {
	if os.Getenv("AUTHGATE_TEST_PROMISES") == "full" {
		return promiseRun{duration: time.Minute, ttl: 20, minWindow: 3, maxWind: 8}
	}
	return promiseRun{duration: 10 * time.Second, ttl: 6, minWindow: 1, maxWind: 2}
}

func TestPromisesHoldSQLite(t *testing.T) {
	promisesHold(t, 2, t.TempDir())
}

func TestPromisesHoldPostgres(t *testing.T) {
	if os.Getenv("AUTHGATE_TEST_POSTGRES") == "" {
		t.Skip("AUTHGATE_TEST_POSTGRES is unset: set it (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable) to run the promise test on PostgreSQL")
	}
	promisesHold(t, 3, t.TempDir(), "AUTHGATE_DB="+postgresSchema(t), pgMasterKeys)
}

// promiseStats is what the workers saw.
type promiseStats struct {
	mu        sync.Mutex
	answers   int
	notMet    int
	statuses  map[int]int
	problems  map[string]int
	uses      int
	refused   int // the provider answered 401 before the promised time
	refusedAt []string
	latencies []time.Duration // every answered token request
}

func promisesHold(t *testing.T, processes int, dir string, env ...string) {
	run := promiseLength()
	sb := startSandbox(t)
	env = append(env, "AUTHGATE_SANDBOX_URL="+sb, "AUTHGATE_LOG_LEVEL=warn")
	procs := []*proc{serve(t, dir, env...)}
	for range processes - 1 {
		procs = append(procs, serve(t, dir, env...))
	}
	key := procs[0].AdminKey
	hc := &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: promiseWorkers}}
	cred := connectOIDCTTL(t, hc, procs[0], sb, "promise@acme.example", run.ttl)
	if r := call(t, hc, "DELETE", sb+"/sandbox/admin/counters", "", ""); r.status != 204 {
		t.Fatalf("reset sandbox counters: %d %s", r.status, r.body)
	}

	st := &promiseStats{statuses: map[int]int{}, problems: map[string]int{}}
	ctx, cancel := context.WithTimeout(context.Background(), run.duration)
	defer cancel()
	var wg sync.WaitGroup
	for w := range promiseWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			promiseWorker(ctx, hc, procs, sb, key, cred, run, uint64(w), st)
		}()
	}
	wg.Wait()

	var counters map[string]struct {
		Refreshes     int `json:"refreshes"`
		ReuseDetected int `json:"reuse_detected"`
	}
	r := call(t, hc, "GET", sb+"/sandbox/admin/counters", "", "")
	if err := json.Unmarshal([]byte(r.body), &counters); err != nil {
		t.Fatalf("sandbox counters %d %s: %v", r.status, r.body, err)
	}
	oidc := counters["oidc"]
	st.mu.Lock()
	defer st.mu.Unlock()
	lat := slices.Clone(st.latencies)
	slices.Sort(lat)
	pct := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(p*float64(len(lat))))]
	}
	waited := 0
	for _, d := range lat {
		if d > 100*time.Millisecond {
			waited++
		}
	}
	t.Logf("promises: %v, %d processes, %d workers, one credential, %d s tokens, windows %d–%d s", run.duration, processes, promiseWorkers, run.ttl, run.minWindow, run.maxWind)
	t.Logf("promises: %d answers (%v), problems %v; %d min_valid_met false (%.1f %%)", st.answers, sortedCounts(st.statuses), st.problems, st.notMet, 100*float64(st.notMet)/float64(max(st.answers, 1)))
	t.Logf("promises: %d uses at the provider at 90 %% of the promise, %d refused", st.uses, st.refused)
	t.Logf("promises: token request time p50 %v, p90 %v, p99 %v, max %v; %d (%.1f %%) took over 100 ms (waited for a planned refresh)",
		pct(0.50).Round(time.Millisecond), pct(0.90).Round(time.Millisecond), pct(0.99).Round(time.Millisecond), pct(1).Round(time.Millisecond), waited, 100*float64(waited)/float64(max(len(lat), 1)))
	t.Logf("promises: provider saw %d refreshes, %d reuse detections", oidc.Refreshes, oidc.ReuseDetected)

	if st.answers == 0 || oidc.Refreshes < 2 {
		t.Errorf("%d answers and %d refreshes; want answers and at least two refreshes", st.answers, oidc.Refreshes)
	}
	if st.refused != 0 {
		t.Errorf("%d tokens refused by the provider before their promised time; want 0 (first: %v)", st.refused, st.refusedAt[:min(5, len(st.refusedAt))])
	}
	if st.notMet*20 > st.answers {
		t.Errorf("%d of %d answers min_valid_met false; want at most 5 %%", st.notMet, st.answers)
	}
	if ok := st.statuses[200]; ok != st.answers {
		t.Errorf("%d of %d token requests failed: %v %v", st.answers-ok, st.answers, sortedCounts(st.statuses), st.problems)
	}
	if oidc.ReuseDetected != 0 {
		t.Errorf("the provider detected %d refresh-token reuses; want 0", oidc.ReuseDetected)
	}
	got := call(t, hc, "GET", procs[len(procs)-1].URL+"/v1/credentials/"+cred, key, "")
	var c struct {
		Status string `json:"status"`
	}
	if err := json.Unmarshal([]byte(got.body), &c); err != nil || c.Status != "active" {
		t.Errorf("credential after the run: %d %s; want active", got.status, got.body)
	}
}

// promiseWorker asks a random process for a token with a random window,
// then uses it at the provider once 90 % of what it was promised has passed
// (the window, or with min_valid_met false the time the answer said the token
// has), and again, until ctx ends. A use that is due is made even after ctx
// ends: the promise was given.
func promiseWorker(ctx context.Context, hc *http.Client, procs []*proc, sb, key, cred string, run promiseRun, seed uint64, st *promiseStats) {
	rng := rand.New(rand.NewPCG(seed, 16))
	for ctx.Err() == nil {
		p := procs[rng.IntN(len(procs))]
		w := run.minWindow + rng.IntN(run.maxWind-run.minWindow+1)
		body := fmt.Sprintf(`{"min_valid_seconds":%d}`, w)
		if seed%20 == 19 {
			// One worker in twenty cannot wait a second: when a planned refresh
			// would make it wait longer it gets the current token with the
			// time it really has (min_valid_met false), and must be able to
			// use it at 90 % of that.
			body = fmt.Sprintf(`{"min_valid_seconds":%d,"max_wait_seconds":1}`, w)
		}
		start := time.Now()
		status, raw, err := post(ctx, hc, p.URL+"/v1/credentials/"+cred+"/token", key, body)
		received := time.Now()
		if err != nil {
			return // ctx ended mid-request
		}
		var out struct {
			AccessToken string    `json:"access_token"`
			ExpiresAt   time.Time `json:"expires_at"`
			MinValidMet bool      `json:"min_valid_met"`
			Type        string    `json:"type"`
			Detail      string    `json:"detail"`
		}
		_ = json.Unmarshal(raw, &out)
		st.mu.Lock()
		st.answers++
		st.statuses[status]++
		st.latencies = append(st.latencies, received.Sub(start))
		if status != 200 {
			st.problems[out.Type+": "+out.Detail]++
		} else if !out.MinValidMet {
			st.notMet++
		}
		st.mu.Unlock()
		if status != 200 {
			continue
		}
		promise := time.Duration(w) * time.Second
		if !out.MinValidMet {
			promise = out.ExpiresAt.Sub(received)
		}
		use := received.Add(promise * 9 / 10)
		timer := time.NewTimer(time.Until(use))
		<-timer.C // the worker's work: the token is used when it is due
		code, _, err := get(context.Background(), hc, sb+"/sandbox/oidc/api/me", out.AccessToken)
		if err != nil {
			continue
		}
		st.mu.Lock()
		st.uses++
		if code == http.StatusUnauthorized {
			st.refused++
			st.refusedAt = append(st.refusedAt, fmt.Sprintf("window %d s via %s (min_valid_met %v, promised %v, answered in %v at %s), used %v after the answer",
				w, p.URL, out.MinValidMet, promise.Round(time.Millisecond), received.Sub(start).Round(time.Millisecond), received.Format("15:04:05.000"), time.Since(received).Round(time.Millisecond)))
		}
		st.mu.Unlock()
	}
}
