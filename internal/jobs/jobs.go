// Package jobs is authgate's durable background work on River
// (github.com/riverqueue/river): resuming runs when their credential is
// usable again, delivering webhooks, proactive refresh, health sweeps and
// pruning. River runs on the same database as everything else — riverpgxv5
// on PostgreSQL, riversqlite on the embedded SQLite — so a job is inserted
// in the transaction of the state change that causes it (InsertTx on the
// backend's native transaction, see storage.NativeTx) and any instance
// works it, exactly one at a time.
//
// It owns the River client, the job kinds and their workers; what a job
// does is a port (Deps) implemented by the domain packages. It must never
// start work from a goroutine that a crash would lose: work is a job first.
package jobs

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/riverdriver/riversqlite"

	"github.com/authgate/authgate/internal/clock"
	"github.com/authgate/authgate/internal/storage"
	"github.com/authgate/authgate/internal/storage/pgstore"
	"github.com/authgate/authgate/internal/storage/sqlitestore"
)

// Queue names.
const (
	QueueDefault  = river.QueueDefault
	QueueWebhooks = "webhooks"
	QueueRefresh  = "refresh"
)

// Config tunes Open.
type Config struct {
	Logger *slog.Logger
	// Work runs workers in this process; false makes an insert-only queue
	// (operator commands).
	Work bool
	// WebhookWorkers is how many deliveries this instance sends at once
	// (default 50); PerEndpoint how many of them may go to one endpoint
	// (default 4).
	WebhookWorkers int
	PerEndpoint    int
	// PollInterval is how often idle workers look for jobs another instance
	// inserted (default 1 s; jobs inserted here are fetched at once).
	PollInterval time.Duration
	// DeliverySchedule replaces the waits between webhook attempts
	// (default DeliverySchedule; tests shorten it).
	DeliverySchedule []time.Duration
	// PlanInterval is how often proactive refreshes and health checks are
	// planned (default PlanInterval).
	PlanInterval time.Duration
	// RescueAfter is how long a job may run before River takes it as
	// abandoned (its instance died) and lets another instance run it
	// again (default 2 min; at least the longest job's timeout).
	RescueAfter time.Duration
	// Deps is what the jobs do.
	Deps *Deps
	// Clock, when set, is River's "now" (river.Config.Test.Time) — a test
	// seam, so that a fake clock decides when a scheduled job is due and
	// stamps attempts and completions. Production leaves it nil: River then
	// reads the wall clock and the database's own time. River's rescuer,
	// job cleaner and default retry policy read the wall clock even so: a
	// fake clock behind it would have running jobs rescued and finished
	// ones deleted at once.
	Clock clock.Clock
}

// Queue is River on one authgate store.
type Queue struct {
	// insertResults inserts in the caller's transaction and reports, per
	// job, whether it was skipped as a duplicate of a unique job.
	insertResults func(ctx context.Context, q storage.Queries, ps []river.InsertManyParams) ([]bool, error)
	start         func(ctx context.Context) error
	stop          func(ctx context.Context) error
	closePool     func() error
	deps          *Deps
	limiter       *limiter
	schedule      []time.Duration
	plan          time.Duration
	log           *slog.Logger
	started       bool
}

