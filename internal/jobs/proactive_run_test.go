package jobs_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riversqlite"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/internal/catalog"
	"github.com/authgate/authgate/internal/clock"
	"github.com/authgate/authgate/internal/jobs"
	"github.com/authgate/authgate/internal/keyring"
	"github.com/authgate/authgate/internal/refresh"
	"github.com/authgate/authgate/internal/secret"
	"github.com/authgate/authgate/internal/storage"
	"github.com/authgate/authgate/internal/storage/sqlitestore"
	"github.com/authgate/authgate/internal/vault"
	"github.com/authgate/authgate/sandbox"
)

// TestProactiveRefreshRun executes the proactive refreshes that
// TestProactiveRefreshPlan only schedules: credentials bound to running
// runs, holding real grants the sandbox issued (Google and the generic
// rotating OIDC server), their access tokens expiring evenly over one fake
// hour; River on the SQLite file works the plan and refresh jobs by fake
// time, and the real refresher refreshes over loopback HTTP against the
// sandbox, which runs on the same fake clock. It asserts, for every
// credential, that each token was refreshed before it entered the safety
// window and at most once (never earlier than the refresher's own
// threshold, so a second refresh of one token cannot hide), that no job
// ran before its scheduled time, that no provider was sent refreshes closer
// than 1/rate, that the sandbox saw exactly the refreshes authgate
// recorded, that the token each credential holds at the end is live at the
// provider, and that the heap stays within a bound of its early size.
//
// It lives here rather than on authgatetest or e2e: `serve` starts its own
// River client on the wall clock (server.Open), which would run the fake
// hour's jobs at once; so the test composes the same parts serve does
// (store, vault, catalog, refresher, queue, planner — server/jobs.go's
// wiring) with the fake clock given to every one, the way the other tests
// of this package build what they need.
//
// River's JobScheduler, which turns a due 'scheduled' job into an
// 'available' one, ticks every 5 s of wall time and that interval is not
// configurable; the test runs the same driver query (Executor.JobSchedule)
// at each fake step instead of waiting for it. Everything else — fetching
// by fake time, working, completing — is River's own. The job ports are
// wrapped only to record which jobs have been worked at each fake time.
//
// Sizes: 300 credentials by default (about 10 s; 40 s with -race), 600 with
// AUTHGATE_TEST_SCALE=1 (CI: under a minute with -race), and 100,000 with
// AUTHGATE_TEST_PROACTIVE=100k (or any number ≥ 2): the README's figures
// come from that run, without the race detector.
func TestProactiveRefreshRun(t *testing.T) {
	t.Parallel()
	n := 300
	if os.Getenv("AUTHGATE_TEST_SCALE") != "" {
		n = 600
	}
	switch v := os.Getenv("AUTHGATE_TEST_PROACTIVE"); v {
	case "":
	case "100k":
		n = 100_000
	default:
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 2 {
			t.Fatalf("AUTHGATE_TEST_PROACTIVE=%q: want 100k or a number ≥ 2", v)
		}
	}
	// Up to this size every job runs at exactly its scheduled time (the
	// clock steps from one due job to the next); beyond it the clock moves
	// at least a second per step, and the jobs due within it run together
	// at its end. Under the race detector every step costs 100–200 ms of
	// wall time, so the clock stops only at the plan passes, every 30 s:
	// a refresh then runs up to 30 s after its planned time, well inside
	// its 4 min lead.
	quantum := time.Duration(0)
	switch {
	case raceDetector:
		quantum = jobs.PlanInterval
	case n > 5000:
		quantum = time.Second
	}
	f := newRunFixture(t, n)
	f.run(t, quantum)
	f.check(t, quantum)
}

const (
	// tokenTTL is the sandbox's access-token lifetime here (the providers'
	// own is about an hour): tokens minted over the hour before the run
	// then expire evenly over the run's hour; a token refreshed in its
	// first minutes is refreshed again in its last ones.
	tokenTTL = 75 * time.Minute
	// runRate is the planner's refreshes per second per provider: 100,000
	// credentials over one hour on two providers need about 14 per second
	// each, more than the default 10 (see the README).
	runRate = 20.0
	// lead is the first token's expiry after the run starts.
	lead = 10 * time.Minute
)

