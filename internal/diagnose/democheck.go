package diagnose

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/connector/gdocs"
	"github.com/authgate/authgate/connector/gdrive"
	"github.com/authgate/authgate/connector/notion"
	"github.com/authgate/authgate/internal/clock"
	"github.com/authgate/authgate/workflow/demo"
)

// DemoCheckActions are what the demo does with each provider: the connect
// asks for them and the scope check requires them.
var DemoCheckActions = map[string][]string{
	"google": {"drive.files.list", "drive.files.create", "docs.documents.create", "docs.documents.get", "docs.documents.update"},
	"notion": {"notion.read", "notion.insert"},
}

// DemoCheckParallel is how many token requests the concurrency check
// makes at once.
const DemoCheckParallel = 50

// DemoCheckOptions says what to check and where.
type DemoCheckOptions struct {
	// ServerURL and APIKey reach the running server.
	ServerURL, APIKey string
	// User is the demo's user id; Account the account they must sign in
	// with ("" = the one they used last).
	User, Account string
	// Providers to check (google, notion).
	Providers []string
	// Folder is the Drive folder the Doc is written into, Database the
	// Notion database a row is added to.
	Folder, Database string
	// Wait bounds each sign-in.
	Wait time.Duration
	// Clock tells the time (default the wall clock).
	Clock clock.Clock
}

// demoChecker runs the checklist and collects its items.
type demoChecker struct {
	o        DemoCheckOptions
	c        *authgate.Client
	hc       *http.Client
	sandbox  bool
	apis     demo.Options
	progress io.Writer
	rep      authgate.DemoCheck
	// verified is the live verification (the same checks the doctor runs)
	// of the credential just connected: the account item reads its
	// identity, the scopes item its scope diff and verdict.
	verified    authgate.Verification
	verifiedErr error
}

func (d *demoChecker) add(provider, name string, err error, evidence, fix string) bool {
	it := authgate.DemoCheckItem{Provider: provider, Name: name, Status: authgate.CheckPass, Evidence: evidence}
	if err != nil {
		it.Status, it.Evidence, it.Fix = authgate.CheckFail, ticketLine(err), fix
		var ae *authgate.Error
		if it.Fix == "" && errors.As(err, &ae) {
			it.Fix = ae.ReconnectURL
		}
		d.rep.Failed++
	} else {
		d.rep.Passed++
	}
	d.rep.Items = append(d.rep.Items, it)
	return err == nil
}

// RunDemoCheck runs the pre-demo checklist through a running server;
// connect links and waits go to progress. An error means it could not run.
func RunDemoCheck(ctx context.Context, o DemoCheckOptions, progress io.Writer) (authgate.DemoCheck, error) {
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	for _, p := range o.Providers {
		if DemoCheckActions[p] == nil {
			return authgate.DemoCheck{}, fmt.Errorf("provider %q: democheck knows google and notion", p)
		}
	}
	d := &demoChecker{o: o, c: authgate.NewClient(o.ServerURL, o.APIKey), hc: &http.Client{Timeout: 30 * time.Second}, progress: progress,
		rep: authgate.DemoCheck{Server: o.ServerURL, UserID: o.User, Providers: o.Providers, Items: []authgate.DemoCheckItem{}}}
	// The server must answer with this key before anything is disconnected.
	if _, err := d.c.Credentials(ctx, authgate.CredentialFilter{UserID: o.User}); err != nil {
		return d.rep, fmt.Errorf("server %s: %w", o.ServerURL, err)
	}
	if resp, err := d.hc.Get(o.ServerURL + "/sandbox/admin/providers"); err == nil {
		resp.Body.Close()
		d.sandbox = resp.StatusCode == http.StatusOK
	}
	if d.sandbox {
		d.apis = demo.Sandbox(o.ServerURL)
	}
	d.rep.Sandbox = d.sandbox
	for _, p := range o.Providers {
		id, ok := d.reconnect(ctx, p)
		if !ok {
			continue
		}
		if !d.scopes(p) {
			continue
		}
		switch p {
		case "google":
			d.googleDoc(ctx, id)
			d.refresh(ctx, id)
		case "notion":
			d.notion(ctx, id)
		}
	}
	d.rep.OK = d.rep.Failed == 0
	d.rep.CheckedAt = d.o.Clock.Now().UTC()
	return d.rep, nil
}

