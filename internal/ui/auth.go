package ui

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"log/slog"
	"mime"
	"net/http"
	"strings"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/internal/storage"
)

const (
	// cookieName holds the session token; the database holds its hash.
	cookieName = "authgate_console"
	// csrfField is the form field every state-changing form carries.
	csrfField = "csrf"
	// maxForm caps a form body: the console's forms are a few fields.
	maxForm = 16 << 10
	// loginPrefix marks a login-link token, so a pasted one is recognisable.
	loginPrefix = "agl_"
)

// session is a signed-in browser.
type session struct {
	Tenant authgate.TenantID
	// CSRF is the token forms carry: derived one-way from the session
	// token, so a page that shows it reveals nothing that signs anyone in.
	CSRF string
	hash []byte
}

func newToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func hashToken(tok string) []byte {
	h := sha256.Sum256([]byte(tok))
	return h[:]
}

func csrfFor(sessionToken string) string {
	h := sha256.Sum256([]byte("authgate console csrf\x00" + sessionToken))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// LoginLink mints a one-time sign-in link for tenant, valid for LinkTTL.
// Only the hash of its token is stored.
func (c *Console) LoginLink(ctx context.Context, tenant authgate.TenantID, createdBy string) (authgate.ConsoleLoginLink, error) {
	tok := loginPrefix + newToken()
	now := c.cfg.Clock.Now().UTC()
	l := &storage.ConsoleLoginLink{Hash: hashToken(tok), TenantID: tenant, CreatedBy: createdBy, CreatedAt: now, ExpiresAt: now.Add(c.cfg.LinkTTL)}
	if err := c.cfg.Store.ConsoleLoginLinkInsert(ctx, l); err != nil {
		return authgate.ConsoleLoginLink{}, err
	}
	// Each mint also prunes what has expired: there is no other writer of
	// these tables, so they cannot grow past what is live.
	if err := c.cfg.Store.ConsoleDeleteExpired(ctx, now); err != nil {
		c.cfg.Logger.WarnContext(ctx, "prune expired console links and sessions", slog.String("error", err.Error()))
	}
	return authgate.ConsoleLoginLink{URL: c.publicURL().String() + "/ui/login/" + tok, ExpiresAt: l.ExpiresAt}, nil
}

// loginPage answers a GET or HEAD of a login link with a page whose one
// button posts the link back; it consumes nothing. Chat and mail clients
// fetch a pasted link to preview it (Slack's unfurler, Outlook's safe-links
// scanner): were a GET the sign-in, the first such fetch would burn the
// link and walk away with a 12-hour admin session cookie.
func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	tok := r.PathValue("token")
	if !strings.HasPrefix(tok, loginPrefix) || len(tok) >= 100 {
		w.WriteHeader(http.StatusUnauthorized)
		c.render(w, r, nil, "signin", "Sign in", signinPage{Used: true})
		return
	}
	c.render(w, r, nil, "signin", "Sign in", signinPage{Confirm: "/ui/login/" + tok})
}

// login signs a browser in with a login link, posted from the console's own
// sign-in page (a cross-site post would sign the victim's browser into the
// attacker's tenant): the link is consumed (once, whoever is first), a
// session is stored and its cookie set, and the browser lands on the
// connections page with the token gone from its address bar.
func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	if err := c.checkSameOrigin(r); err != nil {
		c.cfg.Logger.WarnContext(r.Context(), "console refused a sign-in post", slog.String("reason", err.Detail))
		c.renderError(w, r, nil, err)
		return
	}
	tok := r.PathValue("token")
	now := c.cfg.Clock.Now().UTC()
	var l *storage.ConsoleLoginLink
	err := storage.ErrNotFound // a malformed token is no link at all
	if strings.HasPrefix(tok, loginPrefix) && len(tok) < 100 {
		l, err = c.cfg.Store.ConsoleLoginLinkConsume(r.Context(), storage.ConsoleLoginLinkConsumeParams{Hash: hashToken(tok), Now: now})
	}
	if err != nil {
		if !errors.Is(err, storage.ErrNotFound) {
			c.renderError(w, r, nil, err)
			return
		}
		w.WriteHeader(http.StatusUnauthorized)
		c.render(w, r, nil, "signin", "Sign in", signinPage{Used: true})
		return
	}
	st := newToken()
	s := &storage.ConsoleSession{Hash: hashToken(st), TenantID: l.TenantID, CreatedAt: now, ExpiresAt: now.Add(c.cfg.SessionTTL)}
	if err := c.cfg.Store.ConsoleSessionInsert(r.Context(), s); err != nil {
		c.renderError(w, r, nil, err)
		return
	}
	// A browser signed in before gets the new session in place of the
	// old one, which ends now rather than at its expiry.
	if old, err := r.Cookie(cookieName); err == nil && old.Value != "" && len(old.Value) <= 100 {
		if err := c.cfg.Store.ConsoleSessionDelete(r.Context(), hashToken(old.Value)); err != nil {
			c.cfg.Logger.WarnContext(r.Context(), "end the replaced console session", slog.String("error", err.Error()))
		}
	}
	c.cfg.Logger.InfoContext(r.Context(), "console sign-in", slog.String("tenant_id", string(l.TenantID)), slog.String("link_created_by", l.CreatedBy))
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: st, Path: "/ui/", Expires: s.ExpiresAt, HttpOnly: true, Secure: c.secure(), SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, "/ui/", http.StatusSeeOther)
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request, s *session) error {
	if err := c.cfg.Store.ConsoleSessionDelete(r.Context(), s.hash); err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/ui/", MaxAge: -1, HttpOnly: true, Secure: c.secure(), SameSite: http.SameSiteLaxMode})
	w.WriteHeader(http.StatusOK)
	c.render(w, r, nil, "signin", "Signed out", signinPage{SignedOut: true})
	return nil
}