var (
	runProviders = []string{"google", "oidc"}
	// runT0 lies ahead of the wall clock on purpose: River's rescuer and
	// job cleaner reckon their horizons by the wall clock even when its
	// time is stubbed, so a fake hour in the past would have every running
	// job taken as stuck and every finished one deleted at once.
	runT0 = time.Date(2036, 12, 1, 9, 0, 0, 0, time.UTC)
)

type runFixture struct {
	ctx     context.Context
	n       int
	clock   *clock.Fake
	store   *sqlitestore.Store
	vault   *vault.Vault
	sandbox *sandbox.Sandbox
	queue   *jobs.Queue
	planner *jobs.Planner
	pool    *sql.DB
	exec    riverdriver.Executor
	// The step's queries, prepared once: parsing them on every poll cost
	// more than River's work under the race detector.
	nextDue, dueCounts, running *sql.Stmt
	tenant                      authgate.TenantID
	creds                       []authgate.Credential // as imported
	provider                    map[authgate.CredentialID]string
	end                         time.Time // the run's end: the last imported token's expiry

	// Calls the job ports finished at the current fake time, by job kind
	// and credential, and the errors they returned.
	mu       sync.Mutex
	worked   map[workKey]int
	errs     []error
	workDone chan struct{}

	heap       []uint64 // HeapAlloc after GC, once a fake minute
	heapFirst  int      // index of the sample taken as the baseline
	steps      int
	wallRun    time.Duration
	wallSetup  time.Duration
	mintedWall time.Duration
}

func newRunFixture(t *testing.T, n int) *runFixture {
	ctx := context.Background()
	wall := time.Now()
	f := &runFixture{ctx: ctx, n: n, clock: clock.NewFake(runT0.Add(lead - tokenTTL)), provider: map[authgate.CredentialID]string{},
		worked: map[workKey]int{}, workDone: make(chan struct{}, 1), end: runT0.Add(lead + time.Hour)}
	s, err := sqlitestore.Open(ctx, filepath.Join(t.TempDir(), "authgate.db"), sqlitestore.WithClock(f.clock))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	f.store = s
	kr, err := keyring.New(keyring.Generate("k1"))
	if err != nil {
		t.Fatal(err)
	}
	f.vault = vault.New(s, keyring.Static(kr), f.clock)

	f.sandbox = sandbox.New(sandbox.Options{Clock: f.clock, Seed: 1, GoogleAccessTTL: tokenTTL, OIDCAccessTTL: tokenTTL})
	hs := httptest.NewServer(f.sandbox.Handler()) // 127.0.0.1
	t.Cleanup(hs.Close)
	var providers catalog.Holder
	o := catalog.Options{SandboxBase: hs.URL, SandboxClients: map[string]catalog.Credentials{}}
	for _, name := range sandbox.ProviderNames {
		if id, sec, ok := sandbox.DefaultCredentials(name); ok {
			o.SandboxClients[name] = catalog.Credentials{ClientID: id, ClientSecret: sec}
		}
	}
	cat, err := catalog.Load(o)
	if err != nil {
		t.Fatal(err)
	}
	providers.Set(cat)

	f.tenant = authgate.NewTenantID()
	if err := s.TenantInsert(ctx, storage.Tenant{ID: f.tenant, Name: "acme", CreatedAt: f.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	f.mint(t, hs.URL)
	f.mintedWall = time.Since(wall)

	// The refresher, queue and planner as serve wires them (server/jobs.go),
	// every one on the fake clock.
	rf := refresh.New(refresh.Config{Store: s, Vault: f.vault, Providers: &providers, Clock: f.clock})
	rf.Start()
	t.Cleanup(func() { rf.Close(context.Background()) })
	deps := &jobs.Deps{}
	// PollInterval: River looks for due jobs this often in wall time, so
	// each fake step waits about this long (and so does the test between
	// looks at River's table). PlanInterval: River's periodic
	// enqueuer waits in wall time, and a plan it started while the test
	// moves the clock would schedule from a time already past; so the test
	// inserts the plan jobs itself, every jobs.PlanInterval of fake time,
	// and River's own periodic plan runs only once, at start.
	f.queue, err = jobs.Open(s, jobs.Config{Work: true, Deps: deps, Clock: f.clock, PollInterval: riverPoll, PlanInterval: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	f.planner = &jobs.Planner{Store: s, Queue: f.queue, Clock: f.clock, Tokens: rf, Rate: func(string) float64 { return runRate }}
	deps.Plan = func(ctx context.Context) error { return f.work("plan", "", f.planner.Plan(ctx)) }
	deps.Refresh = func(ctx context.Context, tenant authgate.TenantID, id authgate.CredentialID) error {
		return f.work("proactive_refresh", id, f.planner.Refresh(ctx, tenant, id))
	}
	deps.Check = func(ctx context.Context, tenant authgate.TenantID, id authgate.CredentialID) error {
		return f.work("health_check", id, f.planner.Check(ctx, tenant, id))
	}
	f.pool, err = s.JobPool()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.pool.Close() })
	f.exec = riversqlite.New(f.pool).GetExecutor()
	f.prepare(t)
	if err := f.queue.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		f.queue.Close(cctx)
	})
	// River's start-up plan job is inserted once the client leads; the
	// run starts after it, so that it runs in the first step.
	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	poll := time.NewTicker(riverPoll) // River's table is the only news of its inserts
	defer poll.Stop()
	for {
		var plans int
		if err := f.pool.QueryRowContext(ctx, `SELECT count(*) FROM river_job WHERE kind = 'plan'`).Scan(&plans); err != nil {
			t.Fatal(err)
		}
		if plans > 0 {
			break
		}
		select {
		case <-poll.C:
		case <-deadline.C:
			t.Fatal("River inserted no start-up plan job in 30 s")
		}
	}
	f.wallSetup = time.Since(wall)
	return f
}

