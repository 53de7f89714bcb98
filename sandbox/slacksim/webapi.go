package slacksim

import (
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/authgate/authgate/sandbox/fault"
	"github.com/authgate/authgate/sandbox/oauthcore"
)

// method is one Web API method and the scopes it accepts.
type method struct {
	accepted []string
	// json: the method takes an application/json body (Slack accepts JSON
	// for its write methods, with the token in the Authorization header
	// only); others read form or query arguments alone.
	json   bool
	handle func(s *Sim, w http.ResponseWriter, r *http.Request, c *caller)
}

var methods = map[string]method{
	"auth.test":          {accepted: nil, json: true, handle: (*Sim).authTest},
	"auth.revoke":        {accepted: nil, handle: (*Sim).authRevoke},
	"chat.postMessage":   {accepted: []string{"chat:write"}, json: true, handle: (*Sim).postMessage},
	"conversations.list": {accepted: []string{"channels:read", "groups:read", "im:read", "mpim:read"}, handle: (*Sim).conversationsList},
}

// jsonArgs reads an application/json body into r.Form the way Slack reads
// it: top-level fields become arguments (objects and arrays, such as
// blocks, keep their JSON text). A "token" field is ignored: with JSON the
// token goes in the Authorization header. It reports false for a body that
// is not a JSON object.
func jsonArgs(r *http.Request) bool {
	var fields map[string]json.RawMessage
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&fields); err != nil {
		return false
	}
	if r.Form == nil {
		r.Form = url.Values{}
	}
	for k, raw := range fields {
		if k == "token" {
			continue
		}
		var str string
		if json.Unmarshal(raw, &str) == nil {
			r.Form.Set(k, str)
		} else {
			r.Form.Set(k, string(raw))
		}
	}
	return true
}

func isJSON(r *http.Request) bool {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return mt == "application/json"
}

type caller struct {
	oauthcore.Access
	team   *team
	userID string
}

// webAPI authenticates a Web API call (Bearer header or token parameter),
// applies faults and scope checks, and sets the scope headers.
func (s *Sim) webAPI(name string, m method) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.core.CountAPI()
		if m.json && r.Method == http.MethodPost && isJSON(r) {
			r.Form = r.URL.Query()
			if !jsonArgs(r) {
				s.reply(w, 200, errBody("invalid_json"))
				return
			}
		} else {
			_ = r.ParseForm()
		}
		tok := oauthcore.BearerToken(r)
		if tok == "" {
			tok = r.Form.Get("token")
		}
		w.Header().Set("X-Accepted-OAuth-Scopes", acceptedHeader(m))
		if tok == "" {
			s.reply(w, 200, errBody("not_authed"))
			return
		}
		a, err := s.core.LookupAccess(tok)
		switch oauthcore.KindOf(err) {
		case 0:
		case oauthcore.KindTokenRevoked:
			s.reply(w, 200, errBody("token_revoked"))
			return
		case oauthcore.KindTokenExpired:
			s.reply(w, 200, errBody("token_expired"))
			return
		default:
			s.reply(w, 200, errBody("invalid_auth"))
			return
		}
		w.Header().Set("X-OAuth-Scopes", scopesHeader(a.Scopes))
		teamID, userID := splitAccount(a.AccountID)
		t := s.teamByID(teamID)
		email := s.emailOf(a.AccountID)
		if s.requestFaults(w, r, email, fault.TargetAPI) {
			return
		}
		if s.faults.AdminBlocked(Provider, email, t.Domain) {
			s.reply(w, 200, errBody("ekm_access_denied"))
			return
		}
		if len(m.accepted) > 0 && !hasAny(a.Scopes, m.accepted...) {
			s.reply(w, 200, missingScope(m.accepted[0], a.Scopes))
			return
		}
		m.handle(s, w, r, &caller{Access: a, team: t, userID: userID})
	}
}