type signinPage struct {
	Used, SignedOut bool
	// Confirm is the login link the page's button posts to.
	Confirm string
}

// authedFunc is a console handler for a signed-in browser.
type authedFunc func(w http.ResponseWriter, r *http.Request, s *session) error

// authed requires a live session; for anything but GET and HEAD it also
// requires a same-origin form post carrying the session's CSRF token.
func (c *Console) authed(h authedFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := c.sessionOf(r)
		if err != nil {
			if !errors.Is(err, storage.ErrNotFound) {
				c.renderError(w, r, nil, err)
				return
			}
			w.WriteHeader(http.StatusUnauthorized)
			c.render(w, r, nil, "signin", "Sign in", signinPage{})
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			if err := c.checkWrite(w, r, s); err != nil {
				c.cfg.Logger.WarnContext(r.Context(), "console refused a state-changing request", slog.String("path", r.URL.Path), slog.String("reason", err.Detail))
				c.renderError(w, r, s, err)
				return
			}
		}
		if err := h(w, r, s); err != nil {
			c.renderError(w, r, s, err)
		}
	})
}

func (c *Console) sessionOf(r *http.Request) (*session, error) {
	ck, err := r.Cookie(cookieName)
	if err != nil || ck.Value == "" || len(ck.Value) > 100 {
		return nil, storage.ErrNotFound
	}
	st, err := c.cfg.Store.ConsoleSessionGet(r.Context(), storage.ConsoleSessionGetParams{Hash: hashToken(ck.Value), Now: c.cfg.Clock.Now().UTC()})
	if err != nil {
		return nil, err
	}
	return &session{Tenant: st.TenantID, CSRF: csrfFor(ck.Value), hash: st.Hash}, nil
}

// checkWrite is what a state-changing request must pass, in order: it is
// an HTML form post (a text/plain or JSON body is what a cross-site page
// can forge without a preflight, and the console sends neither), it comes
// from the console's own origin (Origin, else Sec-Fetch-Site, must say so:
// a request saying neither is refused), it is addressed to the console's
// host, and it carries the session's CSRF token.
func (c *Console) checkWrite(w http.ResponseWriter, r *http.Request, s *session) *authgate.Error {
	if err := c.checkSameOrigin(r); err != nil {
		return err
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		return authgate.Errorf(authgate.ClassInvalidRequest, "the form could not be read")
	}
	got := r.PostForm.Get(csrfField)
	if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(s.CSRF)) != 1 {
		return authgate.Errorf(authgate.ClassForbidden, "the form's security token is missing or stale; reload the page and try again")
	}
	return nil
}

// checkSameOrigin is checkWrite without the CSRF token: an HTML form post
// from the console's own origin, addressed to its host.
func (c *Console) checkSameOrigin(r *http.Request) *authgate.Error {
	forbidden := func(why string) *authgate.Error { return authgate.Errorf(authgate.ClassForbidden, "%s", why) }
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return authgate.Errorf(authgate.ClassUnsupportedMedia, "the console accepts only its own HTML forms (application/x-www-form-urlencoded)")
	}
	pub := c.publicURL()
	if origin := r.Header.Get("Origin"); origin != "" {
		if !sameOrigin(origin, pub.Scheme, pub.Host) {
			return forbidden("this request came from another site; the console accepts forms from its own pages only")
		}
	} else if r.Header.Get("Sec-Fetch-Site") != "same-origin" {
		return forbidden("this request does not say it came from the console's own pages (no Origin header)")
	}
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" {
		return forbidden("this request came from another site; the console accepts forms from its own pages only")
	}
	if !strings.EqualFold(r.Host, pub.Host) {
		return forbidden("this request was addressed to another host than the console's")
	}
	return nil
}

// sameOrigin compares an Origin header with the console's scheme and host,
// parsed, never by prefix.
func sameOrigin(origin, scheme, host string) bool {
	u, err := parseOrigin(origin)
	if err != nil {
		return false
	}
	return strings.EqualFold(u.Scheme, scheme) && strings.EqualFold(u.Host, host)
}
