package main

import (
	"math"
	"testing"
	"time"
)

// within says got is within 1/64 (the per-viewer histogram's precision,
// reported as bucket midpoints) of want.
func within(got, want time.Duration) bool {
	return math.Abs(float64(got-want)) <= float64(want)/64
}

func TestViewerBucketsCoverRange(t *testing.T) {
	if histBucket(viewerMaxMicros) != viewerBuckets-1 {
		t.Fatalf("bucket of %d µs is %d, want the last of %d", viewerMaxMicros, histBucket(viewerMaxMicros), viewerBuckets)
	}
	// Every bucket's midpoint is within 1/64 of every value in it.
	for b := 1; b < viewerBuckets; b++ {
		lo, hi := histUpper(b-1)+1, histUpper(b)
		mid := uint64(bucketMid(b) / time.Microsecond)
		if mid < lo || mid > hi {
			t.Fatalf("bucket %d [%d, %d]: midpoint %d outside", b, lo, hi, mid)
		}
		for _, v := range []uint64{lo, hi} {
			if math.Abs(float64(mid)-float64(v)) > float64(v)/64+0.5 {
				t.Fatalf("bucket %d [%d, %d]: midpoint %d too far from %d", b, lo, hi, mid, v)
			}
		}
	}
}

func TestNearestRank(t *testing.T) {
	for _, c := range []struct {
		p    float64
		n    uint64
		want uint64
	}{{0.5, 1, 1}, {0.99, 1, 1}, {0.5, 2, 1}, {0.5, 3, 2}, {0.5, 100, 50}, {0.99, 100, 99}, {0.99, 101, 100}, {0.99, 1000, 990}, {0.5, 0, 1}} {
		if got := nearestRank(c.p, c.n); got != c.want {
			t.Errorf("nearestRank(%v, %d) = %d, want %d", c.p, c.n, got, c.want)
		}
	}
}

func TestViewerPercentiles(t *testing.T) {
	tr := newTracker(5, 1, 1)
	// Viewer 0: 150 at 2 ms, 50 at 8 ms: p50 2 ms (rank 100), p99 8 ms.
	for range 150 {
		tr.observe(0, 0, 0, 2*time.Millisecond)
	}
	for range 50 {
		tr.observe(0, 0, 0, 8*time.Millisecond)
	}
	// Viewer 1: 99 at 3 ms and one at 100 ms: p99 is rank 99, still 3 ms.
	for range 99 {
		tr.observe(1, 0, 0, 3*time.Millisecond)
	}
	tr.observe(1, 0, 0, 100*time.Millisecond)
	// Viewer 2: nine at 1 ms and one at 100 ms: p99 is rank 10, the slow one.
	for range 9 {
		tr.observe(2, 0, 0, time.Millisecond)
	}
	tr.observe(2, 0, 0, 100*time.Millisecond)
	// Viewer 3: values below 32 µs are exact; a negative one (clock step)
	// counts as zero.
	tr.observe(3, 0, 0, 20*time.Microsecond)
	tr.observe(3, 0, 0, -time.Second)
	tr.observe(3, 0, 0, 20*time.Microsecond)
	// Viewer 4 received nothing.

	for _, c := range []struct {
		v        int
		p50, p99 time.Duration
	}{
		{0, 2 * time.Millisecond, 8 * time.Millisecond},
		{1, 3 * time.Millisecond, 3 * time.Millisecond},
		{2, time.Millisecond, 100 * time.Millisecond},
	} {
		p50, p99, ok := tr.viewerPercentiles(c.v)
		if !ok || !within(p50, c.p50) || !within(p99, c.p99) {
			t.Errorf("viewer %d: p50 %v p99 %v %v, want %v %v", c.v, p50, p99, ok, c.p50, c.p99)
		}
	}
	if p50, p99, ok := tr.viewerPercentiles(3); !ok || p50 != 20*time.Microsecond || p99 != 20*time.Microsecond {
		t.Errorf("viewer 3: %v %v %v", p50, p99, ok)
	}
	if _, _, ok := tr.viewerPercentiles(4); ok {
		t.Errorf("viewer 4 has percentiles without messages")
	}

	// Anything beyond the histogram's range lands in its last bucket; the
	// pooled maximum stays exact.
	tr.observe(4, 0, 0, 30*time.Second)
	if p50, _, _ := tr.viewerPercentiles(4); p50 < 16*time.Second || p50 > 17*time.Second {
		t.Errorf("30 s at a viewer reported as %v", p50)
	}
	if s := summarize(tr.shards); s.Max != 30*time.Second || s.Count != 314 {
		t.Errorf("pooled: %+v", s)
	}
}

