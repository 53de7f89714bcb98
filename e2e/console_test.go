package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"

	"github.com/authgate/authgate/sandbox/oauthcore"
)

// chromium finds a Chromium to drive. Without one the console's browser
// test is skipped with one message, unless AUTHGATE_TEST_BROWSER is set
// (.ci/run sets it after installing Chromium): then it fails.
func chromium(t *testing.T) string {
	for _, name := range []string{os.Getenv("AUTHGATE_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"} {
		if name == "" {
			continue
		}
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("AUTHGATE_TEST_BROWSER") != "" {
		t.Fatal("AUTHGATE_TEST_BROWSER is set but no Chromium is on PATH (apt-get install chromium)")
	}
	t.Skip("no Chromium on PATH: the web console's browser test is skipped (apt-get install chromium; .ci/run installs it)")
	return ""
}

// artifactDir is where screenshots go: $AUTHGATE_TEST_ARTIFACTS or a
// temporary directory.
func artifactDir(t *testing.T) string {
	if d := os.Getenv("AUTHGATE_TEST_ARTIFACTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

// console drives one Chromium against a running authgate serve, keeping
// every page it saw for the plaintext hunt.
type console struct {
	t         *testing.T
	base      string
	artifacts string
	pages     map[string]string // name → HTML as rendered
}

func (c *console) do(ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	c.t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	// Keep the page after every step, not only the captured ones: the
	// token hunt covers every page the test saw.
	var err error
	for i, step := range steps {
		if err = chromedp.Do(sctx, step); err != nil {
			break
		}
		if html, herr := chromedp.Run(sctx, chromedp.OuterHTML(chromedp.CSS("html"))); herr == nil {
			c.pages[fmt.Sprintf("%s (step %d)", what, i+1)] = html
		}
	}
	if err != nil {
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		loc, _ := chromedp.Run(dctx, chromedp.Location())
		html, _ := chromedp.Run(dctx, chromedp.OuterHTML(chromedp.CSS("html")))
		c.t.Fatalf("%s: %v\nat %s:\n%s", what, err, loc, html)
	}
}

func run[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// start opens a chromedp context's tab (or browser) on that context itself:
// whatever context first runs an action owns the tab, and the per-step
// timeouts must not.
func start(t *testing.T, ctx context.Context) {
	t.Helper()
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
}

// capture saves the tab's page as name: a PNG screenshot and its HTML.
// Every form field must have a label.
func (c *console) capture(ctx context.Context, name string) string {
	c.t.Helper()
	// Chromium draws no frame for a background tab (another tab or window
	// opened since), and a screenshot would wait for one.
	if _, err := chromedp.Call(ctx, page.BringToFront, cdp.Empty{}); err != nil {
		c.t.Fatal(err)
	}
	png := run(c.t, ctx, "screenshot "+name, chromedp.FullScreenshot(100))
	if err := os.WriteFile(filepath.Join(c.artifacts, name+".png"), png, 0o644); err != nil {
		c.t.Fatal(err)
	}
	html := run(c.t, ctx, "html of "+name, chromedp.OuterHTML(chromedp.CSS("html")))
	c.pages[name] = html
	unlabelled := run(c.t, ctx, "labels on "+name, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll("input:not([type=hidden]), select, textarea"))
		.filter(e => e.labels.length === 0 && !e.getAttribute("aria-label")).map(e => e.outerHTML)`))
	if len(unlabelled) > 0 && strings.Contains(html, "authgate console") {
		c.t.Errorf("%s has form fields without a label: %v", name, unlabelled)
	}
	return html
}

// consent plays the user on the sandbox's consent page in tab ctx.
func (c *console) consent(ctx context.Context, account string) {
	c.t.Helper()
	c.do(ctx, "consent as "+account,
		chromedp.WaitVisible(chromedp.CSS(`form#consent input[name=account]`)),
		chromedp.SetValue(chromedp.CSS(`form#consent input[name=account]`), account),
		chromedp.Click(chromedp.CSS(`form#consent button[value=approve]`)),
		chromedp.WaitVisible(chromedp.CSS(`#message`)),
	)
	msg := run(c.t, ctx, "callback message", chromedp.Text(chromedp.CSS(`#message`)))
	c.t.Logf("consent as %s: %s", account, msg)
	if strings.Contains(strings.ToLower(msg), "error") || strings.Contains(strings.ToLower(msg), "refused") {
		c.t.Fatalf("the connect flow ended: %s", msg)
	}
}

var consoleLinkRe = regexp.MustCompile(`web console \(this link opens once, within 5 minutes\): (\S+)`)

// TestConsoleInBrowser drives the web console in headless Chromium against
// a real authgate serve with its sandbox: sign in with the link serve
// prints, connect Google, Notion and Slack through the sandbox's consent
// pages, run the demo, revoke Google from the sandbox panel, see the run
// blocked with its reason, reconnect from the run page and see the run
// resume and finish in the same page (no reload). A link from `authgate ui
// login-link` shows the tenant's accounts and opens only once. No page
// renders a token the sandbox issued. Screenshots of every page are saved.
func TestConsoleInBrowser(t *testing.T) {
	chrome := chromium(t)
	dir := t.TempDir()
	p := serve(t, dir)
	m := consoleLinkRe.FindStringSubmatch(p.stdout.String())
	if m == nil {
		t.Fatalf("serve with the sandbox printed no console link:\n%s", p.stdout.String())
	}
	devLink := m[1]
	c := &console{t: t, base: p.URL, artifacts: artifactDir(t), pages: map[string]string{}}
	t.Logf("screenshots in %s", c.artifacts)

	// A webhook endpoint nobody listens on: its deliveries retry.
	if r := call(t, http.DefaultClient, "POST", p.URL+"/v1/webhooks", p.AdminKey, `{"url":"http://127.0.0.1:9/hook"}`); r.status != 201 {
		t.Fatalf("add webhook: %d %s", r.status, r.body)
	}

	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chrome), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 900))
	defer cancelAlloc()
	tab, cancelTab := chromedp.NewContext(alloc)
	defer cancelTab()
	start(t, tab)

	// Sign in with the link serve printed (development mode).
	c.do(tab, "open the start-up link", chromedp.Navigate(devLink), chromedp.Click(chromedp.CSS(`#signin`)), chromedp.WaitVisible(chromedp.CSS(`nav[aria-label=Console]`)))
	if h := run(t, tab, "title", chromedp.Text(chromedp.CSS(`main h1`))); h != "Connections" {
		t.Fatalf("the start-up link landed on %q; want the connections page", h)
	}
	c.capture(tab, "connections-empty")

	// Connect the demo user's three providers through the consent pages.
	const account = "demo@acme.example"
	for _, provider := range []string{"google", "notion", "slack"} {
		c.do(tab, "open the sandbox panel", chromedp.Navigate(p.URL+"/ui/sandbox"), chromedp.Click(chromedp.CSS(`#connect-`+provider)))
		if provider == "google" {
			c.do(tab, "google consent page", chromedp.WaitVisible(chromedp.CSS(`form#consent`)))
			c.capture(tab, "sandbox-consent-google")
		}
		c.consent(tab, account)
	}
	c.do(tab, "connections", chromedp.Navigate(p.URL+"/ui/"), chromedp.WaitVisible(chromedp.CSS(`article.conn`)))
	c.capture(tab, "connections")
	if n := len(run(t, tab, "cards", chromedp.Nodes(chromedp.CSSAll(`article.conn`)))); n != 3 {
		t.Fatalf("connections page shows %d connections; want 3", n)
	}

	// `authgate ui login-link` → another browser lands on the connections
	// page with the tenant's accounts; the same link again signs no one in.
	out, errOut, code := cliEnv(t, dir, []string{"AUTHGATE_URL=" + p.URL, "AUTHGATE_API_KEY=" + p.AdminKey}, "ui", "login-link")
	if code != 0 {
		t.Fatalf("authgate ui login-link exited %d: %s", code, errOut)
	}
	link := strings.TrimSpace(out)
	other, cancelOther := chromedp.NewContext(tab, chromedp.WithNewBrowserContext())
	defer cancelOther()
	start(t, other)
	c.do(other, "open the CLI's link", chromedp.Navigate(link), chromedp.Click(chromedp.CSS(`#signin`)), chromedp.WaitVisible(chromedp.CSS(`article.conn`)))
	if txt := run(t, other, "accounts", chromedp.Text(chromedp.CSS(`main`))); !strings.Contains(txt, account) || !strings.Contains(txt, "Connections") {
		t.Fatalf("the CLI's link does not show the tenant's accounts:\n%s", txt)
	}
	third, cancelThird := chromedp.NewContext(tab, chromedp.WithNewBrowserContext())
	defer cancelThird()
	start(t, third)
	c.do(third, "open the CLI's link again", chromedp.Navigate(link), chromedp.Click(chromedp.CSS(`#signin`)), chromedp.WaitVisible(chromedp.CSS(`main .notice`)))
	if txt := run(t, third, "second use", chromedp.Text(chromedp.CSS(`main`))); !strings.Contains(txt, "does not work any more") || strings.Contains(txt, account) {
		t.Fatalf("the second use of a login link signed in:\n%s", txt)
	}
	if n := len(run(t, third, "nav", chromedp.Nodes(chromedp.CSSAll(`nav[aria-label=Console]`), chromedp.AtLeast(0)))); n != 0 {
		t.Fatal("the second use of a login link shows the signed-in navigation")
	}
	c.capture(third, "signin-link-used")
	cancelThird()
	cancelOther()

	// The demo runs to the end.
	c.do(tab, "start the demo", chromedp.Navigate(p.URL+"/ui/sandbox"), chromedp.Click(chromedp.CSS(`#start-demo`)),
		chromedp.WaitVisible(chromedp.CSS(`#run-live[data-state=succeeded]`)))
	c.capture(tab, "run-succeeded")

	// Revoke Google from the sandbox panel; the next demo run blocks.
	c.do(tab, "revoke google", chromedp.Navigate(p.URL+"/ui/sandbox"), chromedp.Click(chromedp.CSS(`#fault-google-revoke`)), chromedp.WaitVisible(chromedp.CSS(`#flash`)))
	if done := run(t, tab, "flash", chromedp.Text(chromedp.CSS(`#flash`))); done != "Done: revoke on google." {
		t.Fatalf("after the revoke click the panel says %q", done)
	}
	c.capture(tab, "sandbox")
	c.do(tab, "start the demo again", chromedp.Click(chromedp.CSS(`#start-demo`)), chromedp.WaitVisible(chromedp.CSS(`#run-live[data-state=blocked_on_auth]`)))
	reason := run(t, tab, "reason", chromedp.Text(chromedp.CSS(`.blocked`)))
	if !strings.Contains(reason, "google") || !strings.Contains(strings.ToLower(reason), "reconnect") {
		t.Fatalf("the blocked run does not say why in words:\n%s", reason)
	}
	if n := len(run(t, tab, "blocked entry", chromedp.Nodes(chromedp.CSSAll(`.timeline .is-blocked`)))); n == 0 {
		t.Fatal("the timeline does not highlight the blocked entry")
	}
	c.capture(tab, "run-blocked")
	runURL := run(t, tab, "location", chromedp.Location())

	// Mark this document: a reload would lose the mark.
	c.do(tab, "mark the page", chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.__sameDocument = true`))
		return err
	}))
	// Click Reconnect: the link opens in a new tab, where the user consents.
	opened := chromedp.WaitNewTarget(tab, func(i *target.Info) bool { return i.Type == "page" })
	c.do(tab, "click reconnect", chromedp.Click(chromedp.CSS(`#reconnect-link`)))
	var newTab target.ID
	select {
	case newTab = <-opened:
	case <-time.After(30 * time.Second):
		t.Fatal("clicking Reconnect opened no tab")
	}
	reconnectTab, cancelReconnect := chromedp.NewContext(tab, chromedp.WithTargetID(newTab))
	defer cancelReconnect()
	start(t, reconnectTab)
	c.consent(reconnectTab, account)
	c.capture(reconnectTab, "reconnected")
	cancelReconnect() // the user closes their tab

	// The run page, untouched, follows the resume to the end.
	c.do(tab, "the run resumes and finishes", chromedp.WaitVisible(chromedp.CSS(`#run-live[data-state=succeeded]`)))
	if same := run(t, tab, "same document", chromedp.Evaluate[bool](`window.__sameDocument === true`)); !same {
		t.Fatal("the run page was reloaded; it should follow the run in place")
	}
	if loc := run(t, tab, "location", chromedp.Location()); loc != runURL {
		t.Fatalf("the run page navigated to %s", loc)
	}
	timeline := run(t, tab, "timeline", chromedp.Text(chromedp.CSS(`.timeline`)))
	if !strings.Contains(timeline, "resumed") || !strings.Contains(timeline, "blocked") {
		t.Fatalf("the timeline does not show the block and the resume:\n%s", timeline)
	}
	c.capture(tab, "run-resumed")

	// The other pages.
	c.do(tab, "runs", chromedp.Navigate(p.URL+"/ui/runs"), chromedp.WaitVisible(chromedp.CSS(`table.runs`)))
	c.capture(tab, "runs")
	c.do(tab, "blocked filter", chromedp.Navigate(p.URL+"/ui/runs?state=blocked_on_auth"), chromedp.WaitVisible(chromedp.CSS(`table.runs`)))
	c.capture(tab, "runs-blocked-filter")
	c.do(tab, "google's events", chromedp.Navigate(p.URL+"/ui/"), chromedp.Click(chromedp.CSS(`article.status-active a[href^="/ui/credentials/"]`)),
		chromedp.WaitVisible(chromedp.CSS(`svg.chart`)))
	c.capture(tab, "credential-events")
	defer func() {
		if t.Failed() {
			for _, l := range strings.Split(p.stderr.String(), "\n") {
				if strings.Contains(l, "/ui/") || strings.Contains(l, "diagnose") || strings.Contains(l, "level\":\"WARN") || strings.Contains(l, "ERROR") {
					t.Log(l)
				}
			}
		}
	}()
	// By keyboard: focus the button and press Enter.
	c.do(tab, "diagnose", chromedp.Focus(chromedp.CSS(`#diagnose-now`)), chromedp.KeyEvent("\r"), chromedp.WaitVisible(chromedp.CSS(`.diagnosis .verdict`)))
	c.capture(tab, "credential-diagnosis")
	c.do(tab, "webhooks", chromedp.Navigate(p.URL+"/ui/webhooks"), chromedp.WaitVisible(chromedp.CSS(`main table`)))
	c.capture(tab, "webhooks")
	if n := len(run(t, tab, "deliveries", chromedp.Nodes(chromedp.CSSAll(`tr.delivery-pending, tr.delivery-retrying`), chromedp.AtLeast(0)))); n == 0 {
		t.Error("the webhooks page lists no undelivered delivery for the endpoint nobody listens on")
	}
	c.do(tab, "connections", chromedp.Navigate(p.URL+"/ui/"), chromedp.WaitVisible(chromedp.CSS(`article.conn`)))
	c.capture(tab, "connections-after")

	// A phone-width viewport: nothing wider than the screen.
	for _, page := range []string{"/ui/", runURL} {
		if !strings.HasPrefix(page, "http") {
			page = p.URL + page
		}
		c.do(tab, "mobile "+page, chromedp.EmulateViewport(390, 844), chromedp.Navigate(page), chromedp.WaitVisible(chromedp.CSS(`main h1`)))
		if over := run(t, tab, "overflow", chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth + 1`)); over {
			t.Errorf("%s is wider than a 390 px screen", page)
		}
	}
	c.capture(tab, "run-mobile")

	// Keyboard: Tab from the top reaches the skip link, then the console's
	// links, each with a visible focus outline.
	c.do(tab, "keyboard", chromedp.EmulateViewport(1280, 900), chromedp.Navigate(p.URL+"/ui/"), chromedp.WaitVisible(chromedp.CSS(`main h1`)), chromedp.KeyEvent("\t"))
	if f := run(t, tab, "focus", chromedp.Evaluate[string](`document.activeElement.textContent`)); f != "Skip to content" {
		t.Errorf("the first Tab focuses %q; want the skip link", f)
	}

	// The tokens the server hands out, and every token the sandbox holds
	// (its state file, written at shutdown), appear on no page.
	var secrets []string
	r := call(t, http.DefaultClient, "GET", p.URL+"/v1/credentials", p.AdminKey, "")
	var list struct {
		Credentials []struct {
			ID string `json:"id"`
		} `json:"credentials"`
	}
	if err := json.Unmarshal([]byte(r.body), &list); err != nil {
		t.Fatal(err)
	}
	for _, cr := range list.Credentials {
		tr := call(t, http.DefaultClient, "POST", p.URL+"/v1/credentials/"+cr.ID+"/token", p.AdminKey, `{}`)
		var tok struct {
			AccessToken string `json:"access_token"`
		}
		if err := json.Unmarshal([]byte(tr.body), &tok); err == nil && tok.AccessToken != "" {
			secrets = append(secrets, tok.AccessToken)
		}
	}
	p.stop(t)
	secrets = append(secrets, sandboxTokens(t, filepath.Join(dir, "authgate.db.sandbox.json"))...)
	if len(secrets) < 6 {
		t.Fatalf("found only %d token values to hunt for; the hunt would prove little", len(secrets))
	}
	fingerprints := 0
	for name, html := range c.pages {
		for _, s := range secrets {
			if len(s) >= 8 && strings.Contains(html, s) {
				t.Errorf("page %s renders a token (%s…)", name, s[:6])
			}
			sum := sha256.Sum256([]byte(s))
			if strings.Contains(html, hex.EncodeToString(sum[:])[:10]) {
				fingerprints++
			}
		}
	}
	// The pages do show these tokens' fingerprints: the hunt looked for
	// the right values.
	if fingerprints == 0 {
		t.Fatal("no page shows the fingerprint of any hunted token: the hunt compared against the wrong values")
	}
	t.Logf("hunted %d token values over %d pages", len(secrets), len(c.pages))
}

// sandboxTokens reads every access and refresh token value from a sandbox
// state file.
func sandboxTokens(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Servers map[string]oauthcore.State `json:"servers"`
	}
	if err := json.Unmarshal(data, &st); err != nil {
		t.Fatalf("sandbox state: %v", err)
	}
	var out []string
	for _, s := range st.Servers {
		for _, g := range s.Grants {
			out = append(out, g.Refresh...)
		}
		for _, f := range s.Families {
			for _, tk := range append(f.Access, f.Refresh...) {
				out = append(out, tk.Value)
			}
		}
	}
	if len(out) == 0 {
		t.Fatal(fmt.Errorf("the sandbox state file %s holds no token", path))
	}
	return out
}