// Open builds the River client for store (a *sqlitestore.Store or a
// *pgstore.Store). River's schema is already there: the store's migrations
// apply it.
func Open(store storage.Store, cfg Config) (*Queue, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Deps == nil {
		cfg.Deps = &Deps{}
	}
	cfg.WebhookWorkers = max(cfg.WebhookWorkers, 0)
	if cfg.WebhookWorkers == 0 {
		cfg.WebhookWorkers = 50
	}
	if cfg.PerEndpoint <= 0 {
		cfg.PerEndpoint = 4
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.RescueAfter <= 0 {
		cfg.RescueAfter = 2 * time.Minute
	}
	if len(cfg.DeliverySchedule) == 0 {
		cfg.DeliverySchedule = DeliverySchedule
	}
	if cfg.PlanInterval <= 0 {
		cfg.PlanInterval = PlanInterval
	}
	q := &Queue{deps: cfg.Deps, limiter: newLimiter(cfg.PerEndpoint), schedule: cfg.DeliverySchedule, plan: cfg.PlanInterval, log: cfg.Logger,
		closePool: func() error { return nil }}
	rc := &river.Config{
		Logger: slog.New(quieter{cfg.Logger.Handler()}).With("component", "river"),
		// River keeps finished jobs a day by default; our own records
		// (deliveries, run timelines) say what happened, so a day is enough.
		CompletedJobRetentionPeriod: 24 * time.Hour,
		FetchPollInterval:           cfg.PollInterval,
		FetchCooldown:               min(cfg.PollInterval, 100*time.Millisecond),
		JobTimeout:                  min(2*time.Minute, cfg.RescueAfter),
		// A job whose worker vanished (kill -9) is run again after this.
		RescueStuckJobsAfter: cfg.RescueAfter,
	}
	if cfg.Clock != nil {
		rc.Test.Time = riverTime{cfg.Clock}
	}
	if cfg.Work {
		workers := river.NewWorkers()
		q.register(workers)
		rc.Workers = workers
		rc.Queues = map[string]river.QueueConfig{
			QueueDefault:  {MaxWorkers: 10},
			QueueWebhooks: {MaxWorkers: cfg.WebhookWorkers},
			QueueRefresh:  {MaxWorkers: 10},
		}
		rc.PeriodicJobs = q.periodic()
	}
	switch s := store.(type) {
	case *sqlitestore.Store:
		pool, err := s.JobPool()
		if err != nil {
			return nil, fmt.Errorf("jobs: %w", err)
		}
		q.closePool = pool.Close
		if err := build(q, riversqlite.New(pool), rc, func(n any) (*sql.Tx, bool) { tx, ok := n.(*sql.Tx); return tx, ok }); err != nil {
			pool.Close()
			return nil, err
		}
	case *pgstore.Store:
		if err := build(q, riverpgxv5.New(s.Pool()), rc, func(n any) (pgx.Tx, bool) { tx, ok := n.(pgx.Tx); return tx, ok }); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("jobs: no River driver for %T", store)
	}
	return q, nil
}

func build[TTx any](q *Queue, driver riverdriver.Driver[TTx], rc *river.Config, native func(any) (TTx, bool)) error {
	c, err := river.NewClient(driver, rc)
	if err != nil {
		return fmt.Errorf("jobs: %w", err)
	}
	q.insertResults = func(ctx context.Context, sq storage.Queries, ps []river.InsertManyParams) ([]bool, error) {
		tx, ok := native(storage.NativeTx(sq))
		if !ok {
			// Never insert outside the caller's transaction: the job
			// would survive a rollback of the change that caused it.
			return nil, errors.New("jobs: insert outside a transaction of this store")
		}
		res, err := c.InsertManyTx(ctx, tx, ps)
		if err != nil {
			return nil, err
		}
		skipped := make([]bool, len(res))
		for i, r := range res {
			skipped[i] = r.UniqueSkippedAsDuplicate
		}
		return skipped, nil
	}
	q.start, q.stop = c.Start, c.Stop
	return nil
}

// InsertTx inserts jobs in the transaction q runs in (inside Store.Tx).
func (q *Queue) InsertTx(ctx context.Context, sq storage.Queries, ps ...river.InsertManyParams) error {
	if len(ps) == 0 {
		return nil
	}
	if _, err := q.insertResults(ctx, sq, ps); err != nil {
		return fmt.Errorf("enqueue: %w", err)
	}
	return nil
}

// Start starts working jobs (a no-op for an insert-only queue).
func (q *Queue) Start(ctx context.Context) error {
	if err := q.start(ctx); err != nil {
		return fmt.Errorf("jobs: start: %w", err)
	}
	q.started = true
	return nil
}

// Close stops fetching, lets running jobs finish (a job cut short by ctx is
// retried by another instance: every job is safe to run again), and closes
// River's own pool.
func (q *Queue) Close(ctx context.Context) error {
	var err error
	if q.started {
		err = q.stop(ctx)
	}
	return errors.Join(err, q.closePool())
}

// riverTime is River's time generator (rivertype.TimeGenerator, checked
// where Open assigns it) over an authgate clock (Config.Clock).
type riverTime struct{ c clock.Clock }

func (t riverTime) Now() time.Time { return t.c.Now() }

// NowOrNil is always set: River then passes this time to its queries
// instead of letting the database read its own clock.
func (t riverTime) NowOrNil() *time.Time {
	n := t.c.Now()
	return &n
}

// quieter logs River's info lines (client started, periodic job counts
// every few seconds per queue) at debug: an operator's info log is
// authgate's own; River's warnings and errors keep their level.
type quieter struct{ h slog.Handler }

func (q quieter) Enabled(ctx context.Context, l slog.Level) bool {
	if l == slog.LevelInfo {
		l = slog.LevelDebug
	}
	return q.h.Enabled(ctx, l)
}

func (q quieter) Handle(ctx context.Context, r slog.Record) error {
	if r.Level == slog.LevelInfo {
		r.Level = slog.LevelDebug
	}
	return q.h.Handle(ctx, r)
}

func (q quieter) WithAttrs(as []slog.Attr) slog.Handler { return quieter{q.h.WithAttrs(as)} }
func (q quieter) WithGroup(n string) slog.Handler       { return quieter{q.h.WithGroup(n)} }
