package ui_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/authgatetest"
	"github.com/authgate/authgate/sandbox"
	"github.com/authgate/authgate/server"
)

// browser is an HTTP client with a cookie jar that does not follow
// redirects, so tests see each answer.
type browser struct {
	t    *testing.T
	base string
	hc   *http.Client
}

func newBrowser(t *testing.T, base string) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, base: base, hc: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *browser) get(path string) (int, string) {
	b.t.Helper()
	u := path
	if strings.HasPrefix(path, "/") {
		u = b.base + path
	}
	resp, err := b.hc.Get(u)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// post sends a form; header overrides (an empty value deletes).
func (b *browser) post(path string, form url.Values, header map[string]string) (int, string) {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, b.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", b.base)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	for k, v := range header {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := b.hc.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// signIn mints a login link for client's tenant and opens it.
func signIn(t *testing.T, env *authgatetest.Env, client *authgate.Client) (*browser, string) {
	t.Helper()
	l, err := client.CreateConsoleLoginLink(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(l.URL, env.URL+"/ui/login/agl_") {
		t.Fatalf("login link %q is not under %s/ui/login/", l.URL, env.URL)
	}
	b := newBrowser(t, env.URL)
	if code, page := b.get(l.URL); code != http.StatusOK || !strings.Contains(page, `action="/ui/login/agl_`) {
		t.Fatalf("opening the login link answered %d; want 200 and a sign-in button:\n%s", code, page)
	}
	if code, _ := b.post(strings.TrimPrefix(l.URL, env.URL), nil, nil); code != http.StatusSeeOther {
		t.Fatalf("pressing sign-in answered %d; want 303 to the console", code)
	}
	return b, l.URL
}

var csrfRe = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func csrfOf(t *testing.T, page string) string {
	t.Helper()
	m := csrfRe.FindStringSubmatch(page)
	if m == nil {
		t.Fatal("page has no CSRF field")
	}
	return m[1]
}

// TestLoginLinkOpensOnce: a link signs one browser in, sets a session
// cookie that scripts cannot read and cross-site posts do not carry, and
// never works again.
func TestLoginLinkOpensOnce(t *testing.T) {
	t.Parallel()
	env := authgatetest.Start(t, authgatetest.Options{})
	env.Connect(t, authgatetest.ConnectParams{UserID: "alice", Provider: "google", Actions: []string{"drive.files.list"}, Choice: sandbox.Choice{Account: "alice@acme.example"}})
	l, err := env.Client.CreateConsoleLoginLink(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, l.URL, nil)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", env.URL)
	resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var ck *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "authgate_console" {
			ck = c
		}
	}
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/" || ck == nil {
		t.Fatalf("login answered %d to %q with cookie %v", resp.StatusCode, resp.Header.Get("Location"), ck)
	}
	if !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/ui/" || ck.Secure {
		t.Fatalf("session cookie %+v: want HttpOnly, SameSite=Lax, Path=/ui/, not Secure on plain http", ck)
	}
	b := newBrowser(t, env.URL)
	u, _ := url.Parse(env.URL + "/ui/")
	b.hc.Jar.SetCookies(u, []*http.Cookie{{Name: ck.Name, Value: ck.Value}})
	code, page := b.get("/ui/")
	if code != 200 || !strings.Contains(page, "alice@acme.example") {
		t.Fatalf("connections page %d does not show the tenant's account:\n%s", code, page)
	}
	// The same link again, from another browser: not signed in.
	again := newBrowser(t, env.URL)
	if code, page := again.post(strings.TrimPrefix(l.URL, env.URL), nil, nil); code != http.StatusUnauthorized || !strings.Contains(page, "does not work any more") {
		t.Fatalf("second use of a login link answered %d:\n%s", code, page)
	}
	if code, _ := again.get("/ui/"); code != http.StatusUnauthorized {
		t.Fatalf("after a refused second use, /ui/ answered %d; want 401", code)
	}
	// Logging out ends the session for good.
	if code, _ := b.post("/ui/logout", url.Values{"csrf": {csrfOf(t, page)}}, nil); code != 200 {
		t.Fatalf("logout answered %d", code)
	}
	b.hc.Jar.SetCookies(u, []*http.Cookie{{Name: ck.Name, Value: ck.Value}})
	if code, _ := b.get("/ui/"); code != http.StatusUnauthorized {
		t.Fatalf("the logged-out session still opens /ui/ (%d)", code)
	}
	// A second link opened in a signed-in browser replaces its session:
	// the old cookie no longer signs anyone in.
	b2, _ := signIn(t, env, env.Client)
	first := b2.hc.Jar.Cookies(u)
	l2, err := env.Client.CreateConsoleLoginLink(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if code, _ := b2.post(strings.TrimPrefix(l2.URL, env.URL), nil, nil); code != http.StatusSeeOther {
		t.Fatalf("second link in a signed-in browser answered %d", code)
	}
	stale := newBrowser(t, env.URL)
	stale.hc.Jar.SetCookies(u, first)
	if code, _ := stale.get("/ui/"); code != http.StatusUnauthorized {
		t.Fatalf("the replaced session still opens /ui/ (%d)", code)
	}
	if code, _ := b2.get("/ui/"); code != 200 {
		t.Fatalf("the new session does not open /ui/ (%d)", code)
	}
	// A made-up link is no link.
	if code, _ := newBrowser(t, env.URL).post("/ui/login/agl_made-up", nil, nil); code != http.StatusUnauthorized {
		t.Fatalf("a made-up login link answered %d", code)
	}
}

// TestLoginLinkSurvivesPreviews: fetching a login link (what a chat or mail
// client does to preview or scan it) signs nobody in and leaves the link
// working; a sign-in post from another site, without an Origin or as
// text/plain is refused (else an attacker's page could sign a victim's
// browser into the attacker's tenant) and leaves it working too.
func TestLoginLinkSurvivesPreviews(t *testing.T) {
	t.Parallel()
	env := authgatetest.Start(t, authgatetest.Options{})
	l, err := env.Client.CreateConsoleLoginLink(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	path := strings.TrimPrefix(l.URL, env.URL)
	bot := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, method := range []string{http.MethodHead, http.MethodGet} {
		req, _ := http.NewRequest(method, l.URL, nil)
		req.Header.Set("User-Agent", "Slackbot-LinkExpanding 1.0")
		resp, err := bot.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || len(resp.Cookies()) != 0 {
			t.Fatalf("%s of a login link answered %d with cookies %v; want 200 and none", method, resp.StatusCode, resp.Cookies())
		}
	}
	b := newBrowser(t, env.URL)
	for _, tc := range []struct {
		name   string
		header map[string]string
		want   int
	}{
		{"cross-site origin", map[string]string{"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		{"no Origin and no Sec-Fetch-Site", map[string]string{"Origin": "", "Sec-Fetch-Site": ""}, http.StatusForbidden},
		{"text/plain body", map[string]string{"Content-Type": "text/plain"}, http.StatusUnsupportedMediaType},
	} {
		if code, _ := b.post(path, nil, tc.header); code != tc.want {
			t.Errorf("%s: sign-in post answered %d; want %d", tc.name, code, tc.want)
		}
	}
	if code, _ := b.get("/ui/"); code != http.StatusUnauthorized {
		t.Fatalf("after refused sign-ins /ui/ answered %d; want 401", code)
	}
	if code, _ := b.post(path, nil, nil); code != http.StatusSeeOther {
		t.Fatalf("the link, after previews and refused posts, answered %d; want 303", code)
	}
	if code, page := b.get("/ui/"); code != http.StatusOK {
		t.Fatalf("signed in, /ui/ answered %d:\n%s", code, page)
	}
}

// TestLoginLinkNeedsAKey: the API route refuses a caller without a key.
func TestLoginLinkNeedsAKey(t *testing.T) {
	t.Parallel()
	env := authgatetest.Start(t, authgatetest.Options{})
	_, err := authgate.NewClient(env.URL, "ag_wrong").CreateConsoleLoginLink(context.Background())
	var ae *authgate.Error
	if !asError(err, &ae) || ae.Class != authgate.ClassUnauthorized {
		t.Fatalf("login link without a valid key = %v; want unauthorized", err)
	}
}

func asError(err error, target **authgate.Error) bool {
	e, ok := err.(*authgate.Error)
	if ok {
		*target = e
	}
	return ok
}

// TestStateChangesNeedCSRFAndOrigin: a form post without the CSRF token,
// with another origin, with no origin at all, as text/plain or to another
// Host is refused and changes nothing; the same post done right works.
func TestStateChangesNeedCSRFAndOrigin(t *testing.T) {
	t.Parallel()
	env := authgatetest.Start(t, authgatetest.Options{})
	cred := env.Connect(t, authgatetest.ConnectParams{UserID: "alice", Provider: "google", Actions: []string{"drive.files.list"}, Choice: sandbox.Choice{Account: "alice@acme.example"}})
	b, _ := signIn(t, env, env.Client)
	_, page := b.get("/ui/")
	csrf := csrfOf(t, page)
	path := "/ui/credentials/" + string(cred.ID) + "/disconnect"
	good := url.Values{"csrf": {csrf}}
	for _, tc := range []struct {
		name   string
		form   url.Values
		header map[string]string
		want   int
	}{
		{"no CSRF token", url.Values{}, nil, http.StatusForbidden},
		{"wrong CSRF token", url.Values{"csrf": {"x" + csrf}}, nil, http.StatusForbidden},
		{"cross-site origin", good, map[string]string{"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		{"origin sharing a prefix", good, map[string]string{"Origin": env.URL + ".evil.example"}, http.StatusForbidden},
		{"same-site but not same-origin", good, map[string]string{"Sec-Fetch-Site": "same-site"}, http.StatusForbidden},
		{"no Origin and no Sec-Fetch-Site", good, map[string]string{"Origin": "", "Sec-Fetch-Site": ""}, http.StatusForbidden},
		{"text/plain body", good, map[string]string{"Content-Type": "text/plain"}, http.StatusUnsupportedMediaType},
		{"another Host", good, map[string]string{"Host": "evil.example"}, http.StatusForbidden},
	} {
		req := tc.header
		if h, ok := req["Host"]; ok {
			// Host is not a header to net/http: send it by hand.
			r, _ := http.NewRequest(http.MethodPost, env.URL+path, strings.NewReader(tc.form.Encode()))
			r.Host = h
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r.Header.Set("Origin", env.URL)
			r.Header.Set("Sec-Fetch-Site", "same-origin")
			for _, c := range b.hc.Jar.Cookies(r.URL) {
				r.AddCookie(c) // the client's jar sends none to a foreign Host
			}
			resp, err := http.DefaultTransport.RoundTrip(r)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("%s: %d; want %d", tc.name, resp.StatusCode, tc.want)
			}
			continue
		}
		if code, _ := b.post(path, tc.form, req); code != tc.want {
			t.Errorf("%s: %d; want %d", tc.name, code, tc.want)
		}
	}
	if c, err := env.Client.Credential(context.Background(), cred.ID); err != nil || c.Status != authgate.CredentialStatusActive {
		t.Fatalf("after refused posts the credential is %v, %v; want it untouched (active)", c.Status, err)
	}
	if code, _ := b.post(path, good, nil); code != http.StatusSeeOther {
		t.Fatalf("a proper disconnect answered %d; want 303", code)
	}
	if c, _ := env.Client.Credential(context.Background(), cred.ID); c.Status != authgate.CredentialStatusRevoked {
		t.Fatalf("after the proper post the credential is %s; want revoked", c.Status)
	}
}

// TestTenantsSeeOnlyTheirOwn: a session of one tenant sees nothing of
// another's credentials, events or runs, even by id.
func TestTenantsSeeOnlyTheirOwn(t *testing.T) {
	t.Parallel()
	env := authgatetest.Start(t, authgatetest.Options{})
	cred := env.Connect(t, authgatetest.ConnectParams{UserID: "alice", Provider: "google", Actions: []string{"drive.files.list"}, Choice: sandbox.Choice{Account: "alice@acme.example"}})
	run, err := env.Client.CreateRun(context.Background(), authgate.RunCreateRequest{Workflow: "custom", UserID: "alice", Bindings: map[string]authgate.CredentialID{"google": cred.ID}, Actions: []string{"drive.files.list"}})
	if err != nil {
		t.Fatal(err)
	}
	// The owner sees both.
	owner, _ := signIn(t, env, env.Client)
	if _, page := owner.get("/ui/"); !strings.Contains(page, string(cred.ID)) {
		t.Fatal("the owning tenant does not see its credential")
	}
	if code, page := owner.get("/ui/runs"); code != 200 || !strings.Contains(page, string(run.ID)) {
		t.Fatalf("the owning tenant does not see its run (%d)", code)
	}
	other, _ := env.NewTenant(t, "globex")
	b, _ := signIn(t, env, other)
	for _, path := range []string{"/ui/", "/ui/runs", "/ui/webhooks", "/ui/runs?state=running", "/ui/sandbox"} {
		code, page := b.get(path)
		if code != 200 {
			t.Fatalf("%s answered %d", path, code)
		}
		for _, leak := range []string{string(cred.ID), string(run.ID), "alice@acme.example", cred.AccessTokenFingerprint} {
			if strings.Contains(page, leak) {
				t.Fatalf("%s shows another tenant's %q", path, leak)
			}
		}
	}
	for _, path := range []string{"/ui/credentials/" + string(cred.ID), "/ui/runs/" + string(run.ID)} {
		if code, page := b.get(path); code != http.StatusNotFound || strings.Contains(page, "alice@acme.example") {
			t.Fatalf("%s answered %d to another tenant; want 404 and nothing of it", path, code)
		}
	}
	_, page := b.get("/ui/")
	if code, _ := b.post("/ui/credentials/"+string(cred.ID)+"/disconnect", url.Values{"csrf": {csrfOf(t, page)}}, nil); code != http.StatusNotFound {
		t.Fatalf("another tenant's disconnect answered %d; want 404", code)
	}
	if c, _ := env.Client.Credential(context.Background(), cred.ID); c.Status != authgate.CredentialStatusActive {
		t.Fatalf("another tenant's disconnect changed the credential to %s", c.Status)
	}
}

// TestPagesRender: every page renders for a signed-in tenant with data,
// and none carries the access or refresh token (their fingerprints only).
func TestPagesRender(t *testing.T) {
	t.Parallel()
	env := authgatetest.Start(t, authgatetest.Options{})
	cred := env.Connect(t, authgatetest.ConnectParams{UserID: "alice", Provider: "google", Actions: []string{"drive.files.list"}, Choice: sandbox.Choice{Account: "alice@acme.example"}})
	tok, err := env.Client.Token(context.Background(), cred.ID, authgate.TokenRequest{})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := signIn(t, env, env.Client)
	_, home := b.get("/ui/")
	csrf := csrfOf(t, home)
	pages := []string{home}
	for _, path := range []string{"/ui/credentials/" + string(cred.ID), "/ui/runs", "/ui/webhooks", "/ui/sandbox"} {
		code, page := b.get(path)
		if code != 200 {
			t.Fatalf("%s answered %d:\n%s", path, code, page)
		}
		pages = append(pages, page)
	}
	for _, action := range []string{"verify", "diagnose"} {
		code, page := b.post("/ui/credentials/"+string(cred.ID)+"/"+action, url.Values{"csrf": {csrf}}, nil)
		if code != 200 || !strings.Contains(page, "erdict") {
			t.Fatalf("%s answered %d without a verdict:\n%s", action, code, page)
		}
		pages = append(pages, page)
	}
	// Reconnect sends this browser to a connect link for the credential.
	req, _ := http.NewRequest(http.MethodPost, env.URL+"/ui/credentials/"+string(cred.ID)+"/reconnect", strings.NewReader(url.Values{"csrf": {csrf}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", env.URL)
	resp, err := b.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, env.URL+"/connect/") {
		t.Fatalf("reconnect answered %d to %q; want 303 to a connect link", resp.StatusCode, loc)
	}
	if !strings.Contains(pages[1], "<svg") || !strings.Contains(pages[1], "token_issued") && !strings.Contains(pages[1], "token issued") {
		t.Fatal("the credential page has no chart or no token_issued event")
	}
	for i, p := range pages {
		if strings.Contains(p, tok.AccessToken) {
			t.Fatalf("page %d renders the access token", i)
		}
	}
}

// TestSecureCookieBehindHTTPS: published at an https URL, the session
// cookie is Secure, and a post must come from that origin.
func TestSecureCookieBehindHTTPS(t *testing.T) {
	t.Parallel()
	const public = "https://auth.example.test"
	env := authgatetest.Start(t, authgatetest.Options{Configure: func(c *server.Config) { c.PublicURL = public }})
	l, err := env.Client.CreateConsoleLoginLink(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	path, ok := strings.CutPrefix(l.URL, public)
	if !ok {
		t.Fatalf("login link %q is not under the public URL %s", l.URL, public)
	}
	req, _ := http.NewRequest(http.MethodPost, env.URL+path, nil)
	req.Host = "auth.example.test"
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", public)
	resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cs := resp.Cookies()
	if resp.StatusCode != http.StatusSeeOther || len(cs) != 1 || !cs[0].Secure || !cs[0].HttpOnly {
		t.Fatalf("login behind HTTPS answered %d with cookies %+v; want one Secure, HttpOnly cookie", resp.StatusCode, cs)
	}
}
