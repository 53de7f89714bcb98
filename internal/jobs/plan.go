package jobs

import (
	"context"
	"time"

	"github.com/riverqueue/river"

	"github.com/authgate/authgate"
)

// PlanInterval is how often the planner schedules proactive refreshes and
// health checks (unless Config says otherwise).
const PlanInterval = 30 * time.Second

// PlanArgs schedules the refreshes and health checks due soon (periodic).
type PlanArgs struct{}

func (PlanArgs) Kind() string { return "plan" }

// RefreshArgs refreshes one credential bound to an active run before its
// access token leaves the safety window. ExpiresAt makes the job unique per
// token: planning again inserts nothing new for the same token.
type RefreshArgs struct {
	TenantID     authgate.TenantID     `json:"tenant_id"`
	CredentialID authgate.CredentialID `json:"credential_id"`
	ExpiresAt    int64                 `json:"expires_at"` // unix seconds
}

func (RefreshArgs) Kind() string { return "proactive_refresh" }

func (RefreshArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueRefresh, MaxAttempts: 5, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// CheckArgs is one health check of an idle credential.
type CheckArgs struct {
	TenantID     authgate.TenantID     `json:"tenant_id"`
	CredentialID authgate.CredentialID `json:"credential_id"`
	Due          int64                 `json:"due"` // unix seconds: one check per scheduled time
}

func (CheckArgs) Kind() string { return "health_check" }

func (CheckArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueRefresh, MaxAttempts: 3, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

type planWorker struct {
	river.WorkerDefaults[PlanArgs]
	q *Queue
}

func (w *planWorker) Work(ctx context.Context, _ *river.Job[PlanArgs]) error {
	if w.q.deps.Plan == nil {
		return nil
	}
	return w.q.deps.Plan(ctx)
}

type refreshWorker struct {
	river.WorkerDefaults[RefreshArgs]
	q *Queue
}

func (w *refreshWorker) Work(ctx context.Context, job *river.Job[RefreshArgs]) error {
	if w.q.deps.Refresh == nil {
		return errNoPort
	}
	return w.q.deps.Refresh(ctx, job.Args.TenantID, job.Args.CredentialID)
}

type checkWorker struct {
	river.WorkerDefaults[CheckArgs]
	q *Queue
}

func (w *checkWorker) Work(ctx context.Context, job *river.Job[CheckArgs]) error {
	if w.q.deps.Check == nil {
		return errNoPort
	}
	return w.q.deps.Check(ctx, job.Args.TenantID, job.Args.CredentialID)
}
