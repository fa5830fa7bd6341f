package tokenledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/ivschatd/ivschatd/internal/messaging"
	"github.com/ivschatd/ivschatd/internal/throttle"
)

// PruneEvery is how often a SQLite ledger deletes the entries of expired
// tokens. Entries live as long as their token (an hour or so), so the file
// holds roughly the tokens used within one token lifetime plus this.
const PruneEvery = 10 * time.Minute

// SQLite is the ledger of a single node (no Redis) that survives restarts:
// without it a token used before a restart opened once more after it.
//
// Every used token is one row of its own small database file (not the
// store's: the ledger is this node's, and it is written on every
// handshake). A messaging.MemoryLedger in front answers every Use first, so
// a token already used costs no database access; a first use costs one
// INSERT, committed before the handshake answers 101.
//
// Durability: WAL with synchronous=NORMAL. A commit is in the WAL file (the
// kernel's page cache) when Use returns, so it survives the process being
// killed or crashing, which is what a restart or a crash is; only an
// operating-system crash or power loss can drop the last commits since the
// WAL was last synced (at each checkpoint). FULL would add an fsync to every
// handshake.
type SQLite struct {
	db     *sql.DB // the handshakes' connection
	insert *sql.Stmt
	ckpt   *sql.DB // the checkpoints' connection
	mem    *messaging.MemoryLedger
	log    *slog.Logger
	now    func() time.Time

	maintenanceFailures atomic.Uint64
	maintenanceLog      throttle.Every

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

const sqliteSchema = `
CREATE TABLE IF NOT EXISTS used_tokens (
	id         TEXT PRIMARY KEY,
	expires_ms INTEGER NOT NULL -- Unix milliseconds, rounded up
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS used_tokens_expires ON used_tokens (expires_ms);
`

// OpenSQLite opens (or creates) the ledger file at path, drops the expired
// entries and loads the others into memory. Close it after the gateway.
func OpenSQLite(ctx context.Context, path string, log *slog.Logger) (*SQLite, error) {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(5000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	dsn := path + "?" + q.Encode()
	// The handshakes' connection checkpoints only as a backstop (a WAL of
	// some 40 MB, should the background checkpoints fail): a checkpoint
	// syncs the files, and made every few hundredth handshake wait
	// milliseconds (75 µs a Use on average).
	db, err := sql.Open("sqlite", dsn+"&_pragma=wal_autocheckpoint(10000)")
	if err != nil {
		return nil, fmt.Errorf("tokenledger: open %s: %w", path, err)
	}
	// One connection: SQLite serialises writers anyway, and handshakes
	// then queue in database/sql instead of retrying on SQLITE_BUSY.
	db.SetMaxOpenConns(1)
	db.SetConnMaxLifetime(0)
	l := &SQLite{db: db, mem: messaging.NewMemoryLedger(), log: log, now: time.Now, stop: make(chan struct{}), done: make(chan struct{})}
	if err := l.load(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("tokenledger: %s: %w", path, err)
	}
	if l.insert, err = db.PrepareContext(ctx, `INSERT INTO used_tokens (id, expires_ms) VALUES (?, ?) ON CONFLICT (id) DO NOTHING`); err != nil {
		db.Close()
		return nil, fmt.Errorf("tokenledger: %s: %w", path, err)
	}
	// Checkpoints run beside the handshakes, on a connection of their own.
	if l.ckpt, err = sql.Open("sqlite", dsn); err != nil {
		db.Close()
		return nil, fmt.Errorf("tokenledger: open %s: %w", path, err)
	}
	l.ckpt.SetMaxOpenConns(1)
	go l.maintain()
	return l, nil
}

func (l *SQLite) load(ctx context.Context) error {
	if _, err := l.db.ExecContext(ctx, sqliteSchema); err != nil {
		return err
	}
	now := l.now()
	if err := l.prune(ctx, now); err != nil {
		return err
	}
	rows, err := l.db.QueryContext(ctx, `SELECT id, expires_ms FROM used_tokens`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var ms int64
		if err := rows.Scan(&id, &ms); err != nil {
			return err
		}
		l.mem.Use(ctx, id, time.UnixMilli(ms))
	}
	return rows.Err()
}

// Use implements messaging.Ledger.
func (l *SQLite) Use(ctx context.Context, tokenID string, expires time.Time) (bool, error) {
	first, err := l.mem.Use(ctx, tokenID, expires)
	if err != nil || !first {
		return first, err
	}
	if l.now().After(expires) {
		return true, nil // not remembered in memory either (see MemoryLedger.Use)
	}
	res, err := l.insert.ExecContext(ctx, tokenID, ceilMillis(expires))
	if err != nil {
		// The connection will not open (the gateway answers 500), so
		// the token stays usable.
		l.mem.Forget(tokenID)
		return false, fmt.Errorf("tokenledger: record token: %w", err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return false, nil // recorded already, by a process that shared the file
	}
	return true, nil
}

// ceilMillis rounds up, so an entry never ends before its token does.
func ceilMillis(t time.Time) int64 {
	ms := t.UnixMilli()
	if time.UnixMilli(ms).Before(t) {
		ms++
	}
	return ms
}

func (l *SQLite) prune(ctx context.Context, now time.Time) error {
	_, err := l.db.ExecContext(ctx, `DELETE FROM used_tokens WHERE expires_ms < ?`, now.UnixMilli())
	return err
}

// checkpointEvery is how often the WAL is copied into the database file
// (and both synced), away from the handshakes' connection.
const checkpointEvery = time.Second

// maintain checkpoints the WAL every checkpointEvery and deletes expired
// entries every PruneEvery.
func (l *SQLite) maintain() {
	defer close(l.done)
	t := time.NewTicker(checkpointEvery)
	defer t.Stop()
	lastPrune := l.now()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		if _, err := l.ckpt.ExecContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`); err != nil {
			l.maintenanceFailed("checkpoint the WAL (the handshakes' connection checkpoints once it is large)", err)
		}
		if now := l.now(); now.Sub(lastPrune) >= PruneEvery {
			lastPrune = now
			if err := l.prune(ctx, now); err != nil {
				l.maintenanceFailed("delete the entries of expired tokens (the file grows meanwhile)", err)
			}
		}
		cancel()
	}
}

// maintenanceLogEvery bounds the log lines of failing maintenance.
const maintenanceLogEvery = time.Minute

func (l *SQLite) maintenanceFailed(what string, err error) {
	n := l.maintenanceFailures.Add(1)
	if l.maintenanceLog.Allow(time.Now(), maintenanceLogEvery) {
		l.log.Warn("tokenledger: could not "+what+"; retrying", "err", err, "failures", n)
	}
}

// SQLiteStats is a snapshot of a SQLite ledger's counters.
type SQLiteStats struct {
	// MaintenanceFailures counts failed checkpoints and prunes. (A failed
	// Use is an error to its handshake, which the gateway counts.)
	MaintenanceFailures uint64
}

// Stats returns the ledger's counters.
func (l *SQLite) Stats() SQLiteStats {
	return SQLiteStats{MaintenanceFailures: l.maintenanceFailures.Load()}
}

// Close stops pruning and closes the file; it is idempotent.
func (l *SQLite) Close() error {
	var err error
	l.closeOnce.Do(func() {
		close(l.stop)
		<-l.done
		err = errors.Join(l.ckpt.Close(), l.db.Close())
	})
	if err != nil && !errors.Is(err, sql.ErrConnDone) {
		return fmt.Errorf("tokenledger: close: %w", err)
	}
	return nil
}
