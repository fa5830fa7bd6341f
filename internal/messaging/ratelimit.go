package messaging

import "time"

// bucket is a token bucket that allows `rate` requests per second with a burst
// of `rate`. It is not safe for concurrent use; callers hold the lock that
// guards it (or own it, like a connection's reader goroutine). The rate is
// passed on every call so that a room's new maximumMessageRatePerSecond
// (UpdateRoom) applies to the next request without resetting anything.
type bucket struct {
	tokens float64
	last   time.Time
}

func (b *bucket) allow(now time.Time, rate int) bool {
	if rate <= 0 {
		return false
	}
	limit := float64(rate)
	if b.last.IsZero() {
		b.tokens = limit
	} else if elapsed := now.Sub(b.last); elapsed > 0 {
		b.tokens += elapsed.Seconds() * limit
	}
	b.last = now
	if b.tokens > limit {
		b.tokens = limit
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
