// Package server is authgate's composition root: Config (with defaults and
// validation) → Open → Handler / Serve → Close. It wires storage, keys, the
// vault, tenancy and the HTTP API together and owns nothing else: no
// behaviour lives here, and it never reads the environment (cmd/authgate does).
package server

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"time"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/internal/api"
	"github.com/authgate/authgate/internal/broker"
	"github.com/authgate/authgate/internal/catalog"
	"github.com/authgate/authgate/internal/clock"
	"github.com/authgate/authgate/internal/doctor"
	"github.com/authgate/authgate/internal/jobs"
	"github.com/authgate/authgate/internal/keyring"
	"github.com/authgate/authgate/internal/mcpserver"
	"github.com/authgate/authgate/internal/netpolicy"
	"github.com/authgate/authgate/internal/refresh"
	"github.com/authgate/authgate/internal/returnurl"
	"github.com/authgate/authgate/internal/secret"
	"github.com/authgate/authgate/internal/storage"
	"github.com/authgate/authgate/internal/storage/pgstore"
	"github.com/authgate/authgate/internal/storage/sqlitestore"
	"github.com/authgate/authgate/internal/tenancy"
	"github.com/authgate/authgate/internal/ui"
	"github.com/authgate/authgate/internal/vault"
	"github.com/authgate/authgate/internal/worker"
	"github.com/authgate/authgate/sandbox"
	"github.com/authgate/authgate/workflow"
	"github.com/authgate/authgate/workflow/demo"
)

// Config is everything authgate needs to run. The zero value plus
// WithDefaults runs with no configuration at all.
type Config struct {
	// Addr is where Serve listens (default 127.0.0.1:8080: loopback only).
	Addr string
	// Database is "sqlite:PATH" (default "sqlite:authgate.db") or a
	// "postgres://…" URL (several processes serving one platform).
	Database string
	// MasterKeys is "id:base64[,id:base64…]", primary first. When empty,
	// keys come from KeyFile.
	MasterKeys string
	// KeyFile holds the master keys when MasterKeys is empty (default
	// "authgate.key"); it is generated, mode 0600, if missing.
	KeyFile string
	// Logger receives structured logs; it is wrapped in the redacting handler.
	Logger *slog.Logger
	// AccessLog is "summary" (the default: a line per error, refresh, slow
	// request or write, and per-route counts every minute for the rest) or
	// "full" (a line per request).
	AccessLog string
	// Clock tells time (default: the wall clock).
	Clock clock.Clock
	// Stdout receives the one-time "admin key: ag_…" line when the default
	// tenant is created (default os.Stdout).
	Stdout io.Writer
	// ShutdownTimeout bounds graceful shutdown of HTTP requests (default 10s).
	ShutdownTimeout time.Duration
	// DrainTimeout bounds how long shutdown waits, after the last request,
	// for provider refreshes still in flight to commit (default 40s: longer
	// than one token call).
	DrainTimeout time.Duration
	// RefreshCallTimeout bounds one call to a token endpoint (default 30s).
	RefreshCallTimeout time.Duration
	// HealthSweepInterval is the period within which every idle active
	// credential is checked once (default 24h).
	HealthSweepInterval time.Duration
	// ProviderJobRate is how many proactive refreshes plus health checks
	// per second the planner schedules for one provider, across every
	// instance (default 10). 100,000 credentials an hour on one provider
	// need about 28.
	ProviderJobRate float64
	// JobPollInterval is how often idle job workers look for jobs other
	// instances inserted (default 1s).
	JobPollInterval time.Duration
	// JobRescueAfter is how long a job may run before another instance
	// takes it as abandoned and runs it again (default 2 min).
	JobRescueAfter time.Duration
	// WebhookRetrySchedule replaces the waits between webhook attempts
	// (default jobs.DeliverySchedule: ten attempts over about 16 hours).
	WebhookRetrySchedule []time.Duration
	// Sandbox says whether to mount the provider emulator under /sandbox/:
	// SandboxAuto (the default) mounts it while no real provider is
	// configured — today always, until provider configuration arrives with
	// the OAuth broker; SandboxOn and SandboxOff force it.
	Sandbox SandboxMode
	// SandboxStateFile keeps the mounted sandbox's state (clients, grants,
	// live tokens) across restarts; default: next to the SQLite database
	// ("<db>.sandbox.json"), or "authgate-sandbox.json" beside the key file
	// for PostgreSQL.
	SandboxStateFile string
	// SandboxSeed makes the mounted sandbox's tokens deterministic (0: random).
	SandboxSeed uint64
	// SandboxURL points the built-in providers at an external sandbox
	// (`authgate sandbox`) instead of mounting one: several processes then
	// share one emulated provider.
	SandboxURL string
	// PublicURL is where browsers and providers reach this server (connect
	// links, the OAuth callback); default http://<Addr>.
	PublicURL string
	// Providers holds real client credentials for built-in providers
	// (google, notion, slack); a provider listed here uses its real endpoints.
	Providers map[string]ProviderCredentials
	// ProvidersFile is a YAML file of additional providers.
	ProvidersFile string
	// SandboxGoogleIssuanceLimit overrides the mounted sandbox's Google
	// refresh tokens per client+account (default 100, as Google).
	SandboxGoogleIssuanceLimit int
	// ReturnURLAllowList holds URL prefixes connect sessions may return to.
	ReturnURLAllowList []string
	// WebhookAllowPrivate lets webhook endpoints point at loopback, private
	// (RFC 1918, fc00::/7) and CGNAT addresses. Default: only in
	// development (listening on loopback with no PublicURL); see
	// webhookPolicy.
	WebhookAllowPrivate bool
	// WebhookAllowCIDRs opens these prefixes (e.g. "10.1.0.0/16") to
	// webhook endpoints, whatever range they are in.
	WebhookAllowCIDRs []string
	// Transport carries calls to providers (default http.DefaultTransport).
	Transport http.RoundTripper
	// RefreshSleep replaces the refresher's waits (tests observe backoff).
	RefreshSleep func(ctx context.Context, d time.Duration) error
	// MCPIdleTimeout closes an /mcp session with no request for this long
	// (default 30 minutes; AUTHGATE_MCP_IDLE_TIMEOUT).
	MCPIdleTimeout time.Duration
	// MCPMaxSessionsPerKey caps one API key's open /mcp sessions (default
	// 100; AUTHGATE_MCP_MAX_SESSIONS_PER_KEY); at the cap a new session
	// closes the key's longest-idle one.
	MCPMaxSessionsPerKey int
}

