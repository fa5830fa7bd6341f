// Package sqlite opens the embedded store: one database file, no server,
// through the pure-Go modernc.org/sqlite driver so that ivschatd builds
// without cgo. The implementation, shared with PostgreSQL, is store/sqlstore.
package sqlite

import "github.com/ivschatd/ivschatd/internal/store/sqlstore"

// ErrSchemaTooNew is returned by Open for a database written by a newer
// ivschatd: running older code against it could corrupt data it does not know.
var ErrSchemaTooNew = sqlstore.ErrSchemaTooNew

// Open opens (creating if needed) the database file at path and brings its
// schema up to date (see sqlstore.OpenSQLite).
func Open(path string) (*sqlstore.Store, error) { return sqlstore.OpenSQLite(path) }
