package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ivschatd/ivschatd/internal/redisconn"
)

// Redis is the Broker for a cluster: every node publishes a room's messages
// to one Redis pub/sub channel per room (<prefix>:room:<roomID>) and
// subscribes to the channels of the rooms it has connections in.
//
// Ordering: Redis delivers one channel's messages to every subscriber in the
// order it accepted the PUBLISHes, and a node receives its own publications
// back through Redis (it does not also deliver them locally), so every node
// sees one order per room. One PubSub connection carries all of a node's
// subscriptions and one goroutine reads it and calls the handlers, so a
// room's handlers are never called concurrently and always in order.
//
// Faults: go-redis re-dials a broken PubSub connection and re-subscribes to
// every channel by itself. Messages published while a node's connection is
// down are lost for that node's viewers (Redis pub/sub keeps no history);
// while Redis itself is down, Publish fails, so the sender of a chat message
// gets ERROR 500 rather than a silent loss.
//
// Lock order: Redis.cmdMu → Redis.mu. cmdMu orders SUBSCRIBE/UNSUBSCRIBE
// commands with the topic map changes that cause them (so that a room that
// is left and re-joined quickly ends subscribed); it is held across the
// command write, never while a handler runs. mu guards the maps and is only
// held briefly; the receive loop takes nothing else, and it calls handlers
// without holding any lock.
type Redis struct {
	client     *redis.Client
	ps         *redis.PubSub
	chanPrefix string // "<prefix>:room:"
	log        *slog.Logger
	subTimeout time.Duration
	ctx        context.Context // canceled by Close
	cancel     context.CancelFunc
	loopDone   chan struct{}
	closedFlag atomic.Bool // fast path for Publish
	barrierSeq atomic.Uint64

	cmdMu sync.Mutex

	mu       sync.Mutex
	closed   bool
	topics   map[string]*redisTopic
	barriers map[string]*redisSub // PING payload -> subscription it activates
	// lost is closed (and replaced) when the PubSub connection breaks, so
	// that subscribers waiting for a PING reply that will never come send
	// another one on the new connection.
	lost chan struct{}
}

type redisTopic struct {
	// subs is replaced (copy on write) under Redis.mu.
	subs []*redisSub
}

type redisSub struct {
	h Handler
	// active is set by the receive loop when it reads the reply to this
	// subscription's PING barrier; messages read before that were published
	// before Subscribe was called and are not delivered (no replay).
	active atomic.Bool
	ready  chan struct{} // closed together with active
}

// RedisOption configures NewRedis.
type RedisOption func(*Redis)

// WithPrefix sets the channel-name prefix (default "ivschatd"), so that
// several deployments, or parallel tests, can share one Redis.
func WithPrefix(prefix string) RedisOption {
	return func(b *Redis) { b.chanPrefix = prefix + ":room:" }
}

// WithLogger sets the logger for connection trouble and undecodable messages.
func WithLogger(log *slog.Logger) RedisOption {
	return func(b *Redis) { b.log = log }
}

// WithSubscribeTimeout bounds how long Subscribe waits for Redis to confirm
// a subscription (default 5s).
func WithSubscribeTimeout(d time.Duration) RedisOption {
	return func(b *Redis) { b.subTimeout = d }
}

// healthCheckEvery is how long the receive loop waits for traffic before it
// pings Redis: a write on a connection that died quietly fails and makes
// go-redis re-dial, and load balancers do not reap the idle connection.
const healthCheckEvery = 15 * time.Second

// NewRedis connects to the Redis at rawURL (redis://, rediss:// or unix://,
// as go-redis's ParseURL reads them) and checks that it answers, so that a
// node started with a wrong address fails at once instead of serving rooms
// that no other node hears.
func NewRedis(ctx context.Context, rawURL string, opts ...RedisOption) (*Redis, error) {
	b := &Redis{
		chanPrefix: "ivschatd:room:",
		log:        slog.Default(),
		subTimeout: 5 * time.Second,
		loopDone:   make(chan struct{}),
		topics:     make(map[string]*redisTopic),
		barriers:   make(map[string]*redisSub),
		lost:       make(chan struct{}),
	}
	for _, o := range opts {
		o(b)
	}
	client, err := redisconn.Open(ctx, rawURL)
	if err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	b.client = client
	b.ctx, b.cancel = context.WithCancel(context.Background())
	// No channels yet: the PubSub connection is dialed by the receive loop
	// and carries SUBSCRIBEs as rooms gain local connections.
	b.ps = b.client.Subscribe(b.ctx)
	go b.receiveLoop()
	return b, nil
}

