package messaging

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"
)

// fakeClockLedger returns a MemoryLedger whose clock the test moves.
func fakeClockLedger(start time.Time) (*MemoryLedger, *time.Time) {
	l := NewMemoryLedger()
	now := start
	l.now = func() time.Time { return now }
	return l, &now
}

func mustUse(t testing.TB, l *MemoryLedger, id string, exp time.Time) bool {
	t.Helper()
	first, err := l.Use(context.Background(), id, exp)
	if err != nil {
		t.Fatalf("Use(%s): %v", id, err)
	}
	return first
}

// A handshake must not pay for forgetting everything that expired: one Use
// after a mass expiry drops a bounded number of entries, and the rest go over
// the following Uses, so expired entries do not pile up either.
func TestMemoryLedgerForgetsIncrementally(t *testing.T) {
	start := time.Unix(1_000_000, 0)
	l, now := fakeClockLedger(start)
	const n = 10_000
	for i := range n {
		mustUse(t, l, "old-"+strconv.Itoa(i), start.Add(time.Minute))
	}
	mustUse(t, l, "live", start.Add(time.Hour))

	*now = start.Add(2 * time.Minute) // every old-* entry has expired
	mustUse(t, l, "new-0", now.Add(time.Hour))
	if got := l.Len(); got < n-n/10 {
		t.Fatalf("one Use dropped %d of %d expired entries: the handshake paid for a sweep", n+2-got, n)
	}
	uses := 1
	for l.Len() > 2+uses {
		if uses > n {
			t.Fatalf("%d entries left after %d Uses; expired entries are not being forgotten", l.Len(), uses)
		}
		mustUse(t, l, "new-"+strconv.Itoa(uses), now.Add(time.Hour))
		uses++
	}
	if mustUse(t, l, "live", now.Add(time.Hour)) || mustUse(t, l, "new-0", now.Add(time.Hour)) {
		t.Fatal("a live entry was forgotten along with the expired ones")
	}
	for i := 0; i < n; i += 997 {
		if !mustUse(t, l, "old-"+strconv.Itoa(i), now.Add(time.Hour)) {
			t.Fatalf("old-%d refused after its expiry", i)
		}
	}
}

// An ID used again after its entry expired starts a new entry; forgetting the
// old one later must not forget the new one.
func TestMemoryLedgerReuseAfterExpiryKeepsNewEntry(t *testing.T) {
	start := time.Unix(1_000_000, 0)
	l, now := fakeClockLedger(start)
	mustUse(t, l, "a", start.Add(time.Second))
	*now = start.Add(3 * time.Second)
	if !mustUse(t, l, "a", now.Add(time.Hour)) {
		t.Fatal("use after expiry refused")
	}
	for i := range 1000 { // enough Uses to forget whatever expired
		*now = now.Add(time.Millisecond)
		mustUse(t, l, "x"+strconv.Itoa(i), now.Add(time.Millisecond/2))
	}
	if mustUse(t, l, "a", now.Add(time.Hour)) {
		t.Fatal("second use of the renewed entry accepted")
	}
}

func TestMemoryLedgerExpiryEdges(t *testing.T) {
	start := time.Unix(1_000_000, 500)
	l, now := fakeClockLedger(start)
	// The last instant of a token's life still counts as used.
	mustUse(t, l, "edge", start)
	if mustUse(t, l, "edge", start) {
		t.Fatal("second use at the expiry instant accepted")
	}
	*now = start.Add(time.Nanosecond)
	if !mustUse(t, l, "edge", start) {
		t.Fatal("use after expiry refused")
	}
	// Far-future expiries (beyond UnixNano's range) are remembered.
	far := time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)
	mustUse(t, l, "far", far)
	*now = start.Add(1000 * time.Hour)
	for i := range 200 {
		mustUse(t, l, "y"+strconv.Itoa(i), now.Add(-time.Second))
	}
	if mustUse(t, l, "far", far) {
		t.Fatal("far-future entry forgotten")
	}
	// Already-expired tokens are accepted and not kept (the gateway refuses
	// them before asking; remembering them would only cost memory).
	before := l.Len()
	for _, exp := range []time.Time{{}, now.Add(-time.Nanosecond), time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC)} {
		if !mustUse(t, l, "past", exp) {
			t.Fatalf("expired %v: first use refused", exp)
		}
	}
	if l.Len() > before {
		t.Fatalf("expired tokens kept: Len %d -> %d", before, l.Len())
	}
}

