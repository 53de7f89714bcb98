package ui

import (
	"cmp"
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/authgate/authgate"
)

// connRow is one credential on the connections page.
type connRow struct {
	C authgate.Credential
	// Required are the actions the credential was connected for, each with
	// the scopes that allow it and the granted one that does (if any).
	Required []requirement
	// Missing are the scopes to ask for (the first alternative of each
	// action not allowed): what a Reconnect asks for.
	Missing []string
	// Workspace is the domain, team or workspace the account belongs to.
	Workspace string
}

// requirement is one action a credential must allow.
type requirement struct {
	Action    string
	Scopes    []string
	GrantedBy string
}

type connectionsPage struct {
	Rows      []connRow
	Providers []authgate.Provider
}

// rowOf compares granted scopes with what the credential was asked for,
// action by action through the provider's catalog (GET /v1/providers):
// Google answers "email" with userinfo.email, which allows the same
// actions, and must not show as missing. An action counts as required when
// the scope a connect link asks for it (its first alternative) was requested.
func rowOf(cr authgate.Credential, providers []authgate.Provider) connRow {
	r := connRow{C: cr, Workspace: cmp.Or(cr.Account.Domain, cr.WorkspaceID)}
	i := slices.IndexFunc(providers, func(p authgate.Provider) bool { return p.Name == cr.Provider })
	if i < 0 {
		return r
	}
	p := providers[i]
	actions := slices.Sorted(maps.Keys(p.ActionScopes))
	for _, a := range actions {
		alts := p.ActionScopes[a]
		if len(alts) == 0 || !slices.Contains(cr.RequestedScopes, alts[0]) {
			continue
		}
		req := requirement{Action: a, Scopes: alts}
		for _, s := range alts {
			if slices.Contains(cr.GrantedScopes, s) {
				req.GrantedBy = s
				break
			}
		}
		if req.GrantedBy == "" && !slices.Contains(r.Missing, alts[0]) {
			r.Missing = append(r.Missing, alts[0])
		}
		r.Required = append(r.Required, req)
	}
	return r
}

// allCredentials reads every credential of the tenant through the API,
// page by page (a console for one tenant's operator: hundreds, not millions).
func allCredentials(r *http.Request, api *authgate.Client, f authgate.CredentialFilter) ([]authgate.Credential, error) {
	var out []authgate.Credential
	f.Limit = 200
	for range 50 {
		page, err := api.Credentials(r.Context(), f)
		if err != nil {
			return nil, err
		}
		out = append(out, page.Credentials...)
		if page.NextAfter == "" {
			break
		}
		f.After = page.NextAfter
	}
	return out, nil
}

func (c *Console) connections(w http.ResponseWriter, r *http.Request, s *session) error {
	api := c.cfg.Client(s.Tenant)
	creds, err := allCredentials(r, api, authgate.CredentialFilter{})
	if err != nil {
		return err
	}
	slices.SortStableFunc(creds, func(a, b authgate.Credential) int {
		return cmp.Or(cmp.Compare(a.UserID, b.UserID), cmp.Compare(a.Provider, b.Provider), cmp.Compare(a.ID, b.ID))
	})
	p := connectionsPage{}
	if p.Providers, err = api.Providers(r.Context()); err != nil {
		return err
	}
	for _, cr := range creds {
		p.Rows = append(p.Rows, rowOf(cr, p.Providers))
	}
	c.render(w, r, s, "connections", "Connections", p)
	return nil
}

// connect starts a connect flow for a user and provider and sends this
// browser to it (the connect link is bound to the browser that opens it).
func (c *Console) connect(w http.ResponseWriter, r *http.Request, s *session) error {
	user, provider := strings.TrimSpace(r.PostForm.Get("user_id")), r.PostForm.Get("provider")
	if user == "" || provider == "" {
		return authgate.Errorf(authgate.ClassInvalidRequest, "choose a user id and a provider")
	}
	req := authgate.ConnectSessionRequest{UserID: user, Provider: provider}
	if a := strings.Fields(r.PostForm.Get("actions")); len(a) > 0 {
		req.Actions = a
	}
	cs, err := c.cfg.Client(s.Tenant).CreateConnectSession(r.Context(), req)
	if err != nil {
		return err
	}
	http.Redirect(w, r, cs.ConnectURL, http.StatusSeeOther)
	return nil
}

type credentialPage struct {
	Row    connRow
	Events []eventRow
	Chart  chart
	// Verification or Diagnosis is set after Verify now / Diagnose.
	Verification *authgate.Verification
	Diagnosis    *authgate.Diagnosis
}

// eventRow is a lifecycle event with the fingerprints from its details.
type eventRow struct {
	E         authgate.Event
	AccessFP  string
	RefreshFP string
	Note      string
}

