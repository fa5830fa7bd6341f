package sqlstore

import (
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	sqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Dialect is everything the two databases do differently. The operations in
// ops.go are written once, with '?' placeholders, against these fields; a
// difference that does not fit here is a sign the operation should change.
type Dialect struct {
	// name prefixes error messages ("sqlite: ...", "postgres: ...").
	name string
	// numbered placeholders: PostgreSQL wants $1, $2, ... for '?'.
	numbered bool
	// lcIDs is the SQL expression, evaluated per room row r, giving the
	// room's logging configuration IDs as a JSON array in position order.
	lcIDs string
	// rowLock is appended to a SELECT whose rows the transaction will
	// write; keyShare to one whose rows must not be deleted before commit.
	// SQLite needs neither: its writers are serialized (see openSQLite).
	rowLock, keyShare string
	// quotaLock, when set, runs first in a create's transaction with the
	// table name as its argument, so that counting and inserting are
	// serialized across nodes. Empty when writers are serialized anyway.
	quotaLock string
	// migrationLock, when set, runs first in the migration transaction, so
	// that nodes starting together do not both create the tables.
	migrationLock string
	// schemaMigrations creates the version table; it must stay exactly as
	// released, since databases created by older versions have it.
	schemaMigrations string
	// migrationDir is the dialect's directory in migrationFiles.
	migrationDir string
	// timeArg is how a time is passed as an argument: SQLite stores Unix
	// nanoseconds, PostgreSQL timestamptz. Scanning accepts both (timeCol).
	timeArg func(time.Time) any
	// isFKViolation reports a refusal by a foreign key.
	isFKViolation func(error) bool
	// unreachable reports driver errors meaning the database cannot serve
	// now (in addition to the generic ones in unavailable).
	unreachable func(error) bool
	// opTimeout bounds every store call (see Store.call).
	opTimeout time.Duration
}

// sqliteDialect is the embedded database.
var sqliteDialect = Dialect{
	name:             "sqlite",
	lcIDs:            `(SELECT json_group_array(x.lc_id ORDER BY x.position) FROM room_logging_configurations x WHERE x.room_id = r.id)`,
	schemaMigrations: `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER NOT NULL PRIMARY KEY) STRICT`,
	migrationDir:     "migrations/sqlite",
	timeArg:          func(t time.Time) any { return t.UnixNano() },
	isFKViolation: func(err error) bool {
		// An insert of a dangling reference is SQLITE_CONSTRAINT_FOREIGNKEY
		// but a RESTRICT action SQLITE_CONSTRAINT_TRIGGER (actions are
		// triggers); the schema has no other triggers.
		c := sqliteCode(err)
		return c == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY || c == sqlite3.SQLITE_CONSTRAINT_TRIGGER
	},
	unreachable: func(err error) bool {
		// Another process held the file past busy_timeout, or the disk
		// failed: nothing this request did wrong, and a retry may pass.
		switch sqliteCode(err) & 0xff { // primary code
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL, sqlite3.SQLITE_CANTOPEN:
			return true
		}
		return false
	},
	// Above busy_timeout, so that waiting for another process's lock ends
	// with SQLite's own error rather than this bound.
	opTimeout: 15 * time.Second,
}

// postgresDialect serves clusters: several nodes share the database, so
// correctness rests on its locks, never on process-local ones.
var postgresDialect = Dialect{
	name:     "postgres",
	numbered: true,
	lcIDs:    `(SELECT coalesce(json_agg(x.lc_id ORDER BY x.position), '[]') FROM room_logging_configurations x WHERE x.room_id = r.id)`,
	rowLock:  ` FOR UPDATE`,
	keyShare: ` FOR KEY SHARE`,
	// A transaction-level advisory lock per table, released by commit or
	// rollback whatever happens to the node. The key includes the schema so
	// that deployments sharing a database do not wait for each other.
	quotaLock:        `SELECT pg_advisory_xact_lock(hashtextextended(current_schema() || '.ivschatd-quota.' || ?, 0))`,
	migrationLock:    `SELECT pg_advisory_xact_lock(` + strconv.FormatInt(migrationLockKey, 10) + `)`,
	schemaMigrations: `CREATE TABLE IF NOT EXISTS schema_migrations (version integer NOT NULL PRIMARY KEY)`,
	migrationDir:     "migrations/postgres",
	timeArg:          func(t time.Time) any { return t },
	isFKViolation:    func(err error) bool { return pgCode(err) == "23503" },
	unreachable: func(err error) bool {
		var ce *pgconn.ConnectError
		if errors.As(err, &ce) {
			return true
		}
		c := pgCode(err)
		// Class 08 connection exceptions; 57P01-57P03 the server shutting
		// down or starting; 53300 too many connections.
		return strings.HasPrefix(c, "08") || c == "57P01" || c == "57P02" || c == "57P03" || c == "53300"
	},
	// Control-plane calls must answer within 5 s even when the database is
	// a black hole; a healthy statement takes milliseconds.
	opTimeout: 3 * time.Second,
}

// migrationLockKey is the advisory lock that serializes PostgreSQL
// migrations. The value is arbitrary but fixed forever.
const migrationLockKey int64 = 0x69767363_6d696772 // "ivsc" "migr"

func sqliteCode(err error) int {
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code()
	}
	return 0
}

func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// sql returns query with the dialect's placeholders. Queries never contain
// a '?' other than placeholders.
func (d *Dialect) sql(query string) string {
	if !d.numbered {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 16)
	n := 0
	for {
		i := strings.IndexByte(query, '?')
		if i < 0 {
			b.WriteString(query)
			return b.String()
		}
		n++
		b.WriteString(query[:i])
		b.WriteByte('$')
		b.WriteString(strconv.Itoa(n))
		query = query[i+1:]
	}
}
