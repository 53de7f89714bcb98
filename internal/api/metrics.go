package api

import (
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are authgate's Prometheus series, on a registry of their own (no
// global state). Labels carry provider names, outcomes and classes: never
// ids, users or tokens.
type Metrics struct {
	reg             *prometheus.Registry
	refreshes       *prometheus.CounterVec
	refreshDuration *prometheus.HistogramVec
	tokenRequests   *prometheus.CounterVec
	classifications *prometheus.CounterVec
	exchanges       *prometheus.CounterVec
	commitRetries   *prometheus.CounterVec
	// tokenCounters memoizes tokenRequests' children: the token route is
	// the hot path, and a label lookup hashes both values and allocates
	// every time. (A map under a read lock, not a sync.Map: that would box
	// the key, an allocation per request.)
	mu            sync.RWMutex
	tokenCounters map[[2]string]prometheus.Counter
}

// tokenCounter is tokenRequests' child for (provider, result).
func (m *Metrics) tokenCounter(provider, result string) prometheus.Counter {
	k := [2]string{provider, result}
	m.mu.RLock()
	c, ok := m.tokenCounters[k]
	m.mu.RUnlock()
	if ok {
		return c
	}
	c = m.tokenRequests.WithLabelValues(provider, result)
	m.mu.Lock()
	m.tokenCounters[k] = c
	m.mu.Unlock()
	return c
}

// NewMetrics registers the series.
func NewMetrics() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), tokenCounters: map[[2]string]prometheus.Counter{}}
	m.refreshes = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "authgate_refreshes_total", Help: "Provider refresh calls by provider and outcome (success or error class)."}, []string{"provider", "outcome"})
	m.refreshDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "authgate_refresh_duration_seconds", Help: "Duration of provider refresh calls.", Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 20, 30, 60}}, []string{"provider", "outcome"})
	m.tokenRequests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "authgate_token_requests_total", Help: "Token API requests by provider and result (served, refreshed, or an error class)."}, []string{"provider", "result"})
	m.classifications = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "authgate_classifications_total", Help: "Errors classified through /v1/classify, by class."}, []string{"class"})
	m.exchanges = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "authgate_code_exchanges_total", Help: "Authorization-code exchanges by provider and outcome."}, []string{"provider", "outcome"})
	m.commitRetries = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "authgate_refresh_commit_retries_total", Help: "Attempts to store a provider's refresh answer that the database refused and that were retried (the answer is kept)."}, []string{"provider"})
	m.reg.MustRegister(m.refreshes, m.refreshDuration, m.tokenRequests, m.classifications, m.exchanges, m.commitRetries,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Refresh observes one provider refresh call (refresh.Observer).
func (m *Metrics) Refresh(provider, outcome string, d time.Duration) {
	m.refreshes.WithLabelValues(provider, outcome).Inc()
	m.refreshDuration.WithLabelValues(provider, outcome).Observe(d.Seconds())
}

// RefreshCommitRetry counts one retried store of a refresh answer
// (refresh.CommitObserver).
func (m *Metrics) RefreshCommitRetry(provider string) {
	m.commitRetries.WithLabelValues(provider).Inc()
}

// Exchange observes one code exchange.
func (m *Metrics) Exchange(provider, outcome string) {
	m.exchanges.WithLabelValues(provider, outcome).Inc()
}

func (m *Metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}
