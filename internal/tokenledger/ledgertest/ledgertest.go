// Package ledgertest is the behaviour suite that every messaging.Ledger
// implementation must pass.
package ledgertest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ivschatd/ivschatd/internal/messaging"
)

// Run runs the suite. newLedger returns an empty ledger: one shared with
// other runs (Redis) must be keyed under a prefix of its own.
func Run(t *testing.T, newLedger func(t *testing.T) messaging.Ledger) {
	ctx := context.Background()
	hour := time.Now().Add(time.Hour)
	use := func(t *testing.T, l messaging.Ledger, id string, exp time.Time) bool {
		t.Helper()
		first, err := l.Use(ctx, id, exp)
		if err != nil {
			t.Fatalf("Use(%s): %v", id, err)
		}
		return first
	}
	t.Run("SingleUse", func(t *testing.T) {
		l := newLedger(t)
		if !use(t, l, "tok-1", hour) {
			t.Fatal("first use refused")
		}
		if use(t, l, "tok-1", hour) {
			t.Fatal("second use accepted")
		}
		if use(t, l, "tok-1", hour.Add(time.Hour)) {
			t.Fatal("second use with another expiry accepted")
		}
	})
	t.Run("IndependentIDs", func(t *testing.T) {
		l := newLedger(t)
		for i := range 10 {
			if !use(t, l, fmt.Sprint("tok-", i), hour) {
				t.Fatalf("first use of tok-%d refused", i)
			}
		}
	})
	t.Run("ConcurrentUseExactlyOneWins", func(t *testing.T) {
		l := newLedger(t)
		for round := range 5 {
			id := fmt.Sprint("contended-", round)
			var wins atomic.Int32
			var wg sync.WaitGroup
			start := make(chan struct{})
			for range 32 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					first, err := l.Use(ctx, id, hour)
					if err != nil {
						t.Error(err)
					}
					if first {
						wins.Add(1)
					}
				}()
			}
			close(start)
			wg.Wait()
			if n := wins.Load(); n != 1 {
				t.Fatalf("round %d: %d goroutines won, want 1", round, n)
			}
		}
	})
	t.Run("ExpiredOrExpiringNow", func(t *testing.T) {
		// The gateway refuses an expired token before it asks the ledger,
		// so these only happen at the edge of a token's life; a ledger must
		// answer without error and accept the first use. Whether it still
		// refuses a second use is up to the implementation (Memory forgets
		// at once, Redis keeps a clock-skew margin).
		l := newLedger(t)
		for name, exp := range map[string]time.Time{"past": time.Now().Add(-time.Hour), "now": time.Now(), "zero": {}} {
			if !use(t, l, "edge-"+name, exp) {
				t.Errorf("%s: first use refused", name)
			}
			use(t, l, "edge-"+name, exp)
		}
	})
}
