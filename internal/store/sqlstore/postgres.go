package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
)

// Connection settings applied unless the URL sets them.
const (
	// defaultConnectTimeout bounds each connection attempt (connect_timeout
	// in the URL wins). Without a bound, a start against an address that
	// drops packets hangs for the OS's TCP timeout (minutes); once running,
	// every call is bounded by the operation timeout anyway.
	defaultConnectTimeout = 5 * time.Second
	// idleInTransactionTimeout lets the server end a session of ours that
	// sits in a transaction (a node frozen mid-call, a black-holed network),
	// so that the row and advisory locks it holds do not stall every other
	// node until TCP gives up on it. No transaction of ours is idle for
	// longer than the operation timeout.
	idleInTransactionTimeout = "10s"
)

// keepAlive probes an idle connection after 15 s and gives up after three
// unanswered probes 5 s apart, so a pooled connection to a vanished server is
// noticed in about 30 s instead of the OS default of hours.
var keepAlive = net.KeepAliveConfig{Enable: true, Idle: 15 * time.Second, Interval: 5 * time.Second, Count: 3}

// OpenPostgres connects to the database at url (a libpq URL or key=value
// string; a search_path parameter selects the schema) and brings the schema up
// to date. The pool is bounded by pgxpool's URL parameters, which keep their
// meaning: pool_max_conns (default max(4, CPUs)) open connections, all kept
// idle; pool_max_conn_lifetime (default 1 h); pool_max_conn_idle_time
// (default 30 min). Statements are prepared once per connection and cached by
// pgx, so a GetRoom costs one round trip.
func OpenPostgres(ctx context.Context, url string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx redacts passwords only on a best-effort basis and the wrapped
		// error can quote the URL, so the details are not passed on.
		return nil, errors.New("postgres: cannot parse the database URL (details withheld: they may contain the password)")
	}
	cc := cfg.ConnConfig
	if cc.ConnectTimeout == 0 {
		cc.ConnectTimeout = defaultConnectTimeout
	}
	dialer := &net.Dialer{Timeout: cc.ConnectTimeout, KeepAliveConfig: keepAlive}
	cc.DialFunc = dialer.DialContext
	if _, ok := cc.RuntimeParams["idle_in_transaction_session_timeout"]; !ok {
		cc.RuntimeParams["idle_in_transaction_session_timeout"] = idleInTransactionTimeout
	}
	db := stdlib.OpenDB(*cc)
	db.SetMaxOpenConns(int(cfg.MaxConns))
	db.SetMaxIdleConns(int(cfg.MaxConns))
	db.SetConnMaxLifetime(cfg.MaxConnLifetime)
	db.SetConnMaxIdleTime(cfg.MaxConnIdleTime)
	s, err := newStore(ctx, &postgresDialect, db, db)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	return s, nil
}
