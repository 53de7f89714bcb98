package sqlstore

import (
	"context"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Migration is one numbered, forward-only schema change.
type Migration struct {
	Version int
	Name    string // the file name, recorded in schema_migrations
	SQL     string
}

// LoadMigrations reads every *.sql file at the top of fsys, named
// NNNN_what.sql, in version order. Two files with one number, or a name
// without one, are refused: the numbers are the schema's history.
func LoadMigrations(fsys fs.FS) ([]Migration, error) {
	files, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		return nil, err
	}
	var out []Migration
	seen := map[int]string{}
	for _, name := range files {
		num, _, ok := strings.Cut(name, "_")
		version, err := strconv.Atoi(num)
		if !ok || err != nil || version <= 0 {
			return nil, fmt.Errorf("migration %s: name must start with a positive number and '_'", name)
		}
		if other, dup := seen[version]; dup {
			return nil, fmt.Errorf("migrations %s and %s share number %d", other, name, version)
		}
		seen[version] = name
		body, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		out = append(out, Migration{Version: version, Name: name, SQL: string(body)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out, nil
}

// Migrate applies every migration the database has not recorded, in order,
// on tx, which must be one write transaction (the caller commits it, so the
// migrations apply together or not at all). The dialect's lock comes first,
// so processes starting together apply each migration once. A recorded
// version whose name differs from ours means two histories met: refused.
func Migrate(ctx context.Context, tx DB, d *Dialect, ms []Migration, now time.Time) error {
	if d.MigrationLock != "" {
		if _, err := tx.Exec(ctx, d.MigrationLock); err != nil {
			return fmt.Errorf("lock: %w", err)
		}
	}
	if _, err := tx.Exec(ctx, d.MigrationsTable); err != nil {
		return err
	}
	rows, err := tx.Query(ctx, `SELECT version, name FROM schema_migrations`)
	if err != nil {
		return err
	}
	applied := map[int]string{}
	for rows.Next() {
		var v int
		var name string
		if err := rows.Scan(&v, &name); err != nil {
			rows.Close()
			return err
		}
		applied[v] = name
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, m := range ms {
		if name, ok := applied[m.Version]; ok {
			if name != m.Name {
				return fmt.Errorf("migration %d is %s in the database but %s here", m.Version, name, m.Name)
			}
			continue
		}
		if _, err := tx.Exec(ctx, m.SQL); err != nil {
			return fmt.Errorf("%s: %w", m.Name, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`, m.Version, m.Name, d.Time(now)); err != nil {
			return fmt.Errorf("%s: record: %w", m.Name, err)
		}
	}
	return nil
}

// MigrateFS loads the migrations in dir of fsys and applies the missing ones
// in one transaction that tx runs and commits. then, when set, runs last in
// that transaction with the driver's native transaction: River's own
// migrations (rivermigrate) go there, so authgate's schema and the job
// queue's are applied together, under the same lock, or not at all.
func MigrateFS(ctx context.Context, tx func(ctx context.Context, fn func(db DB, native any) error) error, d *Dialect, fsys fs.FS, dir string,
	then func(ctx context.Context, native any) error) error {
	sub, err := fs.Sub(fsys, dir)
	if err != nil {
		return err
	}
	ms, err := LoadMigrations(sub)
	if err != nil {
		return err
	}
	return tx(ctx, func(db DB, native any) error {
		if err := Migrate(ctx, db, d, ms, time.Now()); err != nil {
			return err
		}
		if then == nil {
			return nil
		}
		return then(ctx, native)
	})
}
