package refresh

import (
	"context"
	"time"

	"golang.org/x/oauth2"

	"github.com/authgate/authgate"
)

// TokenSource is the server's own oauth2.TokenSource for a credential (the
// connectors authgate runs itself: verification, later the doctor and the
// agent tools). Each Token asks the refresher, which serves from memory while
// the token is fresh; it never exposes a refresh token. It stays in
// internal/: callers outside the server use authgate.Client.TokenSource.
func (r *Refresher) TokenSource(ctx context.Context, tenant authgate.TenantID, id authgate.CredentialID, actions []string) oauth2.TokenSource {
	return tokenSource{ctx: ctx, r: r, req: Request{TenantID: tenant, ID: id, MinValid: time.Minute, Actions: actions}}
}

type tokenSource struct {
	ctx context.Context
	r   *Refresher
	req Request
}

var _ oauth2.TokenSource = tokenSource{}

func (s tokenSource) Token() (*oauth2.Token, error) {
	t, err := s.r.Token(s.ctx, s.req)
	if err != nil {
		return nil, err
	}
	tok := &oauth2.Token{AccessToken: t.AccessToken.Reveal(), TokenType: t.TokenType}
	if t.ExpiresAt != nil {
		tok.Expiry = *t.ExpiresAt
	}
	return tok, nil
}
