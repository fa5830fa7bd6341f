package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"runtime"
	"strconv"
	"strings"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// busyTimeoutMS bounds how long a connection waits for another process's lock
// (or a checkpoint) before failing with SQLITE_BUSY.
const busyTimeoutMS = 10000

// OpenSQLite opens (creating if needed) the database file at path and brings
// its schema up to date. path must be a file name: an in-memory database
// would not be shared between the writer and the readers.
//
// Writes go through a single connection. SQLite admits one writer at a time
// anyway; funnelling them through one connection turns lock contention
// (SQLITE_BUSY and its retries) into an orderly queue inside database/sql, and
// makes read-check-write sequences such as quota checks race-free within the
// process. Every write transaction also starts with BEGIN IMMEDIATE, so the
// same holds against another process that opens the file. Reads use a separate
// pool of read-only connections, which WAL mode lets run alongside the writer.
func OpenSQLite(path string) (*Store, error) {
	ctx := context.Background()
	if path == "" || strings.ContainsRune(path, '?') || strings.HasPrefix(path, ":memory:") || strings.HasPrefix(path, "file:") {
		// The driver splits the DSN at the first '?', and URIs or in-memory
		// names would bypass the per-connection settings below.
		return nil, fmt.Errorf("sqlite: invalid database path %q: want a plain file name without '?'", path)
	}
	dsn := func(pragmas ...string) string {
		q := url.Values{}
		q.Add("_pragma", "busy_timeout("+strconv.Itoa(busyTimeoutMS)+")")
		q.Add("_pragma", "foreign_keys(1)")
		for _, p := range pragmas {
			q.Add("_pragma", p)
		}
		return path + "?" + q.Encode()
	}
	// WAL lets readers proceed during a write; synchronous=FULL makes a
	// committed transaction survive power loss, which is what "durable when a
	// call returns" means. journal_mode is stored in the file, so setting it on
	// the writer (opened first) covers the readers.
	w, err := sql.Open("sqlite", dsn("journal_mode(WAL)", "synchronous(FULL)")+"&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	if err := w.PingContext(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	// A write on a reader is a bug; query_only makes it fail loudly.
	r, err := sql.Open("sqlite", dsn("query_only(1)"))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	n := max(4, runtime.GOMAXPROCS(0))
	r.SetMaxOpenConns(n)
	// Keep every reader open: opening a connection re-runs the pragmas and
	// re-prepares statements, which would dominate a GetRoom.
	r.SetMaxIdleConns(n)
	r.SetConnMaxLifetime(0)
	r.SetConnMaxIdleTime(0)
	s, err := newStore(ctx, &sqliteDialect, w, r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}
