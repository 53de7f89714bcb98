package pgstore

import (
	"context"
	"time"

	"github.com/authgate/authgate/internal/storage"
)

var _ storage.DBClock = (*Store)(nil)

// DBNow is the database server's time: what processes on several hosts
// compare promise horizons with, whatever their own clocks say.
func (s *Store) DBNow(ctx context.Context) (time.Time, error) {
	var now time.Time
	err := s.pool.QueryRow(ctx, `SELECT clock_timestamp()`).Scan(&now)
	return now, err
}
