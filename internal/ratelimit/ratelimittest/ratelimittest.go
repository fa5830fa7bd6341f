// Package ratelimittest is the behaviour suite that every ratelimit.Limiter
// implementation must pass.
package ratelimittest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ivschatd/ivschatd/internal/ratelimit"
)

// Option adapts the suite to an implementation.
type Option func(*suite)

// ServerClock says the limiter ignores the now passed to Allow and uses its
// own clock (ratelimit.Redis uses Redis's). The suite then waits for real
// time to pass, polling with a bound, instead of moving now forward.
func ServerClock() Option { return func(s *suite) { s.serverClock = true } }

// Run runs the suite. newLimiter returns a limiter with no keys: one shared
// with other runs (Redis) must be keyed under a prefix of its own.
func Run(t *testing.T, newLimiter func(t *testing.T) ratelimit.Limiter, opts ...Option) {
	var s suite
	for _, o := range opts {
		o(&s)
	}
	t.Run("Burst", func(t *testing.T) { s.burst(t, newLimiter(t)) })
	t.Run("Refill", func(t *testing.T) { s.refill(t, newLimiter(t)) })
	t.Run("KeysIndependent", func(t *testing.T) { s.keys(t, newLimiter(t)) })
	t.Run("RateChange", func(t *testing.T) { s.rateChange(t, newLimiter(t)) })
	t.Run("ZeroRate", func(t *testing.T) { s.zeroRate(t, newLimiter(t)) })
	t.Run("Concurrent", func(t *testing.T) { s.concurrent(t, newLimiter(t)) })
}

type suite struct{ serverClock bool }

// clock is the now a test passes to Allow: a virtual time it moves forward
// explicitly, or the real time for a limiter on a server clock.
type clock struct {
	server bool
	virt   time.Time
}