// Token IDs are stored as fixed-size keys (inline when short, hashed when
// long): distinct IDs must stay distinct, whatever their bytes and lengths.
func TestMemoryLedgerDistinctIDs(t *testing.T) {
	start := time.Unix(1_000_000, 0)
	l, _ := fakeClockLedger(start)
	exp := start.Add(time.Hour)
	long := strings.Repeat("x", 31)
	ids := []string{
		"", "\x00", "a", "a\x00", "\x00a", "AbCdEfGhIjKlMnOpQrStUvWx",
		long, long + "\x00", long + "x", long + "y", long + "xx", strings.Repeat("\xff", 32),
		strings.Repeat("z", 4096),
	}
	for _, id := range ids {
		if !mustUse(t, l, id, exp) {
			t.Fatalf("first use of %q refused", id)
		}
	}
	for _, id := range ids {
		if mustUse(t, l, id, exp) {
			t.Fatalf("second use of %q accepted", id)
		}
	}
	if l.Len() != len(ids) {
		t.Fatalf("%d entries for %d IDs", l.Len(), len(ids))
	}
}

// BenchmarkMemoryLedgerUse measures one handshake's ledger cost with n tokens
// in the ledger, under a clock that moves a fixed step per Use:
//
//   - expiring: the tokens of the last hour, one expiring per Use (n per
//     hour, each lives an hour), so n stays constant;
//   - live: n long-lived tokens that do not expire during the run, plus
//     short-lived ones at 1,000 Uses per second;
//   - quiet: n long-lived tokens and a Use every minute, so that each Use
//     is the first of its minute (the one that paid for the periodic sweep
//     of the old ledger); ns/op is that handshake's cost, with little noise.
//
// ns/op includes two clock reads per Use for the other metrics: max-ns, the
// slowest single Use of the run, and slow-ops, how many Uses took 100 µs or
// more: handshakes that waited for a sweep (as did every handshake queued
// behind them on the mutex). On a shared machine both also catch the odd
// preemption or GC pause, which is why slow-ops is there: a sweep shows as
// one slow Use per sweep, noise as a handful per run.
func BenchmarkMemoryLedgerUse(b *testing.B) {
	for _, sc := range []string{"expiring", "live", "quiet"} {
		for _, n := range []int{10_000, 100_000, 1_000_000} {
			b.Run(sc+"/n="+strconv.Itoa(n), func(b *testing.B) {
				benchLedgerUse(b, sc, n)
			})
		}
	}
}

func benchLedgerUse(b *testing.B, scenario string, n int) {
	start := time.Unix(1_000_000, 0)
	l, now := fakeClockLedger(start)
	var step, ttl time.Duration
	switch scenario {
	case "expiring":
		step, ttl = time.Hour/time.Duration(n), time.Hour
		for i := range n {
			mustUse(b, l, "p"+strconv.Itoa(i), start.Add(time.Duration(i+1)*step))
		}
	case "live", "quiet":
		step, ttl = time.Millisecond, time.Second
		if scenario == "quiet" {
			step, ttl = time.Minute, time.Hour
		}
		forever := start.Add(100 * 365 * 24 * time.Hour) // beyond any run's clock
		for i := range n {
			mustUse(b, l, "p"+strconv.Itoa(i), forever)
		}
	}
	ctx := context.Background()
	id := make([]byte, 0, 24)
	var i int
	var slowest time.Duration
	var slow int
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		*now = now.Add(step)
		id = strconv.AppendInt(append(id[:0], 'u'), int64(i), 10)
		i++
		t := time.Now()
		if first, err := l.Use(ctx, string(id), now.Add(ttl)); !first || err != nil {
			b.Fatalf("Use: %v %v", first, err)
		}
		d := time.Since(t)
		slowest = max(slowest, d)
		if d >= 100*time.Microsecond {
			slow++
		}
	}
	b.ReportMetric(float64(slowest.Nanoseconds()), "max-ns")
	b.ReportMetric(float64(slow), "slow-ops")
	b.ReportMetric(float64(l.Len()), "entries")
}
