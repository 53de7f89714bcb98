package notionsim

import (
	"encoding/json"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/authgate/authgate/sandbox/fault"
	"github.com/authgate/authgate/sandbox/oauthcore"
)

func (s *Sim) authorize(w http.ResponseWriter, r *http.Request) {
	oauthcore.SetDate(w, s.providerNow())
	ar, ok := s.core.StartAuthorize(w, r, oauthcore.AuthorizeOptions{Provider: "Notion",
		UnknownClient: oauthcore.PageError{Status: http.StatusBadRequest, Code: "invalid_client", Message: "Missing or invalid client_id."},
		BadRedirect:   oauthcore.PageError{Status: http.StatusBadRequest, Code: "invalid_request", Message: "Invalid redirect_uri."}})
	if !ok {
		return
	}
	q, client := ar.Params, ar.Client
	back := func(v url.Values) { ar.Back(w, r, v) }
	if q.Get("response_type") != "code" {
		back(url.Values{"error": {"unsupported_response_type"}})
		return
	}
	if q.Get("owner") != "user" {
		back(url.Values{"error": {"invalid_request"}, "error_description": {"owner must be user"}})
		return
	}
	if p, ok := s.core.CurrentPreset(); ok {
		if p.Deny {
			back(url.Values{"error": {"access_denied"}})
			return
		}
		caps := AllCapabilities
		if p.GrantedScopes != nil {
			caps = p.GrantedScopes
		}
		s.finish(w, r, q, client, p.Account, p.Workspace, nil, caps)
		return
	}
	s.mu.Lock()
	ws := s.workspaceLocked("")
	var res []oauthcore.Resource
	for _, id := range ws.Roots {
		o := s.objects[id]
		res = append(res, oauthcore.Resource{ID: o.Title, Title: o.Title, Kind: o.Kind})
	}
	s.mu.Unlock()
	oauthcore.RenderConsent(w, oauthcore.ConsentPage{Provider: "Notion", ClientName: client.Name, Action: "/sandbox/notion/v1/oauth/consent",
		PendingID: s.core.SavePending(q), AskWorkspace: true, Workspace: DefaultWorkspace, Resources: res})
}

func (s *Sim) consent(w http.ResponseWriter, r *http.Request) {
	oauthcore.SetDate(w, s.providerNow())
	c, ok := s.core.ReadConsent(w, r, oauthcore.ConsentOptions{Provider: "Notion", RequireEmail: true})
	if !ok {
		return
	}
	s.finish(w, r, c.Params, c.Client, c.Account, c.Form.Get("workspace"), c.Form["resource"], AllCapabilities)
}

// finish installs the integration (a bot per client, workspace and user),
// shares the chosen top-level pages (nil: all) and issues the code.
func (s *Sim) finish(w http.ResponseWriter, r *http.Request, q url.Values, client *oauthcore.Client, email, wsName string, titles []string, caps []string) {
	s.mu.Lock()
	ws := s.workspaceLocked(wsName)
	u := s.userLocked(email)
	if !containsAny(ws.Members, u.ID) {
		ws.Members = append(ws.Members, u.ID)
	}
	botID := uuid("notion-bot", client.ID, ws.ID, u.ID)
	b, ok := s.bots[botID]
	if !ok {
		b = &bot{ID: botID, ClientID: client.ID, WorkspaceID: ws.ID, Workspace: ws.Name, OwnerID: u.ID, Shared: map[string]bool{}, tokens: float64(s.burst), last: s.now()}
		s.bots[botID] = b
	}
	for _, id := range ws.Roots {
		if titles == nil || containsAny(titles, s.objects[id].Title) {
			b.Shared[id] = true
		}
	}
	s.mu.Unlock()
	code := s.core.IssueCode(oauthcore.CodeParams{ClientID: client.ID, RedirectURI: q.Get("redirect_uri"), AccountID: botID,
		GrantScopes: caps, TokenScopes: caps, IssueRefresh: true, Extra: map[string]string{"email": u.Email}})
	v := url.Values{"code": {code.Value}}
	if st := q.Get("state"); st != "" {
		v.Set("state", st)
	}
	oauthcore.RedirectWith(w, r, q.Get("redirect_uri"), v)
}

// params reads a token-endpoint body, JSON (Notion's documented form) or
// form-encoded (what golang.org/x/oauth2 sends).
func params(r *http.Request) (url.Values, error) {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt == "application/json" {
		var m map[string]any
		if err := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 64<<10)).Decode(&m); err != nil {
			return nil, err
		}
		v := url.Values{}
		for k, x := range m {
			if s, ok := x.(string); ok {
				v.Set(k, s)
			}
		}
		return v, nil
	}
	if err := r.ParseForm(); err != nil {
		return nil, err
	}
	return r.PostForm, nil
}

