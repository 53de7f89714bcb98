package oauthcore

import (
	"html/template"
	"net/http"
	"net/url"
	"strings"
)

// ConsentPage is what the emulated provider's consent screen shows. The
// markup is stable (form action, input names) so a test helper can drive it
// without a browser, and plain enough for a person in a browser.
type ConsentPage struct {
	Provider   string // e.g. "Google"
	ClientName string
	Action     string // where the form posts
	PendingID  string
	Account    string // prefilled email
	Accounts   []string
	// Scopes are shown as checkboxes, ticked; unticking grants fewer
	// (granular consent). Fixed scopes are listed but cannot be unticked.
	Scopes      []string
	FixedScopes []string
	// Workspace asks for a workspace (Notion, Slack) when AskWorkspace.
	AskWorkspace bool
	Workspace    string
	// Resources are pages/databases to share (Notion's page picker).
	Resources []Resource
}

// Resource is one shareable item on the consent page.
type Resource struct{ ID, Title, Kind string }

var consentTmpl = template.Must(template.New("consent").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Provider}} sandbox: sign in</title>
<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem}fieldset{margin:1rem 0}label{display:block;margin:.3rem 0}.note{color:#666;font-size:.9rem}</style></head>
<body>
<h1>{{.Provider}} (authgate sandbox)</h1>
<p><strong>{{.ClientName}}</strong> wants to access your account.</p>
<form method="post" action="{{.Action}}" id="consent">
<input type="hidden" name="pending" value="{{.PendingID}}">
<label>Account (email) <input type="email" name="account" value="{{.Account}}" list="accounts" required></label>
<datalist id="accounts">{{range .Accounts}}<option value="{{.}}">{{end}}</datalist>
{{if .AskWorkspace}}<label>Workspace <input type="text" name="workspace" value="{{.Workspace}}"></label>{{end}}
{{if or .Scopes .FixedScopes}}<fieldset><legend>Permissions</legend>
{{range .FixedScopes}}<label><input type="checkbox" checked disabled> {{.}}</label>{{end}}
{{range .Scopes}}<label><input type="checkbox" name="scope" value="{{.}}" checked> {{.}}</label>{{end}}
</fieldset>{{end}}
{{if .Resources}}<fieldset><legend>Pages to share</legend>
{{range .Resources}}<label><input type="checkbox" name="resource" value="{{.ID}}" checked> {{.Title}} <span class="note">({{.Kind}})</span></label>{{end}}
</fieldset>{{end}}
<button type="submit" name="decision" value="approve">Allow</button>
<button type="submit" name="decision" value="deny">Cancel</button>
</form>
<p class="note">A sandbox account is created for any email you type.</p>
</body></html>
`))

// RenderConsent writes the consent page.
func RenderConsent(w http.ResponseWriter, p ConsentPage) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_ = consentTmpl.Execute(w, p)
}

// ErrorPage writes a provider-hosted error page: some authorization errors
// never reach the client's redirect URI (Google's admin_policy_enforced,
// redirect_uri_mismatch); the user sees this instead.
func ErrorPage(w http.ResponseWriter, status int, provider, code, message string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_ = errTmpl.Execute(w, map[string]any{"Provider": provider, "Status": status, "Code": code, "Message": message})
}

var errTmpl = template.Must(template.New("err").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Error {{.Status}}: {{.Code}}</title></head>
<body><h1>{{.Provider}}: access blocked</h1><p id="error">Error {{.Status}}: {{.Code}}</p><p>{{.Message}}</p></body></html>
`))

// ConsentSubmission is a submitted consent form that chose Allow.
type ConsentSubmission struct {
	// Params is the original authorization request.
	Params url.Values
	Client *Client
	// Account is the typed account (an email where the provider needs one).
	Account string
	Form    url.Values
}

// ConsentOptions says how one provider treats its consent form.
type ConsentOptions struct {
	Provider string // shown on error pages
	// RequireEmail refuses an account that is not an email address.
	RequireEmail bool
	// DenyDescription is sent as error_description with access_denied.
	DenyDescription string
}