// ProviderCredentials are an OAuth client's id and secret.
type ProviderCredentials struct{ ClientID, ClientSecret string }

// SandboxMode chooses whether serve mounts the provider sandbox.
type SandboxMode string

const (
	SandboxAuto SandboxMode = "auto"
	SandboxOn   SandboxMode = "on"
	SandboxOff  SandboxMode = "off"
)

// Defaults.
const (
	DefaultAddr     = "127.0.0.1:8080"
	DefaultDatabase = "sqlite:authgate.db"
	DefaultKeyFile  = "authgate.key"
)

// WithDefaults fills every unset field.
func (c Config) WithDefaults() Config {
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	if c.Database == "" {
		c.Database = DefaultDatabase
	}
	if c.KeyFile == "" {
		c.KeyFile = DefaultKeyFile
	}
	if c.HealthSweepInterval <= 0 {
		c.HealthSweepInterval = 24 * time.Hour
	}
	if !(c.ProviderJobRate > 0) {
		c.ProviderJobRate = 10
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	}
	c.Logger = slog.New(secret.NewRedactingHandler(c.Logger.Handler()))
	if c.Clock == nil {
		c.Clock = clock.Real{}
	}
	if c.Stdout == nil {
		c.Stdout = os.Stdout
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = 40 * time.Second
	}
	if c.MCPIdleTimeout <= 0 {
		c.MCPIdleTimeout = mcpserver.DefaultIdleTimeout
	}
	if c.MCPMaxSessionsPerKey <= 0 {
		c.MCPMaxSessionsPerKey = mcpserver.DefaultMaxSessionsPerKey
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = 10 * time.Second
	}
	if c.Sandbox == "" {
		c.Sandbox = SandboxAuto
	}
	if c.Transport == nil {
		c.Transport = http.DefaultTransport
	}
	if c.SandboxStateFile == "" {
		if path, err := sqlitePath(c.Database); err == nil && !isPostgres(c.Database) {
			c.SandboxStateFile = path + ".sandbox.json"
		} else {
			c.SandboxStateFile = filepath.Join(filepath.Dir(c.KeyFile), "authgate-sandbox.json")
		}
	}
	return c
}

// mountsSandbox reports whether serve mounts its own sandbox: when switched
// on, or (auto) while no real provider of any kind is configured and the
// listener is loopback-only. The sandbox is a test fixture whose admin API
// hands out client secrets; it never sits beside real providers or on a
// public address by default.
func (c Config) mountsSandbox() bool {
	switch c.Sandbox {
	case SandboxOn:
		return true
	case SandboxOff:
		return false
	}
	return len(c.Providers) == 0 && c.SandboxURL == "" && c.ProvidersFile == "" && c.loopbackAddr() && c.loopbackPublicURL() && !isPostgres(c.Database)
}

// loopbackPublicURL reports whether no public URL is set or it is loopback:
// a server published at https://auth.example.com sits behind a proxy that
// forwards the world's requests with a loopback Host, so the sandbox's
// loopback-Host guard would not protect it there.
func (c Config) loopbackPublicURL() bool {
	if c.PublicURL == "" {
		return true
	}
	u, err := url.Parse(c.PublicURL)
	return err == nil && returnurl.IsLoopback(u.Hostname())
}

// loopbackAddr reports whether Addr listens on loopback only.
func (c Config) loopbackAddr() bool {
	host, _, err := net.SplitHostPort(c.Addr)
	return err == nil && returnurl.IsLoopback(host)
}

