package server

import (
	"context"
	"errors"
	"time"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/internal/jobs"
	"github.com/authgate/authgate/internal/mcpserver"
	"github.com/authgate/authgate/internal/storage"
)

// Retention of finished records: delivered and dead webhook deliveries and
// MCP write results are deleted this long after they were created.
const (
	DeliveryRetention   = 7 * 24 * time.Hour
	IdempotentRetention = 7 * 24 * time.Hour
)

// wireJobs connects the job queue to the domain: what each job does, and
// the vault's state changes to the run service (which enqueues webhook
// deliveries and resumes in the change's own transaction).
func (s *Server) wireJobs(d *jobs.Deps) {
	rs := s.api.Runs()
	s.Vault.OnChange(rs.CredentialChanged)
	d.Webhooks = s.Webhooks
	d.Resume = rs.ResumeBlockedOn
	d.Prune = s.prune
	pl := &jobs.Planner{Store: s.Store, Queue: s.jobs, Clock: s.cfg.Clock, Tokens: s.Refresher, Identity: s.api.CheckIdentity,
		Rotates: func(name string) bool {
			p, ok := s.providers.Get(name)
			return ok && p.RotatesRefreshTokens
		},
		Rate:          func(string) float64 { return s.cfg.ProviderJobRate },
		SweepInterval: s.cfg.HealthSweepInterval, Horizon: 3 * s.cfg.planInterval(), Logger: s.cfg.Logger}
	d.Plan, d.Refresh, d.Check = pl.Plan, pl.Refresh, pl.Check
	s.planner = pl
}

// HealthCheck runs one health-sweep check of a credential now, in the
// caller's goroutine: what the sweep's job does when the credential's turn
// comes (jobs.Planner.Check). For tests and operators' tools; a revocation
// it finds changes the credential's state exactly as the sweep would.
func (s *Server) HealthCheck(ctx context.Context, tenant authgate.TenantID, id authgate.CredentialID) error {
	if s.planner == nil {
		return errors.New("server: the job queue is not running")
	}
	return s.planner.Check(ctx, tenant, id)
}

// prune deletes finished records past their retention, a page at a time.
func (s *Server) prune(ctx context.Context) error {
	now := s.cfg.Clock.Now()
	for {
		n, err := s.Store.WebhookDeliveryDeleteFinished(ctx, storage.WebhookDeliveryDeleteFinishedParams{Before: now.Add(-DeliveryRetention), Limit: 1000})
		if err != nil {
			return err
		}
		if n < 1000 {
			break
		}
	}
	for {
		n, err := s.Store.IdempotentResultDeleteBefore(ctx, now.Add(-IdempotentRetention), 1000)
		if err != nil {
			return err
		}
		if n < 1000 {
			return nil
		}
	}
}

// planInterval plans often enough that a health check falls well inside
// its sweep period (AUTHGATE_HEALTH_SWEEP_INTERVAL=10s plans every 2.5 s).
func (c Config) planInterval() time.Duration {
	return min(jobs.PlanInterval, max(c.HealthSweepInterval/4, time.Second))
}

// mcpWrites keeps MCP write answers in the database (worker-independent:
// any instance replays them), under the idempotent_results table's "mcp"
// scope; the key already names the tenant's API key, user, tool and input.
type mcpWrites struct {
	store storage.Store
	now   func() time.Time
}

func (m mcpWrites) Load(ctx context.Context, key string) ([]byte, bool, error) {
	b, err := m.store.IdempotentResultGet(ctx, storage.IdempotentResultGetParams{Scope: "mcp", Key: key})
	if errors.Is(err, storage.ErrNotFound) {
		return nil, false, nil
	}
	return b, err == nil, err
}

func (m mcpWrites) Save(ctx context.Context, key string, answer []byte) error {
	_, _, err := m.store.IdempotentResultPut(ctx, storage.IdempotentResultPutParams{Scope: "mcp", Key: key, Result: answer, At: m.now()})
	return err
}

// mcpWrites is the MCP endpoint's write memory, kept in the database.
func (s *Server) mcpWrites() *mcpserver.Writes {
	w := mcpserver.NewWrites(IdempotentRetention)
	w.Store = mcpWrites{store: s.Store, now: s.cfg.Clock.Now}
	return w
}

// mcpChanges wakes the MCP endpoint's connect-link watchers on every
// credential change any instance commits (the storage change feed), until
// Close.
func (s *Server) mcpChanges() *mcpserver.Changes {
	ch := mcpserver.NewChanges()
	feed, ok := s.Store.(storage.ChangeFeed)
	if !ok {
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	s.stopFeed = func() { cancel(); <-done }
	go func() {
		defer close(done)
		_ = feed.WatchCredentials(ctx, func(storage.CredentialChange) { ch.Notify() })
	}()
	return ch
}