func (b *Redis) channel(roomID string) string { return b.chanPrefix + roomID }

// Publish implements Broker. It returns once Redis has accepted the message;
// this node's subscribers receive it back through Redis, like every other
// node's.
func (b *Redis) Publish(ctx context.Context, roomID string, m Message) error {
	if b.closedFlag.Load() {
		return ErrClosed
	}
	payload := appendMessage(make([]byte, 0, len(m.Frame)+len(m.UserID)+len(m.Reason)+16), m)
	if err := b.client.Publish(ctx, b.channel(roomID), payload).Err(); err != nil {
		if b.closedFlag.Load() {
			return ErrClosed
		}
		return fmt.Errorf("broker: publish to room %s: %w", roomID, err)
	}
	return nil
}

// Subscribe implements Broker. It returns once Redis has confirmed the
// subscription (a round trip when the room is new on this node), so that
// everything published after it returns reaches h.
func (b *Redis) Subscribe(roomID string, h Handler) (func(), error) {
	s := &redisSub{h: h, ready: make(chan struct{})}
	b.cmdMu.Lock()
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		b.cmdMu.Unlock()
		return nil, ErrClosed
	}
	t := b.topics[roomID]
	created := t == nil
	if created {
		t = &redisTopic{}
		b.topics[roomID] = t
	}
	t.subs = append(t.subs[:len(t.subs):len(t.subs)], s)
	b.mu.Unlock()
	var err error
	if created {
		// Only a write: the confirmation is read by the receive loop, and the
		// barrier below waits for it.
		err = b.ps.Subscribe(b.ctx, b.channel(roomID))
	}
	b.cmdMu.Unlock()

	var once sync.Once
	unsubscribe := func() { once.Do(func() { b.unsubscribe(roomID, t, s) }) }
	if err == nil {
		err = b.barrier(s)
	}
	if err != nil {
		unsubscribe()
		if b.closedFlag.Load() {
			return nil, ErrClosed
		}
		return nil, fmt.Errorf("broker: subscribe to room %s: %w", roomID, err)
	}
	return unsubscribe, nil
}

// barrier sends a PING with a unique payload on the PubSub connection and
// waits until the receive loop reads its reply. Redis answers one
// connection's commands in order, so by then the SUBSCRIBE that preceded the
// PING (written by this or an earlier Subscribe, under cmdMu) is in effect.
// The loop activates s when it reads the reply, at the exact point in the
// channel's stream where s starts receiving.
func (b *Redis) barrier(s *redisSub) error {
	ctx, cancel := context.WithTimeout(b.ctx, b.subTimeout)
	defer cancel()
	backoff := 10 * time.Millisecond
	for {
		id := "ivschatd-subscribe-" + strconv.FormatUint(b.barrierSeq.Add(1), 10)
		b.mu.Lock()
		b.barriers[id] = s
		lost := b.lost
		b.mu.Unlock()
		err := b.ps.Ping(ctx, id)
		if err == nil {
			select {
			case <-s.ready:
				return nil
			case <-lost:
				// The connection broke before the reply: go-redis has
				// re-subscribed on a new one; ask again there.
			case <-ctx.Done():
				err = ctx.Err()
			}
		}
		b.mu.Lock()
		delete(b.barriers, id)
		b.mu.Unlock()
		if err == nil {
			continue
		}
		if ctx.Err() != nil {
			return err
		}
		// The write failed (go-redis dropped the connection and re-dials on
		// the next use); retry until the timeout.
		select {
		case <-time.After(backoff):
			backoff = min(2*backoff, 500*time.Millisecond)
		case <-ctx.Done():
			return err
		}
	}
}

