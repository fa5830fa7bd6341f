// Package ratelimit limits how often something may happen per key, in one
// process (Memory) or across every node of a cluster (Redis).
//
// Semantics, shared by every implementation and by messaging's per-node
// bucket: a token bucket per key holding at most perSecond tokens, refilled
// continuously at perSecond tokens per second. A key seen for the first time
// (or idle for a second or more) has a full bucket, so a burst of perSecond
// calls is allowed at once and the sustained rate is perSecond. Each allowed
// call takes one token; a refused call takes none. The rate is passed on
// every call, so a room's new maximumMessageRatePerSecond applies to the next
// call without a reset: tokens already in the bucket are kept (capped at the
// new rate) and refill at the new rate. perSecond <= 0 allows nothing.
package ratelimit

import (
	"context"
	"sync"
	"time"
)

// Limiter decides whether one more event for key fits the rate.
//
// now is the caller's clock. Memory uses it; Redis ignores it and uses the
// Redis server's clock (see Redis). An error means the limiter could not
// decide; the result is then false and the caller chooses what to do.
type Limiter interface {
	Allow(ctx context.Context, key string, perSecond int, now time.Time) (bool, error)
}

// Memory is an in-process Limiter. The zero value is ready to use; it is
// safe for concurrent use.
//
// Memory stays bounded by forgetting idle keys: a bucket untouched for a
// second is full whatever its rate (it refills perSecond tokens per second
// and holds at most perSecond), which is exactly the state of a key never
// seen, so dropping it changes no decision.
type Memory struct {
	mu        sync.Mutex
	buckets   map[string]*Bucket
	lastSweep time.Time
}

// idleAfter is how long after its last call a bucket is certainly full.
const idleAfter = time.Second

// sweepEvery bounds how often Allow scans for idle keys. The scan is
// O(keys), so it runs at most this often; between scans the map holds at
// most the keys used in the last sweepEvery + idleAfter.
const sweepEvery = 10 * time.Second

// NewMemory returns an empty in-process limiter.
func NewMemory() *Memory { return &Memory{} }

// Allow implements Limiter. It never fails.
func (m *Memory) Allow(_ context.Context, key string, perSecond int, now time.Time) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.buckets == nil {
		m.buckets = make(map[string]*Bucket)
		m.lastSweep = now
	}
	if now.Sub(m.lastSweep) >= sweepEvery {
		m.sweep(now)
	}
	b := m.buckets[key]
	if b == nil {
		if perSecond <= 0 {
			return false, nil // no state worth keeping
		}
		b = new(Bucket)
		m.buckets[key] = b
	}
	return b.Allow(now, perSecond), nil
}

// Len reports how many keys the limiter holds (for tests and metrics).
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.buckets)
}

func (m *Memory) sweep(now time.Time) {
	m.lastSweep = now
	for k, b := range m.buckets {
		if now.Sub(b.last) >= idleAfter {
			delete(m.buckets, k)
		}
	}
}

// Bucket is one token bucket allowing `rate` requests per second with a
// burst of `rate`, the arithmetic Memory and the Redis script use per key. It
// is not safe for concurrent use: callers hold the lock that guards it (or
// own it, like a connection's reader goroutine). The rate is passed on every
// call so a room's new maximumMessageRatePerSecond applies to the next request
// without resetting anything. The zero value is a full bucket.
type Bucket struct {
	tokens float64
	last   time.Time
}

// Allow takes a token if one is there.
func (b *Bucket) Allow(now time.Time, rate int) bool {
	if rate <= 0 {
		return false
	}
	limit := float64(rate)
	if b.last.IsZero() {
		b.tokens = limit
		b.last = now
	} else if elapsed := now.Sub(b.last); elapsed > 0 {
		// A clock that steps back (callers with different clocks) refills
		// nothing and does not move last back, so no time is counted twice.
		b.tokens += elapsed.Seconds() * limit
		b.last = now
	}
	if b.tokens > limit {
		b.tokens = limit
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
