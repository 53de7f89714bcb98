// Package ui is authgate's web console under /ui/: server-rendered pages
// (html/template, assets embedded, nothing fetched from the network) for the
// people who operate agent workflows — connections with the connector's
// state kept apart from the console session, run timelines that show where
// a run stopped and its resume, credential events, webhooks and, in sandbox
// mode, the provider sandbox's fault switches.
//
// It owns only what is the console's own: one-time login links and the
// sessions they open (stored hashed), CSRF and same-origin checks, and
// rendering. Everything else it reads and does through the HTTP API in
// process, as the signed-in tenant (Config.Client), so that the console
// can never show or do more than the API allows, and never duplicates the
// services behind it.
//
// It must never render a token (only fingerprints reach it: the API never
// returns tokens except from the token and gate routes, which it does not
// call), never change state on a GET, and never accept a state-changing
// request without a valid CSRF token from its own origin.
package ui

import (
	"context"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/internal/clock"
	"github.com/authgate/authgate/internal/storage"
	"github.com/authgate/authgate/sandbox"
)

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed static
var staticFiles embed.FS

// Default lifetimes.
const (
	DefaultLinkTTL    = 5 * time.Minute
	DefaultSessionTTL = 12 * time.Hour
)

// Config wires the console.
type Config struct {
	// Store holds login links and sessions, and the webhook deliveries the
	// Webhooks page lists.
	Store storage.Store
	// Client calls the HTTP API in process as a tenant.
	Client func(authgate.TenantID) *authgate.Client
	// PublicURL is where browsers reach the server: links are built from it
	// and state-changing requests must come from its origin.
	PublicURL func() string
	// Sandbox is the mounted provider sandbox; nil hides the sandbox panel.
	Sandbox *sandbox.Sandbox
	Clock   clock.Clock
	Logger  *slog.Logger
	// LinkTTL is how long a login link opens (default 5 minutes);
	// SessionTTL how long a session lasts (default 12 hours).
	LinkTTL, SessionTTL time.Duration
}

// Console serves /ui/.
type Console struct {
	cfg   Config
	pages map[string]*template.Template
	mux   *http.ServeMux
}

// New builds the console. It panics only if the embedded templates do not
// parse, which a test catches.
func New(cfg Config) *Console {
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.LinkTTL <= 0 {
		cfg.LinkTTL = DefaultLinkTTL
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = DefaultSessionTTL
	}
	c := &Console{cfg: cfg, pages: parsePages(), mux: http.NewServeMux()}
	c.routes()
	return c
}

func (c *Console) routes() {
	static, _ := fs.Sub(staticFiles, "static")
	c.mux.Handle("GET /ui/static/", http.StripPrefix("/ui/static/", http.FileServerFS(static)))
	c.mux.HandleFunc("GET /ui/login/{token}", c.loginPage)
	c.mux.HandleFunc("POST /ui/login/{token}", c.login)
	c.mux.Handle("POST /ui/logout", c.authed(c.logout))

	c.mux.Handle("GET /ui/{$}", c.authed(c.connections))
	c.mux.Handle("POST /ui/connect", c.authed(c.connect))
	c.mux.Handle("GET /ui/credentials/{id}", c.authed(c.credential))
	c.mux.Handle("POST /ui/credentials/{id}/verify", c.authed(c.verify))
	c.mux.Handle("POST /ui/credentials/{id}/diagnose", c.authed(c.diagnose))
	c.mux.Handle("POST /ui/credentials/{id}/reconnect", c.authed(c.reconnect))
	c.mux.Handle("POST /ui/credentials/{id}/disconnect", c.authed(c.disconnect))
	c.mux.Handle("GET /ui/runs", c.authed(c.runs))
	c.mux.Handle("GET /ui/runs/{id}", c.authed(c.run))
	c.mux.Handle("GET /ui/webhooks", c.authed(c.webhooks))
	if c.cfg.Sandbox != nil {
		c.mux.Handle("GET /ui/sandbox", c.authed(c.sandboxPanel))
		c.mux.Handle("POST /ui/sandbox/demo", c.authed(c.startDemo))
		c.mux.Handle("POST /ui/sandbox/fault", c.authed(c.injectFault))
	}
	c.mux.HandleFunc("/ui/", func(w http.ResponseWriter, r *http.Request) {
		c.renderError(w, r, nil, authgate.Errorf(authgate.ClassNotFound, "there is no console page at %s", r.URL.Path))
	})
}

// Handler serves /ui/ (mount it on the server's mux at "/ui/"). Every
// answer forbids framing and caching, and sends no referrer to other
// origins: console URLs carry ids, and the login URL a capability. (Not
// "no-referrer": with it Chromium sends "Origin: null" on the console's own
// form posts, which the same-origin check must refuse.)
func (c *Console) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; form-action 'self' http: https:; frame-ancestors 'none'; base-uri 'none'")
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		if !strings.HasPrefix(r.URL.Path, "/ui/static/") {
			h.Set("Cache-Control", "no-store")
		}
		c.mux.ServeHTTP(w, r)
	})
}

func (c *Console) publicURL() *url.URL {
	u, err := url.Parse(strings.TrimRight(c.cfg.PublicURL(), "/"))
	if err != nil {
		return &url.URL{}
	}
	return u
}

// secure reports whether cookies must be Secure: the console is served
// behind HTTPS.
func (c *Console) secure() bool { return c.publicURL().Scheme == "https" }

// renderError writes an error page with the error's status. Only an
// *authgate.Error's end-user detail is shown; anything else is logged and
// shown as an internal error.
func (c *Console) renderError(w http.ResponseWriter, r *http.Request, s *session, err error) {
	var ae *authgate.Error
	if !errors.As(err, &ae) {
		c.cfg.Logger.ErrorContext(r.Context(), "console error", slog.String("path", r.URL.Path), slog.String("error", err.Error()))
		ae = authgate.Errorf(authgate.ClassInternal, "something went wrong on the server; the log has the details")
	}
	w.WriteHeader(ae.Status)
	c.render(w, r, s, "error", "Error", ae)
}

// pageData is what every page template gets.
type pageData struct {
	Title   string
	Session *session
	Sandbox bool
	Now     time.Time
	Page    any
}

func (c *Console) render(w http.ResponseWriter, r *http.Request, s *session, name, title string, page any) {
	t, ok := c.pages[name]
	if !ok {
		http.Error(w, "no such page", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	d := pageData{Title: title, Session: s, Sandbox: c.cfg.Sandbox != nil, Now: c.cfg.Clock.Now(), Page: page}
	tmpl := "layout"
	if r.URL.Query().Get("partial") != "" && t.Lookup("partial") != nil {
		tmpl = "partial"
	}
	if err := t.ExecuteTemplate(w, tmpl, d); err != nil {
		c.cfg.Logger.ErrorContext(r.Context(), "render console page", slog.String("page", name), slog.String("error", err.Error()))
	}
}

func parsePages() map[string]*template.Template {
	layout := template.Must(template.New("").Funcs(funcs).ParseFS(templateFiles, "templates/layout.html"))
	names, _ := fs.Glob(templateFiles, "templates/*.html")
	out := map[string]*template.Template{}
	for _, n := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if base == "layout" {
			continue
		}
		out[base] = template.Must(template.Must(layout.Clone()).ParseFS(templateFiles, n))
	}
	return out
}

// ctx bounds the API calls one page makes.
func pageContext(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), 30*time.Second)
}
