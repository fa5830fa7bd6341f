// Package sqlstore is the one store.Store implementation, on database/sql,
// for both SQLite (the embedded store, modernc.org/sqlite) and PostgreSQL
// (clusters, pgx through its database/sql driver). The operations are written
// once; what the databases do differently is in Dialect (dialect.go), and how
// each is opened in sqlite.go and postgres.go.
//
// What happens when the database cannot serve is decided here, once: every
// call is bounded by the dialect's operation timeout, and a failure that is
// the database's (unreachable, too slow, shutting down) wraps
// store.ErrUnavailable, which the API and the chat handshake answer with 503.
package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"

	"github.com/ivschatd/ivschatd/internal/chat"
	"github.com/ivschatd/ivschatd/internal/store"
)

// Store is the store.Store on a database/sql database. It is safe for
// concurrent use.
type Store struct {
	d *Dialect
	w *sql.DB // writes (SQLite: its single writer connection)
	r *sql.DB // reads (PostgreSQL: the same pool as w)

	// Statements of the hot read paths (the chat handshake's GetRoomBan),
	// prepared once per connection rather than parsed on every call.
	getRoom    *sql.Stmt
	getRoomBan *sql.Stmt
	getLC      *sql.Stmt
}

var _ store.Store = (*Store)(nil)

// newStore migrates the database and prepares the hot statements. It takes
// ownership of w and r: they are closed if it fails.
func newStore(ctx context.Context, d *Dialect, w, r *sql.DB) (_ *Store, err error) {
	s := &Store{d: d, w: w, r: r}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	ms, err := loadMigrations(migrationFiles, d.migrationDir)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", d.name, err)
	}
	if err := migrate(ctx, d, w, ms); err != nil {
		return nil, fmt.Errorf("%s: %w", d.name, err)
	}
	if s.getRoom, err = r.PrepareContext(ctx, d.sql(s.roomSelect()+` WHERE r.id = ?`)); err != nil {
		return nil, fmt.Errorf("%s: prepare: %w", d.name, err)
	}
	if s.getRoomBan, err = r.PrepareContext(ctx, d.sql(s.getRoomBanQuery())); err != nil {
		return nil, fmt.Errorf("%s: prepare: %w", d.name, err)
	}
	if s.getLC, err = r.PrepareContext(ctx, d.sql(lcSelect+` WHERE id = ?`)); err != nil {
		return nil, fmt.Errorf("%s: prepare: %w", d.name, err)
	}
	return s, nil
}

// Close releases the connections. Calls in flight may fail.
func (s *Store) Close() error {
	var errs []error
	for _, st := range []*sql.Stmt{s.getRoom, s.getRoomBan, s.getLC} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	if s.r != s.w {
		errs = append(errs, s.r.Close())
	}
	errs = append(errs, s.w.Close())
	return errors.Join(errs...)
}

// Ping implements store.Store: a query on a reader connection, so that a
// vanished file or an unreachable server shows.
func (s *Store) Ping(ctx context.Context) error {
	return s.call(ctx, func(ctx context.Context) error {
		var one int
		return wrap(s.r.QueryRowContext(ctx, `SELECT 1`).Scan(&one), "ping")
	})
}

// call runs one store operation under the dialect's operation timeout and
// classifies its failure. The bound is what keeps a frozen connection (a
// network black hole) from hanging a request: the driver abandons the
// connection at the deadline, and database/sql opens a fresh one for the
// next call, so service resumes by itself when the database is back.
//
// Errors of the contract (*chat.Error) pass unchanged; a failure that is the
// database's wraps store.ErrUnavailable; anything else is returned as it is
// (an internal error: 500).
func (s *Store) call(ctx context.Context, op func(ctx context.Context) error) error {
	octx, cancel := context.WithTimeout(ctx, s.d.opTimeout)
	defer cancel()
	err := op(octx)
	if err == nil {
		return nil
	}
	var ce *chat.Error
	if errors.As(err, &ce) {
		return err
	}
	err = fmt.Errorf("%s: %w", s.d.name, err)
	if ctx.Err() == nil && octx.Err() != nil {
		return fmt.Errorf("%w: %w (no answer within %v)", store.ErrUnavailable, err, s.d.opTimeout)
	}
	if s.unavailable(err) {
		return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
	}
	return err
}

// unavailable reports errors that say the database cannot be reached or is
// not answering, whatever the driver.
func (s *Store) unavailable(err error) bool {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, driver.ErrBadConn),
		errors.Is(err, sql.ErrConnDone),
		errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, io.EOF),
		errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EPIPE),
		errors.As(err, &ne):
		return true
	}
	return s.d.unreachable(err)
}

// wrap adds what failed to a driver error; nil stays nil and the contract's
// *chat.Error values are returned as they are.
func wrap(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	var ce *chat.Error
	if errors.As(err, &ce) {
		return err
	}
	return fmt.Errorf(format+": %w", append(args, err)...)
}

// withTx runs fn in a write transaction and commits if fn returns nil. fn's
// error is returned unwrapped so that the contract's *chat.Error values and
// update callbacks' errors reach the caller as they are.
func (s *Store) withTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}
