package messaging

import (
	"container/heap"
	"context"
	"crypto/sha256"
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
// Entries hold no pointers (see ledgerKey), so they add nothing to the
// garbage collector's marking either.
type MemoryLedger struct {
	mu   sync.Mutex
	used map[ledgerKey]int64 // expiry in Unix nanoseconds (clamped, see unixNano)
	// bySecond files every entry added under its expiry's Unix second; an ID
	// used again after its entry expired is filed twice, which forgetting
	// tolerates by checking the map before deleting.
	bySecond map[int64]*expiryBucket
	seconds  secondHeap // the keys of bySecond, earliest first
	now      func() time.Time
}

// ledgerKey is a token ID as a pointer-free map key. With string keys the
// garbage collector scanned every entry on each cycle: at a million entries
// that made handshakes (which allocate, and so assist marking) wait
// milliseconds. IDs shorter than the key (generated ones have 24 bytes) are
// kept as they are with their length in the last byte; longer ones as the
// first 31 bytes of their SHA-256 and 0xff, a length no short ID has.
type ledgerKey [32]byte

func keyOf(id string) ledgerKey {
	var k ledgerKey
	if len(id) < len(k) {
		copy(k[:], id)
		k[len(k)-1] = byte(len(id))
		return k
	}
	sum := sha256.Sum256([]byte(id))
	copy(k[:], sum[:len(k)-1])
	k[len(k)-1] = 0xff
	return k
}

// expiryBucket holds the keys whose entries expire within one second, in the
// order they were added; keys[:next] have been dealt with.
type expiryBucket struct {
	keys []ledgerKey
	next int
}

// ledgerForgetPerUse bounds the expired entries one Use forgets. Anything
// above one keeps up with any handshake rate; more drains a burst's backlog
// sooner, at a few tens of nanoseconds per entry to the handshake that does it.
const ledgerForgetPerUse = 32

// NewMemoryLedger returns an empty in-process ledger.
func NewMemoryLedger() *MemoryLedger {
	return &MemoryLedger{
		used:     make(map[ledgerKey]int64),
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
	key := keyOf(tokenID)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.forget(now)
	if old, ok := l.used[key]; ok && now <= old {
		return false, nil
	}
	if now > exp {
		return true, nil
	}
	l.used[key] = exp
	sec := floorDiv(exp, int64(time.Second))
	b := l.bySecond[sec]
	if b == nil {
		b = &expiryBucket{}
		l.bySecond[sec] = b
		heap.Push(&l.seconds, sec)
	}
	b.keys = append(b.keys, key)
	return true, nil
}

// Forget drops tokenID's entry, as if it had never been used: a durable
// ledger that keeps this one in front calls it when it could not record a
// Use, so that the token is not refused later for a connection that never
// opened.
func (l *MemoryLedger) Forget(tokenID string) {
	key := keyOf(tokenID)
	l.mu.Lock()
	delete(l.used, key) // its expiry bucket's reference is skipped by forget
	l.mu.Unlock()
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
		for ; budget > 0 && b.next < len(b.keys); budget-- {
			key := b.keys[b.next]
			b.next++
			if exp, ok := l.used[key]; ok && exp < now {
				delete(l.used, key)
			}
		}
		if b.next == len(b.keys) {
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
