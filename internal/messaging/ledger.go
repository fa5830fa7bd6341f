package messaging

import (
	"container/heap"
	"context"
	"math"
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

// MemoryLedger is the in-process Ledger. Every handshake holds its mutex, so
// Use does a bounded amount of work however many tokens were used in the last
// hour: besides the map from token ID to expiry, entries are filed by the
// second they expire in, and each Use forgets at most ledgerForgetPerUse
// entries from the oldest seconds that have passed. A Use adds at most one
// entry and can forget several, so expired entries never pile up while
// handshakes go on; a backlog left by a burst goes over the following Uses.
// (A periodic sweep of the whole map instead made one handshake a minute wait
// tens of milliseconds at a million entries, and every handshake behind it.)
type MemoryLedger struct {
	mu   sync.Mutex
	used map[string]int64 // token ID → expiry in Unix nanoseconds (clamped, see unixNano)
	// bySecond files every entry added under its expiry's Unix second; an ID
	// used again after its entry expired is filed twice, which forgetting
	// tolerates by checking the map before deleting.
	bySecond map[int64]*expiryBucket
	seconds  secondHeap // the keys of bySecond, earliest first
	now      func() time.Time
}

// expiryBucket holds the IDs whose entries expire within one second, in the
// order they were added; ids[:next] have been dealt with.
type expiryBucket struct {
	ids  []string
	next int
}

// ledgerForgetPerUse bounds the expired entries one Use forgets. Anything
// above one keeps up with any handshake rate; more drains a burst's backlog
// sooner, at a few tens of nanoseconds per entry to the handshake that does it.
const ledgerForgetPerUse = 32

// NewMemoryLedger returns an empty in-process ledger.
func NewMemoryLedger() *MemoryLedger {
	return &MemoryLedger{
		used:     make(map[string]int64),
		bySecond: make(map[int64]*expiryBucket),
		now:      time.Now,
	}
}

// Use implements Ledger. A token is refused while now is not after the expiry
// it was first used with. An already expired token is accepted and not
// remembered: it cannot be refused later for being used, since Open refuses it
// first.
func (l *MemoryLedger) Use(_ context.Context, tokenID string, expires time.Time) (bool, error) {
	now := unixNano(l.now())
	exp := unixNano(expires)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.forget(now)
	if old, ok := l.used[tokenID]; ok && now <= old {
		return false, nil
	}
	if now > exp {
		return true, nil
	}
	l.used[tokenID] = exp
	sec := floorDiv(exp, int64(time.Second))
	b := l.bySecond[sec]
	if b == nil {
		b = &expiryBucket{}
		l.bySecond[sec] = b
		heap.Push(&l.seconds, sec)
	}
	b.ids = append(b.ids, tokenID)
	return true, nil
}

// forget deletes up to ledgerForgetPerUse entries that expired before now,
// from the earliest expiry second on. A second is only visited once it has
// entirely passed, so every entry filed under it has expired unless its ID was
// used again since (with a later expiry), which the map tells.
func (l *MemoryLedger) forget(now int64) {
	budget := ledgerForgetPerUse
	nowSec := floorDiv(now, int64(time.Second))
	for budget > 0 && len(l.seconds) > 0 && l.seconds[0] < nowSec {
		sec := l.seconds[0]
		b := l.bySecond[sec]
		for ; budget > 0 && b.next < len(b.ids); budget-- {
			id := b.ids[b.next]
			b.ids[b.next] = "" // let the ID's memory go before the whole bucket does
			b.next++
			if exp, ok := l.used[id]; ok && exp < now {
				delete(l.used, id)
			}
		}
		if b.next == len(b.ids) {
			delete(l.bySecond, sec)
			heap.Pop(&l.seconds)
		}
	}
}

// Len reports how many token IDs are remembered (for tests and metrics); it
// may include expired entries not forgotten yet.
func (l *MemoryLedger) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.used)
}

// unixNano is t.UnixNano clamped to the int64 range (years 1678–2262) rather
// than overflowing: a clamped expiry is still before or after every clock
// reading this process will see, which is all the ledger compares.
func unixNano(t time.Time) int64 {
	const maxSec = math.MaxInt64 / int64(time.Second)
	switch s := t.Unix(); {
	case s >= maxSec:
		return math.MaxInt64
	case s < -maxSec:
		return math.MinInt64
	}
	return t.UnixNano()
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b < 0 {
		q--
	}
	return q
}

// secondHeap is a min-heap of expiry seconds (container/heap). It holds one
// element per second in which some remembered token expires, so its size is
// bounded by the longest token lifetime in seconds, not by the entry count.
type secondHeap []int64

func (h secondHeap) Len() int           { return len(h) }
func (h secondHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h secondHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *secondHeap) Push(x any)        { *h = append(*h, x.(int64)) }
func (h *secondHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
