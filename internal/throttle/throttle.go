// Package throttle keeps the log lines about one ongoing failure down to one
// per interval: an outage stays visible in the log without filling the disk,
// while its counters (kept by the caller) count every occurrence.
package throttle

import (
	"sync/atomic"
	"time"
)

// Every lets one event through per interval. The zero value lets the first
// one through. It is safe for concurrent use: of callers racing for the same
// slot exactly one wins.
type Every struct {
	last atomic.Int64 // UnixNano of the last event let through
}

// Allow reports whether at least d has passed since the last event it let
// through and, if so, records now as that event.
func (e *Every) Allow(now time.Time, d time.Duration) bool {
	n := now.UnixNano()
	l := e.last.Load()
	return n-l >= int64(d) && e.last.CompareAndSwap(l, n)
}
