package storage

import (
	"context"
	"time"

	"github.com/authgate/authgate"
)

// ConsoleQueries is what the web console stores of its own: one-time login
// links and the sessions they open, both kept only as SHA-256 hashes of
// their bearer values, and a tenant's recent webhook deliveries for its
// Webhooks page. Part of Queries.
type ConsoleQueries interface {
	// ConsoleLoginLinkInsert stores a login link; ErrConflict if its hash is taken.
	ConsoleLoginLinkInsert(ctx context.Context, l *ConsoleLoginLink) error
	// ConsoleLoginLinkConsume marks the link with this hash used if it is
	// unused and unexpired at Now, and returns it; ErrNotFound otherwise
	// (used, expired or unknown look the same). It is what makes a link
	// single-use, also between processes.
	ConsoleLoginLinkConsume(ctx context.Context, p ConsoleLoginLinkConsumeParams) (*ConsoleLoginLink, error)

	// ConsoleSessionInsert stores a session; ErrConflict if its hash is taken.
	ConsoleSessionInsert(ctx context.Context, s *ConsoleSession) error
	// ConsoleSessionGet returns the session with this hash if it has not
	// expired at Now; ErrNotFound otherwise.
	ConsoleSessionGet(ctx context.Context, p ConsoleSessionGetParams) (*ConsoleSession, error)
	// ConsoleSessionDelete ends a session (logout); deleting a missing one is
	// not an error.
	ConsoleSessionDelete(ctx context.Context, hash []byte) error
	// ConsoleDeleteExpired deletes links and sessions expired before Before.
	ConsoleDeleteExpired(ctx context.Context, before time.Time) error
}

// ConsoleLoginLink is a one-time console sign-in link, by the hash of its token.
type ConsoleLoginLink struct {
	Hash      []byte
	TenantID  authgate.TenantID
	CreatedBy string // who asked for it ("api:<key id>", "serve")
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    time.Time // zero: unused
}

// ConsoleLoginLinkConsumeParams names the link being opened, and when.
type ConsoleLoginLinkConsumeParams struct {
	Hash []byte
	Now  time.Time
}

// ConsoleSession is a signed-in console browser, by the hash of its cookie.
type ConsoleSession struct {
	Hash      []byte
	TenantID  authgate.TenantID
	CreatedAt time.Time
	ExpiresAt time.Time
}

// ConsoleSessionGetParams names a session and the time it must be live at.
type ConsoleSessionGetParams struct {
	Hash []byte
	Now  time.Time
}
