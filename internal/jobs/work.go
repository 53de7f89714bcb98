package jobs

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/riverqueue/river"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/internal/storage"
	"github.com/authgate/authgate/internal/worker"
)

// Deps is what the jobs do: ports the composition root fills in before
// Start. A nil port leaves its jobs failing (and retried) until one is set.
type Deps struct {
	Webhooks *worker.Webhooks
	// Resume resumes every run blocked on a credential that is usable
	// again (each run once, however often it is called).
	Resume func(ctx context.Context, tenant authgate.TenantID, credential authgate.CredentialID, reason string) error
	// Prune deletes finished records past their retention.
	Prune func(ctx context.Context) error
	// Refresh refreshes one credential bound to an active run if it is
	// inside its safety window (proactive refresh).
	Refresh func(ctx context.Context, tenant authgate.TenantID, credential authgate.CredentialID) error
	// Plan schedules the proactive refreshes and health checks due soon.
	Plan func(ctx context.Context) error
	// Check is one health check of an idle credential.
	Check func(ctx context.Context, tenant authgate.TenantID, credential authgate.CredentialID) error
}

// DeliverySchedule is the wait after each failed webhook attempt: the first
// attempt is immediate, then 10 s, 30 s, 2 min, 10 min, 30 min, 1 h, 2 h,
// 4 h and 8 h — ten attempts over about 16 hours — after which the delivery
// is dead (kept and listed, never retried).
var DeliverySchedule = []time.Duration{10 * time.Second, 30 * time.Second, 2 * time.Minute, 10 * time.Minute, 30 * time.Minute,
	time.Hour, 2 * time.Hour, 4 * time.Hour, 8 * time.Hour}

// DeliverArgs sends one stored webhook delivery.
type DeliverArgs struct {
	DeliveryID authgate.WebhookDeliveryID `json:"delivery_id"`
}

func (DeliverArgs) Kind() string { return "webhook_delivery" }

// InsertOpts puts deliveries on their own queue, so a slow endpoint never
// holds the workers that resume runs.
func (DeliverArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueWebhooks, MaxAttempts: len(DeliverySchedule) + 1}
}

// ResumeArgs resumes the runs blocked on a credential that became usable.
type ResumeArgs struct {
	TenantID     authgate.TenantID     `json:"tenant_id"`
	CredentialID authgate.CredentialID `json:"credential_id"`
	Reason       string                `json:"reason"`
}

func (ResumeArgs) Kind() string { return "resume_runs" }

// InsertOpts: a resume is retried for a long while (each attempt resumes
// only what is still blocked, so repeats are harmless).
func (ResumeArgs) InsertOpts() river.InsertOpts { return river.InsertOpts{MaxAttempts: 25} }

// PruneArgs deletes finished records past their retention (periodic).
type PruneArgs struct{}

func (PruneArgs) Kind() string { return "prune" }

// EnqueueDeliveriesTx enqueues one delivery job per stored delivery, in the
// transaction that stored them (worker.Enqueuer).
func (q *Queue) EnqueueDeliveriesTx(ctx context.Context, sq storage.Queries, ds []*storage.WebhookDelivery) error {
	ps := make([]river.InsertManyParams, len(ds))
	for i, d := range ds {
		ps[i] = river.InsertManyParams{Args: DeliverArgs{DeliveryID: d.ID},
			InsertOpts: &river.InsertOpts{Queue: QueueWebhooks, MaxAttempts: len(q.schedule) + 1}}
	}
	return q.InsertTx(ctx, sq, ps...)
}

var _ worker.Enqueuer = (*Queue)(nil)

// EnqueueResumeTx enqueues the resume of every run blocked on a credential,
// in the transaction that made it usable.
func (q *Queue) EnqueueResumeTx(ctx context.Context, sq storage.Queries, tenant authgate.TenantID, credential authgate.CredentialID, reason string) error {
	return q.InsertTx(ctx, sq, river.InsertManyParams{Args: ResumeArgs{TenantID: tenant, CredentialID: credential, Reason: reason}})
}