// Validate reports the first configuration mistake, naming the setting.
func (c Config) Validate() error {
	host, _, err := net.SplitHostPort(c.Addr)
	if err != nil {
		return fmt.Errorf("addr %q: want host:port, e.g. 127.0.0.1:8080", c.Addr)
	}
	if ip := net.ParseIP(host); (host == "" || (ip != nil && ip.IsUnspecified())) && c.PublicURL == "" {
		return fmt.Errorf("addr %q listens on every interface, so authgate cannot tell which URL browsers and providers use to reach it: set AUTHGATE_PUBLIC_URL (e.g. https://auth.example.com); connect links and the /oauth/callback redirect URI are built from it", c.Addr)
	}
	if !isPostgres(c.Database) {
		if _, err := sqlitePath(c.Database); err != nil {
			return err
		}
	}
	if c.MasterKeys != "" {
		if _, err := keyring.Parse(c.MasterKeys); err != nil {
			return fmt.Errorf("master keys: %w", err)
		}
	}
	if _, err := api.ParseAccessLogMode(c.AccessLog); err != nil {
		return err
	}
	switch c.Sandbox {
	case "", SandboxAuto, SandboxOn, SandboxOff:
	default:
		return fmt.Errorf("sandbox %q: want auto, on or off", c.Sandbox)
	}
	for _, raw := range c.ReturnURLAllowList {
		if _, err := returnurl.ParseRule(raw); err != nil {
			return fmt.Errorf("return URL allow-list: %w", err)
		}
	}
	if c.PublicURL != "" {
		if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("public URL %q: want http(s)://host[:port]", c.PublicURL)
		}
	}
	for _, s := range c.WebhookAllowCIDRs {
		if _, err := netpolicy.ParsePrefix(s); err != nil {
			return fmt.Errorf("%s: %w", netpolicy.SettingAllowCIDRs, err)
		}
	}
	return nil
}

// webhookPolicy is where webhook deliveries may connect. Private targets
// are open by default only in development — listening on loopback with no
// public URL, where the receivers are on the same machine — and otherwise
// only by the operator's choice.
func (c Config) webhookPolicy() netpolicy.Policy {
	p := netpolicy.Policy{AllowPrivate: c.WebhookAllowPrivate || (c.loopbackAddr() && c.PublicURL == "")}
	for _, s := range c.WebhookAllowCIDRs {
		if pf, err := netpolicy.ParsePrefix(s); err == nil { // Validate refused the others
			p.Allow = append(p.Allow, pf)
		}
	}
	return p
}

func sqlitePath(db string) (string, error) {
	scheme, rest, ok := strings.Cut(db, ":")
	switch {
	case !ok:
		return "", fmt.Errorf("database %q: want sqlite:PATH or postgres://…", redactURL(db))
	case scheme == "sqlite" && rest != "":
		return strings.TrimPrefix(rest, "//"), nil
	}
	return "", fmt.Errorf("database %q: want sqlite:PATH or postgres://…", redactURL(db))
}

func isPostgres(db string) bool {
	return strings.HasPrefix(db, "postgres://") || strings.HasPrefix(db, "postgresql://")
}

var keywordPassword = regexp.MustCompile(`(?i)(pass(?:word)?\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s]*)`)

// redactURL hides a password in a database URL or keyword DSN.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" || u.Opaque != "" {
		// A keyword DSN ("host=… password=…") or something unparseable: mask
		// every password value, and give up on anything still suspicious.
		masked := keywordPassword.ReplaceAllString(s, "${1}xxxxx")
		if strings.Contains(masked, "@") || keywordPassword.FindStringIndex(masked) == nil && strings.Contains(strings.ToLower(masked), "pass") {
			return "(unparseable database URL)"
		}
		return masked
	}
	q := u.Query()
	for k := range q {
		if secret.SensitiveKey(k) || strings.EqualFold(k, "pass") {
			q.Set(k, "xxxxx")
		}
	}
	u.RawQuery = q.Encode()
	return u.Redacted()
}

// Core is the domain without HTTP: what operator commands (creds, keys,
// tenants) need.
type Core struct {
	Store storage.Store
	// Keys follow the key file (or stay fixed when they come from
	// AUTHGATE_MASTER_KEYS).
	Keys    *keyring.Source
	Vault   *vault.Vault
	Tenancy *tenancy.Service
	Clock   clock.Clock
	Logger  *slog.Logger
	// Jobs inserts River jobs in the store's transactions; it works them
	// only in a Server (see Open).
	Jobs *jobs.Queue
}

// CoreOptions tunes OpenCore for operator commands.
type CoreOptions struct {
	// MustExist refuses to create a missing database or key file: an
	// operator command pointed at the wrong directory should say so, not
	// start an empty installation there.
	MustExist bool
	// MetadataOnly opens the database without master keys, for commands
	// that read metadata only (creds list, creds show): they work where the
	// keys are not, and cannot decrypt anything by construction.
	MetadataOnly bool
}

// noKeys is the keyring of a metadata-only Core: it seals and opens nothing.
type noKeys struct{}

func (noKeys) Seal([]byte, []byte) keyring.Sealed { panic("server: a metadata-only core cannot seal") }
func (noKeys) Open(keyring.Sealed, []byte) ([]byte, error) {
	return nil, errors.New("opened without master keys (metadata only)")
}
func (noKeys) Primary() string { return "" }

