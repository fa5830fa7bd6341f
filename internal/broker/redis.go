package broker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
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
// A connection can also go deaf without any error: a peer behind a dead
// route (no FIN, no RST), or a server that is no longer the one publishers
// reach. go-redis never notices, since reading a silent socket only times
// out. So the receive loop verifies delivery, as Centrifuge does since
// centrifugo#1189: every node subscribes to a probe channel of its own, and
// when its connection has received nothing for probeEvery it PUBLISHes a
// probe there through the command connection and expects it back. Nothing
// (room traffic or probe) for probeTimeout after the first probe means the
// connection does not deliver: the loop closes it and subscribes every room
// again on a new one (see reconnect). Live reports the outcome for
// readiness checks.
//
// Lock order: Redis.cmdMu → Redis.mu → Redis.liveMu. cmdMu orders
// SUBSCRIBE/UNSUBSCRIBE commands with the topic map changes that cause them
// (so that a room that is left and re-joined quickly ends subscribed), and
// with the replacement of the PubSub connection; it is held across the
// command write, never while a handler runs. mu guards the maps, lost and
// ps, and is only held briefly. liveMu guards the liveness state and is a
// leaf. The receive loop takes cmdMu and mu only to replace the connection,
// and it calls handlers without holding any lock.
type Redis struct {
	client *redis.Client
	// ps is replaced by reconnect under cmdMu and mu; read it under either
	// (the receive loop, which is the only writer, reads it freely).
	ps           *redis.PubSub
	prefix       string
	chanPrefix   string // "<prefix>:room:"
	probeChannel string // "<prefix>:probe:<random node id>"
	log          *slog.Logger
	subTimeout   time.Duration
	probeEvery   time.Duration
	probeTimeout time.Duration
	ctx          context.Context // canceled by Close
	cancel       context.CancelFunc
	loopDone     chan struct{}
	probes       sync.WaitGroup // probe PUBLISHes in flight
	closedFlag   atomic.Bool    // fast path for Publish
	barrierSeq   atomic.Uint64

	// lastHeard is when the receive loop last read a channel message (room
	// traffic or a probe), in UnixNano: proof that published traffic
	// reaches this node. An atomic, as it is stored for every message.
	lastHeard atomic.Int64
	// awaited is set while liveness waits for traffic (a probe is out or
	// the connection is unconfirmed), so that heard takes liveMu only then.
	awaited atomic.Bool

	liveMu sync.Mutex
	live   liveness

	reconnectsProbe atomic.Uint64 // connections replaced for want of probe replies
	reconnectsError atomic.Uint64 // connections go-redis re-dialed after an error

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

// liveness is what the receive loop knows of its connection.
type liveness struct {
	// down holds the error of the last failed receive; nil once a receive
	// succeeds again.
	down error
	// confirmed is false from a (re)connection until the first channel
	// message arrives on it.
	confirmed bool
	// probeSince is when the first probe still unanswered was sent (zero:
	// none); probeSent when the last one was.
	probeSince, probeSent time.Time
	probing               bool // a probe PUBLISH is in flight
	probeErr              error
}

// RedisStats are the broker's counters, for metrics.
type RedisStats struct {
	// Reconnects counts replaced pub/sub connections by reason:
	// "probe_timeout" (silent connection closed by the liveness probe) and
	// "connection_error" (broken connection re-dialed by go-redis).
	Reconnects map[string]uint64
	// Live is whether the pub/sub connection is known to deliver (Live()
	// is nil).
	Live bool
}

// RedisOption configures NewRedis.
type RedisOption func(*Redis)

// WithPrefix sets the channel-name prefix (default "ivschatd"), so that
// several deployments, or parallel tests, can share one Redis.
func WithPrefix(prefix string) RedisOption {
	return func(b *Redis) { b.prefix = prefix }
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

// WithLiveness sets how long the pub/sub connection may receive nothing
// before the node publishes a probe to itself (every, default 5s), and how
// long after the first unanswered probe the connection is declared dead and
// replaced (timeout, default 10s). A connection that goes silent is thus
// replaced within every+timeout, and the probe traffic keeps idle-connection
// reapers away.
func WithLiveness(every, timeout time.Duration) RedisOption {
	return func(b *Redis) { b.probeEvery, b.probeTimeout = every, timeout }
}

// NewRedis connects to the Redis at rawURL (redis://, rediss:// or unix://,
// as go-redis's ParseURL reads them) and checks that it answers, so that a
// node started with a wrong address fails at once instead of serving rooms
// that no other node hears.
func NewRedis(ctx context.Context, rawURL string, opts ...RedisOption) (*Redis, error) {
	b := &Redis{
		prefix:       "ivschatd",
		log:          slog.Default(),
		subTimeout:   5 * time.Second,
		probeEvery:   5 * time.Second,
		probeTimeout: 10 * time.Second,
		loopDone:     make(chan struct{}),
		topics:       make(map[string]*redisTopic),
		barriers:     make(map[string]*redisSub),
		lost:         make(chan struct{}),
	}
	for _, o := range opts {
		o(b)
	}
	var node [8]byte
	rand.Read(node[:])
	b.chanPrefix = b.prefix + ":room:"
	b.probeChannel = b.prefix + ":probe:" + hex.EncodeToString(node[:])
	client, err := redisconn.Open(ctx, rawURL)
	if err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	b.client = client
	b.ctx, b.cancel = context.WithCancel(context.Background())
	b.lastHeard.Store(time.Now().UnixNano())
	// Only the probe channel for now: the connection carries SUBSCRIBEs as
	// rooms gain local connections. A failed write here is retried by
	// go-redis when the receive loop dials.
	b.ps = b.client.Subscribe(b.ctx, b.probeChannel)
	go b.receiveLoop()
	b.liveMu.Lock()
	b.sendProbe(time.Now()) // confirms the connection at once
	b.liveMu.Unlock()
	return b, nil
}

func (b *Redis) channel(roomID string) string { return b.chanPrefix + roomID }

// PublishTimeout bounds one Publish, within the caller's context. A chat
// connection's reader waits for the PUBLISH of its SEND_MESSAGE, and a Redis
// that stopped answering (black-holed: no FIN) would otherwise hold it for
// as long as go-redis's socket timeouts and retries allow; past this the
// sender gets ERROR 500 and may send again. Redis accepts a PUBLISH in well
// under a millisecond, and a retry after a dead pooled connection (after a
// Redis restart) fits easily.
const PublishTimeout = 2 * time.Second

// Publish implements Broker. It returns once Redis has accepted the message;
// this node's subscribers receive it back through Redis, like every other
// node's. It fails after PublishTimeout at the latest.
func (b *Redis) Publish(ctx context.Context, roomID string, m Message) error {
	if b.closedFlag.Load() {
		return ErrClosed
	}
	ctx, cancel := context.WithTimeout(ctx, PublishTimeout)
	defer cancel()
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
		ps := b.ps
		b.mu.Unlock()
		err := ps.Ping(ctx, id)
		if err == nil {
			select {
			case <-s.ready:
				return nil
			case <-lost:
				// The connection broke or was replaced before the reply:
				// the rooms are subscribed on a new one; ask again there.
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
// reads. It is the only caller of handlers, and between reads it runs the
// liveness probe (checkLiveness).
func (b *Redis) receiveLoop() {
	defer close(b.loopDone)
	backoff := 50 * time.Millisecond
	down := false
	for {
		msg, err := b.ps.ReceiveTimeout(b.ctx, b.untilCheck(time.Now()))
		if b.ctx.Err() != nil {
			return
		}
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				b.checkLiveness(time.Now())
				continue
			}
			if errors.Is(err, redis.ErrClosed) {
				continue // reconnect replaced the connection meanwhile
			}
			if !down {
				down = true
				b.reconnectsError.Add(1)
				b.log.Warn("broker: redis pub/sub connection lost; reconnecting (messages published meanwhile are not delivered to this node)", "err", err)
			}
			b.liveMu.Lock()
			b.live.down = err
			b.live.confirmed = false
			b.liveMu.Unlock()
			b.connectionLost()
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
			b.proveNewConnection()
		}
		switch m := msg.(type) {
		case *redis.Message:
			b.heard()
			if m.Channel != b.probeChannel {
				b.dispatch(m)
			}
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
		b.checkLiveness(time.Now())
	}
}

// connectionLost wakes the subscribers waiting for a barrier reply on a
// connection that is gone, so that they ask again on the next one.
func (b *Redis) connectionLost() {
	b.mu.Lock()
	close(b.lost)
	b.lost = make(chan struct{})
	b.mu.Unlock()
}

// heard records that published traffic arrived: the connection delivers.
func (b *Redis) heard() {
	b.lastHeard.Store(time.Now().UnixNano())
	if !b.awaited.Load() {
		return
	}
	b.liveMu.Lock()
	b.awaited.Store(false)
	b.live.confirmed = true
	b.live.probeSince = time.Time{}
	b.liveMu.Unlock()
}

// untilCheck is how long the receive loop may wait for a message before
// checkLiveness has something to do.
func (b *Redis) untilCheck(now time.Time) time.Duration {
	b.liveMu.Lock()
	defer b.liveMu.Unlock()
	next := time.Unix(0, b.lastHeard.Load()).Add(b.probeEvery)
	if !b.live.probeSince.IsZero() {
		// The next probe or the verdict, whichever comes first.
		next = b.live.probeSent.Add(b.probeEvery)
		if dead := b.live.probeSince.Add(b.probeTimeout); dead.Before(next) {
			next = dead
		}
	}
	return max(next.Sub(now), 10*time.Millisecond)
}

// checkLiveness sends a probe when the connection has been silent for
// probeEvery (and again every probeEvery while no reply comes), and replaces
// the connection when the first unanswered probe is probeTimeout old.
func (b *Redis) checkLiveness(now time.Time) {
	silent := now.Sub(time.Unix(0, b.lastHeard.Load()))
	if silent < b.probeEvery {
		return
	}
	b.liveMu.Lock()
	if b.live.down != nil {
		// go-redis is re-dialing a broken connection; the probe starts
		// again once it is back.
		b.liveMu.Unlock()
		return
	}
	since := b.live.probeSince
	if !since.IsZero() && now.Sub(since) >= b.probeTimeout {
		probeErr := b.live.probeErr
		b.liveMu.Unlock()
		b.reconnect(silent, probeErr)
		return
	}
	if since.IsZero() || now.Sub(b.live.probeSent) >= b.probeEvery {
		b.sendProbe(now)
	}
	b.liveMu.Unlock()
}

// sendProbe publishes a probe to this node's probe channel, through the
// command connection (the path room traffic takes), without blocking the
// receive loop. liveMu is held.
func (b *Redis) sendProbe(now time.Time) {
	b.awaited.Store(true)
	if b.live.probeSince.IsZero() {
		b.live.probeSince = now
	}
	b.live.probeSent = now
	if b.live.probing {
		return // the last one is still on its way
	}
	b.live.probing = true
	b.probes.Add(1)
	go func() {
		defer b.probes.Done()
		ctx, cancel := context.WithTimeout(b.ctx, b.probeTimeout)
		defer cancel()
		err := b.client.Publish(ctx, b.probeChannel, strconv.FormatInt(now.UnixNano(), 10)).Err()
		if err != nil && b.ctx.Err() == nil {
			// Not a verdict by itself: the missing reply is, and it is
			// logged and counted when it makes the connection be replaced.
			b.log.Debug("broker: liveness probe publish failed", "err", err)
		}
		b.liveMu.Lock()
		b.live.probing = false
		b.live.probeErr = err
		b.liveMu.Unlock()
	}()
}

// reconnect replaces a pub/sub connection that does not deliver with a new
// one that subscribes to every room this node has connections in. go-redis
// cannot be asked to re-dial (a silent socket is not an error to it), so the
// PubSub itself is closed and created again.
func (b *Redis) reconnect(silent time.Duration, probeErr error) {
	b.cmdMu.Lock()
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		b.cmdMu.Unlock()
		return
	}
	channels := make([]string, 0, len(b.topics)+1)
	channels = append(channels, b.probeChannel)
	for roomID := range b.topics {
		channels = append(channels, b.channel(roomID))
	}
	old := b.ps
	b.ps = b.client.Subscribe(b.ctx)
	ps := b.ps
	b.mu.Unlock()
	// Closing a black-holed socket does not block; the barriers waiting
	// on it ask again on the new connection.
	_ = old.Close()
	b.connectionLost()
	// Recorded by go-redis even if the write fails; it subscribes them on
	// whatever connection it dials next.
	err := ps.Subscribe(b.ctx, channels...)
	b.cmdMu.Unlock()

	b.reconnectsProbe.Add(1)
	args := []any{"silentFor", silent.Round(time.Millisecond), "rooms", len(channels) - 1}
	if probeErr != nil {
		args = append(args, "probeErr", probeErr)
	}
	if err != nil {
		args = append(args, "resubscribeErr", err)
	}
	b.log.Warn("broker: redis pub/sub connection delivers nothing (no reply to the liveness probe); replaced it and subscribed its rooms again (messages published meanwhile are not delivered to this node)", args...)
	b.proveNewConnection()
}

// proveNewConnection starts the liveness check of a pub/sub connection that
// was just (re)established: it counts as unconfirmed until a probe sent on
// it now comes back.
func (b *Redis) proveNewConnection() {
	now := time.Now()
	b.lastHeard.Store(now.UnixNano())
	b.liveMu.Lock()
	b.live.down = nil
	b.live.confirmed = false
	b.live.probeSince = time.Time{}
	b.sendProbe(now)
	b.liveMu.Unlock()
}

// Live reports whether the pub/sub connection is known to deliver published
// traffic: nil when it is, otherwise why not. Readiness checks ask it.
func (b *Redis) Live() error {
	if b.closedFlag.Load() {
		return ErrClosed
	}
	now := time.Now()
	silent := now.Sub(time.Unix(0, b.lastHeard.Load()))
	b.liveMu.Lock()
	defer b.liveMu.Unlock()
	switch {
	case b.live.down != nil:
		return fmt.Errorf("connection lost: %w", b.live.down)
	case !b.live.confirmed && !b.live.probeSince.IsZero() && now.Sub(b.live.probeSince) > b.probeTimeout/2:
		return fmt.Errorf("(re)connected, but no reply to the liveness probe for %v", roundDuration(now.Sub(b.live.probeSince)))
	case !b.live.confirmed:
		return errors.New("(re)connecting; waiting for the liveness probe to come back")
	case !b.live.probeSince.IsZero() && now.Sub(b.live.probeSince) > b.probeTimeout/2:
		return fmt.Errorf("no reply to the liveness probe for %v (silent for %v)", roundDuration(now.Sub(b.live.probeSince)), roundDuration(silent))
	case silent > b.probeEvery+b.probeTimeout:
		// The receive loop should have acted by now: it is stuck.
		return fmt.Errorf("nothing received for %v", roundDuration(silent))
	}
	return nil
}

// roundDuration keeps durations in messages readable: whole seconds, or
// milliseconds below a second (tests shorten the probe timings).
func roundDuration(d time.Duration) time.Duration {
	if d >= time.Second {
		return d.Round(time.Second)
	}
	return d.Round(time.Millisecond)
}

// Stats returns the broker's counters.
func (b *Redis) Stats() RedisStats {
	return RedisStats{
		Reconnects: map[string]uint64{
			"probe_timeout":    b.reconnectsProbe.Load(),
			"connection_error": b.reconnectsError.Load(),
		},
		Live: b.Live() == nil,
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
	// reconnect does not replace ps once closed is set.
	ps := b.ps
	b.mu.Unlock()
	b.cmdMu.Unlock()
	b.cancel()
	psErr := ps.Close()
	<-b.loopDone
	b.probes.Wait()
	return errors.Join(psErr, b.client.Close())
}
