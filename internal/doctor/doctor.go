// Package doctor is the debugging runbook as code: for one credential it
// runs the minimal repro per connector (through internal/verify), reads the
// identity and the scopes table, explains the token lifecycle from the
// credential's events, proves the storage is deterministic, measures the
// clock against the provider's Date header, looks at the operator's
// environment, and names the most likely root cause with the exact next
// action (authgate.Diagnosis).
//
// It must never print, log or return a secret (fingerprints only), and it
// makes no provider call besides the verification's checks and one
// unauthenticated probe of the token endpoint for its Date header.
package doctor

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/internal/catalog"
	"github.com/authgate/authgate/internal/clock"
	"github.com/authgate/authgate/internal/storage"
	"github.com/authgate/authgate/internal/vault"
)

// Verifier runs the live minimal checks (internal/verify).
type Verifier interface {
	Verify(ctx context.Context, tenant authgate.TenantID, id authgate.CredentialID, req authgate.VerifyRequest, actor string) (authgate.Verification, error)
}

// Providers resolves a credential's provider.
type Providers interface {
	Get(name string) (*catalog.Provider, bool)
}

// Environment is what the operator configured, as the doctor judges it.
type Environment struct {
	// PublicURL tells where browsers reach the server (nil or "" skips the probe).
	PublicURL func() string
	// DatabasePath is the SQLite file ("" for PostgreSQL).
	DatabasePath string
	// KeyFile holds the master keys ("" when they come from the environment).
	KeyFile string
	// LoadedKeyIDs are the master key ids this process holds.
	LoadedKeyIDs []string
	// SandboxMounted and ListenLoopback say where the sandbox is served.
	SandboxMounted bool
	ListenLoopback bool
	// ReturnURLAllowList is the configured allow-list of return URLs.
	ReturnURLAllowList []string
}

// Config is what a Doctor calls into.
type Config struct {
	Vault     *vault.Vault
	Store     storage.Store
	Providers Providers
	// Verifier, when nil, makes the diagnosis offline: no provider call.
	Verifier Verifier
	Clock    clock.Clock
	// Transport carries the clock and reachability probes.
	Transport http.RoundTripper
	Env       Environment
	// SkewWarn and SkewFail bound the provider's clock offset (10 s, 60 s).
	SkewWarn, SkewFail time.Duration
	// ConsentWindow is how soon after newer consents an invalid_grant is
	// blamed on the issuance limit (default 30 days).
	ConsentWindow time.Duration
}

// Doctor diagnoses credentials. It is safe for concurrent use.
type Doctor struct{ cfg Config }

// New returns a Doctor.
func New(cfg Config) *Doctor {
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Transport == nil {
		cfg.Transport = http.DefaultTransport
	}
	cfg.SkewWarn = cmp.Or(cfg.SkewWarn, 10*time.Second)
	cfg.SkewFail = cmp.Or(cfg.SkewFail, 60*time.Second)
	cfg.ConsentWindow = cmp.Or(cfg.ConsentWindow, 30*24*time.Hour)
	return &Doctor{cfg: cfg}
}

// finding is a check with the cause it points at (when it fails).
type finding struct {
	authgate.DiagnosisCheck
	cause authgate.DiagnosisCause
}

type diag struct {
	d       *Doctor
	tenant  authgate.TenantID
	cred    authgate.Credential
	p       *catalog.Provider
	out     authgate.Diagnosis
	found   []finding
	events  []authgate.Event
	reauth  authgate.DiagnosisCause // what a reauth_required failure means here
	ver     *authgate.Verification
	verCall bool
}

func (g *diag) add(section, name string, st authgate.CheckStatus, cause authgate.DiagnosisCause, evidence, fix string) {
	g.found = append(g.found, finding{DiagnosisCheck: authgate.DiagnosisCheck{Section: section, Name: name, Status: st, Evidence: evidence, Fix: fix}, cause: cause})
}

// Diagnose runs every check on credential id of tenant, in order.
func (d *Doctor) Diagnose(ctx context.Context, tenant authgate.TenantID, id authgate.CredentialID, req authgate.DiagnoseRequest, actor string) (authgate.Diagnosis, error) {
	cred, err := d.cfg.Vault.Get(ctx, tenant, id)
	if err != nil {
		return authgate.Diagnosis{}, err
	}
	p, ok := d.cfg.Providers.Get(cred.Provider)
	if !ok {
		return authgate.Diagnosis{}, authgate.Errorf(authgate.ClassClientMisconfigured, "provider %s is not configured here", cred.Provider)
	}
	g := &diag{d: d, tenant: tenant, cred: cred, p: p}
	if d.cfg.Verifier != nil {
		v, err := d.cfg.Verifier.Verify(ctx, tenant, id, authgate.VerifyRequest{Targets: req.Targets, Actions: req.Actions}, actor)
		if err != nil {
			return authgate.Diagnosis{}, err
		}
		g.ver, g.verCall = &v, true
		// The verification may have refreshed, failed or blocked it.
		if g.cred, err = d.cfg.Vault.Get(ctx, tenant, id); err != nil {
			return authgate.Diagnosis{}, err
		}
	}
	if g.events, err = d.allEvents(ctx, tenant, id); err != nil {
		return authgate.Diagnosis{}, err
	}
	g.lifecycleCause(ctx)
	g.repro()
	g.identity()
	g.scopes()
	g.lifecycle(ctx)
	g.storage(ctx)
	g.clock(ctx)
	g.environment(ctx)
	g.verdict()
	g.out.Credential = g.cred
	g.out.Live = g.verCall
	g.out.DiagnosedAt = d.cfg.Clock.Now().UTC()
	g.out.Events = eventLines(g.events)
	return g.out, nil
}

