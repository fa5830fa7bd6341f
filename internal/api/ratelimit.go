package api

import (
	"sync"
	"time"
)

// rateLimiter is a token bucket holding up to one second's worth of requests.
type rateLimiter struct {
	mu     sync.Mutex
	perSec float64
	tokens float64
	last   time.Time
}

func newRateLimiter(perSecond float64) *rateLimiter {
	return &rateLimiter{perSec: perSecond, tokens: perSecond}
}

func (l *rateLimiter) allow(now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.last.IsZero() {
		l.tokens += now.Sub(l.last).Seconds() * l.perSec
		if l.tokens > l.perSec {
			l.tokens = l.perSec
		}
	}
	l.last = now
	if l.tokens < 1 {
		return false
	}
	l.tokens--
	return true
}