func (s *Sim) authTest(w http.ResponseWriter, r *http.Request, c *caller) {
	out := map[string]any{"ok": true, "url": "https://" + c.team.Domain + ".slack.com/", "team": c.team.Name, "team_id": c.team.ID, "is_enterprise_install": false}
	if c.Label == "bot" {
		out["user"], out["user_id"], out["bot_id"] = "authgate-sandbox-app", botUserID(c.ClientID, c.team.ID), botID(c.ClientID, c.team.ID)
	} else {
		s.mu.Lock()
		email := c.team.emails[c.userID]
		s.mu.Unlock()
		out["user"], out["user_id"] = strings.SplitN(email, "@", 2)[0], c.userID
	}
	s.reply(w, 200, out)
}

func (s *Sim) authRevoke(w http.ResponseWriter, r *http.Request, c *caller) {
	s.core.Revoke(c.Value)
	s.reply(w, 200, map[string]any{"ok": true, "revoked": true})
}

func (s *Sim) postMessage(w http.ResponseWriter, r *http.Request, c *caller) {
	chID, text := r.Form.Get("channel"), r.Form.Get("text")
	if chID == "" {
		s.reply(w, 200, errBody("channel_not_found"))
		return
	}
	if text == "" && r.Form.Get("blocks") == "" && r.Form.Get("attachments") == "" {
		s.reply(w, 200, errBody("no_text"))
		return
	}
	s.mu.Lock()
	var ch *channel
	for _, x := range c.team.channels {
		if x.ID == chID || "#"+x.Name == chID || x.Name == chID {
			ch = x
		}
	}
	var errCode, ts string
	switch {
	case ch == nil, ch.Private && !ch.BotMember:
		// A bot cannot see private channels it is not in.
		errCode = "channel_not_found"
	case !ch.BotMember && !hasAny(c.Scopes, "chat:write.public"):
		errCode = "not_in_channel"
	default:
		s.seq++
		ch.Messages++
		ts = itoa(s.clock.Now().Unix()) + "." + leftPad(itoa(s.seq), 6)
	}
	s.mu.Unlock()
	if errCode != "" {
		s.reply(w, 200, errBody(errCode))
		return
	}
	msg := map[string]any{"type": "message", "text": text, "ts": ts}
	if c.Label == "bot" {
		msg["user"], msg["bot_id"], msg["app_id"] = botUserID(c.ClientID, c.team.ID), botID(c.ClientID, c.team.ID), appID(c.ClientID)
	} else {
		msg["user"] = c.userID
	}
	s.reply(w, 200, map[string]any{"ok": true, "channel": ch.ID, "ts": ts, "message": msg})
}

func leftPad(s string, n int) string {
	for len(s) < n {
		s = "0" + s
	}
	return s
}

func (s *Sim) conversationsList(w http.ResponseWriter, r *http.Request, c *caller) {
	types := r.Form.Get("types")
	if types == "" {
		types = "public_channel"
	}
	wantPublic, wantPrivate := strings.Contains(types, "public_channel"), strings.Contains(types, "private_channel")
	if wantPublic && !hasAny(c.Scopes, "channels:read") {
		s.reply(w, 200, missingScope("channels:read", c.Scopes))
		return
	}
	if wantPrivate && !hasAny(c.Scopes, "groups:read") {
		s.reply(w, 200, missingScope("groups:read", c.Scopes))
		return
	}
	s.mu.Lock()
	chans := []any{}
	for _, ch := range c.team.channels {
		if (ch.Private && (!wantPrivate || !ch.BotMember)) || (!ch.Private && !wantPublic) {
			continue
		}
		chans = append(chans, map[string]any{"id": ch.ID, "name": ch.Name, "is_channel": !ch.Private, "is_group": ch.Private, "is_im": false,
			"is_private": ch.Private, "is_member": ch.BotMember, "is_archived": false, "is_general": ch.Name == "general", "num_members": 3})
	}
	s.mu.Unlock()
	s.reply(w, 200, map[string]any{"ok": true, "channels": chans, "response_metadata": map[string]any{"next_cursor": ""}})
}