// reconnect disconnects the user's credentials for p, connects afresh and
// confirms the account.
func (d *demoChecker) reconnect(ctx context.Context, p string) (authgate.CredentialID, bool) {
	page, err := d.c.Credentials(ctx, authgate.CredentialFilter{UserID: d.o.User, Provider: p})
	account := d.o.Account
	removed := 0
	if err == nil {
		for _, cr := range page.Credentials {
			account = cmp.Or(account, cr.Account.Email)
			if _, err = d.c.DeleteCredential(ctx, cr.ID); err != nil {
				break
			}
			removed++
		}
	}
	if !d.add(p, "disconnect", err, fmt.Sprintf("removed %d credential(s) of user %s", removed, d.o.User), "") {
		return "", false
	}
	id, how, err := d.connect(ctx, p, cmp.Or(account, "demo@acme.example"))
	fix := ""
	if err != nil && strings.Contains(err.Error(), "admin_policy") {
		fix = "the Workspace admin must allow this OAuth client (Admin console → Security → API controls), or the demo signs in with another account"
	}
	if !d.add(p, "connect", err, fmt.Sprintf("connected %s (%s)", id, how), fix) {
		return "", false
	}
	cr, err := d.c.Credential(ctx, id)
	if err == nil && cr.Account.Subject == "" {
		err = errors.New("the credential carries no provider identity")
	}
	if err == nil && account != "" && !strings.EqualFold(cr.Account.Email, account) {
		err = fmt.Errorf("signed in as %s, the demo expects %s", dash(cr.Account.Email), account)
	}
	ev := fmt.Sprintf("%s · %s account", dash(cr.Account.Email), cmp.Or(string(cr.Account.Type), "unknown"))
	if cr.Account.Domain != "" {
		ev += " · domain " + cr.Account.Domain
	}
	if cr.WorkspaceID != "" {
		ev += " · workspace " + cr.WorkspaceID
	}
	// Who the provider says the token is, live: verify's identity check.
	d.verified, d.verifiedErr = d.c.Verify(ctx, id, authgate.VerifyRequest{Actions: DemoCheckActions[p]})
	switch {
	case err != nil || d.verifiedErr != nil:
	case !d.verified.IdentityMatchesStored:
		err = fmt.Errorf("the provider says the token is %s, not the account stored", dash(d.verified.Identity.Label))
	case d.verified.Identity.Subject != "" || d.verified.Identity.Label != "":
		ev += " · confirmed live"
	}
	return id, d.add(p, "account", err, ev, "sign in with "+account+" (use a browser profile signed into that account only)")
}