func (s *Sim) authClient(w http.ResponseWriter, r *http.Request) (*oauthcore.Client, bool) {
	id, secret, basic := oauthcore.ClientCredentials(r)
	if !basic {
		s.fail(w, http.StatusUnauthorized, "invalid_client", "Client authentication requires HTTP Basic authorization.")
		return nil, false
	}
	c, err := s.core.AuthenticateClient(id, secret)
	if err != nil {
		s.fail(w, http.StatusUnauthorized, "invalid_client", "Invalid client credentials.")
		return nil, false
	}
	return c, true
}

func (s *Sim) token(w http.ResponseWriter, r *http.Request) {
	s.core.CountTokenRequest()
	client, ok := s.authClient(w, r)
	if !ok {
		return
	}
	v, err := params(r)
	if err != nil {
		s.fail(w, http.StatusBadRequest, "invalid_json", "Error parsing JSON body.")
		return
	}
	account := ""
	if t, ok := s.core.PeekRefresh(v.Get("refresh_token")); ok {
		account = s.ownerEmail(t.AccountID)
	} else if c, ok := s.core.PeekCode(v.Get("code")); ok {
		account = c.Extra["email"]
	}
	switch v.Get("grant_type") {
	case "authorization_code":
		s.core.CountExchange()
	case "refresh_token":
		s.core.CountRefresh(v.Get("refresh_token"))
	}
	if s.requestFaults(w, r, account, fault.TargetToken) {
		return
	}
	var iss *oauthcore.Issued
	switch v.Get("grant_type") {
	case "authorization_code":
		iss, err = s.core.Exchange(oauthcore.ExchangeParams{ClientID: client.ID, Code: v.Get("code"), RedirectURI: v.Get("redirect_uri"), Verifier: v.Get("code_verifier")})
		if err != nil {
			s.fail(w, http.StatusBadRequest, "invalid_grant", "Invalid code: this code has been revoked.")
			return
		}
	case "refresh_token":
		if s.faults.TakeInvalidGrant(Provider, account) {
			s.fail(w, http.StatusBadRequest, "invalid_grant", "Invalid refresh token.")
			return
		}
		iss, err = s.core.Refresh(client.ID, v.Get("refresh_token"))
		if err != nil {
			s.fail(w, http.StatusBadRequest, "invalid_grant", "Invalid refresh token.")
			return
		}
	case "":
		s.fail(w, http.StatusBadRequest, "validation_error", "body failed validation: body.grant_type should be defined, instead was `undefined`.")
		return
	default:
		s.fail(w, http.StatusBadRequest, "unsupported_grant_type", "Unsupported grant_type: "+v.Get("grant_type"))
		return
	}
	s.mu.Lock()
	b := s.bots[iss.Access.AccountID]
	owner := s.usersByID[b.OwnerID]
	s.mu.Unlock()
	resp := map[string]any{
		"access_token": iss.Access.Value, "token_type": "bearer", "refresh_token": nil,
		"bot_id": b.ID, "workspace_name": b.Workspace, "workspace_icon": nil, "workspace_id": b.WorkspaceID,
		"owner":                  map[string]any{"type": "user", "user": map[string]any{"object": "user", "id": owner.ID, "name": owner.Name, "avatar_url": nil, "type": "person", "person": map[string]any{"email": owner.Email}}},
		"duplicated_template_id": nil,
	}
	if iss.Refresh != nil {
		resp["refresh_token"] = iss.Refresh.Value
	}
	w.Header().Set("Cache-Control", "no-store")
	s.ok(w, resp)
}

func (s *Sim) ownerEmail(botID string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b, ok := s.bots[botID]; ok {
		return s.usersByID[b.OwnerID].Email
	}
	return ""
}

func (s *Sim) revoke(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.authClient(w, r); !ok {
		return
	}
	v, err := params(r)
	if err != nil {
		s.fail(w, http.StatusBadRequest, "invalid_json", "Error parsing JSON body.")
		return
	}
	s.core.Revoke(v.Get("token"))
	s.ok(w, map[string]any{})
}

func (s *Sim) introspect(w http.ResponseWriter, r *http.Request) {
	c, ok := s.authClient(w, r)
	if !ok {
		return
	}
	v, err := params(r)
	if err != nil {
		s.fail(w, http.StatusBadRequest, "invalid_json", "Error parsing JSON body.")
		return
	}
	a, err := s.core.LookupAccess(v.Get("token"))
	if err != nil {
		// A refresh token introspects too (unconfirmed for the real Notion,
		// whose reference says only {token}; see docs/decisions.md).
		if rt, ok := s.core.RefreshActive(c.ID, v.Get("token")); ok {
			s.ok(w, map[string]any{"active": true, "scope": strings.Join(rt.Scopes, " "), "iat": rt.IssuedAt.Unix()})
			return
		}
		s.ok(w, map[string]any{"active": false})
		return
	}
	s.ok(w, map[string]any{"active": true, "scope": strings.Join(a.Scopes, " "), "iat": a.IssuedAt.Unix()})
}