func (d *Doctor) allEvents(ctx context.Context, tenant authgate.TenantID, id authgate.CredentialID) ([]authgate.Event, error) {
	var out []authgate.Event
	var after int64
	for {
		evs, next, err := d.cfg.Vault.Events(ctx, tenant, id, after, 1000)
		if err != nil {
			return nil, err
		}
		out = append(out, evs...)
		if next == 0 {
			return out, nil
		}
		after = next
	}
}

// ResolveRun names the credential a run's blocked step used (else its only
// binding).
func (d *Doctor) ResolveRun(ctx context.Context, tenant authgate.TenantID, run authgate.RunID) (authgate.CredentialID, error) {
	r, err := d.cfg.Store.RunGetByID(ctx, storage.RunGetByIDParams{TenantID: tenant, ID: run})
	if errors.Is(err, storage.ErrNotFound) {
		return "", authgate.Errorf(authgate.ClassNotFound, "no run %s", run)
	}
	if err != nil {
		return "", err
	}
	if r.Blocked.CredentialID != "" {
		return r.Blocked.CredentialID, nil
	}
	if len(r.Bindings) == 1 {
		for _, id := range r.Bindings {
			return id, nil
		}
	}
	return "", authgate.Errorf(authgate.ClassInvalidRequest, "run %s is not blocked on a credential and binds %d; name one with --credential", run, len(r.Bindings))
}

// eventInfo is the part of event details the doctor reads (details are a
// free-form object; read by key, so no second declaration of their shape).
type eventInfo struct {
	Source, RefreshFP, PrevRefreshFP, Error, Reason, Verdict string
	Rotated, RefreshKept                                     bool
}

func info(e authgate.Event) eventInfo {
	var m map[string]any
	_ = json.Unmarshal(e.Details, &m)
	str := func(k string) string { s, _ := m[k].(string); return s }
	flag := func(k string) bool { b, _ := m[k].(bool); return b }
	return eventInfo{Source: str("source"), RefreshFP: str("refresh_token_fp"), PrevRefreshFP: str("previous_refresh_token_fp"),
		Error: str("error"), Reason: str("reason"), Verdict: str("verdict"), Rotated: flag("rotated"), RefreshKept: flag("refresh_token_kept")}
}

func eventLines(evs []authgate.Event) []authgate.DiagnosisEvent {
	if len(evs) > 50 {
		evs = evs[len(evs)-50:]
	}
	out := make([]authgate.DiagnosisEvent, 0, len(evs))
	for _, e := range evs {
		i := info(e)
		var note []string
		add := func(k, v string) {
			if v != "" {
				note = append(note, k+"="+v)
			}
		}
		add("source", i.Source)
		add("refresh_fp", i.RefreshFP)
		add("previous_refresh_fp", i.PrevRefreshFP)
		add("error", i.Error)
		add("reason", i.Reason)
		add("verdict", i.Verdict)
		add("actor", e.Actor)
		out = append(out, authgate.DiagnosisEvent{At: e.At, Type: e.Type, Note: strings.Join(note, " ")})
	}
	return out
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return slices.Clone(s)
}

func dur(d time.Duration) string {
	switch {
	case d < 0:
		return "-" + dur(-d)
	case d >= 48*time.Hour:
		return fmt.Sprintf("%d days", int(d.Hours()/24))
	case d >= 2*time.Hour:
		return fmt.Sprintf("%.0f h", d.Hours())
	case d >= time.Minute:
		return fmt.Sprintf("%.0f min", d.Minutes())
	}
	return fmt.Sprintf("%.0f s", d.Seconds())
}

func hostOf(u string) string {
	x, err := url.Parse(u)
	if err != nil {
		return ""
	}
	return x.Hostname()
}

func sameDir(a, b string) bool {
	if a == "" || b == "" {
		return false
	}
	x, _ := filepath.Abs(filepath.Dir(a))
	y, _ := filepath.Abs(filepath.Dir(b))
	return x == y
}