// connect creates a connect session, prints its link and waits for the
// sign-in; on a sandbox server it signs in itself.
func (d *demoChecker) connect(ctx context.Context, p, account string) (authgate.CredentialID, string, error) {
	s, err := d.c.CreateConnectSession(ctx, authgate.ConnectSessionRequest{UserID: d.o.User, Provider: p, Actions: DemoCheckActions[p]})
	if err != nil {
		return "", "", err
	}
	fmt.Fprintf(d.progress, "connect %s: open %s\n", p, s.ConnectURL)
	how := "signed in in a browser"
	if d.sandbox {
		if err := SandboxSignIn(ctx, s.ConnectURL, account); err != nil {
			return "", "", fmt.Errorf("sandbox consent: %w", err)
		}
		how = "sandbox consent as " + account
	} else {
		fmt.Fprintf(d.progress, "waiting up to %s for the sign-in…\n", d.o.Wait)
	}
	wait := d.o.Wait
	if d.sandbox {
		wait = min(wait, 10*time.Second) // the callback has been answered by now
	}
	deadline := d.o.Clock.Now().Add(wait)
	for {
		st, err := d.c.ConnectSessionStatus(ctx, s.ID)
		if err != nil {
			return "", "", err
		}
		switch st.State {
		case authgate.ConnectStateConnected:
			return st.CredentialID, how, nil
		case authgate.ConnectStatePartial:
			return st.CredentialID, how, fmt.Errorf("the grant lacks %s: tick every permission on the consent page", strings.Join(st.MissingScopes, " "))
		case authgate.ConnectStatePending:
		default:
			return "", "", fmt.Errorf("the sign-in ended %s %s", st.State, cmp.Or(st.ErrorCode, st.Error))
		}
		if d.o.Clock.Now().After(deadline) {
			return "", "", fmt.Errorf("nobody signed in within %s", wait)
		}
		select {
		case <-ctx.Done():
			return "", "", ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// scopes reports the live verification's scope diff for the demo's
// actions (run once, in reconnect).
func (d *demoChecker) scopes(p string) bool {
	v, err := d.verified, d.verifiedErr
	if err == nil && len(v.Scopes.Missing) > 0 {
		err = fmt.Errorf("missing %s", strings.Join(v.Scopes.Missing, " "))
	}
	if err == nil && v.Verdict == authgate.VerdictFail {
		err = errors.New(v.Summary)
	}
	return d.add(p, "scopes", err, fmt.Sprintf("%d required scope(s) granted; live checks %s", len(v.Scopes.Required), v.Verdict), v.ReconnectURL)
}

func (d *demoChecker) tokenSource(ctx context.Context, p string, id authgate.CredentialID) oauth2.TokenSource {
	return d.c.TokenSource(ctx, id, authgate.TokenRequest{Actions: DemoCheckActions[p]})
}

// googleDoc creates a Doc in the target folder, reads it back, appends a
// line, reads that back, and deletes it.
func (d *demoChecker) googleDoc(ctx context.Context, id authgate.CredentialID) {
	ts := d.tokenSource(ctx, "google", id)
	where := "My Drive"
	var parents []string
	if d.o.Folder != "" {
		where, parents = "folder "+d.o.Folder, []string{d.o.Folder}
	}
	err := func() error {
		dr, err := gdrive.New(ctx, ts, gdrive.Options{Endpoint: d.apis.Drive})
		if err != nil {
			return err
		}
		dc, err := gdocs.New(ctx, ts, gdocs.Options{Endpoint: d.apis.Docs, DriveEndpoint: d.apis.Drive})
		if err != nil {
			return err
		}
		title := "authgate democheck " + d.o.Clock.Now().UTC().Format(time.RFC3339)
		f, err := dr.CreateGoogleDoc(ctx, title, "authgate democheck\n", parents...)
		if err != nil {
			return fmt.Errorf("create in %s: %w", where, err)
		}
		doc, err := dc.Get(ctx, f.Id)
		if err != nil {
			return fmt.Errorf("read back %s: %w", f.Id, err)
		}
		if doc.Title != title {
			return fmt.Errorf("read back %s: title %q, want %q", f.Id, doc.Title, title)
		}
		line := "updated by authgate democheck\n"
		if err := dc.AppendText(ctx, f.Id, line); err != nil {
			return fmt.Errorf("update %s: %w", f.Id, err)
		}
		if doc, err = dc.Get(ctx, f.Id); err != nil || !strings.Contains(gdocs.Text(doc), line) {
			return fmt.Errorf("the update of %s did not read back (%v)", f.Id, err)
		}
		_ = dr.Delete(ctx, f.Id) // the check's own file; a leftover is harmless
		return nil
	}()
	d.add("google", "doc", err, "created, read back and updated a Google Doc in "+where,
		"share the folder with the signed-in account and create it through the app (drive.file sees only what the app created or was opened with)")
}

// refresh forces one refresh the way a provider 401 does, from 50
// parallel callers that all report the same token rejected, and reports two
// items: "refresh" (a new token that the provider accepts) and
// "concurrency" (exactly one refresh, read from the lifecycle events). One
// burst serves both because the server refuses a second forced refresh of
// a token fetched under 2 s ago (one broken worker must not rotate a
// credential in a loop).
func (d *demoChecker) refresh(ctx context.Context, id authgate.CredentialID) {
	var before authgate.AccessToken
	var fresh, after string
	refreshes, last := 0, int64(0)
	burstErr := func() error {
		var err error
		if last, err = d.lastEventID(ctx, id); err != nil {
			return err
		}
		if before, err = d.c.Token(ctx, id, authgate.TokenRequest{}); err != nil {
			return err
		}
		toks, err := d.burst(ctx, id, before.Fingerprint)
		if err != nil {
			return fmt.Errorf("forced refresh: %w", err)
		}
		fresh, after = toks[0].AccessToken, toks[0].Fingerprint
		fps := make([]string, 0, len(toks))
		for _, t := range toks {
			fps = append(fps, t.Fingerprint)
		}
		slices.Sort(fps)
		if fps = slices.Compact(fps); len(fps) != 1 || fps[0] == before.Fingerprint {
			return fmt.Errorf("the %d callers got %d distinct tokens (%s)", DemoCheckParallel, len(fps), strings.Join(fps, " "))
		}
		return nil
	}()
	err := burstErr
	if err == nil {
		var dr *gdrive.Client
		if dr, err = gdrive.New(ctx, oauth2.StaticTokenSource(&oauth2.Token{AccessToken: fresh, TokenType: "Bearer"}), gdrive.Options{Endpoint: d.apis.Drive}); err == nil {
			if _, err = dr.List(ctx, gdrive.ListParams{PageSize: 1, Fields: "files(id)"}); err != nil {
				err = fmt.Errorf("the refreshed token %s: %w", after, err)
			}
		}
	}
	d.add("google", "refresh", err, fmt.Sprintf("forced refresh: token %s → %s; Drive accepts the new one", before.Fingerprint, after),
		"the refresh token does not work: reconnect, and check the OAuth client is not in testing mode (7-day refresh tokens)")
	err, fix := burstErr, ""
	if err != nil {
		err = errors.New("not checked: the forced refresh failed")
	} else {
		fix = "run every instance against one database: refreshes are single-flight only within one store"
		refreshes, err = d.countRefreshes(ctx, id, last)
		if err == nil && refreshes != 1 {
			err = fmt.Errorf("%d parallel token requests caused %d refreshes (lifecycle events), want exactly 1", DemoCheckParallel, refreshes)
		}
	}
	d.add("google", "concurrency", err, fmt.Sprintf("%d parallel token requests → exactly 1 refresh (lifecycle events)", DemoCheckParallel), fix)
}

// burst makes DemoCheckParallel token requests at once, all reporting
// rejected as rejected. The server refuses to refresh a token fetched under
// 2 s ago (a fresh sign-in is one) with a transient error and a
// Retry-After: the burst honours it, at most twice.
func (d *demoChecker) burst(ctx context.Context, id authgate.CredentialID, rejected string) ([]authgate.AccessToken, error) {
	for attempt := 0; ; attempt++ {
		var wg sync.WaitGroup
		toks := make([]authgate.AccessToken, DemoCheckParallel)
		errs := make([]error, DemoCheckParallel)
		for i := range DemoCheckParallel {
			wg.Add(1)
			go func() {
				defer wg.Done()
				toks[i], errs[i] = d.c.Token(ctx, id, authgate.TokenRequest{RejectedFingerprint: rejected})
			}()
		}
		wg.Wait()
		failed, wait, cooldown := 0, time.Duration(0), true
		var first error
		for _, err := range errs {
			if err == nil {
				continue
			}
			failed++
			first = cmp.Or(first, err)
			var ae *authgate.Error
			if errors.As(err, &ae) && ae.Class == authgate.ClassTransient && ae.RetryAfter > 0 {
				wait = max(wait, time.Duration(ae.RetryAfter))
			} else {
				cooldown = false
			}
		}
		if failed == 0 {
			return toks, nil
		}
		if failed < DemoCheckParallel || !cooldown || wait > 5*time.Second || attempt == 2 {
			return nil, fmt.Errorf("%d of %d requests failed: %w", failed, DemoCheckParallel, first)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
	}
}

// countRefreshes counts refresh attempts (succeeded or failed) recorded
// after event id last.
func (d *demoChecker) countRefreshes(ctx context.Context, id authgate.CredentialID, last int64) (int, error) {
	n := 0
	for after := last; ; {
		page, err := d.c.CredentialEvents(ctx, id, after)
		if err != nil {
			return 0, err
		}
		for _, e := range page.Events {
			if e.Type == authgate.EventRefreshSucceeded || e.Type == authgate.EventRefreshFailed {
				n++
			}
		}
		if page.NextAfter == 0 || len(page.Events) == 0 {
			return n, nil
		}
		after = page.NextAfter
	}
}

// lastEventID is the id of the credential's newest event.
func (d *demoChecker) lastEventID(ctx context.Context, id authgate.CredentialID) (int64, error) {
	var last int64
	for {
		page, err := d.c.CredentialEvents(ctx, id, last)
		if err != nil {
			return 0, err
		}
		for _, e := range page.Events {
			last = max(last, e.ID)
		}
		if page.NextAfter == 0 || len(page.Events) == 0 {
			return last, nil
		}
	}
}

// notion reads the target database and adds a row to it; on a sandbox
// server without a target it uses the first database shared with the
// integration.
func (d *demoChecker) notion(ctx context.Context, id authgate.CredentialID) {
	n := notion.New(d.tokenSource(ctx, "notion", id), notion.Options{BaseURL: d.apis.Notion})
	var ds notion.Object
	var rows int
	err := func() error {
		if _, err := n.Me(ctx); err != nil {
			return fmt.Errorf("users/me: %w", err)
		}
		dsID := ""
		switch {
		case d.o.Database != "":
			db, err := n.Database(ctx, d.o.Database)
			if err != nil {
				return fmt.Errorf("database %s: %w", d.o.Database, err)
			}
			ids := notion.DataSourceIDs(db)
			if len(ids) == 0 {
				return fmt.Errorf("%s is not a database with a data source", d.o.Database)
			}
			dsID = ids[0]
		case d.sandbox:
			l, err := n.Search(ctx, notion.SearchParams{Filter: "data_source", PageSize: 1})
			if err != nil {
				return err
			}
			if len(l.Results) == 0 {
				return errors.New("no database is shared with the integration")
			}
			dsID = l.Results[0].ID()
		default:
			return errors.New("name the demo's database with --target-database")
		}
		var err error
		if ds, err = n.DataSource(ctx, dsID); err != nil {
			return err
		}
		l, err := n.Query(ctx, dsID, map[string]any{"page_size": 10})
		if err != nil {
			return err
		}
		rows = len(l.Results)
		return nil
	}()
	fix := "share the database with the integration (••• → Connections → add the app), or reconnect and pick it on the consent page"
	if !d.add("notion", "notion_read", err, fmt.Sprintf("read data source %s (%d row(s) on the first page)", ds.ID(), rows), fix) {
		return
	}
	var row notion.Object
	err = func() error {
		prop := titleProperty(ds)
		if prop == "" {
			return fmt.Errorf("data source %s has no title property", ds.ID())
		}
		var err error
		row, err = n.CreatePage(ctx, notion.Parent{Kind: notion.ParentDataSource, ID: ds.ID()},
			map[string]any{prop: notion.Title("authgate democheck " + d.o.Clock.Now().UTC().Format(time.RFC3339))["title"]}, nil)
		return err
	}()
	d.add("notion", "notion_write", err, fmt.Sprintf("created row %s", row.ID()), fix)
}

// titleProperty is the name of a data source's title property.
func titleProperty(ds notion.Object) string {
	props, _ := ds["properties"].(map[string]any)
	for name, p := range props {
		if m, ok := p.(map[string]any); ok && m["type"] == "title" {
			return name
		}
	}
	return ""
}

// ticketLine keeps an error to one line of a support ticket.
func ticketLine(err error) string {
	s := strings.Join(strings.Fields(err.Error()), " ")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// PrintDemoCheck writes the checklist short enough to paste into a ticket.
func PrintDemoCheck(w io.Writer, r authgate.DemoCheck) {
	mode := ""
	if r.Sandbox {
		mode = " (sandbox)"
	}
	fmt.Fprintf(w, "authgate democheck · %s%s · user %s\n", r.Server, mode, r.UserID)
	provider := ""
	for _, it := range r.Items {
		if it.Provider != provider {
			provider = it.Provider
			fmt.Fprintln(w, strings.ToUpper(provider))
		}
		mark := "✓"
		if it.Status != authgate.CheckPass {
			mark = "✗"
		}
		fmt.Fprintf(w, "  %s %-13s %s\n", mark, it.Name, it.Evidence)
		if it.Status != authgate.CheckPass && it.Fix != "" {
			fmt.Fprintf(w, "    fix: %s\n", it.Fix)
		}
	}
	if r.OK {
		fmt.Fprintf(w, "PASS %d/%d — ready for the demo\n", r.Passed, r.Passed)
		return
	}
	fmt.Fprintf(w, "FAIL %d of %d items — fix the ✗ items before the demo\n", r.Failed, r.Passed+r.Failed)
}

// dash shows an empty value as "-".
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