// OpenCore opens the database and keys. cfg must have defaults applied.
func OpenCore(ctx context.Context, cfg Config, opts CoreOptions) (*Core, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	path, _ := sqlitePath(cfg.Database)
	if opts.MustExist {
		if _, err := os.Stat(path); err != nil && !isPostgres(cfg.Database) {
			return nil, fmt.Errorf("database %s not found (run authgate serve first, or pass --db)", path)
		}
		if cfg.MasterKeys == "" && !opts.MetadataOnly {
			if _, err := os.Stat(cfg.KeyFile); err != nil {
				return nil, fmt.Errorf("master key file %s not found (set AUTHGATE_MASTER_KEYS or pass --key-file)", cfg.KeyFile)
			}
		}
	}
	var store storage.Store
	var err error
	if isPostgres(cfg.Database) {
		store, err = pgstore.Open(ctx, cfg.Database, pgstore.Options{})
	} else {
		store, err = sqlitestore.Open(ctx, path, sqlitestore.WithClock(cfg.Clock))
	}
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", redactURL(cfg.Database), err)
	}
	// Metadata-only commands (creds list|show) read no secret and need no key.
	var keys *keyring.Source
	var vkeys vault.Keys = noKeys{}
	if !opts.MetadataOnly {
		// A database never meets a key it was not encrypted with: find the
		// keys it needs before any key is loaded, let alone generated.
		needed, err := store.SealedKeyIDs(ctx)
		if err != nil {
			store.Close()
			return nil, fmt.Errorf("read database %s: %w", redactURL(cfg.Database), err)
		}
		if keys, err = loadKeys(cfg, needed); err != nil {
			store.Close()
			return nil, err
		}
		if err := proveKeys(ctx, cfg, store, keys, needed); err != nil {
			store.Close()
			return nil, err
		}
		// A key file edited while serving must not drop a key the database
		// still needs, nor swap one for a same-named impostor.
		keys.Check = func(k *keyring.Keyring) error {
			cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			ids, err := store.SealedKeyIDs(cctx)
			if err != nil {
				return err
			}
			for _, id := range ids {
				if !k.Has(id) {
					return fmt.Errorf("it lacks key %s, which the database needs", id)
				}
			}
			return proveKeys(cctx, cfg, store, keyring.Static(k), ids)
		}
		keys.OnRefuse = func(err error) {
			cfg.Logger.Error("the master key file changed but its keys are not used: "+err.Error()+"; the keys in force stay", slog.String("key_file", cfg.KeyFile))
		}
		vkeys = keys
	}
	return &Core{
		Store: store, Keys: keys, Clock: cfg.Clock, Logger: cfg.Logger,
		Vault:   vault.New(store, vkeys, cfg.Clock),
		Tenancy: tenancy.New(store, cfg.Clock),
	}, nil
}

// Close closes the database.
func (c *Core) Close() error { return c.Store.Close() }

// NewWebhooks is the tenants' webhooks on core, under cfg's address
// policy; plain http endpoints are allowed while authgate itself listens on
// loopback or the operator has opened private targets.
func NewWebhooks(core *Core, cfg Config) *worker.Webhooks {
	p := cfg.webhookPolicy()
	return worker.NewWebhooks(worker.WebhooksConfig{Store: core.Store, Keys: core.Keys, Clock: core.Clock, Logger: core.Logger,
		Policy: p, AllowHTTP: cfg.loopbackAddr() || p.AllowPrivate || len(p.Allow) > 0, Enqueue: core.Jobs})
}

// loadKeys loads the master keys, refusing any set that lacks a key the
// database needs, and generating a key file only for a database that holds
// no secret yet.
func loadKeys(cfg Config, needed []string) (*keyring.Source, error) {
	where := "AUTHGATE_MASTER_KEYS"
	missing := func(k *keyring.Keyring) error {
		var lack []string
		for _, id := range needed {
			if !k.Has(id) {
				lack = append(lack, id)
			}
		}
		if len(lack) == 0 {
			return nil
		}
		return fmt.Errorf("database %s holds secrets sealed with master key %s, which %s does not have (it has %s): restore the right key file or set AUTHGATE_MASTER_KEYS; refusing to start",
			redactURL(cfg.Database), strings.Join(lack, ", "), where, strings.Join(k.IDs(), ", "))
	}
	if cfg.MasterKeys != "" {
		k, err := keyring.Parse(cfg.MasterKeys)
		if err != nil {
			return nil, fmt.Errorf("master keys: %w", err)
		}
		if err := missing(k); err != nil {
			return nil, err
		}
		return keyring.Static(k), nil
	}
	where = "key file " + cfg.KeyFile
	if _, err := os.Stat(cfg.KeyFile); (err != nil || keyring.IsEmptyFile(cfg.KeyFile)) && len(needed) > 0 {
		abs, _ := filepath.Abs(cfg.KeyFile)
		return nil, fmt.Errorf("database %s holds secrets sealed with master key %s, but the key file %s is missing or empty: restore it (or set AUTHGATE_MASTER_KEYS); refusing to start with a new key",
			redactURL(cfg.Database), strings.Join(needed, ", "), abs)
	}
	if _, err := os.Stat(cfg.KeyFile); err != nil && isPostgres(cfg.Database) {
		// Several instances share a PostgreSQL database: each generating its
		// own key would seal secrets no other instance can open.
		abs, _ := filepath.Abs(cfg.KeyFile)
		return nil, fmt.Errorf("no master key for PostgreSQL database %s: set AUTHGATE_MASTER_KEYS (the same value on every instance) or provide the key file %s; authgate generates keys only for a SQLite file on one machine",
			redactURL(cfg.Database), abs)
	}
	k, created, tooOpen, err := keyring.LoadOrCreateFile(cfg.KeyFile, cfg.Clock.Now())
	if err != nil {
		return nil, fmt.Errorf("master key file: %w", err)
	}
	if created {
		cfg.Logger.Warn("generated a new master key file; back it up: without it no stored credential can be decrypted. Set AUTHGATE_MASTER_KEYS in production.",
			slog.String("key_file", cfg.KeyFile), slog.String("key_id", k.Primary()))
	}
	if tooOpen {
		cfg.Logger.Warn("master key file is readable by other users; chmod 600 it", slog.String("key_file", cfg.KeyFile))
	}
	if err := missing(k); err != nil {
		return nil, err
	}
	return keyring.FileSource(k, cfg.KeyFile, cfg.Clock.Now), nil
}