// workKey is one port call: its job's kind, its credential (none for a
// plan) and the fake time it ran at (the clock stands still while the jobs
// due are worked).
type workKey struct {
	kind string
	id   authgate.CredentialID
	at   int64 // unix ms, as River stores it
}

// work wraps a job port: it records the call (the records tell the test
// when every job River fetched has been worked) and keeps its error.
func (f *runFixture) work(kind string, id authgate.CredentialID, err error) error {
	f.mu.Lock()
	f.worked[workKey{kind, id, f.clock.Now().Round(time.Millisecond).UnixMilli()}]++
	if err != nil {
		f.errs = append(f.errs, err)
	}
	f.mu.Unlock()
	select {
	case f.workDone <- struct{}{}:
	default:
	}
	return err
}

// mint obtains real tokens from the sandbox for each credential — consent
// preset, authorization request, code exchange over HTTP — with the fake
// clock walked through the hour before the run, so that credential i's
// token expires at runT0 + lead + i·hour/n. Each is stored within a fake
// second of its exchange, as a connect would store it (imported in batches
// of one fake second: the refresher reckons a token's lifetime from when it
// was stored, refresh/cache.go newSnapshot, so a token stored long after
// its issue looks short-lived — see the README); at runT0 each is bound to
// a running run.
func (f *runFixture) mint(t *testing.T, base string) {
	ctx := f.ctx
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	var batch []vault.ImportParams
	var batchStart time.Time
	flush := func() {
		if len(batch) == 0 {
			return
		}
		creds, err := f.vault.ImportBatch(ctx, batch)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range creds {
			f.provider[c.ID] = c.Provider
		}
		f.creds = append(f.creds, creds...)
		batch = batch[:0]
	}
	for i := range f.n {
		prov := runProviders[i%len(runProviders)]
		f.clock.Set(runT0.Add(lead + time.Duration(i)*time.Hour/time.Duration(f.n) - tokenTTL))
		if len(batch) > 0 && (len(batch) == 2000 || f.clock.Now().Sub(batchStart) >= time.Second) {
			flush()
		}
		if len(batch) == 0 {
			batchStart = f.clock.Now()
		}
		account := fmt.Sprintf("user%06d@acme.example", i)
		tok := mintTokens(t, hc, f.sandbox, base, prov, account)
		batch = append(batch, vault.ImportParams{TenantID: f.tenant, UserID: fmt.Sprintf("user%06d", i), Provider: prov, Subject: "sub-" + account, Email: account,
			Scopes: strings.Fields(tok.Scope), AccessToken: secret.New(tok.AccessToken), RefreshToken: secret.New(tok.RefreshToken),
			ExpiresAt: f.clock.Now().Add(time.Duration(tok.ExpiresIn) * time.Second), Actor: "test"})
	}
	flush()
	f.clock.Set(runT0)
	for start := 0; start < f.n; start += 2000 {
		err := f.store.Tx(ctx, func(q storage.Queries) error {
			for _, c := range f.creds[start:min(start+2000, f.n)] {
				r := &storage.Run{ID: authgate.NewRunID(), TenantID: f.tenant, UserID: c.UserID, Workflow: "w", Bindings: map[string]authgate.CredentialID{"b": c.ID},
					State: authgate.RunStateRunning, CreatedAt: runT0, UpdatedAt: runT0, Version: 1}
				if err := q.RunInsert(ctx, r); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	f.sandbox.ResetCounters()
}

type mintedTokens struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	ExpiresIn    int    `json:"expires_in"`
	Scope        string `json:"scope"`
}

func mintTokens(t *testing.T, hc *http.Client, sb *sandbox.Sandbox, base, provider, account string) mintedTokens {
	if err := sb.SetConsent(provider, sandbox.Consent{Account: account}); err != nil {
		t.Fatal(err)
	}
	c, _ := sb.DefaultClient(provider)
	auth, tokenURL, scope := base+"/sandbox/google/o/oauth2/v2/auth", base+"/sandbox/google/token", "openid email"
	if provider == "oidc" {
		auth, tokenURL, scope = base+"/sandbox/oidc/oauth2/auth", base+"/sandbox/oidc/oauth2/token", "openid offline_access"
	}
	q := url.Values{"client_id": {c.ClientID}, "redirect_uri": {"http://127.0.0.1:9/cb"}, "response_type": {"code"}, "scope": {scope},
		"state": {"state-0123456789"}, "access_type": {"offline"}}
	loc, err := sandbox.CompleteConsent(context.Background(), hc, auth+"?"+q.Encode(), sandbox.Choice{})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := hc.PostForm(tokenURL, url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")}, "redirect_uri": {"http://127.0.0.1:9/cb"},
		"client_id": {c.ClientID}, "client_secret": {c.ClientSecret}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok mintedTokens
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || tok.RefreshToken == "" || tok.ExpiresIn <= 0 {
		t.Fatalf("%s tokens for %s: status %d, %v", provider, account, resp.StatusCode, err)
	}
	return tok
}

// riverTime is how riversqlite stores a time.
func riverTime(t time.Time) string {
	return t.UTC().Round(time.Millisecond).Format("2006-01-02 15:04:05.000")
}

// The plan, refresh and check jobs are all on the refresh queue; the
// queries below name it and the default priority so that River's fetch
// index (state, queue, priority, scheduled_at, id) answers them without a
// scan of the table.
const onRefreshQueue = `queue = 'refresh' AND priority = 1`

// riverPoll is how often River looks for due jobs, in wall time.
const riverPoll = 5 * time.Millisecond

func (f *runFixture) prepare(t *testing.T) {
	for _, q := range []struct {
		stmt **sql.Stmt
		sql  string
	}{
		// River's own scheduler makes jobs 'available' up to 5 s ahead of
		// time (its fetch still waits for scheduled_at), so the next due
		// job may be in any of three states.
		{&f.nextDue, `SELECT min(at) FROM (
			SELECT min(scheduled_at) AS at FROM river_job WHERE state = 'scheduled' AND ` + onRefreshQueue + `
			UNION ALL SELECT min(scheduled_at) FROM river_job WHERE state = 'retryable' AND ` + onRefreshQueue + `
			UNION ALL SELECT min(scheduled_at) FROM river_job WHERE state = 'available' AND ` + onRefreshQueue + ` AND scheduled_at > ?1)`},
		// Jobs due by ?1 still to be made available, and to be fetched.
		{&f.dueCounts, `SELECT
			(SELECT count(*) FROM river_job WHERE state = 'scheduled' AND ` + onRefreshQueue + ` AND scheduled_at <= ?1) +
			(SELECT count(*) FROM river_job WHERE state = 'retryable' AND ` + onRefreshQueue + ` AND scheduled_at <= ?1),
			(SELECT count(*) FROM river_job WHERE state = 'available' AND ` + onRefreshQueue + ` AND scheduled_at <= ?1)`},
		{&f.running, `SELECT kind, coalesce(json_extract(args, '$.credential_id'), ''), attempted_at
			FROM river_job WHERE state = 'running' AND ` + onRefreshQueue},
	} {
		stmt, err := f.pool.PrepareContext(f.ctx, q.sql)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { stmt.Close() })
		*q.stmt = stmt
	}
}

// run moves the fake clock from runT0 to the run's end: a plan job every
// PlanInterval (as River's periodic job would insert it), and between them
// from one due job to the next (at least quantum apart), each time
// waiting until every job due by then has run.
func (f *runFixture) run(t *testing.T, quantum time.Duration) {
	wall := time.Now()
	nextPlan, nextHeap := runT0, runT0
	for {
		now := f.clock.Now()
		if !now.Before(nextPlan) {
			err := f.store.Tx(f.ctx, func(q storage.Queries) error {
				return f.queue.InsertTx(f.ctx, q, river.InsertManyParams{Args: jobs.PlanArgs{},
					InsertOpts: &river.InsertOpts{Queue: jobs.QueueRefresh, UniqueOpts: river.UniqueOpts{ByPeriod: jobs.PlanInterval}}})
			})
			if err != nil {
				t.Fatal(err)
			}
			nextPlan = nextPlan.Add(jobs.PlanInterval)
		}
		f.drain(t, now)
		f.steps++
		if !now.Before(nextHeap) {
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			f.heap = append(f.heap, ms.HeapAlloc)
			if now.Before(runT0.Add(5 * time.Minute)) {
				// The baseline: after the first plan passes and refreshes,
				// with the caches and pools warm.
				f.heapFirst = len(f.heap) - 1
			}
			nextHeap = nextHeap.Add(time.Minute)
		}
		if !now.Before(f.end) {
			break
		}
		next := earliest(nextPlan, nextHeap, f.end)
		var due sql.NullString
		if err := f.nextDue.QueryRowContext(f.ctx, riverTime(now)).Scan(&due); err != nil {
			t.Fatal(err)
		}
		if due.Valid {
			at, err := time.Parse("2006-01-02 15:04:05.000", due.String)
			if err != nil {
				t.Fatal(err)
			}
			next = earliest(next, at)
		}
		next = latest(next, now.Add(quantum), now.Add(time.Millisecond))
		if quantum > 0 {
			next = next.Truncate(quantum)
			if !next.After(now) {
				next = next.Add(quantum)
			}
		}
		f.clock.Set(next)
	}
	f.wallRun = time.Since(wall)
}

func earliest(ts ...time.Time) time.Time {
	return slices.MinFunc(ts, func(a, b time.Time) int { return a.Compare(b) })
}

func latest(ts ...time.Time) time.Time {
	return slices.MaxFunc(ts, func(a, b time.Time) int { return a.Compare(b) })
}

// drain waits until every job due by now has been fetched by River and
// worked: none is left to schedule or fetch, and each one River fetched at
// this fake time has been through its port (River writes completions in
// batches a few hundred milliseconds later, so its table alone cannot say).
// The wall-clock deadline only turns a hang into a failure.
func (f *runFixture) drain(t *testing.T, now time.Time) {
	deadline := time.NewTimer(2 * time.Minute)
	defer deadline.Stop()
	poll := time.NewTicker(riverPoll) // River's fetch is polled, so is its table
	defer poll.Stop()
	at := riverTime(now)
	f.mu.Lock()
	clear(f.worked) // every earlier step's jobs were worked
	f.mu.Unlock()
	for {
		var unscheduled, unfetched int
		err := f.dueCounts.QueryRowContext(f.ctx, at).Scan(&unscheduled, &unfetched)
		if err != nil {
			t.Fatal(err)
		}
		if unscheduled > 0 {
			f.schedule(t, now)
			continue
		}
		pending := 0
		if unfetched == 0 {
			pending = f.unworked(t, now)
			if pending == 0 {
				return
			}
		}
		select {
		case <-f.workDone:
		case <-poll.C:
		case <-deadline.C:
			t.Fatalf("at %v: jobs due are not done after 2 min: %d to fetch, %d fetched and not worked", now, unfetched, pending)
		}
	}
}

// unworked counts the jobs River fetched at now (still 'running' in its
// table) that have not been through their port.
func (f *runFixture) unworked(t *testing.T, now time.Time) int {
	rows, err := f.running.QueryContext(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	fetched := map[workKey]int{}
	for rows.Next() {
		var k workKey
		var at time.Time
		if err := rows.Scan(&k.kind, &k.id, &at); err != nil {
			t.Fatal(err)
		}
		if k.at = at.UnixMilli(); k.at == now.Round(time.Millisecond).UnixMilli() { // earlier steps' jobs were worked then
			fetched[k]++
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for k, c := range fetched {
		n += max(0, c-f.worked[k])
	}
	return n
}

// schedule makes the jobs due by now available: River's JobScheduler's own
// query and transaction, run on the test's step instead of its 5 s ticker.
func (f *runFixture) schedule(t *testing.T, now time.Time) {
	tx, err := f.exec.Begin(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(f.ctx)
	if _, err := tx.JobSchedule(f.ctx, &riverdriver.JobScheduleParams{Max: 10_000, Now: &now}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(f.ctx); err != nil {
		t.Fatal(err)
	}
}

// shortestGap is the least time between two of ts (sorted here).
func shortestGap(ts []time.Time) time.Duration {
	slices.SortFunc(ts, func(a, b time.Time) int { return a.Compare(b) })
	least := time.Duration(1<<63 - 1)
	for i := 1; i < len(ts); i++ {
		least = min(least, ts[i].Sub(ts[i-1]))
	}
	return least
}

type refreshEvent struct {
	at, expires time.Time
}

func (f *runFixture) check(t *testing.T, quantum time.Duration) {
	ctx := f.ctx
	f.mu.Lock()
	for _, err := range f.errs[:min(len(f.errs), 5)] {
		t.Errorf("a job failed: %v", err)
	}
	f.mu.Unlock()

	// What the vault recorded: every refresh, at the fake time it committed.
	events := map[authgate.CredentialID][]refreshEvent{}
	byProvider := map[string][]time.Time{}
	rows, err := f.pool.QueryContext(ctx, `SELECT credential_id, type, at, details FROM credential_events WHERE type != 'token_issued' ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for rows.Next() {
		var id authgate.CredentialID
		var typ, details string
		var at int64
		if err := rows.Scan(&id, &typ, &at, &details); err != nil {
			t.Fatal(err)
		}
		if typ != string(authgate.EventRefreshSucceeded) {
			t.Errorf("credential %s: event %s %s", id, typ, details)
			continue
		}
		var d struct {
			ExpiresAt time.Time `json:"expires_at"`
		}
		if err := json.Unmarshal([]byte(details), &d); err != nil {
			t.Fatal(err)
		}
		ev := refreshEvent{at: time.UnixMicro(at).UTC(), expires: d.ExpiresAt}
		events[id] = append(events[id], ev)
		byProvider[f.provider[id]] = append(byProvider[f.provider[id]], ev.at)
		total++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()

	// Every token refreshed before it entered the safety window, and once:
	// a refresh comes no earlier than the refresher's own threshold
	// (Safety + Lead + 1 min before expiry), so a token refreshed twice
	// would show as a refresh of its fresh successor far too early.
	safety, earliest := refresh.DefaultMinValid, refresh.DefaultMinValid+4*time.Minute+time.Minute
	var margins []time.Duration
	for _, c := range f.creds {
		exp := *c.AccessTokenExpiresAt
		for _, ev := range events[c.ID] {
			margin := exp.Add(-safety).Sub(ev.at)
			if margin <= 0 {
				t.Errorf("credential %s (%s): token expiring %v refreshed at %v, %v inside the safety window", c.ID, c.Provider, exp, ev.at, -margin)
			}
			if ev.at.Before(exp.Add(-earliest)) {
				t.Errorf("credential %s (%s): token expiring %v refreshed at %v, before the refresher's threshold: refreshed twice?", c.ID, c.Provider, exp, ev.at)
			}
			margins = append(margins, margin)
			exp = ev.expires
		}
		if !exp.Add(-safety).After(f.end) {
			t.Errorf("credential %s (%s): its token expiring %v is inside the safety window at the run's end %v (%d refreshes)", c.ID, c.Provider, exp, f.end, len(events[c.ID]))
		}
		if len(events[c.ID]) == 0 {
			t.Errorf("credential %s: never refreshed", c.ID)
		}
	}

	// River: one refresh job per refresh, each run once, never before its
	// time and no later than the step it fell in.
	jrows, err := f.pool.QueryContext(ctx, `SELECT id, json_extract(args, '$.credential_id'), state, attempt, scheduled_at, attempted_at, created_at
		FROM river_job WHERE kind = 'proactive_refresh'`)
	if err != nil {
		t.Fatal(err)
	}
	jobsRun := 0
	var lateness time.Duration
	var latest string
	slots := map[string][]time.Time{} // the times the planner gave each provider's refreshes
	for jrows.Next() {
		var id int64
		var cred authgate.CredentialID
		var state string
		var attempt int
		var s, created time.Time
		var attempted sql.NullTime // the driver reads River's timestamp columns as times
		if err := jrows.Scan(&id, &cred, &state, &attempt, &s, &attempted, &created); err != nil {
			t.Fatal(err)
		}
		if !attempted.Valid {
			// Due after the run: River's scheduler may have made it
			// available already (it looks 5 s ahead).
			if s.Before(f.end) || state != "scheduled" && state != "available" {
				t.Errorf("refresh job due %v is %s, never attempted", s, state)
			}
			continue
		}
		a := attempted.Time
		jobsRun++
		slots[f.provider[cred]] = append(slots[f.provider[cred]], s)
		if attempt != 1 {
			t.Errorf("refresh job due %v: %d attempts", s, attempt)
		}
		if a.Before(s) {
			t.Errorf("refresh job due %v ran at %v, before its time", s, a)
		}
		if a.Sub(s) > lateness {
			lateness, latest = a.Sub(s), fmt.Sprintf("job %d inserted at %v, due %v, ran at %v", id, created, s, a)
		}
	}
	if err := jrows.Err(); err != nil {
		t.Fatal(err)
	}
	jrows.Close()
	if lateness > quantum {
		t.Errorf("a refresh job ran %v after its time (%s); the clock steps by at most %v past one", lateness, latest, quantum)
	}
	if jobsRun != total {
		t.Errorf("%d refresh jobs ran, %d refreshes recorded", jobsRun, total)
	}

	// The providers' rate: no two refreshes planned closer than 1/rate,
	// nor sent closer when every job runs at its own time; never more
	// than rate sent in one second.
	gap := time.Duration(float64(time.Second) / runRate)
	minGap, minSlotGap, maxPerSecond := map[string]time.Duration{}, map[string]time.Duration{}, map[string]int{}
	counts := f.sandbox.Counters()
	for prov, ts := range byProvider {
		minGap[prov], minSlotGap[prov] = shortestGap(ts), shortestGap(slots[prov])
		if minSlotGap[prov] < gap-time.Millisecond {
			t.Errorf("%s: two refreshes planned %v apart; the rate allows one per %v", prov, minSlotGap[prov], gap)
		}
		if quantum == 0 && minGap[prov] < gap-time.Millisecond {
			t.Errorf("%s: two refreshes sent %v apart; the rate allows one per %v", prov, minGap[prov], gap)
		}
		// A step's jobs are sent at its end, so they are counted per
		// step-long window (s-q, s]; the rate allows q·rate in one.
		window := max(quantum, time.Second)
		perWindow := map[int64]int{}
		for _, at := range ts {
			perWindow[int64(at.Add(-time.Nanosecond).Sub(runT0)/window)]++
		}
		for w, k := range perWindow {
			maxPerSecond[prov] = max(maxPerSecond[prov], k)
			if float64(k) > runRate*window.Seconds() {
				t.Errorf("%s: %d refreshes in the %v before %v; the rate is %v/s", prov, k, window, runT0.Add(time.Duration(w+1)*window), runRate)
			}
		}
		if got := counts[prov].Refreshes; got != int64(len(ts)) {
			t.Errorf("%s: the sandbox answered %d refreshes, authgate recorded %d", prov, got, len(ts))
		}
	}

	// The provider's view: the token each credential holds is live there,
	// with the expiry authgate stored.
	for _, c := range f.creds {
		l, err := f.vault.Load(ctx, f.tenant, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		core := f.sandbox.Google().Core()
		if c.Provider == "oidc" {
			core = f.sandbox.OIDC().Core()
		}
		a, err := core.LookupAccess(l.AccessToken.Reveal())
		if err != nil {
			t.Errorf("credential %s (%s): the token it holds is not live at the provider: %v", c.ID, c.Provider, err)
			continue
		}
		if d := a.ExpiresAt.Sub(*l.Credential.AccessTokenExpiresAt); d < -time.Second || d > time.Second {
			t.Errorf("credential %s: stored expiry %v, the provider's %v", c.ID, *l.Credential.AccessTokenExpiresAt, a.ExpiresAt)
		}
	}

	// Memory: flat from the baseline on.
	first, peak := f.heap[f.heapFirst], uint64(0)
	for _, h := range f.heap[f.heapFirst:] {
		peak = max(peak, h)
	}
	slices.Sort(margins)
	var median time.Duration
	if len(margins) > 0 {
		median = margins[len(margins)/2]
	}
	t.Logf("%d credentials (%v), %d refreshes in %d fake steps of at least %v: setup %v (minting %v), run %v; "+
		"margin before the safety window: earliest %v, median %v; rate %v/s per provider: shortest gap planned %v, sent %v, most in one step-long window (at least 1 s) %v; heap first %.1f MiB, peak %.1f MiB",
		f.n, runProviders, total, f.steps, quantum, f.wallSetup.Round(time.Millisecond), f.mintedWall.Round(time.Millisecond), f.wallRun.Round(time.Millisecond),
		margins[0], median, runRate, minSlotGap, minGap, maxPerSecond, float64(first)/(1<<20), float64(peak)/(1<<20))
	// What may grow: the refresher keeps a coordinator for each credential
	// it has served (about 300 B; at most refresh.Config.MaxCached), and the
	// sandbox — the providers, in this process — keeps every token it
	// issued (about 600 B a refresh): 1 KiB a credential, plus 16 MiB of
	// slack. A leak per planning pass or per step would exceed it.
	if bound := first + uint64(f.n)<<10 + 16<<20; peak > bound {
		t.Errorf("heap grew from %.1f MiB to %.1f MiB (bound %.1f MiB)", float64(first)/(1<<20), float64(peak)/(1<<20), float64(bound)/(1<<20))
	}
}
