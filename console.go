package authgate

import (
	"context"
	"net/http"
	"time"
)

// ConsoleLoginLink is a one-time sign-in link for the web console (/ui/),
// the answer of POST /v1/ui/login-links. It is a capability: whoever opens
// it first, within minutes, is signed in as the tenant.
type ConsoleLoginLink struct {
	URL       string    `json:"url"`
	ExpiresAt time.Time `json:"expires_at"`
}

// CreateConsoleLoginLink asks the server for a console sign-in link for the
// key's tenant (admin keys only).
func (c *Client) CreateConsoleLoginLink(ctx context.Context) (ConsoleLoginLink, error) {
	var out ConsoleLoginLink
	err := c.do(ctx, http.MethodPost, "/v1/ui/login-links", nil, &out)
	return out, err
}