// ReadConsent handles what every provider's consent form shares: the pending
// request, its client, the Cancel button (access_denied back to the client,
// with its state) and the account field. It reports false after answering
// the request itself.
func (s *Server) ReadConsent(w http.ResponseWriter, r *http.Request, o ConsentOptions) (*ConsentSubmission, bool) {
	if err := r.ParseForm(); err != nil {
		ErrorPage(w, http.StatusBadRequest, o.Provider, "invalid_request", "Malformed form.")
		return nil, false
	}
	q, ok := s.TakePending(r.PostForm.Get("pending"))
	if !ok {
		ErrorPage(w, http.StatusBadRequest, o.Provider, "invalid_request", "This sign-in request expired or was already used. Start again from the app.")
		return nil, false
	}
	client, err := s.Client(q.Get("client_id"))
	if err != nil {
		ErrorPage(w, http.StatusUnauthorized, o.Provider, "invalid_client", "The OAuth client was not found.")
		return nil, false
	}
	if r.PostForm.Get("decision") == "deny" {
		v := url.Values{"error": {"access_denied"}}
		if o.DenyDescription != "" {
			v.Set("error_description", o.DenyDescription)
		}
		if st := q.Get("state"); st != "" {
			v.Set("state", st)
		}
		RedirectWith(w, r, q.Get("redirect_uri"), v)
		return nil, false
	}
	account := strings.TrimSpace(r.PostForm.Get("account"))
	if account == "" || (o.RequireEmail && !strings.Contains(account, "@")) {
		ErrorPage(w, http.StatusBadRequest, o.Provider, "invalid_request", "Enter an email address.")
		return nil, false
	}
	return &ConsentSubmission{Params: q, Client: client, Account: account, Form: r.PostForm}, true
}

// PageError is a provider-hosted error page's status, code and message.
type PageError struct {
	Status        int
	Code, Message string
}

// AuthorizeOptions carries a provider's own texts for the errors every
// authorization endpoint checks first.
type AuthorizeOptions struct {
	Provider      string
	UnknownClient PageError
	BadRedirect   PageError
}

// AuthorizeRequest is a validated authorization request.
type AuthorizeRequest struct {
	Params   url.Values
	Client   *Client
	Redirect string
}

// StartAuthorize does what every authorization endpoint does first: the
// client must exist and the redirect URI must be one of its own. Errors about
// either are shown on the provider's page and never reach the redirect URI
// (RFC 6749 §4.1.2.1). It reports false after answering the request itself.
func (s *Server) StartAuthorize(w http.ResponseWriter, r *http.Request, o AuthorizeOptions) (*AuthorizeRequest, bool) {
	if len(r.URL.RawQuery) > MaxAuthorizeQuery {
		// Providers' front ends refuse such URLs before any OAuth logic.
		http.Error(w, "414. The requested URL is too large to process.", http.StatusRequestURITooLong)
		return nil, false
	}
	q := r.URL.Query()
	client, err := s.Client(q.Get("client_id"))
	if err != nil {
		ErrorPage(w, o.UnknownClient.Status, o.Provider, o.UnknownClient.Code, o.UnknownClient.Message)
		return nil, false
	}
	redirect := q.Get("redirect_uri")
	if !client.RedirectAllowed(redirect) {
		ErrorPage(w, o.BadRedirect.Status, o.Provider, o.BadRedirect.Code, o.BadRedirect.Message)
		return nil, false
	}
	return &AuthorizeRequest{Params: q, Client: client, Redirect: redirect}, true
}

// Back sends the user agent to the client's redirect URI with v and the
// request's state.
func (a *AuthorizeRequest) Back(w http.ResponseWriter, r *http.Request, v url.Values) {
	if st := a.Params.Get("state"); st != "" {
		v.Set("state", st)
	}
	RedirectWith(w, r, a.Redirect, v)
}

// MaxAuthorizeQuery bounds an authorization request's query string (bytes).
const MaxAuthorizeQuery = 8 << 10