// proveKeys opens one stored secret per key id the database needs: a key
// with the right id but other bytes (a mistyped AUTHGATE_MASTER_KEYS, a key
// file from another installation) is refused at start instead of answering
// 500 for every credential and sealing new secrets no other key opens.
func proveKeys(ctx context.Context, cfg Config, store storage.Store, keys vault.Keys, needed []string) error {
	for _, id := range needed {
		sample, err := store.SealedSample(ctx, id)
		if errors.Is(err, storage.ErrNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("read database %s: %w", redactURL(cfg.Database), err)
		}
		ad := vault.AssociatedData(authgate.CredentialID(sample.Owner), sample.Field)
		switch sample.Field {
		case "connect_verifier":
			ad = vault.SessionAssociatedData(sample.Owner)
		case "webhook_secret":
			ad = vault.WebhookSecretAssociatedData(authgate.WebhookEndpointID(sample.Owner))
		}
		if _, err := keys.Open(sample.Sealed, ad); err != nil {
			return fmt.Errorf("master key %s does not open database %s's secrets sealed with %s: it is another key under the same id (check AUTHGATE_MASTER_KEYS or the key file); refusing to start",
				id, redactURL(cfg.Database), id)
		}
	}
	return nil
}

// Server is a running authgate: the core plus the HTTP API.
type Server struct {
	*Core
	cfg     Config
	handler http.Handler
	// Sandbox is the mounted provider emulator, or nil.
	Sandbox   *sandbox.Sandbox
	Refresher *refresh.Refresher
	Broker    *broker.Broker
	Metrics   *api.Metrics
	providers catalog.Holder
	publicURL atomic.Pointer[string]
	// sandboxLock is held while this process owns the mounted sandbox.
	sandboxLock  *sandboxLock
	stopAutoSave context.CancelFunc
	// Webhooks stores and sends the tenants' webhook deliveries.
	Webhooks *worker.Webhooks
	api      *api.API
	// jobs works River jobs in this process (every instance does).
	jobs *jobs.Queue
	// planner schedules proactive refreshes and health checks (wireJobs).
	planner *jobs.Planner
	// stopFeed stops the change feed the MCP endpoint listens to.
	stopFeed func()
	// MCP serves /mcp; its sessions close when idle (Sweep).
	MCP     *mcpserver.HTTPHandler
	stopMCP context.CancelFunc
	mcpDone chan struct{}
	// Console is the web console under /ui/.
	Console *ui.Console
	// defaultTenant is the tenant Open bootstrapped (or found first).
	defaultTenant authgate.TenantID
}

// SetPublicURL tells the server where it is reachable once it knows (a
// listener on port 0) and repoints sandbox providers there.
func (s *Server) SetPublicURL(u string) error {
	u = strings.TrimRight(u, "/")
	s.publicURL.Store(&u)
	if s.Sandbox != nil {
		if err := s.sandboxLock.publish(u); err != nil {
			s.cfg.Logger.Warn("publish the sandbox address for other processes", slog.String("error", err.Error()))
		}
	}
	return s.loadCatalog()
}

// PublicURL is where browsers and providers reach this server.
func (s *Server) PublicURL() string { return *s.publicURL.Load() }

func (s *Server) loadCatalog() error {
	o := catalog.Options{UserFile: s.cfg.ProvidersFile, Real: map[string]catalog.Credentials{}, SandboxClients: map[string]catalog.Credentials{},
		Discover: catalog.HTTPDiscover(&http.Client{Transport: s.cfg.Transport, Timeout: 10 * time.Second})}
	for name, c := range s.cfg.Providers {
		o.Real[name] = catalog.Credentials{ClientID: c.ClientID, ClientSecret: c.ClientSecret}
	}
	switch {
	case s.Sandbox != nil:
		o.SandboxBase = s.PublicURL()
	case s.cfg.SandboxURL != "":
		o.SandboxBase = s.cfg.SandboxURL
	}
	if o.SandboxBase != "" {
		for _, name := range sandbox.ProviderNames {
			if id, secret, ok := sandbox.DefaultCredentials(name); ok {
				o.SandboxClients[name] = catalog.Credentials{ClientID: id, ClientSecret: secret}
			}
		}
	}
	c, err := catalog.Load(o)
	if err != nil {
		return err
	}
	s.providers.Set(c)
	return nil
}

