package pgstore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/internal/storage"
)

const (
	// changeChannel is the channel migration 0004's trigger notifies.
	changeChannel = "authgate_credentials"
	// feedCheckEvery is how long the listener waits in silence before
	// pinging the server: a connection that died without a word (a network
	// partition) is noticed within this plus feedPingTimeout, not after TCP
	// gives up.
	feedCheckEvery  = 30 * time.Second
	feedPingTimeout = 10 * time.Second
	// minFeedBackoff and maxFeedBackoff bound the wait between reconnects.
	minFeedBackoff = 50 * time.Millisecond
	maxFeedBackoff = 5 * time.Second
)

// WatchCredentials implements storage.ChangeFeed with LISTEN/NOTIFY. It
// opens a connection of its own (with the pool's settings, outside the pool,
// since a listening session must stay the same session), LISTENs on
// authgate_credentials and delivers All once listening, then one change per
// notification. PostgreSQL sends notifications on commit, in commit order,
// to every listener on the database, including those of this process. When
// the connection is lost it reconnects with backoff and delivers All again:
// notifications sent while nobody listened are gone.
//
// The channel is database-wide: stores in other schemas of the same database
// notify it too. Their ids are random and never match this store's, so they
// cost only a wasted lookup.
func (s *Store) WatchCredentials(ctx context.Context, fn func(storage.CredentialChange)) error {
	var backoff time.Duration
	for {
		conn, err := s.listen(ctx)
		if err == nil {
			backoff = 0
			fn(storage.CredentialChange{All: true})
			err = deliver(ctx, conn, fn)
			closeCtx, cancel := context.WithTimeout(context.Background(), feedPingTimeout)
			conn.Close(closeCtx)
			cancel()
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		// The error itself is not returned: the feed's contract is to keep
		// going until ctx ends, and the All after reconnecting tells
		// consumers what they need to know.
		backoff = min(max(2*backoff, minFeedBackoff), maxFeedBackoff)
		t := time.NewTimer(backoff/2 + rand.N(backoff/2))
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// listen opens the feed's connection and LISTENs on it.
func (s *Store) listen(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig)
	if err != nil {
		return nil, fmt.Errorf("change feed: connect: %w", err)
	}
	if _, err := conn.Exec(ctx, `LISTEN `+changeChannel); err != nil {
		conn.Close(context.Background())
		return nil, fmt.Errorf("change feed: listen: %w", err)
	}
	if s.listening != nil {
		s.listening(conn.PgConn().PID())
	}
	return conn, nil
}

// deliver passes notifications to fn until the connection fails or ctx ends.
func deliver(ctx context.Context, conn *pgx.Conn, fn func(storage.CredentialChange)) error {
	for {
		waitCtx, cancel := context.WithTimeout(ctx, feedCheckEvery)
		n, err := conn.WaitForNotification(waitCtx)
		cancel()
		if n != nil && n.Channel == changeChannel {
			fn(storage.CredentialChange{ID: authgate.CredentialID(n.Payload)})
		}
		if err == nil {
			continue
		}
		if ctx.Err() != nil || !errors.Is(err, context.DeadlineExceeded) {
			return err
		}
		// A quiet spell: make sure the server is still there. A timed-out
		// wait leaves the connection usable (pgx interrupts the read with a
		// deadline, not by closing it).
		pingCtx, cancel := context.WithTimeout(ctx, feedPingTimeout)
		err = conn.Ping(pingCtx)
		cancel()
		if err != nil {
			return fmt.Errorf("change feed: ping: %w", err)
		}
	}
}
