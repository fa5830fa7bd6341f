// Package sqlite is the embedded store.Store: one database file, no server,
// using the pure-Go modernc.org/sqlite driver so that ivschatd builds without
// cgo.
//
// Writes go through a single connection. SQLite admits one writer at a time
// anyway; funnelling them through one connection turns lock contention
// (SQLITE_BUSY and its retries) into an orderly queue inside database/sql, and
// makes read-check-write sequences such as quota checks race-free within the
// process. Every write transaction also starts with BEGIN IMMEDIATE, so the
// same holds against another process that opens the file. Reads use a separate
// pool of read-only connections, which WAL mode lets run alongside the writer.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"runtime"
	"strconv"
	"strings"

	"github.com/ivschatd/ivschatd/internal/store"
	"github.com/ivschatd/ivschatd/internal/store/internal/storeutil"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// ErrSchemaTooNew is returned by Open for a database written by a newer
// ivschatd: running older code against it could corrupt data it does not know.
var ErrSchemaTooNew = errors.New("database schema is newer than this ivschatd supports")

// busyTimeoutMS bounds how long a connection waits for another process's lock
// (or a checkpoint) before failing with SQLITE_BUSY.
const busyTimeoutMS = 10000

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Store is the SQLite store.Store. It is safe for concurrent use.
type Store struct {
	w *sql.DB // exactly one connection; every write goes here
	r *sql.DB // read-only connections

	// Statements of the hot read paths, prepared once per connection and
	// cached by database/sql rather than parsed on every call.
	getRoomStmt *sql.Stmt
	getLCStmt   *sql.Stmt
}

var _ store.Store = (*Store)(nil)

// Open opens (creating if needed) the database file at path and brings its
// schema up to date. path must be a file name: an in-memory database would not
// be shared between the writer and the readers.
func Open(path string) (*Store, error) {
	ms, err := loadMigrations(migrationFiles)
	if err != nil {
		return nil, err
	}
	return open(context.Background(), path, ms)
}

func open(ctx context.Context, path string, ms []migration) (_ *Store, err error) {
	if path == "" || strings.ContainsRune(path, '?') || strings.HasPrefix(path, ":memory:") || strings.HasPrefix(path, "file:") {
		// The driver splits the DSN at the first '?', and URIs or in-memory
		// names would bypass the per-connection settings below.
		return nil, fmt.Errorf("sqlite: invalid database path %q: want a plain file name without '?'", path)
	}
	common := url.Values{}
	common.Add("_pragma", "busy_timeout("+strconv.Itoa(busyTimeoutMS)+")")
	common.Add("_pragma", "foreign_keys(1)")

	wq := cloneValues(common)
	// WAL lets readers proceed during a write; synchronous=FULL makes a
	// committed transaction survive power loss, which is what "durable when a
	// call returns" means. journal_mode is stored in the file, so setting it on
	// the writer (opened first) covers the readers.
	wq.Add("_pragma", "journal_mode(WAL)")
	wq.Add("_pragma", "synchronous(FULL)")
	wq.Set("_txlock", "immediate")
	w, err := sql.Open("sqlite", path+"?"+wq.Encode())
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			w.Close()
		}
	}()
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	if err := w.PingContext(ctx); err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	if err := migrate(ctx, w, ms); err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", path, err)
	}

	rq := cloneValues(common)
	rq.Add("_pragma", "query_only(1)") // a write on a reader is a bug; fail loudly
	r, err := sql.Open("sqlite", path+"?"+rq.Encode())
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			r.Close()
		}
	}()
	n := max(4, runtime.GOMAXPROCS(0))
	r.SetMaxOpenConns(n)
	// Keep every reader open: opening a connection re-runs the pragmas and
	// re-prepares statements, which would dominate a GetRoom.
	r.SetMaxIdleConns(n)
	r.SetConnMaxLifetime(0)
	r.SetConnMaxIdleTime(0)

	s := &Store{w: w, r: r}
	if s.getRoomStmt, err = r.PrepareContext(ctx, roomSelect+" WHERE r.id = ?"); err != nil {
		return nil, fmt.Errorf("sqlite: prepare: %w", err)
	}
	if s.getLCStmt, err = r.PrepareContext(ctx, lcSelect+" WHERE id = ?"); err != nil {
		s.getRoomStmt.Close()
		return nil, fmt.Errorf("sqlite: prepare: %w", err)
	}
	return s, nil
}

func cloneValues(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

// Ping implements store.Store: a query on a reader connection, so a locked
// or vanished file shows.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	return s.r.QueryRowContext(ctx, `SELECT 1`).Scan(&one)
}

// Close releases the connections. Calls in flight may fail.
func (s *Store) Close() error {
	return errors.Join(s.getRoomStmt.Close(), s.getLCStmt.Close(), s.r.Close(), s.w.Close())
}

type migration = storeutil.Migration

func loadMigrations(fsys fs.FS) ([]migration, error) {
	ms, err := storeutil.LoadMigrations(fsys, "migrations")
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	return ms, nil
}

// migrate applies the migrations the database lacks in one transaction, so a
// failure leaves the schema as it was. The transaction is BEGIN IMMEDIATE (see
// Open), which also serializes two processes opening a new file at once.
func migrate(ctx context.Context, db *sql.DB, ms []migration) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER NOT NULL PRIMARY KEY) STRICT`); err != nil {
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
		if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
			return fmt.Errorf("migrate: apply %s: %w", m.Name, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version) VALUES (?)`, m.Version); err != nil {
			return fmt.Errorf("migrate: record %s: %w", m.Name, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrate: commit: %w", err)
	}
	return nil
}
