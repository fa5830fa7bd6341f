package api

import (
	"context"
	"sync"
	"time"
)

// roomExistence remembers, for a short time, that a room exists, so that
// CreateChatToken — the hottest control-plane call (an app backend mints one
// token per viewer) — does not read the store every time. Profiling showed the
// SQLite read as more than half of the handler's CPU time.
//
// Only positive answers are cached, and a DeleteRoom on this node forgets the
// room at once. A room deleted on another node of a cluster may still get
// tokens for at most the TTL; such a token is useless because the WebSocket
// handshake checks that the room exists.
type roomExistence struct {
	ttl time.Duration
	mu  sync.RWMutex
	// until maps a room ID to the moment its cached existence expires.
	until map[string]time.Time
}

const maxCachedRooms = 100_000

func newRoomExistence(ttl time.Duration) *roomExistence {
	return &roomExistence{ttl: ttl, until: make(map[string]time.Time)}
}

// check reports whether the room exists, asking lookup only on a cache miss.
func (c *roomExistence) check(ctx context.Context, id string, now time.Time, lookup func(context.Context, string) error) error {
	c.mu.RLock()
	until, ok := c.until[id]
	c.mu.RUnlock()
	if ok && now.Before(until) {
		return nil
	}
	if err := lookup(ctx, id); err != nil {
		return err
	}
	c.mu.Lock()
	if len(c.until) >= maxCachedRooms {
		// Dropping everything is crude but bounded and rare: it only
		// costs a store read per room afterwards.
		clear(c.until)
	}
	c.until[id] = now.Add(c.ttl)
	c.mu.Unlock()
	return nil
}

func (c *roomExistence) forget(id string) {
	c.mu.Lock()
	delete(c.until, id)
	c.mu.Unlock()
}
