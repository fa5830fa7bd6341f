package messaging

import (
	"math/rand/v2"
	"testing"
	"time"
)

// flushAt is one flush of a simulated room: when it started and the head it
// offered.
type flushAt struct {
	at   time.Duration
	head uint64
}

// recordFlushes feeds flushes to a new offerLog and checks every answer
// against the flushes themselves: the offer a connection is judged on is
// that of the newest flush at least grace old, or of one at most a
// resolution step before it, and never of a flush younger than grace.
func recordFlushes(t *testing.T, grace time.Duration, flushes []flushAt) *offerLog {
	t.Helper()
	var l offerLog
	step := grace / offerResolution
	for i, f := range flushes {
		got := l.record(offerEpoch.Add(f.at), f.head, grace)
		// newest: the head of the newest earlier flush at least grace old;
		// floor: that of the newest one a step older still.
		var newest, floor uint64
		for _, e := range flushes[:i] {
			if f.at-e.at >= grace {
				newest = e.head
			}
			if f.at-e.at >= grace+step {
				floor = e.head
			}
		}
		if got > newest || got < floor {
			t.Fatalf("flush %d at %v: judged on head %d, want between %d (a step older than the grace) and %d (the grace)", i, f.at, got, floor, newest)
		}
		if last := l.lastOffer(); last != f.head {
			t.Fatalf("flush %d: last offer %d, want this flush's head %d (the pacer counts the next flush's frames from it)", i, last, f.head)
		}
		if l.n > 2*offerResolution+1 {
			t.Fatalf("flush %d: %d marks, more than the %d a grace can hold", i, l.n, 2*offerResolution+1)
		}
	}
	return &l
}

// TestOfferLogJudgesOnWhatWasOfferedAGraceAgo: a room flushing every
// millisecond (each flush offering one more frame) judges its connections
// on what it offered between a grace and a grace and a step ago.
func TestOfferLogJudgesOnWhatWasOfferedAGraceAgo(t *testing.T) {
	const grace = time.Second
	var flushes []flushAt
	for i := range 3000 {
		flushes = append(flushes, flushAt{at: time.Duration(i) * time.Millisecond, head: uint64(i) + 1})
	}
	recordFlushes(t, grace, flushes)
}

// TestOfferLogBurstThenStall: the CI flake. A flush offers a whole burst;
// the next flush, a millisecond later, must not judge anyone on it, and
// nor must any flush until a grace has passed.
func TestOfferLogBurstThenStall(t *testing.T) {
	const grace = time.Second
	var l offerLog
	at := func(d time.Duration) time.Time { return offerEpoch.Add(time.Hour + d) }
	l.record(at(0), 10, grace) // frames before the burst
	if got := l.record(at(time.Millisecond), 1010, grace); got != 0 {
		t.Fatalf("the flush after the burst judges on head %d, want 0 (nothing is a grace old)", got)
	}
	for d := 2 * time.Millisecond; d < grace; d += 7 * time.Millisecond {
		if got := l.record(at(d), 1010, grace); got != 0 {
			t.Fatalf("at %v: judged on head %d, want 0", d, got)
		}
	}
	if got := l.record(at(grace), 1010, grace); got != 10 {
		t.Fatalf("a grace after the first flush: judged on head %d, want 10", got)
	}
	// The burst's mark moved with the flushes that followed it, up to a
	// step; a step after the grace it is judged on in any case.
	if got := l.record(at(grace+grace/offerResolution), 1010, grace); got != 1010 {
		t.Fatalf("a grace and a step after the burst was offered: judged on head %d, want 1010", got)
	}
}

// TestOfferLogQuietRoom: a room that goes quiet after a burst judges the
// next flush, however much later, on everything the burst's flushes offered:
// the newest mark follows the last flush.
func TestOfferLogQuietRoom(t *testing.T) {
	const grace = time.Second
	var flushes []flushAt
	for i := range 10 {
		flushes = append(flushes, flushAt{at: time.Duration(i) * time.Millisecond, head: uint64(i+1) * 100})
	}
	l := recordFlushes(t, grace, flushes)
	if got := l.record(offerEpoch.Add(5*time.Second), 1001, grace); got != 1000 {
		t.Fatalf("after a quiet while: judged on head %d, want 1000 (the burst's last flush)", got)
	}
}

// TestOfferLogZeroGrace: without a grace the log is the rule it replaced,
// the previous flush's offer.
func TestOfferLogZeroGrace(t *testing.T) {
	var l offerLog
	now := time.Now()
	for head := uint64(1); head < 100; head++ {
		if got := l.record(now.Add(time.Duration(head)*time.Microsecond), head, 0); got != head-1 {
			t.Fatalf("flush offering %d: judged on %d, want the previous flush's %d", head, got, head-1)
		}
	}
}

// TestOfferLogRandomFlushes: flushes at random intervals, from back to back
// to longer than the grace, stay within the bounds and the fixed marks.
func TestOfferLogRandomFlushes(t *testing.T) {
	const grace = 100 * time.Millisecond
	rng := rand.New(rand.NewPCG(1, 2))
	var flushes []flushAt
	var at time.Duration
	var head uint64
	for range 5000 {
		switch rng.IntN(10) {
		case 0:
			at += time.Duration(rng.Int64N(int64(2 * grace)))
		default:
			at += time.Duration(rng.Int64N(int64(grace / 20)))
		}
		head += uint64(rng.IntN(50))
		flushes = append(flushes, flushAt{at: at, head: head})
	}
	recordFlushes(t, grace, flushes)
}

// Recording a flush is on every flush's path under room.mu: no allocation.
func TestOfferLogRecordDoesNotAllocate(t *testing.T) {
	var l offerLog
	now := time.Now()
	var head uint64
	allocs := testing.AllocsPerRun(1000, func() {
		head++
		now = now.Add(3 * time.Millisecond)
		l.record(now, head, time.Second)
	})
	if allocs != 0 {
		t.Fatalf("record allocates %v times per call", allocs)
	}
}
