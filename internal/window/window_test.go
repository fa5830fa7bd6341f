package window

import (
	"sync"
	"testing"
)

func TestCounterSumsTheAskedBuckets(t *testing.T) {
	c := New(12, 1)
	const t0 = 1_700_000_000
	for s := int64(0); s < 5; s++ {
		for range s + 1 { // 1 event at t0, 2 at t0+1, ... 5 at t0+4
			c.Add(t0 + s)
		}
	}
	if got := c.Sum(t0+4, 10, true); got != 15 {
		t.Errorf("all buckets including the current one: %d, want 15", got)
	}
	if got := c.Sum(t0+4, 10, false); got != 10 {
		t.Errorf("complete buckets only: %d, want 10 (the current second's 5 left out)", got)
	}
	if got := c.Sum(t0+4, 2, false); got != 7 {
		t.Errorf("the last two complete buckets: %d, want 3+4", got)
	}
	if got := c.Sum(t0+5, 10, false); got != 15 {
		t.Errorf("a second later every bucket is complete: %d, want 15", got)
	}
	if got := c.Sum(t0+14, 10, false); got != 5 {
		t.Errorf("ten seconds later only t0+4 is in the window: %d, want 5", got)
	}
	if got := c.Sum(t0+100, 10, true); got != 0 {
		t.Errorf("long after: %d, want 0", got)
	}
	if got := c.Latest(); got != t0+4 {
		t.Errorf("Latest = %d, want %d", got, t0+4)
	}
}

func TestCounterReusesSlotsOfOldBuckets(t *testing.T) {
	c := New(4, 1)
	const t0 = 1_700_000_000
	c.Add(t0)
	c.Add(t0)
	c.Add(t0 + 4) // same slot as t0: the old count is forgotten
	if got := c.Sum(t0+4, 4, true); got != 1 {
		t.Errorf("Sum = %d, want 1", got)
	}
	// An event older than the ring finds its slot taken by a newer bucket.
	c.Add(t0)
	if got := c.Sum(t0+4, 4, true); got != 1 {
		t.Errorf("after a stale Add: %d, want 1", got)
	}
	if got := c.Sum(t0, 1, true); got != 0 {
		t.Errorf("the stale bucket reads %d, want 0", got)
	}
}

func TestCounterWideBuckets(t *testing.T) {
	c := New(7, 10)
	const t0 = 1_700_000_000 // a multiple of 10
	c.Add(t0 + 1)
	c.Add(t0 + 9)
	c.Add(t0 + 10)
	c.Add(t0 + 65)
	if got := c.Sum(t0+65, 7, true); got != 4 {
		t.Errorf("Sum over 70 s = %d, want 4", got)
	}
	if got := c.Sum(t0+65, 6, true); got != 2 {
		t.Errorf("Sum over the last 6 buckets = %d, want 2 (t0+10, t0+65)", got)
	}
	if got := c.Latest(); got != t0+60 {
		t.Errorf("Latest = %d, want the start of the bucket of t0+65", got)
	}
}

func TestCounterNeverCountedIsIdle(t *testing.T) {
	c := New(3, 1)
	if c.Latest() != 0 || c.Sum(1_700_000_000, 3, true) != 0 {
		t.Fatal("a new counter is not empty")
	}
}

func TestCounterConcurrentAddsAreNotLost(t *testing.T) {
	c := New(12, 1)
	const t0, workers, each = 1_700_000_000, 8, 10_000
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range each {
				c.Add(t0)
			}
		})
	}
	wg.Wait()
	if got := c.Sum(t0, 1, true); got != workers*each {
		t.Fatalf("Sum = %d, want %d", got, workers*each)
	}
}

func BenchmarkCounterAdd(b *testing.B) {
	c := New(12, 1)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c.Add(1_700_000_000)
		}
	})
}