func eventRowOf(e authgate.Event) eventRow {
	var d map[string]any
	_ = json.Unmarshal(e.Details, &d)
	str := func(k string) string { v, _ := d[k].(string); return v }
	row := eventRow{E: e, AccessFP: str("access_token_fp"), RefreshFP: str("refresh_token_fp")}
	var notes []string
	for _, k := range []string{"reason", "class", "error", "http_status", "provider_request_id", "expires_at", "verdict"} {
		switch v := d[k].(type) {
		case string:
			if v != "" {
				notes = append(notes, k+": "+v)
			}
		case float64:
			notes = append(notes, k+": "+strings.TrimSuffix(strings.TrimRight(jsonNumber(v), "0"), "."))
		}
	}
	if v, ok := d["rotated"].(bool); ok && v {
		notes = append(notes, "refresh token rotated")
	}
	row.Note = strings.Join(notes, " · ")
	return row
}

func jsonNumber(f float64) string {
	b, _ := json.Marshal(f)
	return string(b)
}

// credentialEvents reads a credential's events through the API.
func credentialEvents(r *http.Request, api *authgate.Client, id authgate.CredentialID) ([]authgate.Event, error) {
	var out []authgate.Event
	var after int64
	for range 50 {
		page, err := api.CredentialEvents(r.Context(), id, after)
		if err != nil {
			return nil, err
		}
		out = append(out, page.Events...)
		if page.NextAfter == 0 {
			break
		}
		after = page.NextAfter
	}
	return out, nil
}

func (c *Console) credentialPage(r *http.Request, s *session) (*credentialPage, error) {
	api := c.cfg.Client(s.Tenant)
	id := authgate.CredentialID(r.PathValue("id"))
	cr, err := api.Credential(r.Context(), id)
	if err != nil {
		return nil, err
	}
	events, err := credentialEvents(r, api, id)
	if err != nil {
		return nil, err
	}
	providers, err := api.Providers(r.Context())
	if err != nil {
		return nil, err
	}
	p := &credentialPage{Row: rowOf(cr, providers), Chart: lifetimeChart(events, c.cfg.Clock.Now(), 24*time.Hour)}
	for i := len(events) - 1; i >= 0; i-- { // newest first
		p.Events = append(p.Events, eventRowOf(events[i]))
	}
	return p, nil
}

func (c *Console) credential(w http.ResponseWriter, r *http.Request, s *session) error {
	p, err := c.credentialPage(r, s)
	if err != nil {
		return err
	}
	c.render(w, r, s, "credential", "Credential "+string(p.Row.C.ID), p)
	return nil
}

// verify runs the live verification (the API's, which records it) and
// shows the credential page with its result.
func (c *Console) verify(w http.ResponseWriter, r *http.Request, s *session) error {
	v, err := c.cfg.Client(s.Tenant).Verify(r.Context(), authgate.CredentialID(r.PathValue("id")), authgate.VerifyRequest{})
	if err != nil {
		return err
	}
	p, err := c.credentialPage(r, s)
	if err != nil {
		return err
	}
	p.Verification = &v
	c.render(w, r, s, "credential", "Verified "+string(p.Row.C.ID), p)
	return nil
}

// diagnose runs the doctor through the API and renders its report,
// verdict first.
func (c *Console) diagnose(w http.ResponseWriter, r *http.Request, s *session) error {
	d, err := c.cfg.Client(s.Tenant).Diagnose(r.Context(), authgate.CredentialID(r.PathValue("id")), authgate.DiagnoseRequest{})
	if err != nil {
		return err
	}
	p, err := c.credentialPage(r, s)
	if err != nil {
		return err
	}
	p.Diagnosis = &d
	c.render(w, r, s, "credential", "Diagnosis of "+string(p.Row.C.ID), p)
	return nil
}

// reconnect sends this browser to a connect link for the credential that
// asks again for what it was granted plus what is missing.
func (c *Console) reconnect(w http.ResponseWriter, r *http.Request, s *session) error {
	api := c.cfg.Client(s.Tenant)
	cr, err := api.Credential(r.Context(), authgate.CredentialID(r.PathValue("id")))
	if err != nil {
		return err
	}
	providers, err := api.Providers(r.Context())
	if err != nil {
		return err
	}
	row := rowOf(cr, providers)
	req := authgate.ConnectSessionRequest{UserID: cr.UserID, Provider: cr.Provider, CredentialID: cr.ID, Scopes: row.Missing}
	cs, err := api.CreateConnectSession(r.Context(), req)
	if err != nil {
		return err
	}
	http.Redirect(w, r, cs.ConnectURL, http.StatusSeeOther)
	return nil
}

func (c *Console) disconnect(w http.ResponseWriter, r *http.Request, s *session) error {
	if _, err := c.cfg.Client(s.Tenant).DeleteCredential(r.Context(), authgate.CredentialID(r.PathValue("id"))); err != nil {
		return err
	}
	http.Redirect(w, r, "/ui/", http.StatusSeeOther)
	return nil
}
