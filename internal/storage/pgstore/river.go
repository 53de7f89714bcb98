package pgstore

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"

	"github.com/authgate/authgate/internal/storage/sqlstore"
)

// migrateRiver applies River's own schema after authgate's, one River
// version per transaction (a version that adds an enum value cannot share a
// transaction with the one that uses it), each under the advisory lock
// authgate's migrations take, so processes starting together apply every
// version once.
func (s *Store) migrateRiver(ctx context.Context) error {
	m, err := rivermigrate.New(riverpgxv5.New(nil), &rivermigrate.Config{})
	if err != nil {
		return fmt.Errorf("river migrations: %w", err)
	}
	for _, v := range m.AllVersions() {
		err := s.tx(ctx, func(db sqlstore.DB, native any) error {
			if _, err := db.Exec(ctx, dialect.MigrationLock); err != nil {
				return fmt.Errorf("lock: %w", err)
			}
			//lint:ignore SA1019 MigrateTx is the one way to apply a version inside our locked transaction; we pass one version at a time, which is what its deprecation note asks for.
			_, err := m.MigrateTx(ctx, native.(pgx.Tx), rivermigrate.DirectionUp, &rivermigrate.MigrateOpts{TargetVersion: v.Version})
			return err
		})
		if err != nil {
			return fmt.Errorf("river migration %d: %w", v.Version, err)
		}
	}
	return nil
}

// Pool is the store's connection pool, which River's client shares: its
// jobs are inserted in the store's transactions (storage.NativeTx).
func (s *Store) Pool() *pgxpool.Pool { return s.pool }