// Open prepares a server: database, keys, the default tenant on first start
// (its admin key is written once to cfg.Stdout), and the HTTP handler.
func Open(ctx context.Context, cfg Config) (*Server, error) {
	cfg = cfg.WithDefaults()
	core, err := OpenCore(ctx, cfg, CoreOptions{})
	if err != nil {
		return nil, err
	}
	t, key, created, err := core.Tenancy.Bootstrap(ctx)
	if err != nil {
		core.Close()
		return nil, fmt.Errorf("create default tenant: %w", err)
	}
	if created {
		// Printed once, on its own line, and never logged.
		fmt.Fprintf(cfg.Stdout, "admin key: %s\n", key.Reveal())
		cfg.Logger.Info("created the default tenant and its admin key (printed once on stdout)", slog.String("tenant_id", string(t.ID)), slog.String("key_fp", key.Fingerprint()))
	}
	var lock *sandboxLock
	if cfg.mountsSandbox() {
		lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		l, owner, err := acquireSandboxLock(lctx, cfg.SandboxStateFile)
		cancel()
		if err != nil {
			core.Close()
			return nil, err
		}
		if owner != "" {
			cfg.Logger.Warn("another authgate process on this database mounts the provider sandbox: using it instead of mounting a second one (their tokens must come from one sandbox)",
				slog.String("sandbox_url", owner))
			cfg.SandboxURL, cfg.Sandbox = owner, SandboxOff
		}
		lock = l
	}
	srv := &Server{Core: core, cfg: cfg, Metrics: api.NewMetrics(), sandboxLock: lock, defaultTenant: t.ID}
	public := cfg.PublicURL
	if public == "" {
		public = "http://" + cfg.Addr
	}
	if cfg.mountsSandbox() {
		var adminHosts []string
		if !cfg.loopbackAddr() {
			cfg.Logger.Warn("!!! THE PROVIDER SANDBOX IS MOUNTED ON A NON-LOOPBACK ADDRESS (AUTHGATE_SANDBOX=on). Anyone who reaches " + cfg.Addr +
				" can mint tokens, read sandbox client secrets and inject faults. Use this only on a trusted network. !!!")
			if u, err := url.Parse(public); err == nil {
				adminHosts = append(adminHosts, u.Hostname())
			}
		}
		srv.Sandbox = sandbox.New(sandbox.Options{Clock: cfg.Clock, Seed: cfg.SandboxSeed, AdminHosts: adminHosts, GoogleIssuanceLimit: cfg.SandboxGoogleIssuanceLimit})
		if err := srv.restoreSandbox(); err != nil {
			core.Close()
			return nil, err
		}
	} else if cfg.Sandbox == SandboxAuto && !cfg.loopbackAddr() && len(cfg.Providers) == 0 && cfg.SandboxURL == "" && cfg.ProvidersFile == "" {
		cfg.Logger.Warn("provider sandbox not mounted: the listen address is not loopback and no real provider is configured; set AUTHGATE_SANDBOX=on to mount it anyway", slog.String("addr", cfg.Addr))
	}
	if err := srv.SetPublicURL(public); err != nil {
		core.Close()
		return nil, err
	}
	srv.Refresher = refresh.New(refresh.Config{Store: core.Store, Vault: core.Vault, Providers: &srv.providers, Clock: cfg.Clock, Logger: cfg.Logger,
		Transport: cfg.Transport, Observer: srv.Metrics, Sleep: cfg.RefreshSleep, CallTimeout: cfg.RefreshCallTimeout})
	srv.Refresher.Start()
	srv.Broker = broker.New(broker.Config{Store: core.Store, Vault: core.Vault, Keys: core.Keys, Providers: &srv.providers, Clock: cfg.Clock, Logger: cfg.Logger,
		Transport: cfg.Transport, PublicURL: srv.PublicURL, ReturnURLAllowList: cfg.ReturnURLAllowList, TenantReturnURLs: core.Tenancy.ReturnURLs,
		SecureCookies: strings.HasPrefix(public, "https://"),
		OnExchange:    srv.Metrics.Exchange})
	deps := &jobs.Deps{}
	q, err := jobs.Open(core.Store, jobs.Config{Logger: cfg.Logger, Work: true, Deps: deps, PollInterval: cfg.JobPollInterval,
		DeliverySchedule: cfg.WebhookRetrySchedule, PlanInterval: cfg.planInterval(), RescueAfter: cfg.JobRescueAfter})
	if err != nil {
		if srv.stopAutoSave != nil {
			srv.stopAutoSave()
		}
		srv.sandboxLock.release()
		core.Close()
		return nil, err
	}
	srv.jobs, core.Jobs = q, q
	srv.Webhooks = NewWebhooks(core, cfg)
	var workflows api.Workflows
	if srv.Sandbox != nil {
		// In sandbox mode the server runs the demo itself (POST /v1/runs
		// with workflow "demo"), against the mounted sandbox.
		workflows = func(name string) (workflow.Workflow, bool) {
			if name != demo.Name {
				return workflow.Workflow{}, false
			}
			return demo.Workflow(demo.Sandbox(srv.PublicURL())), true
		}
	}
	accessLog, _ := api.ParseAccessLogMode(cfg.AccessLog) // checked by Validate
	// The console reads and acts through the API in process, as the
	// signed-in tenant; the API mints its sign-in links.
	srv.Console = ui.New(ui.Config{Store: core.Store, Client: func(t authgate.TenantID) *authgate.Client { return srv.api.ConsoleClientFor(t) },
		PublicURL: srv.PublicURL, Sandbox: srv.Sandbox, Clock: cfg.Clock, Logger: cfg.Logger})
	a := api.New(api.Deps{Store: core.Store, Vault: core.Vault, Tenancy: core.Tenancy, Logger: cfg.Logger, Clock: cfg.Clock,
		Refresher: srv.Refresher, Broker: srv.Broker, Providers: &srv.providers, Metrics: srv.Metrics, Transport: cfg.Transport, DoctorEnv: srv.doctorEnv(),
		Webhooks: srv.Webhooks, Workflows: workflows, AccessLog: api.AccessLog{Mode: accessLog}, Resume: q, PublicURL: srv.PublicURL, ConsoleLinks: srv.Console.LoginLink})
	srv.api = a
	srv.wireJobs(deps)
	apiHandler := a.Handler()
	mux := http.NewServeMux()
	mux.Handle("/", apiHandler)
	// The console has a mux entry of its own: nothing it does sits on the
	// API's path (the token route's middleware is the API's alone).
	mux.Handle("/ui/", srv.Console.Handler())
	// The connectors as MCP tools for agents (streamable HTTP), calling
	// the API above in process with the caller's own key.
	srv.MCP = mcpserver.Handler(mcpserver.HTTPConfig{
		Authenticate: func(ctx context.Context, authorization string) (mcpserver.Caller, error) {
			p, err := core.Tenancy.Authenticate(ctx, authorization)
			return mcpserver.Caller{Key: string(p.TenantID) + "/" + string(p.KeyID), User: p.UserID}, err
		},
		API: apiHandler, Writes: srv.mcpWrites(), Changes: srv.mcpChanges(), PublicURL: srv.PublicURL, Transport: cfg.Transport, Logger: cfg.Logger, Clock: cfg.Clock,
		IdleTimeout: cfg.MCPIdleTimeout, MaxSessionsPerKey: cfg.MCPMaxSessionsPerKey,
	})
	mux.Handle("/mcp", srv.MCP)
	mux.Handle("GET "+mcpserver.ResourceMetadataPath, mcpserver.ResourceMetadata(srv.PublicURL))
	{
		ctx, cancel := context.WithCancel(context.Background())
		srv.stopMCP, srv.mcpDone = cancel, make(chan struct{})
		go func() {
			defer close(srv.mcpDone)
			// A sweep every tenth of the timeout closes an idle session at
			// most 10% late.
			srv.MCP.Run(ctx, min(max(cfg.MCPIdleTimeout/10, time.Second), time.Minute))
		}()
	}
	srv.handler = mux
	if srv.Sandbox != nil {
		MountSandbox(mux, srv.Sandbox)
		cfg.Logger.Info("provider sandbox mounted at /sandbox/ (no real provider is configured)")
	}
	if err := q.Start(context.WithoutCancel(ctx)); err != nil {
		srv.closeAll()
		return nil, err
	}
	return srv, nil
}

