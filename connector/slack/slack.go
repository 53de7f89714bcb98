// Package slack is authgate's Slack connector on net/http: auth.test,
// conversations.list and chat.postMessage, authenticated by an
// oauth2.TokenSource backed by authgate.
//
// Slack answers failures with HTTP 200 and {"ok":false,"error":…}; every
// answer goes through authgate.ParseProviderError (the one parser the
// classifier also reads), so a failure is a *authgate.ProviderError whatever
// its status — token_revoked, missing_scope with needed/provided,
// channel_not_found, not_in_channel, ratelimited with Retry-After. A failure
// to get a token is the token API's *authgate.Error. It must never log,
// store or return a token.
package slack

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"golang.org/x/oauth2"

	"github.com/authgate/authgate"
)

// DefaultBaseURL is Slack's Web API root.
const DefaultBaseURL = "https://slack.com/api/"

// Options configures a Client. The zero value talks to Slack.
type Options struct {
	// BaseURL replaces DefaultBaseURL (the sandbox: <base>/sandbox/slack/api/).
	BaseURL   string
	Transport http.RoundTripper
}

// Client calls Slack's Web API as the token behind its token source.
type Client struct {
	base string
	hc   *http.Client
}

// New returns a Slack client whose every call takes a token from ts.
func New(ts oauth2.TokenSource, o Options) *Client {
	base := o.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	u := o.BaseURL
	if u == "" {
		u = DefaultBaseURL
	}
	if !strings.HasSuffix(u, "/") {
		u += "/"
	}
	return &Client{base: u, hc: &http.Client{Transport: &oauth2.Transport{Source: ts, Base: base}}}
}

// Identity is auth.test's answer: who the token is, in which workspace.
type Identity struct {
	URL    string `json:"url"`
	Team   string `json:"team"`
	User   string `json:"user"`
	TeamID string `json:"team_id"`
	UserID string `json:"user_id"`
	BotID  string `json:"bot_id"`
	// Scopes are the token's scopes, from the X-OAuth-Scopes header.
	Scopes []string `json:"-"`
}

// AuthTest is auth.test.
func (c *Client) AuthTest(ctx context.Context) (*Identity, error) {
	var id Identity
	h, err := c.call(ctx, "auth.test", nil, url.Values{}, &id)
	if err == nil {
		for _, s := range strings.Split(h.Get("X-OAuth-Scopes"), ",") {
			if s = strings.TrimSpace(s); s != "" {
				id.Scopes = append(id.Scopes, s)
			}
		}
	}
	return &id, err
}

// Channel is a conversation as conversations.list shows it.
type Channel struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	IsPrivate bool   `json:"is_private"`
	IsMember  bool   `json:"is_member"`
}

// ListParams narrows conversations.list; Types defaults to public_channel.
type ListParams struct {
	Types  []string
	Cursor string
	Limit  int
}

// Channels is one page of conversations.list.
type Channels struct {
	Channels         []Channel `json:"channels"`
	ResponseMetadata struct {
		NextCursor string `json:"next_cursor"`
	} `json:"response_metadata"`
}

// ConversationsList is conversations.list.
func (c *Client) ConversationsList(ctx context.Context, p ListParams) (*Channels, error) {
	q := url.Values{}
	if len(p.Types) > 0 {
		q.Set("types", strings.Join(p.Types, ","))
	}
	if p.Cursor != "" {
		q.Set("cursor", p.Cursor)
	}
	if p.Limit > 0 {
		q.Set("limit", strconv.Itoa(p.Limit))
	}
	var out Channels
	_, err := c.call(ctx, "conversations.list", nil, q, &out)
	return &out, err
}

// Message is chat.postMessage's answer.
type Message struct {
	Channel string `json:"channel"`
	TS      string `json:"ts"`
}

// PostMessage is chat.postMessage with a JSON body; blocks may be nil.
func (c *Client) PostMessage(ctx context.Context, channel, text string, blocks []map[string]any) (*Message, error) {
	body := map[string]any{"channel": channel, "text": text}
	if len(blocks) > 0 {
		body["blocks"] = blocks
	}
	var m Message
	_, err := c.call(ctx, "chat.postMessage", body, nil, &m)
	return &m, err
}

const maxResponse = 8 << 20

// call runs one Web API method: a JSON body when in is set, else a form.
func (c *Client) call(ctx context.Context, method string, in any, form url.Values, out any) (http.Header, error) {
	var body io.Reader
	ctype := "application/x-www-form-urlencoded"
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("slack: encode %s: %w", method, err)
		}
		body, ctype = bytes.NewReader(b), "application/json; charset=utf-8"
	} else {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+method, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", ctype)
	resp, err := c.hc.Do(req)
	if err != nil {
		var ae *authgate.Error
		if errors.As(err, &ae) {
			return nil, ae
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &authgate.ProviderError{Provider: "slack", Operation: authgate.ProviderOpAPI, Cause: err}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return nil, &authgate.ProviderError{Provider: "slack", Operation: authgate.ProviderOpAPI, Status: resp.StatusCode, Cause: err}
	}
	if pe := authgate.ParseProviderError(authgate.ProviderResponse{Provider: "slack", Operation: authgate.ProviderOpAPI, Status: resp.StatusCode, Header: resp.Header, Body: data}); pe.Failed() {
		return resp.Header, pe
	}
	if err := json.Unmarshal(data, out); err != nil {
		return resp.Header, fmt.Errorf("slack: decode %s: %w", method, err)
	}
	return resp.Header, nil
}
