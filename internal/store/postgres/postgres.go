// Package postgres opens the store for clusters: several ivschatd nodes share
// one PostgreSQL database. The implementation, shared with SQLite, is
// store/sqlstore.
package postgres

import (
	"context"

	"github.com/ivschatd/ivschatd/internal/store/sqlstore"
)

// ErrSchemaTooNew is returned by Open for a database written by a newer
// ivschatd: running older code against it could corrupt data it does not know.
var ErrSchemaTooNew = sqlstore.ErrSchemaTooNew

// Open connects to the database at url and brings the schema up to date (see
// sqlstore.OpenPostgres).
func Open(ctx context.Context, url string) (*sqlstore.Store, error) {
	return sqlstore.OpenPostgres(ctx, url)
}
