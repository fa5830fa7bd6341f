package messaging

import (
	"context"
	"sync"
	"time"
)

// Ledger records which chat tokens have opened a connection. Tokens are single
// use (spec §2): the gateway calls Use once per handshake and refuses the
// token unless first is true. An entry only needs to live until the token's
// own expiry, after which Open refuses the token anyway.
//
// A Redis implementation (SET key 1 NX PXAT expires) lets several nodes share
// one ledger; Memory serves a single node.
type Ledger interface {
	Use(ctx context.Context, tokenID string, expires time.Time) (first bool, err error)
}

// MemoryLedger is the in-process Ledger. It forgets an entry once the token
// has expired, sweeping at most once per sweepEvery so that a handshake never
// pays for more than an amortized share of the sweep.
type MemoryLedger struct {
	mu        sync.Mutex
	used      map[string]time.Time
	lastSweep time.Time
	now       func() time.Time
}

const ledgerSweepEvery = time.Minute

// NewMemoryLedger returns an empty in-process ledger.
func NewMemoryLedger() *MemoryLedger {
	return &MemoryLedger{used: make(map[string]time.Time), now: time.Now}
}

// Use implements Ledger.
func (l *MemoryLedger) Use(_ context.Context, tokenID string, expires time.Time) (bool, error) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.lastSweep) >= ledgerSweepEvery {
		l.lastSweep = now
		for id, exp := range l.used {
			if now.After(exp) {
				delete(l.used, id)
			}
		}
	}
	if exp, ok := l.used[tokenID]; ok && !now.After(exp) {
		return false, nil
	}
	l.used[tokenID] = expires
	return true, nil
}

// Len reports how many token IDs are remembered (for tests and metrics).
func (l *MemoryLedger) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.used)
}