func (q *Queue) register(w *river.Workers) {
	river.AddWorker(w, &deliverWorker{q: q})
	river.AddWorker(w, &resumeWorker{q: q})
	river.AddWorker(w, &pruneWorker{q: q})
	river.AddWorker(w, &refreshWorker{q: q})
	river.AddWorker(w, &planWorker{q: q})
	river.AddWorker(w, &checkWorker{q: q})
}

// PruneInterval is how often pruning runs.
const PruneInterval = time.Hour

func (q *Queue) periodic() []*river.PeriodicJob {
	return []*river.PeriodicJob{
		river.NewPeriodicJob(river.PeriodicInterval(PruneInterval), func() (river.JobArgs, *river.InsertOpts) {
			// Unique per period: several instances scheduling it insert one.
			return PruneArgs{}, &river.InsertOpts{UniqueOpts: river.UniqueOpts{ByPeriod: PruneInterval}}
		}, &river.PeriodicJobOpts{ID: "prune", RunOnStart: true}),
		river.NewPeriodicJob(river.PeriodicInterval(q.plan), func() (river.JobArgs, *river.InsertOpts) {
			return PlanArgs{}, &river.InsertOpts{Queue: QueueRefresh, UniqueOpts: river.UniqueOpts{ByPeriod: q.plan}}
		}, &river.PeriodicJobOpts{ID: "plan", RunOnStart: true}),
	}
}

var errNoPort = errors.New("jobs: this job's port is not wired")

type deliverWorker struct {
	river.WorkerDefaults[DeliverArgs]
	q *Queue
}

// NextRetry follows DeliverySchedule.
func (w *deliverWorker) NextRetry(job *river.Job[DeliverArgs]) time.Time {
	sch := w.q.schedule
	wait := sch[min(max(job.Attempt-1, 0), len(sch)-1)]
	if job.AttemptedAt == nil {
		return time.Time{} // River's default policy
	}
	// From River's own time of this attempt: retries run on River's clock.
	return job.AttemptedAt.Add(wait)
}

// Timeout covers one attempt and recording it.
func (w *deliverWorker) Timeout(*river.Job[DeliverArgs]) time.Duration {
	return worker.SendTimeout + 20*time.Second
}

func (w *deliverWorker) Work(ctx context.Context, job *river.Job[DeliverArgs]) error {
	wh := w.q.deps.Webhooks
	if wh == nil {
		return errNoPort
	}
	ep, err := wh.EndpointOf(ctx, job.Args.DeliveryID)
	if err != nil || ep == "" {
		return err // "" : deleted with its endpoint
	}
	release, ok := w.q.limiter.acquire(string(ep))
	if !ok {
		// This endpoint has its share of workers busy here: come back in
		// a moment without spending an attempt, and leave the worker to
		// other endpoints' deliveries.
		return river.JobSnooze(time.Second)
	}
	defer release()
	last := job.Attempt >= job.MaxAttempts
	next := time.Time{}
	if !last {
		next = w.NextRetry(job)
	}
	err = wh.Deliver(ctx, job.Args.DeliveryID, last, next)
	if errors.Is(err, worker.ErrGone) {
		return nil
	}
	return err
}

type resumeWorker struct {
	river.WorkerDefaults[ResumeArgs]
	q *Queue
}

func (w *resumeWorker) Work(ctx context.Context, job *river.Job[ResumeArgs]) error {
	if w.q.deps.Resume == nil {
		return errNoPort
	}
	return w.q.deps.Resume(ctx, job.Args.TenantID, job.Args.CredentialID, job.Args.Reason)
}

type pruneWorker struct {
	river.WorkerDefaults[PruneArgs]
	q *Queue
}

func (w *pruneWorker) Work(ctx context.Context, _ *river.Job[PruneArgs]) error {
	if w.q.deps.Prune == nil {
		return nil
	}
	return w.q.deps.Prune(ctx)
}

// limiter caps concurrent work per key in this process.
type limiter struct {
	mu   sync.Mutex
	max  int
	busy map[string]int
}

func newLimiter(n int) *limiter { return &limiter{max: n, busy: map[string]int{}} }

func (l *limiter) acquire(key string) (release func(), ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.busy[key] >= l.max {
		return nil, false
	}
	l.busy[key]++
	return func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.busy[key]--; l.busy[key] == 0 {
			delete(l.busy, key)
		}
	}, true
}
