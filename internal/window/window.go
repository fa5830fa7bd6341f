// Package window counts events over a short sliding window of fixed-width
// time buckets, without locks and without allocating per event, so that it
// can sit on a chat server's publish path.
package window

import "sync/atomic"

// Counter counts events in the most recent len(buckets) time buckets of
// Width seconds each. Each bucket is one atomic word: the bucket's index
// (unix seconds / Width, low 32 bits) in the high half and its count in the
// low half, so that moving a slot on to a new bucket and counting in it
// cannot tear. Counts older than the ring are forgotten as their slots are
// reused; a reader skips slots whose index is out of the asked range, so a
// counter that saw nothing for a while reads zero without being touched.
//
// The zero Counter is unusable; make one with New.
type Counter struct {
	width   int64
	buckets []atomic.Uint64
}

// New returns a counter of n buckets of width seconds each (both at least 1).
func New(n int, width int64) *Counter {
	return &Counter{width: max(width, 1), buckets: make([]atomic.Uint64, max(n, 1))}
}

// Width is the bucket width in seconds.
func (c *Counter) Width() int64 { return c.width }

const indexMask = 1<<32 - 1

func (c *Counter) index(now int64) uint64 { return uint64(now/c.width) & indexMask }

// Add counts one event at now (unix seconds).
func (c *Counter) Add(now int64) {
	idx := c.index(now)
	slot := &c.buckets[idx%uint64(len(c.buckets))]
	for {
		v := slot.Load()
		switch cur := v >> 32; {
		case cur == idx:
			// The common case: one atomic add. A slot moved on to a
			// newer bucket between the load and the add counts the event
			// in that bucket, a second late: harmless.
			slot.Add(1)
			return
		case cur > idx:
			// A newer bucket already took the slot (this caller was
			// descheduled for a whole ring): the event is too old to count.
			return
		}
		if slot.CompareAndSwap(v, idx<<32|1) {
			return
		}
	}
}

// Sum returns the events of the n buckets ending with now's bucket
// (includeCurrent) or with the bucket before it (complete buckets only).
// n is capped at the ring's length (less one without includeCurrent, since
// the current bucket's slot is the oldest complete one's).
func (c *Counter) Sum(now int64, n int, includeCurrent bool) uint64 {
	last := int64(c.index(now))
	if !includeCurrent {
		last--
		n = min(n, len(c.buckets)-1)
	} else {
		n = min(n, len(c.buckets))
	}
	first := last - int64(n) + 1
	var total uint64
	for i := range c.buckets {
		v := c.buckets[i].Load()
		if idx := int64(v >> 32); idx >= first && idx <= last {
			total += v & indexMask
		}
	}
	return total
}

// Latest is the start (unix seconds) of the newest bucket that counted an
// event, or 0 when none did: how long the counter has been idle.
func (c *Counter) Latest() int64 {
	var newest uint64
	for i := range c.buckets {
		v := c.buckets[i].Load()
		if v&indexMask != 0 {
			newest = max(newest, v>>32)
		}
	}
	return int64(newest) * c.width
}
