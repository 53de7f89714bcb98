package api

import (
	"cmp"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/internal/broker"
	"github.com/authgate/authgate/internal/tenancy"
)

func (a *API) createConnectSession(w http.ResponseWriter, r *http.Request, p tenancy.Principal) error {
	var b authgate.ConnectSessionRequest
	if err := decodeJSON(w, r, 16<<10, &b); err != nil {
		return err
	}
	if b.CredentialID != "" && !b.CredentialID.Valid() {
		return authgate.Errorf(authgate.ClassInvalidRequest, "credential_id must be a credential id")
	}
	user, err := p.User(b.UserID)
	if err != nil {
		return err
	}
	if b.CredentialID != "" {
		if err := a.ownCredential(r.Context(), p, b.CredentialID); err != nil {
			return err
		}
	}
	s, err := a.broker.CreateSession(r.Context(), broker.SessionParams{TenantID: p.TenantID, UserID: user, Provider: b.Provider, Actions: b.Actions, Scopes: b.Scopes,
		CredentialID: b.CredentialID, LoginHint: b.LoginHint, ReturnURL: b.ReturnURL, ForceConsent: b.ForceConsent, ExpectedAccount: b.ExpectedAccount})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, authgate.ConnectSession{ID: s.ID, ConnectURL: s.ConnectURL, ExpiresAt: s.ExpiresAt, Provider: s.Provider,
		Scopes: nonNil(s.Scopes), ExpectedAccount: s.ExpectedAccount})
}

func (a *API) listProviders(w http.ResponseWriter, r *http.Request, p tenancy.Principal) error {
	out := []authgate.Provider{}
	for _, name := range a.providers.Names() {
		pr, _ := a.providers.Get(name)
		var actions []string
		for act := range pr.Actions {
			actions = append(actions, act)
		}
		slices.Sort(actions)
		out = append(out, authgate.Provider{Name: pr.Name, DisplayName: pr.DisplayName, Kind: string(pr.Kind), Sandbox: pr.Sandbox, RotatesRefreshTokens: pr.RotatesRefreshTokens, Actions: nonNil(actions), APIURLs: pr.APIURLs, ActionScopes: pr.Actions})
	}
	return writeJSON(w, http.StatusOK, map[string]any{"providers": out})
}

// connectRedirect is the browser leg: the connect link sends the user to the
// provider with a single-use state.
func (a *API) connectRedirect(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("session")
	// Chat apps and mail scanners fetch links before people do. The first
	// browser to open a link owns it, so those fetches must not open it:
	// HEAD and known link-preview agents get a page, not the flow.
	if r.Method == http.MethodHead {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		return nil
	}
	if isLinkPreview(r.UserAgent()) {
		a.page(w, http.StatusOK, "Sign-in link", "This link lets you connect an account for an app. Open it in your browser to continue.")
		return nil
	}
	var have string
	if c, err := r.Cookie(broker.CookieName(id)); err == nil {
		have = c.Value
	}
	u, bind, err := a.broker.AuthorizeURL(r.Context(), id, have)
	if err != nil {
		var ae *authgate.Error
		if errors.As(err, &ae) {
			a.page(w, ae.Status, "Cannot continue", ae.Detail)
			return nil
		}
		return err
	}
	if bind != "" {
		// Lax: sent on the provider's top-level redirect back to us, never
		// on a cross-site subrequest; HttpOnly: no script reads it.
		http.SetCookie(w, &http.Cookie{Name: broker.CookieName(id), Value: bind, Path: "/", MaxAge: int(a.broker.TTL().Seconds()),
			HttpOnly: true, Secure: a.broker.SecureCookies(), SameSite: http.SameSiteLaxMode})
	}
	noReferrer(w)
	http.Redirect(w, r, u, http.StatusFound)
	return nil
}

// getConnectSession is the authenticated outcome of a flow: the status and
// credential_id on the return URL are hints anyone can type.
func (a *API) getConnectSession(w http.ResponseWriter, r *http.Request, p tenancy.Principal) error {
	st, err := a.broker.Status(r.Context(), p.TenantID, r.PathValue("id"))
	if err == nil && !p.Owns(st.UserID) {
		return authgate.Errorf(authgate.ClassNotFound, "no connect session %s", r.PathValue("id"))
	}
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, authgate.ConnectSessionStatus{ID: st.ID, State: st.State, Provider: st.Provider, UserID: st.UserID, CredentialID: st.CredentialID,
		MissingScopes: nonNil(st.MissingScopes), Error: st.ErrorClass, ErrorCode: st.ErrorCode, ExpiresAt: st.ExpiresAt, Opened: st.Opened})
}

// noReferrer keeps codes and states in our URLs out of Referer headers.
func noReferrer(w http.ResponseWriter) {
	w.Header().Set("Referrer-Policy", "no-referrer")
}

