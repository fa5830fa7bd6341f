package sqlstore

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
)

// ErrSchemaTooNew is returned by Open for a database written by a newer
// ivschatd: running older code against it could corrupt data it does not know.
var ErrSchemaTooNew = errors.New("database schema is newer than this ivschatd supports")

// migrationFiles holds each dialect's migrations, in migrations/<dialect>/.
// They are the released schema history: never edit a released file, add one.
//
//go:embed migrations/*/*.sql
var migrationFiles embed.FS

// Migration is one step of a store's schema.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// loadMigrations reads dir/*.sql from fsys. Versions are the numeric prefixes
// of the file names (0001_init.sql) and must run 1, 2, 3, ... without gaps, so
// that a missing or misnamed file fails every test instead of being skipped
// in production.
func loadMigrations(fsys fs.FS, dir string) ([]Migration, error) {
	names, err := fs.Glob(fsys, path.Join(dir, "*.sql"))
	if err != nil {
		return nil, fmt.Errorf("migrations: %w", err)
	}
	var ms []Migration
	for _, name := range names {
		base := path.Base(name)
		prefix, _, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(prefix)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: name must start with a positive version and '_'", name)
		}
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, fmt.Errorf("migration %s: %w", name, err)
		}
		ms = append(ms, Migration{Version: v, Name: base, SQL: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Version < ms[j].Version })
	for i, m := range ms {
		if m.Version != i+1 {
			return nil, fmt.Errorf("migration %s: want version %d (versions must be 1..n without gaps)", m.Name, i+1)
		}
	}
	if len(ms) == 0 {
		return nil, errors.New("no migrations found")
	}
	return ms, nil
}

// migrate applies the migrations the database lacks in one transaction, so a
// failure leaves the schema as it was. On PostgreSQL the dialect's advisory
// lock serializes nodes starting together; on SQLite the transaction is
// BEGIN IMMEDIATE (see openSQLite), which serializes processes.
func migrate(ctx context.Context, d *Dialect, db *sql.DB, ms []Migration) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer tx.Rollback()
	if d.migrationLock != "" {
		if _, err := tx.ExecContext(ctx, d.migrationLock); err != nil {
			return fmt.Errorf("migrate: lock: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, d.schemaMigrations); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	var cur int
	if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&cur); err != nil {
		return fmt.Errorf("migrate: read version: %w", err)
	}
	latest := ms[len(ms)-1].Version
	if cur > latest {
		return fmt.Errorf("%w: the database is at schema version %d, this build knows versions up to %d; run a newer ivschatd", ErrSchemaTooNew, cur, latest)
	}
	for _, m := range ms[cur:] {
		// Without arguments PostgreSQL's simple protocol is used, which
		// allows the several statements of a migration file.
		if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
			return fmt.Errorf("migrate: apply %s: %w", m.Name, err)
		}
		if _, err := tx.ExecContext(ctx, d.sql(`INSERT INTO schema_migrations (version) VALUES (?)`), m.Version); err != nil {
			return fmt.Errorf("migrate: record %s: %w", m.Name, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrate: commit: %w", err)
	}
	return nil
}
