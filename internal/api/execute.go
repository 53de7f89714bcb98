package api

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/internal/storage"
	"github.com/authgate/authgate/internal/tenancy"
	"github.com/authgate/authgate/workflow"
)

// Workflows names the workflows this server runs itself (the demo, in
// sandbox mode): a run created with such a name is executed here, and
// executed again from its last checkpoint when a reconnect resumes it.
type Workflows func(name string) (workflow.Workflow, bool)

// inProcessPrincipal carries the tenant of a request made by ClientFor.
type inProcessPrincipal struct{}

// executor runs server-side workflows until Close.
type executor struct {
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	active map[authgate.RunID]bool // one runner per run at a time
}

// ClientFor is an SDK client that calls this API in process as tenant:
// what the workflows the server runs itself drive their runs with.
func (a *API) ClientFor(tenant authgate.TenantID) *authgate.Client {
	return a.clientAs(tenant, "server-workflow", authgate.RoleService)
}

// ConsoleClientFor is the web console's in-process client for tenant, with
// the admin role (only admin keys mint console sign-in links): the events
// and logs of what an operator does there name "api:console".
func (a *API) ConsoleClientFor(tenant authgate.TenantID) *authgate.Client {
	return a.clientAs(tenant, "console", authgate.RoleAdmin)
}

func (a *API) clientAs(tenant authgate.TenantID, actor authgate.APIKeyID, role authgate.Role) *authgate.Client {
	c := authgate.NewClient("http://authgate.in-process", "")
	p := tenancy.Principal{TenantID: tenant, KeyID: actor, Role: role}
	h := a.Handler()
	c.HTTPClient = &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		r = r.WithContext(context.WithValue(r.Context(), inProcessPrincipal{}, p))
		r.Header.Del("Authorization")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		return rec.Result(), nil
	})}
	return c
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// execute runs run's workflow in the background if this server runs it.
func (a *API) execute(run *storage.Run) {
	if a.workflows == nil || run.State != authgate.RunStateRunning {
		return
	}
	wf, ok := a.workflows(run.Workflow)
	if !ok {
		return
	}
	x := a.exec
	x.mu.Lock()
	if x.active[run.ID] || x.ctx.Err() != nil {
		x.mu.Unlock()
		return
	}
	x.active[run.ID] = true
	x.wg.Add(1)
	x.mu.Unlock()
	go func() {
		defer x.wg.Done()
		defer func() {
			x.mu.Lock()
			delete(x.active, run.ID)
			x.mu.Unlock()
		}()
		r := &workflow.Runner{API: a.ClientFor(run.TenantID), Workflow: wf}
		_, err := r.Resume(x.ctx, run.ID)
		if err != nil && !errors.Is(err, workflow.ErrBlockedOnAuth) && x.ctx.Err() == nil {
			a.log.Warn("server-side workflow stopped", "run_id", string(run.ID), "workflow", run.Workflow, "error", err.Error())
		}
	}()
}

// Close stops the workflows this server runs and waits for them (a run
// stopped here continues from its last checkpoint after a restart's next
// resume), then writes the access log's last summary lines.
func (a *API) Close() {
	a.exec.cancel()
	a.exec.wg.Wait()
	// The last summary lines: what was counted since the previous ones.
	if a.stopSummary != nil {
		close(a.stopSummary)
		<-a.summaryDone
		a.stopSummary = nil
	}
}