// oauthCallback finishes a connect flow: back to the app's return_url with
// the outcome in the query, or a page for the user.
func (a *API) oauthCallback(w http.ResponseWriter, r *http.Request) error {
	noReferrer(w)
	res, err := a.broker.Callback(r.Context(), r.URL.Query(), func(name string) string {
		if c, err := r.Cookie(name); err == nil {
			return c.Value
		}
		return ""
	})
	var ce *broker.CallbackError
	sid := ""
	if res != nil {
		sid = res.SessionID
	} else if errors.As(err, &ce) {
		sid = ce.SessionID
	}
	if sid != "" { // the flow is over: the binding cookie has done its job
		http.SetCookie(w, &http.Cookie{Name: broker.CookieName(sid), Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: a.broker.SecureCookies(), SameSite: http.SameSiteLaxMode})
	}
	if err != nil {
		if !errors.As(err, &ce) {
			return err
		}
		if ce.ReturnURL != "" {
			redirectWith(w, r, ce.ReturnURL, url.Values{"status": {cmp.Or(ce.Outcome, broker.OutcomeError)}, "error": {string(ce.Problem.Class)}, "error_code": {ce.Code},
				"error_description": {ce.Problem.Detail}, "credential_id": {string(ce.Problem.CredentialID)}})
			return nil
		}
		if wantsJSON(r) {
			return ce.Problem
		}
		title := "Not connected"
		if ce.Outcome == broker.OutcomeCanceled {
			title = "Canceled"
		}
		a.page(w, ce.Problem.Class.Status(), title, ce.Problem.Detail)
		return nil
	}
	if res.ReturnURL != "" {
		v := url.Values{"status": {"connected"}, "credential_id": {string(res.Credential.ID)}}
		if len(res.Missing) > 0 {
			v.Set("status", "partial")
			v.Set("missing_scopes", strings.Join(res.Missing, " "))
		}
		redirectWith(w, r, res.ReturnURL, v)
		return nil
	}
	if wantsJSON(r) {
		return writeJSON(w, http.StatusOK, authgate.ConnectResult{Credential: res.Credential, Created: res.Created, RequestedScopes: nonNil(res.Requested),
			GrantedScopes: nonNil(res.Granted), MissingScopes: nonNil(res.Missing), Provider: res.Provider, ConnectSessionID: res.SessionID})
	}
	msg := "Connected " + displayName(res.Provider) + " as " + cmp.Or(res.Credential.Account.Email, res.Credential.Account.Subject) + ". You can close this window; the app continues by itself."
	if len(res.Missing) > 0 {
		msg = "Connected " + displayName(res.Provider) + ", but without " + strings.Join(res.Missing, ", ") + ", which the app needs. Reconnect and allow every permission."
	}
	a.page(w, http.StatusOK, "Connected", msg)
	return nil
}

func wantsJSON(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "application/json")
}

func redirectWith(w http.ResponseWriter, r *http.Request, base string, extra url.Values) {
	u, err := url.Parse(base)
	if err != nil {
		http.Error(w, "bad return_url", http.StatusBadRequest)
		return
	}
	q := u.Query()
	for k, vs := range extra {
		if len(vs) > 0 && vs[0] != "" {
			q.Set(k, vs[0])
		}
	}
	u.RawQuery = q.Encode()
	http.Redirect(w, r, u.String(), http.StatusFound)
}

var pageTmpl = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}} · authgate</title>
<style>body{font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem}</style></head>
<body><h1>{{.Title}}</h1><p id="message">{{.Message}}</p></body></html>
`))

// page is what a person sees on the browser legs of a flow.
func (a *API) page(w http.ResponseWriter, status int, title, message string) {
	htmlSecurityHeaders(w.Header())
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = pageTmpl.Execute(w, map[string]string{"Title": title, "Message": message})
}

// htmlSecurityHeaders goes on every HTML page: no script, no framing (no
// clickjacking of a consent or result page), no MIME sniffing, no Referer.
func htmlSecurityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
}

// linkPreviewAgents are User-Agent fragments of link unfurlers and mail
// scanners (lower case).
var linkPreviewAgents = []string{"bot", "preview", "facebookexternalhit", "whatsapp", "slack", "skypeuripreview", "embedly", "iframely",
	"vkshare", "pinterest", "outlook", "microsoft office", "google-pagerenderer", "mattermost", "linkexpander", "redditbot", "teams"}

// isLinkPreview reports whether ua looks like something that fetches links
// to preview or scan them rather than a person's browser.
func isLinkPreview(ua string) bool {
	ua = strings.ToLower(ua)
	for _, frag := range linkPreviewAgents {
		if strings.Contains(ua, frag) {
			return true
		}
	}
	return false
}
