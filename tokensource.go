package authgate

import (
	"context"
	"sync"
	"time"

	"golang.org/x/oauth2"
)

// TokenSource returns an oauth2.TokenSource backed by authgate's token API:
// each token comes from POST /v1/credentials/{id}/token with req (its
// MinValid window and Actions). It never holds a refresh token — authgate
// keeps those — so it can hand a connector to any worker without handing it
// the user's grant. A token is reused until less than MinValid (default 5
// minutes) is left; a token without an expiry (Notion) is asked for again on
// every call, which authgate serves from memory.
//
// Errors are *Error: ClassReauthRequired with ReconnectURL and AgentHint,
// ClassInsufficientScope with MissingScopes, …; http and the Google clients
// wrap them, so use errors.As.
func (c *Client) TokenSource(ctx context.Context, id CredentialID, req TokenRequest) oauth2.TokenSource {
	return &apiTokenSource{ctx: ctx, c: c, id: id, req: req}
}

type apiTokenSource struct {
	ctx context.Context
	c   *Client
	id  CredentialID
	req TokenRequest

	mu  sync.Mutex
	cur *oauth2.Token
}

var _ oauth2.TokenSource = (*apiTokenSource)(nil)

func (s *apiTokenSource) Token() (*oauth2.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	keep := s.req.MinValid
	if keep <= 0 {
		keep = 5 * time.Minute
	}
	if s.cur != nil && !s.cur.Expiry.IsZero() && time.Until(s.cur.Expiry) > keep/2 {
		return s.cur, nil
	}
	t, err := s.c.Token(s.ctx, s.id, s.req)
	if err != nil {
		return nil, err
	}
	tok := &oauth2.Token{AccessToken: t.AccessToken, TokenType: t.TokenType}
	if t.ExpiresAt != nil {
		tok.Expiry = *t.ExpiresAt
	}
	s.cur = tok
	return tok, nil
}

// Verify runs the connector's minimal checks live (one provider call each,
// no retries) and records the result on the credential (a verified event).
// A live identity that differs from the stored one moves the credential to
// reauth_required with reason identity_mismatch.
func (c *Client) Verify(ctx context.Context, id CredentialID, req VerifyRequest) (Verification, error) {
	var out Verification
	err := c.do(ctx, "POST", "/v1/credentials/"+pathEscape(id)+"/verify", req, &out)
	return out, err
}