// ConsoleLoginLink mints a one-time web-console sign-in link for the default
// tenant: what serve prints at start in development (sandbox mounted).
func (s *Server) ConsoleLoginLink(ctx context.Context) (authgate.ConsoleLoginLink, error) {
	return s.Console.LoginLink(ctx, s.defaultTenant, "serve")
}

// doctorEnv is the configuration the doctor judges.
func (s *Server) doctorEnv() doctor.Environment {
	env := doctor.Environment{PublicURL: s.PublicURL, SandboxMounted: s.Sandbox != nil, ListenLoopback: s.cfg.loopbackAddr(),
		ReturnURLAllowList: s.cfg.ReturnURLAllowList, LoadedKeyIDs: s.Core.Keys.Current().IDs()}
	if p, err := sqlitePath(s.cfg.Database); err == nil {
		env.DatabasePath = p
	}
	if s.cfg.MasterKeys == "" {
		env.KeyFile = s.cfg.KeyFile
	}
	return env
}

// restoreSandbox loads the mounted sandbox's state and keeps saving it
// (every 2 s while it changes, and at Close), so a crash loses at most a
// moment of sandbox state.
func (s *Server) restoreSandbox() error {
	_, statErr := os.Stat(s.cfg.SandboxStateFile)
	if err := s.Sandbox.LoadFile(s.cfg.SandboxStateFile); err != nil {
		return err
	}
	if err := s.Sandbox.SaveFile(s.cfg.SandboxStateFile); err != nil {
		return err
	}
	how := "loaded"
	if statErr != nil {
		how = "new"
	}
	s.cfg.Logger.Info("provider sandbox state", slog.String("file", s.cfg.SandboxStateFile), slog.String("state", how))
	ctx, cancel := context.WithCancel(context.Background())
	s.stopAutoSave = cancel
	go s.Sandbox.AutoSave(ctx, s.cfg.SandboxStateFile, 2*time.Second, func(err error) {
		s.cfg.Logger.Warn("save sandbox state", slog.String("error", err.Error()))
	})
	return nil
}

