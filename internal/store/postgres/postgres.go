// Package postgres is the store.Store for clusters: several ivschatd nodes
// share one PostgreSQL database.
//
// Correctness across nodes rests on the database, never on process-local
// locks: quotas are counted under a transaction-level advisory lock, references
// are foreign keys, and read-modify-write operations lock the row (SELECT ...
// FOR UPDATE) they modify.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ivschatd/ivschatd/internal/store"
	"github.com/ivschatd/ivschatd/internal/store/internal/storeutil"
)

// ErrSchemaTooNew is returned by Open for a database written by a newer
// ivschatd: running older code against it could corrupt data it does not know.
var ErrSchemaTooNew = errors.New("database schema is newer than this ivschatd supports")

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Store is the PostgreSQL store.Store. It is safe for concurrent use.
type Store struct {
	pool *pgxpool.Pool
}

var _ store.Store = (*Store)(nil)

// Open connects to the database at url (a libpq URL or key=value string; a
// search_path parameter selects the schema) and brings the schema up to date.
// Statements are prepared once per connection and cached by pgx, so the hot
// GetRoom path costs one round trip.
func Open(ctx context.Context, url string) (*Store, error) {
	ms, err := storeutil.LoadMigrations(migrationFiles, "migrations")
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	return open(ctx, url, ms)
}

// defaultConnectTimeout bounds each connection attempt unless the URL sets
// connect_timeout.
const defaultConnectTimeout = 10 * time.Second

func open(ctx context.Context, url string, ms []storeutil.Migration) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx redacts passwords only on a best-effort basis and the wrapped
		// error can quote the URL, so the details are not passed on.
		return nil, errors.New("postgres: cannot parse the database URL (details withheld: they may contain the password)")
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		// Without a bound, a start against an address that drops packets
		// hangs for the OS's TCP timeout (minutes); connect_timeout in the
		// URL still wins.
		cfg.ConnConfig.ConnectTimeout = defaultConnectTimeout
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	if err := migrate(ctx, pool, ms); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: %w", err)
	}
	return &Store{pool: pool}, nil
}

// Ping implements store.Store: one round trip on a pooled connection.
func (s *Store) Ping(ctx context.Context) error {
	return s.pool.Ping(ctx)
}

// Close closes the pool, waiting for connections in use to be returned.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// migrationLockKey is the advisory lock that serializes migrations of nodes
// starting together; without it two nodes could both see version 0 and both
// try to create the tables. The value is arbitrary but fixed forever.
const migrationLockKey int64 = 0x69767363_6d696772 // "ivsc" "migr"

// migrate applies the migrations the database lacks in one transaction, so a
// failure leaves the schema as it was, under a transaction-level advisory lock
// that is released by the commit or rollback whatever happens to the node.
func migrate(ctx context.Context, pool *pgxpool.Pool, ms []storeutil.Migration) error {
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLockKey); err != nil {
			return fmt.Errorf("migrate: lock: %w", err)
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version integer NOT NULL PRIMARY KEY)`); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		var cur int
		if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&cur); err != nil {
			return fmt.Errorf("migrate: read version: %w", err)
		}
		latest := ms[len(ms)-1].Version
		if cur > latest {
			return fmt.Errorf("%w: the database is at schema version %d, this build knows versions up to %d; run a newer ivschatd", ErrSchemaTooNew, cur, latest)
		}
		for _, m := range ms[cur:] {
			// Exec without arguments uses the simple protocol, which allows
			// the several statements of a migration file.
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return fmt.Errorf("migrate: apply %s: %w", m.Name, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version) VALUES ($1)`, m.Version); err != nil {
				return fmt.Errorf("migrate: record %s: %w", m.Name, err)
			}
		}
		return nil
	})
}
