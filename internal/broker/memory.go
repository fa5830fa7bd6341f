package broker

import (
	"context"
	"sync"
)

// Memory is the in-process Broker for a single node. Publish calls the
// subscribers' handlers synchronously, so a publish costs no copy and no
// goroutine hop: the frame bytes the publisher encoded are the bytes every
// connection writes.
//
// Lock order: topic.pubMu → Memory.mu. topic.pubMu is held while handlers
// run (that is what orders one room's messages for all subscribers);
// Memory.mu only guards the topic map and subscriber lists, is taken briefly
// and is never held while a handler runs, so a caller may Subscribe while
// holding its own locks as long as its handlers never take them.
type Memory struct {
	mu     sync.Mutex
	topics map[string]*topic
	closed bool
}

type topic struct {
	// pubMu serializes publishes to one room so that every subscriber sees
	// the same order.
	pubMu sync.Mutex
	// subs is replaced (copy on write) under Memory.mu and read under pubMu.
	subs []*subscription
}

type subscription struct {
	h Handler
}

// NewMemory returns an empty in-process broker.
func NewMemory() *Memory {
	return &Memory{topics: make(map[string]*topic)}
}

// Publish implements Broker.
func (b *Memory) Publish(ctx context.Context, roomID string, m Message) error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return ErrClosed
	}
	t := b.topics[roomID]
	b.mu.Unlock()
	if t == nil {
		return nil // nobody on this node listens to the room
	}
	t.pubMu.Lock()
	defer t.pubMu.Unlock()
	b.mu.Lock()
	subs := t.subs
	b.mu.Unlock()
	for _, s := range subs {
		s.h(roomID, m)
	}
	return nil
}

// Subscribe implements Broker.
func (b *Memory) Subscribe(roomID string, h Handler) (func(), error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, ErrClosed
	}
	t := b.topics[roomID]
	if t == nil {
		t = &topic{}
		b.topics[roomID] = t
	}
	s := &subscription{h: h}
	t.subs = append(t.subs[:len(t.subs):len(t.subs)], s)
	var once sync.Once
	return func() { once.Do(func() { b.unsubscribe(roomID, t, s) }) }, nil
}

func (b *Memory) unsubscribe(roomID string, t *topic, s *subscription) {
	b.mu.Lock()
	defer b.mu.Unlock()
	subs := make([]*subscription, 0, len(t.subs))
	for _, have := range t.subs {
		if have != s {
			subs = append(subs, have)
		}
	}
	t.subs = subs
	if len(subs) == 0 && b.topics[roomID] == t {
		delete(b.topics, roomID)
	}
}

// Close implements Broker.
func (b *Memory) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	b.topics = make(map[string]*topic)
	return nil
}
