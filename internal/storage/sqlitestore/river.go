package sqlitestore

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"
)

// migrateRiver applies River's own schema (its job, leader and queue
// tables) in authgate's migration transaction. The driver is used only to
// read River's embedded migrations; every statement runs on tx.
func migrateRiver(ctx context.Context, tx *sql.Tx) error {
	m, err := rivermigrate.New(riversqlite.New(nil), &rivermigrate.Config{})
	if err != nil {
		return fmt.Errorf("river migrations: %w", err)
	}
	if _, err := m.MigrateTx(ctx, tx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("river migrations: %w", err)
	}
	return nil
}

// JobPool opens River's own connection pool on this database: ONE
// connection (SQLite has one writer; River's producers, elector and
// completer would otherwise fight each other for the file lock) whose write
// transactions begin IMMEDIATE, like the store's writer. The caller closes
// it after the River client stopped. Jobs a state change causes are not
// inserted through it but in the store's own transaction (see
// storage.NativeTx), so they commit together.
func (s *Store) JobPool() (*sql.DB, error) {
	p, err := sql.Open("sqlite", dsn(s.path, true))
	if err != nil {
		return nil, err
	}
	p.SetMaxOpenConns(1)
	p.SetMaxIdleConns(1)
	p.SetConnMaxLifetime(0)
	p.SetConnMaxIdleTime(0)
	return p, nil
}