func TestSpreadOf(t *testing.T) {
	if s := spreadOf([]float64{5, 1, 3, 2, 4}); s != (spread{Min: 1, Median: 3, P99: 5, Max: 5}) {
		t.Errorf("five: %+v", s)
	}
	hundred := make([]float64, 100)
	for i := range hundred {
		hundred[99-i] = float64(i + 1)
	}
	if s := spreadOf(hundred); s != (spread{Min: 1, Median: 50, P99: 99, Max: 100}) {
		t.Errorf("1..100: %+v", s)
	}
	if hundred[0] != 100 {
		t.Errorf("spreadOf sorted its argument")
	}
	if s := spreadOf(nil); s != (spread{}) {
		t.Errorf("none: %+v", s)
	}
}

func TestPerViewerLatency(t *testing.T) {
	// Four viewers over two nodes (0 and 2 on node 0, 1 and 3 on node 1),
	// two senders (sender 0 on node 0, sender 1 on node 1). Viewer 3 is the
	// slow one: every message 40 ms late.
	tr := newTracker(4, 2, 2)
	lat := []time.Duration{time.Millisecond, 2 * time.Millisecond, 4 * time.Millisecond, 40 * time.Millisecond}
	for seq := uint32(1); seq <= 50; seq++ {
		for v := range 4 {
			for s := range 2 {
				d := lat[v]
				if s != v%2 {
					d += time.Millisecond // crossing nodes costs a millisecond more
				}
				tr.observe(v, s, seq, d)
			}
		}
	}
	all := tr.perViewer(func(int) bool { return true }, time.Hour)
	// Each viewer's p50 is its own-node latency, its p99 the cross-node one.
	if all.Viewers != 4 ||
		!within(ms2d(all.P50.Min), time.Millisecond) || !within(ms2d(all.P50.Median), 2*time.Millisecond) ||
		!within(ms2d(all.P50.Max), 40*time.Millisecond) || !within(ms2d(all.P99.Min), 2*time.Millisecond) ||
		!within(ms2d(all.P99.Max), 41*time.Millisecond) || all.P99.P99 != all.P99.Max {
		t.Errorf("all viewers: %+v", all)
	}
	node1 := tr.perViewer(func(v int) bool { return v%2 == 1 }, time.Hour)
	if node1.Viewers != 2 || !within(ms2d(node1.P50.Min), 2*time.Millisecond) || !within(ms2d(node1.P50.Max), 40*time.Millisecond) {
		t.Errorf("node 1: %+v", node1)
	}
	// The pooled paths: node 1's viewers got sender 0's messages 1 ms later
	// than sender 1's.
	for _, c := range []struct {
		to, from int
		max      time.Duration
	}{{1, 1, 40 * time.Millisecond}, {1, 0, 41 * time.Millisecond}, {0, 0, 4 * time.Millisecond}, {0, 1, 5 * time.Millisecond}} {
		if s := summarize(tr.pathShards(c.to, c.from)); s.Count != 100 || s.Max != c.max {
			t.Errorf("path %d->%d: %+v", c.from, c.to, s)
		}
	}
	if s := summarize(tr.nodeShards(0)); s.Count != 200 {
		t.Errorf("node 0: %+v", s)
	}
	if s := summarize(tr.shards); s.Count != 400 || s.Max != 41*time.Millisecond {
		t.Errorf("pooled: %+v", s)
	}
	// No viewer's figure is above the slowest message, although its
	// bucket's midpoint may be (41 ms is in [40.960, 41.983] ms, 40 ms in [39.936, 40.959]).
	if c := tr.perViewer(func(int) bool { return true }, 41*time.Millisecond); c.P99.Max != 41 || c.P50.Max != 40.447 {
		t.Errorf("capped at 41 ms: %+v", c)
	}
}

func TestObserveAllocs(t *testing.T) {
	// A viewer's reader records a frame without allocating.
	tr := newTracker(4, 2, 2)
	if n := testing.AllocsPerRun(100, func() { tr.observe(3, 1, 1, 7*time.Millisecond) }); n != 0 {
		t.Errorf("%v allocations per frame", n)
	}
}

func ms2d(v float64) time.Duration { return time.Duration(v * 1e6) }