// Close drains the refresher (see Serve), saves the mounted sandbox's state,
// then closes the database.
func (s *Server) Close() error {
	return s.closeAll()
}

func (s *Server) closeAll() error {
	s.api.Close()
	// Jobs first: a job still running may need the refresher and the
	// database; one cut short is retried by another instance.
	jctx, cancel := context.WithTimeout(context.Background(), cmp.Or(s.cfg.ShutdownTimeout, 10*time.Second))
	jerr := s.jobs.Close(jctx)
	cancel()
	if s.stopFeed != nil {
		s.stopFeed()
	}
	s.drain()
	if s.stopMCP != nil {
		s.stopMCP()
		<-s.mcpDone
	}
	var err error
	if s.stopAutoSave != nil {
		s.stopAutoSave()
	}
	if s.Sandbox != nil {
		if err = s.Sandbox.SaveFile(s.cfg.SandboxStateFile); err != nil {
			s.cfg.Logger.Warn("save sandbox state", slog.String("error", err.Error()))
		}
	}
	s.sandboxLock.release()
	return errors.Join(jerr, err, s.Core.Close())
}

// MountSandbox routes the sandbox's paths on mux: /sandbox/…, the RFC 8414
// metadata path of its OIDC issuer, and the host-root Drive upload path the
// official Google client resolves to.
func MountSandbox(mux *http.ServeMux, sb *sandbox.Sandbox) {
	h := sb.Handler()
	mux.Handle("/sandbox/", h)
	mux.Handle("/.well-known/oauth-authorization-server/sandbox/", h)
	mux.Handle("POST /upload/drive/v3/files", h)
}

// Handler serves the whole HTTP surface.
func (s *Server) Handler() http.Handler { return s.handler }

// Serve answers HTTP on ln until ctx is done, then shuts down gracefully:
// in-flight requests get cfg.ShutdownTimeout to finish.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	open := &openRequests{}
	hs := &http.Server{
		Handler:           open.wrap(s.handler, s.cfg.Clock.Now),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.cfg.Logger.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	s.cfg.Logger.Info("shutting down: finishing requests, then waiting for refreshes in flight", slog.String("request_timeout", s.cfg.ShutdownTimeout.String()),
		slog.String("drain_timeout", s.cfg.DrainTimeout.String()))
	err := s.shutdown(hs, open)
	if serveErr := <-errc; serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		err = errors.Join(err, serveErr)
	}
	// Refreshes whose callers have gone may still be waiting for the
	// provider: let them commit, or another process would present the old
	// refresh token to a provider that already rotated it.
	s.drain()
	return err
}

// drain waits (bounded by cfg.DrainTimeout) for refreshes in flight.
func (s *Server) drain() {
	if s.Refresher == nil {
		return
	}
	dctx, cancel := context.WithTimeout(context.Background(), s.cfg.DrainTimeout)
	defer cancel()
	if err := s.Refresher.Close(dctx); err != nil {
		s.cfg.Logger.Error("refreshes still in flight at shutdown were abandoned", slog.Duration("drain_timeout", s.cfg.DrainTimeout))
	}
}

// ListenAndServe listens on cfg.Addr and serves until ctx is done. ready, if
// set, is called with the bound address once the listener is open.
func (s *Server) ListenAndServe(ctx context.Context, ready func(addr net.Addr)) error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return err
	}
	return s.ServeListener(ctx, ln, ready)
}

// ServeListener is ListenAndServe on a listener the caller opened (before
// Open, so that a taken port fails before anything is created).
func (s *Server) ServeListener(ctx context.Context, ln net.Listener, ready func(addr net.Addr)) error {
	if s.cfg.PublicURL == "" {
		if err := s.SetPublicURL("http://" + ln.Addr().String()); err != nil {
			ln.Close()
			return err
		}
	}
	s.cfg.Logger.Info("listening", slog.String("addr", ln.Addr().String()), slog.String("database", redactURL(s.cfg.Database)), slog.String("public_url", s.PublicURL()))
	if ready != nil {
		ready(ln.Addr())
	}
	return s.Serve(ctx, ln)
}

// Doctor is an offline doctor over this core (no provider call): for
// `authgate doctor` run on the server's host without a running server.
func (c *Core) Doctor(cfg Config) (*doctor.Doctor, error) {
	cfg = cfg.WithDefaults()
	cat, err := catalog.Load(catalog.Options{UserFile: cfg.ProvidersFile, SandboxBase: "http://127.0.0.1"})
	if err != nil {
		return nil, err
	}
	env := doctor.Environment{ReturnURLAllowList: cfg.ReturnURLAllowList, ListenLoopback: cfg.loopbackAddr()}
	if c.Keys != nil {
		env.LoadedKeyIDs = c.Keys.Current().IDs()
	}
	if p, err := sqlitePath(cfg.Database); err == nil {
		env.DatabasePath = p
	}
	if cfg.MasterKeys == "" {
		env.KeyFile = cfg.KeyFile
	}
	return doctor.New(doctor.Config{Vault: c.Vault, Store: c.Store, Providers: cat, Clock: c.Clock, Env: env}), nil
}