func (b *Redis) unsubscribe(roomID string, t *redisTopic, s *redisSub) {
	b.cmdMu.Lock()
	defer b.cmdMu.Unlock()
	b.mu.Lock()
	subs := make([]*redisSub, 0, len(t.subs))
	for _, have := range t.subs {
		if have != s {
			subs = append(subs, have)
		}
	}
	t.subs = subs
	last := len(subs) == 0 && b.topics[roomID] == t
	if last {
		delete(b.topics, roomID)
	}
	closed := b.closed
	b.mu.Unlock()
	if last && !closed {
		// A failed write leaves no stale subscription behind: go-redis has
		// already forgotten the channel, and the connection it drops is
		// replaced by one that does not subscribe to it.
		if err := b.ps.Unsubscribe(b.ctx, b.channel(roomID)); err != nil {
			b.log.Debug("broker: redis unsubscribe failed", "room", roomID, "err", err)
		}
	}
}

// receiveLoop reads the PubSub connection until Close and dispatches what it
// reads. It is the only caller of handlers.
func (b *Redis) receiveLoop() {
	defer close(b.loopDone)
	backoff := 50 * time.Millisecond
	down := false
	for {
		msg, err := b.ps.ReceiveTimeout(b.ctx, healthCheckEvery)
		if b.ctx.Err() != nil {
			return
		}
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				if err := b.ps.Ping(b.ctx); err != nil && !down {
					b.log.Warn("broker: redis health check failed", "err", err)
				}
				continue
			}
			if !down {
				down = true
				b.log.Warn("broker: redis pub/sub connection lost; reconnecting (messages published meanwhile are not delivered to this node)", "err", err)
			}
			b.mu.Lock()
			close(b.lost)
			b.lost = make(chan struct{})
			b.mu.Unlock()
			// go-redis re-dials on the next receive; don't spin while Redis
			// refuses connections.
			select {
			case <-time.After(backoff):
				backoff = min(2*backoff, 2*time.Second)
			case <-b.ctx.Done():
				return
			}
			continue
		}
		if down {
			down = false
			backoff = 50 * time.Millisecond
			b.log.Info("broker: redis pub/sub connection restored")
		}
		switch m := msg.(type) {
		case *redis.Message:
			b.dispatch(m)
		case *redis.Pong:
			b.mu.Lock()
			s := b.barriers[m.Payload]
			delete(b.barriers, m.Payload)
			b.mu.Unlock()
			if s != nil && !s.active.Load() {
				s.active.Store(true)
				close(s.ready)
			}
		}
	}
}

// dispatch delivers one Redis message to the room's active subscribers.
func (b *Redis) dispatch(rm *redis.Message) {
	roomID, ok := strings.CutPrefix(rm.Channel, b.chanPrefix)
	if !ok {
		return
	}
	b.mu.Lock()
	var subs []*redisSub
	if t := b.topics[roomID]; t != nil {
		subs = t.subs
	}
	b.mu.Unlock()
	if len(subs) == 0 {
		return // a message still in flight for a room this node has left
	}
	m, err := decodeMessage(rm.Payload)
	if err != nil {
		// Another process shares the prefix, or a newer node speaks a
		// version this one does not know: drop the message, keep the room.
		b.log.Warn("broker: undecodable message dropped", "room", roomID, "err", err)
		return
	}
	for _, s := range subs {
		if s.active.Load() {
			s.h(roomID, m)
		}
	}
}

// Close implements Broker. It waits for the receive loop, so no handler runs
// after Close returns; it must not be called from a Handler.
func (b *Redis) Close() error {
	b.cmdMu.Lock()
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		b.cmdMu.Unlock()
		return nil
	}
	b.closed = true
	b.closedFlag.Store(true)
	b.topics = make(map[string]*redisTopic)
	b.mu.Unlock()
	b.cmdMu.Unlock()
	b.cancel()
	psErr := b.ps.Close()
	<-b.loopDone
	return errors.Join(psErr, b.client.Close())
}
