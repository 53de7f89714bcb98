package oauthcore

import (
	"slices"
	"time"
)

// State is the part of an authorization server that must survive a restart
// for tokens it issued to keep working: clients, grants, and the live
// tokens with their families. Codes and pending consents are short-lived and
// not kept; neither are counters.
type State struct {
	Clients  []Client      `json:"clients"`
	Grants   []GrantState  `json:"grants"`
	Families []FamilyState `json:"families"`
	Preset   *Preset       `json:"preset,omitempty"`
	Saved    time.Time     `json:"saved_at"`
}

// GrantState is a grant and its live refresh tokens, oldest first.
type GrantState struct {
	ClientID, AccountID string
	Scopes              []string
	AccessTTL           time.Duration
	Refresh             []string // values
}

// FamilyState is one token family.
type FamilyState struct {
	Revoked bool
	Access  []TokenState
	Refresh []TokenState
}

// TokenState is an access or refresh token.
type TokenState struct {
	Value, ClientID, AccountID, Label string
	Scopes                            []string
	IssuedAt, ExpiresAt, RetiredAt    time.Time
	Revoked                           bool
}

// Snapshot copies the server's durable state. Expired access tokens and
// revoked families are left out: nothing could use them.
func (s *Server) Snapshot() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	st := State{Saved: now}
	for _, c := range s.clients {
		st.Clients = append(st.Clients, *c)
	}
	slices.SortFunc(st.Clients, func(a, b Client) int { return compareStrings(a.ID, b.ID) })
	for _, g := range s.grants {
		gs := GrantState{ClientID: g.ClientID, AccountID: g.AccountID, Scopes: g.Scopes, AccessTTL: g.AccessTTL}
		for _, r := range g.refresh {
			gs.Refresh = append(gs.Refresh, r.Value)
		}
		st.Grants = append(st.Grants, gs)
	}
	seen := map[*family]bool{}
	add := func(f *family) {
		if f == nil || seen[f] || f.revoked {
			return
		}
		seen[f] = true
		fs := FamilyState{Revoked: f.revoked}
		for _, a := range f.access {
			if !a.revoked && (a.ExpiresAt.IsZero() || a.ExpiresAt.After(now)) {
				fs.Access = append(fs.Access, TokenState{Value: a.Value, ClientID: a.ClientID, AccountID: a.AccountID, Label: a.Label, Scopes: a.Scopes, IssuedAt: a.IssuedAt, ExpiresAt: a.ExpiresAt})
			}
		}
		for _, r := range f.refresh {
			fs.Refresh = append(fs.Refresh, TokenState{Value: r.Value, ClientID: r.ClientID, AccountID: r.AccountID, Label: r.Label, Scopes: r.Scopes, IssuedAt: r.IssuedAt,
				RetiredAt: r.retiredAt, Revoked: r.revoked})
		}
		st.Families = append(st.Families, fs)
	}
	for _, r := range s.refresh {
		add(r.family)
	}
	for _, a := range s.access {
		add(a.family)
	}
	slices.SortFunc(st.Families, func(a, b FamilyState) int { return compareStrings(firstValue(a), firstValue(b)) })
	if s.preset != nil {
		p := *s.preset
		st.Preset = &p
	}
	return st
}

func firstValue(f FamilyState) string {
	if len(f.Refresh) > 0 {
		return f.Refresh[0].Value
	}
	if len(f.Access) > 0 {
		return f.Access[0].Value
	}
	return ""
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Restore adds a snapshot's clients, grants and tokens to the server.
func (s *Server) Restore(st State) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range st.Clients {
		cc := c
		s.clients[c.ID] = &cc
	}
	for _, gs := range st.Grants {
		g := s.grantLocked(gs.ClientID, gs.AccountID)
		g.Scopes, g.AccessTTL = slices.Clone(gs.Scopes), gs.AccessTTL
	}
	for _, fs := range st.Families {
		f := &family{revoked: fs.Revoked}
		for _, t := range fs.Access {
			a := &Access{Value: t.Value, ClientID: t.ClientID, AccountID: t.AccountID, Label: t.Label, Scopes: slices.Clone(t.Scopes), IssuedAt: t.IssuedAt, ExpiresAt: t.ExpiresAt,
				grant: s.grantLocked(t.ClientID, t.AccountID), family: f}
			s.access[a.Value] = a
			f.access = append(f.access, a)
		}
		for _, t := range fs.Refresh {
			r := &RefreshToken{Value: t.Value, ClientID: t.ClientID, AccountID: t.AccountID, Label: t.Label, Scopes: slices.Clone(t.Scopes), IssuedAt: t.IssuedAt,
				retiredAt: t.RetiredAt, revoked: t.Revoked, grant: s.grantLocked(t.ClientID, t.AccountID), family: f}
			s.refresh[r.Value] = r
			f.refresh = append(f.refresh, r)
		}
	}
	for _, gs := range st.Grants {
		g := s.grantLocked(gs.ClientID, gs.AccountID)
		g.refresh = nil
		for _, v := range gs.Refresh {
			if r, ok := s.refresh[v]; ok {
				g.refresh = append(g.refresh, r)
			}
		}
	}
	if st.Preset != nil {
		p := *st.Preset
		s.preset = &p
	}
}
