package tokenledger_test

import (
	"context"
	"database/sql"
	"io"
	"log/slog"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/ivschatd/ivschatd/internal/messaging"
	"github.com/ivschatd/ivschatd/internal/tokenledger"
	"github.com/ivschatd/ivschatd/internal/tokenledger/ledgertest"
)

func openSQLite(t testing.TB, path string) *tokenledger.SQLite {
	t.Helper()
	l, err := tokenledger.OpenSQLite(context.Background(), path, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func TestSQLiteLedger(t *testing.T) {
	ledgertest.Run(t, func(t *testing.T) messaging.Ledger {
		return openSQLite(t, filepath.Join(t.TempDir(), "used-tokens.db"))
	})
}

// A token used before the process ended is refused by the next one, also
// when the first never closed the file (a crash: nothing ran at exit).
func TestSQLiteLedgerSurvivesRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "used-tokens.db")
	ctx := context.Background()
	exp := time.Now().Add(time.Hour)
	crashed := openSQLite(t, path) // closed only at cleanup, after the reopen
	if first, err := crashed.Use(ctx, "used-before", exp); !first || err != nil {
		t.Fatalf("first use: %v %v", first, err)
	}
	if first, err := crashed.Use(ctx, "expired", time.Now().Add(-time.Second)); !first || err != nil {
		t.Fatalf("expired token: %v %v", first, err)
	}

	restarted := openSQLite(t, path)
	if first, err := restarted.Use(ctx, "used-before", exp); first || err != nil {
		t.Fatalf("token used before the restart: first=%v err=%v, want refused", first, err)
	}
	if first, err := restarted.Use(ctx, "fresh", exp); !first || err != nil {
		t.Fatalf("fresh token after the restart: %v %v", first, err)
	}
}

// Entries of expired tokens are deleted when the ledger opens (and every
// PruneEvery), so the file does not grow with every token ever used.
func TestSQLiteLedgerPrunesExpired(t *testing.T) {
	path := filepath.Join(t.TempDir(), "used-tokens.db")
	ctx := context.Background()
	l := openSQLite(t, path)
	for i := range 5 {
		l.Use(ctx, "short-"+strconv.Itoa(i), time.Now().Add(50*time.Millisecond))
	}
	l.Use(ctx, "long", time.Now().Add(time.Hour))
	l.Close()
	time.Sleep(100 * time.Millisecond)
	openSQLite(t, path).Close()

	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM used_tokens`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("%d entries left, want 1 (the unexpired token)", n)
	}
}

// BenchmarkSQLiteUse is the ledger's cost on the handshake path: a first use
// (memory, then one INSERT committed to the WAL) and a refused reuse
// (memory only).
func BenchmarkSQLiteUse(b *testing.B) {
	ctx := context.Background()
	exp := time.Now().Add(time.Hour)
	b.Run("first", func(b *testing.B) {
		l := openSQLite(b, filepath.Join(b.TempDir(), "used-tokens.db"))
		i := 0
		for b.Loop() {
			i++
			if first, err := l.Use(ctx, "token-"+strconv.Itoa(i), exp); !first || err != nil {
				b.Fatal(first, err)
			}
		}
	})
	b.Run("reused", func(b *testing.B) {
		l := openSQLite(b, filepath.Join(b.TempDir(), "used-tokens.db"))
		l.Use(ctx, "token", exp)
		for b.Loop() {
			if first, _ := l.Use(ctx, "token", exp); first {
				b.Fatal("reuse accepted")
			}
		}
	})
}