func (s suite) clock() *clock {
	return &clock{server: s.serverClock, virt: time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *clock) now() time.Time {
	if c.server {
		return time.Now()
	}
	return c.virt
}

func allow(t *testing.T, l ratelimit.Limiter, key string, rate int, now time.Time) bool {
	t.Helper()
	ok, err := l.Allow(context.Background(), key, rate, now)
	if err != nil {
		t.Fatalf("Allow(%s, %d): %v", key, rate, err)
	}
	return ok
}

// take calls Allow n times at now and returns how many were allowed.
func take(t *testing.T, l ratelimit.Limiter, key string, rate, n int, c *clock) int {
	t.Helper()
	got := 0
	for range n {
		if allow(t, l, key, rate, c.now()) {
			got++
		}
	}
	return got
}

// pollUntilAllowed waits until the limiter has had d to refill, then calls
// Allow and returns whether it allowed the call and how long the wait was.
// On a virtual clock that is one call at now+d. On a server clock it polls
// every few milliseconds until a call is allowed or 3s pass, so the caller
// checks the wait lies in a window instead of relying on sleeps.
func (c *clock) pollUntilAllowed(t *testing.T, l ratelimit.Limiter, key string, rate int, d time.Duration) (bool, time.Duration) {
	t.Helper()
	if !c.server {
		c.virt = c.virt.Add(d)
		return allow(t, l, key, rate, c.virt), d
	}
	start := time.Now()
	for time.Since(start) < 3*time.Second {
		if allow(t, l, key, rate, time.Now()) {
			return true, time.Since(start)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return false, time.Since(start)
}

// idle lets the bucket refill completely.
func (c *clock) idle(d time.Duration) {
	if c.server {
		time.Sleep(d)
		return
	}
	c.virt = c.virt.Add(d)
}

func (s suite) burst(t *testing.T, l ratelimit.Limiter) {
	c := s.clock()
	for _, rate := range []int{1, 5, 20} {
		key := fmt.Sprintf("burst-%d", rate)
		if got := take(t, l, key, rate, rate, c); got != rate {
			t.Fatalf("rate %d: a fresh key allowed %d of a burst of %d", rate, got, rate)
		}
		if allow(t, l, key, rate, c.now()) {
			t.Fatalf("rate %d: call %d of the burst allowed", rate, rate+1)
		}
	}
}

func (s suite) refill(t *testing.T, l ratelimit.Limiter) {
	c := s.clock()
	const rate = 5 // one token every 200ms
	if got := take(t, l, "k", rate, rate, c); got != rate {
		t.Fatalf("burst: %d allowed", got)
	}
	var half time.Duration
	if !s.serverClock {
		// Half a token is not a token.
		half = 100 * time.Millisecond
		c.virt = c.virt.Add(half)
		if allow(t, l, "k", rate, c.now()) {
			t.Fatal("allowed after half the refill interval")
		}
	}
	ok, waited := c.pollUntilAllowed(t, l, "k", rate, 200*time.Millisecond-half)
	waited += half
	if !ok {
		t.Fatalf("no token after %v", waited)
	}
	// Polling started right after the burst, which ended at most a few
	// milliseconds after its first call refilled the bucket.
	if waited < 150*time.Millisecond {
		t.Fatalf("a token came back after %v, want about 200ms", waited)
	}
	if allow(t, l, "k", rate, c.now()) {
		t.Fatal("a second call allowed right after the first refilled token")
	}
	// A long pause refills the bucket to its size, not beyond.
	c.idle(1100 * time.Millisecond)
	if got := take(t, l, "k", rate, rate+3, c); got != rate {
		t.Fatalf("after a pause: %d allowed, want %d", got, rate)
	}
}

func (s suite) keys(t *testing.T, l ratelimit.Limiter) {
	c := s.clock()
	if got := take(t, l, "room:a", 3, 4, c); got != 3 {
		t.Fatalf("room:a: %d allowed, want 3", got)
	}
	if got := take(t, l, "room:b", 3, 4, c); got != 3 {
		t.Fatalf("room:b after room:a was exhausted: %d allowed, want 3", got)
	}
	if got := take(t, l, "room:a", 3, 1, c); got != 0 {
		t.Fatalf("room:a allowed again after room:b was used")
	}
}

func (s suite) rateChange(t *testing.T, l ratelimit.Limiter) {
	c := s.clock()
	// Lowered: the tokens in the bucket are capped at the new rate.
	if !allow(t, l, "down", 10, c.now()) {
		t.Fatal("first call refused")
	}
	if got := take(t, l, "down", 2, 5, c); got != 2 {
		t.Fatalf("rate lowered from 10 to 2 with 9 tokens left: %d allowed, want 2", got)
	}
	// Raised: the bucket refills at the new rate. Exhausted at 2/s it
	// would need 500ms for a token; at 10/s it needs 100ms.
	if got := take(t, l, "up", 2, 2, c); got != 2 {
		t.Fatalf("burst at 2/s: %d allowed", got)
	}
	if allow(t, l, "up", 10, c.now()) {
		t.Fatal("rate raised: allowed with an empty bucket")
	}
	ok, waited := c.pollUntilAllowed(t, l, "up", 10, 100*time.Millisecond)
	if !ok || waited > 400*time.Millisecond {
		t.Fatalf("rate raised to 10/s: allowed=%v after %v, want a token after about 100ms", ok, waited)
	}
}

func (s suite) zeroRate(t *testing.T, l ratelimit.Limiter) {
	c := s.clock()
	for _, rate := range []int{0, -1} {
		if allow(t, l, "zero", rate, c.now()) {
			t.Fatalf("rate %d allowed a call", rate)
		}
	}
}

// concurrent: many callers on one key never get more than the bucket holds
// plus what refilled while they ran.
func (s suite) concurrent(t *testing.T, l ratelimit.Limiter) {
	c := s.clock()
	const rate, callers, each = 50, 20, 10
	var allowed atomic.Int64
	var wg sync.WaitGroup
	now := c.now()
	start := time.Now()
	for range callers {
		wg.Go(func() {
			for range each {
				at := now
				if s.serverClock {
					at = time.Now()
				}
				ok, err := l.Allow(context.Background(), "hot", rate, at)
				if err != nil {
					t.Error(err)
					return
				}
				if ok {
					allowed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	got := int(allowed.Load())
	most := rate
	if s.serverClock {
		most += int(elapsed.Seconds() * rate)
	}
	if got < rate || got > most {
		t.Fatalf("%d callers × %d calls at %d/s in %v: %d allowed, want %d..%d", callers, each, rate, elapsed, got, rate, most)
	}
}
