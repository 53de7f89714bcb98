package ui

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/sandbox"
	"github.com/authgate/authgate/sandbox/fault"
	"github.com/authgate/authgate/workflow/demo"
)

// faultButton is one fault the panel injects with one click.
type faultButton struct {
	Fault fault.Name
	Label string
	Help  string
}

// panelProvider is one provider's section of the panel.
type panelProvider struct {
	Name         string
	Buttons      []faultButton
	DefaultScope string
	Counters     sandbox.Counters
}

type sandboxPage struct {
	Providers []panelProvider
	Faults    []fault.Active
	DemoUser  string
	// DemoConnect are the Connect buttons for the demo's three providers.
	DemoConnect []struct{ Name, Actions string }
	// Done says what the last click did ("revoke on google").
	Done string
}

// demoProviders are the bindings of the demo workflow, with the actions
// the Connect buttons ask for.
var demoProviders = []struct{ Name, Actions string }{
	{"google", "drive.files.list docs.documents.create docs.documents.get docs.documents.update"},
	{"notion", "notion.read notion.insert"},
	{"slack", "slack.chat.post"},
}

// defaultDropScope is the scope "drop scope" takes away, per provider: one
// the demo needs, so the effect shows.
var defaultDropScope = map[string]string{
	"google": "https://www.googleapis.com/auth/drive.file",
	"notion": "insert_content",
	"slack":  "chat:write",
	"oidc":   "email",
}

func faultButtons(provider string) []faultButton {
	b := []faultButton{
		{fault.Revoke, "Revoke", "the user removes the app's access"},
		{fault.ExpireAccessTokens, "Expire tokens", "every live access token expires now"},
		{fault.DropScope, "Drop scope", "the grant loses the scope below"},
	}
	switch provider {
	case "google":
		b = append(b, faultButton{fault.AdminPolicy, "Admin policy", "the Workspace admin blocks the app"})
	case "notion":
		b = append(b, faultButton{fault.Unshare, "Unshare Tasks", "the Tasks database is no longer shared with the integration"})
	}
	return append(b,
		faultButton{fault.InvalidGrantNext, "invalid_grant next", "the next refresh answers invalid_grant"},
		faultButton{fault.ClockOffset, "Clock skew +10 min", "the provider's clock runs 10 minutes ahead"},
		faultButton{fault.RateLimit, "429 burst", "the next 5 requests are rate limited"},
		faultButton{fault.ServerError, "5xx burst", "the next 5 requests fail with 503"},
		faultButton{fault.Latency, "Latency", "the next 5 requests take 1.5 s longer"},
	)
}

func (c *Console) sandboxPanel(w http.ResponseWriter, r *http.Request, s *session) error {
	sb := c.cfg.Sandbox
	counters := sb.Counters()
	p := sandboxPage{Faults: sb.Faults(), DemoUser: "demo-user", DemoConnect: demoProviders}
	// Only a known provider and fault are echoed: the query string is not
	// a place to put words on the console's page.
	q := r.URL.Query()
	if name := fault.Name(q.Get("fault")); slices.Contains(sb.Providers(), q.Get("provider")) && (slices.Contains(fault.Names, name) || name == "clear") {
		p.Done = string(name) + " on " + q.Get("provider")
	}
	for _, name := range sb.Providers() {
		p.Providers = append(p.Providers, panelProvider{Name: name, Buttons: faultButtons(name), DefaultScope: defaultDropScope[name], Counters: counters[name]})
	}
	c.render(w, r, s, "sandbox", "Sandbox", p)
	return nil
}

// injectFault arms or applies one fault (or clears a provider's faults),
// then returns to the panel.
func (c *Console) injectFault(w http.ResponseWriter, r *http.Request, s *session) error {
	f := r.PostForm
	provider := f.Get("provider")
	if !slices.Contains(c.cfg.Sandbox.Providers(), provider) {
		return authgate.Errorf(authgate.ClassInvalidRequest, "unknown sandbox provider %q", provider)
	}
	done := "/ui/sandbox?" + url.Values{"provider": {provider}, "fault": {f.Get("fault")}}.Encode()
	if f.Get("fault") == "clear" {
		c.cfg.Sandbox.ClearFaults(provider)
		http.Redirect(w, r, done, http.StatusSeeOther)
		return nil
	}
	spec := sandbox.Fault{Provider: provider, Fault: fault.Name(f.Get("fault")), Account: strings.TrimSpace(f.Get("account"))}
	switch spec.Fault {
	case fault.DropScope:
		spec.Scope = strings.TrimSpace(f.Get("scope"))
	case fault.Unshare:
		spec.Resource = c.cfg.Sandbox.Notion().ObjectID("", "Tasks")
	case fault.ClockOffset:
		spec.OffsetSeconds = 600
	case fault.RateLimit:
		spec.Count, spec.RetryAfterSeconds = 5, 1
	case fault.ServerError:
		spec.Count = 5
	case fault.Latency:
		spec.Count, spec.LatencyMS = 5, 1500
	}
	if err := c.cfg.Sandbox.InjectFault(spec); err != nil {
		return authgate.Errorf(authgate.ClassInvalidRequest, "the sandbox refused the fault: %s", err.Error())
	}
	c.cfg.Logger.InfoContext(r.Context(), "console injected a sandbox fault", "tenant_id", string(s.Tenant), "provider", provider, "fault", string(spec.Fault))
	http.Redirect(w, r, done, http.StatusSeeOther)
	return nil
}

// startDemo starts the demo workflow (the server runs it) for a user whose
// Google, Notion and Slack are connected, and shows its run.
func (c *Console) startDemo(w http.ResponseWriter, r *http.Request, s *session) error {
	user := strings.TrimSpace(r.PostForm.Get("user_id"))
	if user == "" {
		return authgate.Errorf(authgate.ClassInvalidRequest, "choose the user whose connections the demo uses")
	}
	api := c.cfg.Client(s.Tenant)
	creds, err := allCredentials(r, api, authgate.CredentialFilter{UserID: user})
	if err != nil {
		return err
	}
	bindings := map[string]authgate.CredentialID{}
	var missing []string
	for _, p := range demoProviders {
		for _, cr := range creds {
			// Prefer an active credential; a blocked one still binds, and
			// the run's preflight says what is wrong with it.
			if cr.Provider == p.Name && cr.Status != authgate.CredentialStatusRevoked && (bindings[p.Name] == "" || cr.Status == authgate.CredentialStatusActive) {
				bindings[p.Name] = cr.ID
			}
		}
		if bindings[p.Name] == "" {
			missing = append(missing, p.Name)
		}
	}
	if len(missing) > 0 {
		return authgate.Errorf(authgate.ClassInvalidRequest, "connect %s for user %s first (Connections page)", strings.Join(missing, ", "), user)
	}
	sb := c.cfg.Sandbox
	targets, _ := json.Marshal(authgate.VerifyTargets{NotionDatabase: sb.Notion().ObjectID("", "Tasks"), SlackChannel: sb.Slack().ChannelID("", "general")})
	run, err := api.CreateRun(r.Context(), authgate.RunCreateRequest{Workflow: demo.Name, UserID: user, Bindings: bindings, Actions: demo.Actions, Targets: targets})
	if err != nil {
		return err
	}
	http.Redirect(w, r, "/ui/runs/"+string(run.ID), http.StatusSeeOther)
	return nil
}
