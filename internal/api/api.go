// Package api is authgate's HTTP API under /v1, plus /healthz and /readyz.
//
// Handlers decode and validate at the edge (unknown fields and query
// parameters refused, bodies capped), call the domain with typed values and
// return errors; one adapter writes every error as an RFC 9457
// application/problem+json document whose `type` is a stable authgate.Class.
// Every /v1 route is tenant-scoped by the caller's API key: another tenant's
// credential is indistinguishable from a missing one (404).
//
// This package must never put a token, code or API key in a response, a log
// line or an error: credentials leave it as metadata with fingerprints.
package api

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/internal/broker"
	"github.com/authgate/authgate/internal/catalog"
	"github.com/authgate/authgate/internal/clock"
	"github.com/authgate/authgate/internal/doctor"
	"github.com/authgate/authgate/internal/gate"
	"github.com/authgate/authgate/internal/refresh"
	"github.com/authgate/authgate/internal/runs"
	"github.com/authgate/authgate/internal/storage"
	"github.com/authgate/authgate/internal/tenancy"
	"github.com/authgate/authgate/internal/vault"
	"github.com/authgate/authgate/internal/verify"
	"github.com/authgate/authgate/internal/worker"
)

// Deps is what the API calls into.
type Deps struct {
	Store   storage.Store
	Vault   *vault.Vault
	Tenancy *tenancy.Service
	Logger  *slog.Logger
	Clock   clock.Clock
	// The OAuth side; nil leaves those routes answering 503.
	Refresher *refresh.Refresher
	Broker    *broker.Broker
	Providers Providers
	Metrics   *Metrics
	// Transport carries the provider calls of live verification.
	Transport http.RoundTripper
	// DoctorEnv is the configuration the doctor judges.
	DoctorEnv doctor.Environment
	// Webhooks, when set, serves /v1/webhooks and stores a delivery for
	// each run and credential event.
	Webhooks *worker.Webhooks
	// Workflows, when set, names the workflows the server runs itself.
	Workflows Workflows
	// AccessLog says which requests get a log line of their own.
	AccessLog AccessLog
	// Resume, when set, enqueues the resume of runs blocked on a
	// credential usable again (the job queue).
	Resume runs.Resumer
	// PublicURL, when set, is the address the OpenAPI document names as
	// its server.
	PublicURL func() string
	// ConsoleLinks, when set, serves POST /v1/ui/login-links.
	ConsoleLinks ConsoleLinks
}

// Providers lists the configured providers.
type Providers interface {
	Get(name string) (*catalog.Provider, bool)
	Names() []string
}

// API serves the HTTP API.
type API struct {
	store   storage.Store
	vault   *vault.Vault
	tenancy *tenancy.Service
	log     *slog.Logger
	clock   clock.Clock
	mux     *http.ServeMux

	refresher *refresh.Refresher
	broker    *broker.Broker
	providers Providers
	metrics   *Metrics
	verifier  *verify.Verifier
	doctor    *doctor.Doctor
	gate      *gate.Gate
	runs      *runs.Service
	// webhooks, when set, stores the tenant's webhook deliveries.
	webhooks  *worker.Webhooks
	workflows Workflows
	exec      *executor

	accessLog   AccessLog
	summary     summary
	stopSummary chan struct{} // nil when no summary runs
	summaryDone chan struct{}
	publicURL   func() string
	openAPIDoc  servedDocument
	// consoleLinks, when set, mints web-console sign-in links.
	consoleLinks ConsoleLinks
}

// New builds the API and its routes.
func New(d Deps) *API {
	a := &API{store: d.Store, vault: d.Vault, tenancy: d.Tenancy, log: d.Logger, clock: d.Clock, mux: http.NewServeMux(),
		refresher: d.Refresher, broker: d.Broker, providers: d.Providers, metrics: d.Metrics, webhooks: d.Webhooks, workflows: d.Workflows, publicURL: d.PublicURL, consoleLinks: d.ConsoleLinks}
	a.exec = &executor{active: map[authgate.RunID]bool{}}
	a.exec.ctx, a.exec.cancel = context.WithCancel(context.Background())
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if a.clock == nil {
		a.clock = clock.Real{}
	}
	a.accessLog = d.AccessLog.withDefaults()
	a.summary.since = a.clock.Now()
	if a.accessLog.Mode == AccessLogSummary {
		a.stopSummary, a.summaryDone = make(chan struct{}), make(chan struct{})
		go a.runSummary(a.stopSummary, a.summaryDone)
	}
	if a.refresher != nil && a.providers != nil {
		vc := verify.Config{Vault: a.vault, Refresher: a.refresher, Providers: a.providers, Clock: a.clock, Transport: d.Transport}
		if a.broker != nil {
			vc.Reconnect = a.reconnectLink
		}
		a.verifier = verify.New(vc)
		a.doctor = doctor.New(doctor.Config{Vault: a.vault, Store: a.store, Providers: a.providers, Verifier: a.verifier, Clock: a.clock, Transport: d.Transport, Env: d.DoctorEnv})
	}
	rc := runs.Config{Store: a.store, Vault: a.vault, Clock: a.clock, Tokens: a.refresher, Resume: d.Resume, Resumed: a.execute, Logger: a.log}
	if a.verifier != nil {
		rc.Preflight = a.verifier
	}
	if a.broker != nil {
		rc.Reconnect = a.reconnectLink
	}
	if a.webhooks != nil {
		rc.Notify = a.webhooks
	}
	a.runs = runs.New(rc)
	if a.refresher != nil && a.providers != nil {
		a.gate = a.runs.Gate()
	}
	a.routes()
	// Not a route: what every request no route takes gets (404 or 405).
	a.mux.HandleFunc("/", a.unrouted)
	return a
}

// Runs is the run service the API calls (the job queue resumes runs
// through it; the vault reports credential changes to it).
func (a *API) Runs() *runs.Service { return a.runs }

// Handler is the API with its middleware: request ids, panic recovery,
// the access log and problem+json for unknown routes and methods.
func (a *API) Handler() http.Handler {
	return a.middleware(inputGuard(a.mux))
}
