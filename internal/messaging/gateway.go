package messaging

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ivschatd/ivschatd/internal/broker"
	"github.com/ivschatd/ivschatd/internal/chat"
	"github.com/ivschatd/ivschatd/internal/ratelimit"
	"github.com/ivschatd/ivschatd/internal/review"
	"github.com/ivschatd/ivschatd/internal/token"
)

// Lock order (a lock may only be taken while holding locks to its left):
//
//	Gateway.mu → room.mu → conn.mu
//	broker.topic.pubMu → room.mu → conn.mu   (a broker handler runs room.handle)
//	room.rateMu, Gateway.modMu: leaves, nothing is taken while holding them
//
// Options.RoomLimiter is called without any lock held (a Redis round trip).
//
// Broker Subscribe and unsubscribe run without Gateway.mu (a Redis round
// trip must not stall the node). Nothing publishes to the broker while
// holding room.mu or conn.mu, and no
// lock is ever held across a socket write: writers copy what they need under
// conn.mu and write after releasing it.

// TokenOpener opens and verifies chat tokens (token.Keyring implements it).
type TokenOpener interface {
	Open(tok string, now time.Time) (token.Claims, error)
}

// RoomSource looks up rooms. It returns a *chat.Error with
// chat.CodeResourceNotFound when the room does not exist.
type RoomSource interface {
	GetRoom(ctx context.Context, id string) (*chat.Room, error)
}

// Reviewer decides on messages of rooms with a review handler
// (review.Reviewer implements it). Review must always return a decision,
// applying the handler's fallback itself on failure.
type Reviewer interface {
	Review(ctx context.Context, h chat.MessageReviewHandler, req review.Request) review.Result
}

// Options configures a Gateway. Zero values take the documented defaults.
type Options struct {
	Logger *slog.Logger
	Tokens TokenOpener // required
	Rooms  RoomSource  // required

	// Broker carries room traffic between nodes. Default: an in-process
	// broker.Memory owned (and closed) by the gateway.
	Broker broker.Broker
	// Ledger records used tokens. Default: NewMemoryLedger().
	Ledger Ledger
	// Reviewer reviews the messages of rooms that have a review handler.
	// Nil: no review (handlers are ignored).
	Reviewer Reviewer

	// MaxConnections is the concurrent-connection quota across all rooms
	// (default 50000, the real service's account quota).
	MaxConnections int

	// QueueLimit is how many frames may wait for one connection (room
	// broadcasts it has not written yet, plus frames for it alone) before it
	// is disconnected as a slow consumer with close code 1008. Default 256:
	// 2.5 s of a room at the maximum rate of 100 messages/s.
	QueueLimit int
	// WriteCoalesce is the shortest interval between the starts of two
	// flushes of a room. A broadcast into a room that has not flushed for
	// this long is written at once; broadcasts that follow sooner, or while
	// a flush is still running, gather and go out together, so each
	// connection writes several frames per syscall under load. Default
	// 20ms; negative removes the interval (a flush starts as soon as the
	// previous one ended).
	WriteCoalesce time.Duration
	// WriteTimeout bounds one write to a connection; a client that does not
	// take the bytes in time is dropped as a slow consumer. Default 10s.
	WriteTimeout time.Duration
	// PingInterval is how often every connection is pinged (default 30s).
	PingInterval time.Duration
	// IdleTimeout drops a connection from which nothing (not even a pong)
	// arrived for this long (default 75s: two missed pings and some slack).
	IdleTimeout time.Duration
	// HandshakeTimeout bounds writing the 101 response (default 10s).
	HandshakeTimeout time.Duration
	// CloseTimeout is how long the gateway waits for the client's close
	// frame after sending its own (default 2s).
	CloseTimeout time.Duration

	// RequestRatePerSecond limits the requests of one connection (default
	// 10, answered with ERROR 429 beyond).
	RequestRatePerSecond int
	// ModerationRatePerSecond limits DELETE_MESSAGE and DISCONNECT_USER
	// requests from all clients together (default 100, the account quota of
	// the real service).
	ModerationRatePerSecond int
	// MaxFrameSize caps one client message in bytes (default 16 KiB: a
	// maximal legitimate request, 500 code points of content and 1 KB of
	// attributes, fully JSON-escaped, stays under 10 KiB).
	MaxFrameSize int
	// MaxAttributesBytes caps a message's attributes: the UTF-8 bytes of all
	// keys and values (default chat.MaxAttributesBytes = 1024; ERROR 413).
	MaxAttributesBytes int
	// SocketSendBuffer, when positive, sets SO_SNDBUF of every accepted
	// connection. The kernel default (autotuned, up to megabytes) hides a
	// slow consumer for a long time; a small value bounds kernel memory per
	// connection and lets QueueLimit take effect sooner.
	SocketSendBuffer int
	// Recorder, when set, durably records every MESSAGE and EVENT before it
	// is broadcast (chat logging).
	Recorder Recorder

	// RoomLimiter, when set, holds the room-wide message rates (key
	// room:<roomID>, each room's current maximumMessageRatePerSecond) and
	// the gateway-wide moderation rate (key moderation) for every node that
	// shares it: cluster mode passes a ratelimit.Redis so that N nodes
	// together accept a room's rate, not N times it. Nil: each node keeps
	// its own buckets in process, with no call and no allocation per
	// message. When the limiter fails, the node's own buckets decide (see
	// allowShared).
	RoomLimiter ratelimit.Limiter

	// TrustedProxies are the addresses of proxies (TLS-terminating load
	// balancers) whose X-Forwarded-For header names the client's address;
	// from anyone else the header is ignored. The client address is what
	// review handlers get as Sender.Ip.
	TrustedProxies []netip.Prefix
}

func (o *Options) setDefaults() {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.MaxConnections <= 0 {
		o.MaxConnections = 50000
	}
	if o.QueueLimit <= 0 {
		o.QueueLimit = 256
	}
	if o.WriteCoalesce == 0 {
		o.WriteCoalesce = 20 * time.Millisecond
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 10 * time.Second
	}
	if o.PingInterval <= 0 {
		o.PingInterval = 30 * time.Second
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 75 * time.Second
	}
	if o.HandshakeTimeout <= 0 {
		o.HandshakeTimeout = 10 * time.Second
	}
	if o.CloseTimeout <= 0 {
		o.CloseTimeout = 2 * time.Second
	}
	if o.RequestRatePerSecond <= 0 {
		o.RequestRatePerSecond = 10
	}
	if o.ModerationRatePerSecond <= 0 {
		o.ModerationRatePerSecond = 100
	}
	if o.MaxFrameSize <= 0 {
		o.MaxFrameSize = 16 << 10
	}
	if o.MaxAttributesBytes <= 0 {
		o.MaxAttributesBytes = chat.MaxAttributesBytes
	}
}

// Gateway is the WebSocket chat endpoint. Create it with NewGateway, mount it
// (it is an http.Handler for the handshake at "/") and stop it with Shutdown.
type Gateway struct {
	opts      Options
	log       *slog.Logger
	broker    broker.Broker
	ownBroker bool
	ledger    Ledger

	// ctx is the context of requests made on behalf of clients (broker
	// publishes); Shutdown cancels it last.
	ctx    context.Context
	cancel context.CancelFunc

	// active counts open connections plus handshakes that reserved a slot.
	active atomic.Int64

	mu      sync.Mutex // guards rooms and closing
	rooms   map[string]*room
	closing bool

	modMu     sync.Mutex // guards modBucket
	modBucket ratelimit.Bucket

	// Failures of Options.RoomLimiter, and when one was last logged
	// (UnixNano), so an outage logs one line per limiterLogEvery.
	limiterFailures atomic.Uint64
	limiterLogged   atomic.Int64

	// readers tracks one reader goroutine per connection, so Shutdown can
	// wait for every connection to end.
	readers  sync.WaitGroup
	sweepers sync.WaitGroup
	done     chan struct{}

	stats counters
}

type counters struct {
	accepted      atomic.Uint64
	rejected      atomic.Uint64
	framesOut     atomic.Uint64
	writes        atomic.Uint64
	slowConsumers atomic.Uint64
	idle          atomic.Uint64
	published     atomic.Uint64
	errorsSent    atomic.Uint64
}

// Recorder keeps a durable log of the frames rooms receive.
type Recorder interface {
	Record(ctx context.Context, roomID, typ string, payload []byte, at time.Time) error
}

// Stats is a snapshot of the gateway's counters.
type Stats struct {
	Connections int64 // open connections (and handshakes in progress)
	Rooms       int   // rooms with at least one connection on this node
	Accepted    uint64
	Rejected    uint64 // handshakes refused with an HTTP status
	// FramesDelivered counts WebSocket frames written to clients; a
	// broadcast to n connections counts n.
	FramesDelivered uint64
	// Writes counts write calls (one writev each); FramesDelivered/Writes
	// is the coalescing factor.
	Writes                  uint64
	SlowConsumerDisconnects uint64
	IdleDisconnects         uint64
	Published               uint64 // MESSAGE and EVENT frames published by this node
	ErrorsSent              uint64
	// LimiterFailures counts calls to the shared room/moderation limiter
	// that failed, so this node's own buckets decided.
	LimiterFailures uint64
}

// NewGateway checks opts and returns a running gateway.
func NewGateway(opts Options) (*Gateway, error) {
	if opts.Tokens == nil {
		return nil, errors.New("messaging: Options.Tokens is required")
	}
	if opts.Rooms == nil {
		return nil, errors.New("messaging: Options.Rooms is required")
	}
	opts.setDefaults()
	g := &Gateway{
		opts:   opts,
		log:    opts.Logger,
		broker: opts.Broker,
		ledger: opts.Ledger,
		rooms:  make(map[string]*room),
		done:   make(chan struct{}),
	}
	if g.broker == nil {
		g.broker = broker.NewMemory()
		g.ownBroker = true
	}
	if g.ledger == nil {
		g.ledger = NewMemoryLedger()
	}
	g.ctx, g.cancel = context.WithCancel(context.Background())
	g.sweepers.Add(1)
	go g.pingLoop()
	return g, nil
}

// Stats returns the gateway's counters.
func (g *Gateway) Stats() Stats {
	g.mu.Lock()
	rooms := len(g.rooms)
	g.mu.Unlock()
	return Stats{
		Connections:             g.active.Load(),
		Rooms:                   rooms,
		Accepted:                g.stats.accepted.Load(),
		Rejected:                g.stats.rejected.Load(),
		FramesDelivered:         g.stats.framesOut.Load(),
		Writes:                  g.stats.writes.Load(),
		SlowConsumerDisconnects: g.stats.slowConsumers.Load(),
		IdleDisconnects:         g.stats.idle.Load(),
		Published:               g.stats.published.Load(),
		ErrorsSent:              g.stats.errorsSent.Load(),
		LimiterFailures:         g.limiterFailures.Load(),
	}
}

// SendEvent broadcasts a custom event to the room (control-plane SendEvent).
// The event's RequestId is "" as in captured control-plane events.
func (g *Gateway) SendEvent(ctx context.Context, roomID, eventName string, attrs map[string]string) (string, error) {
	if err := g.roomExists(ctx, roomID); err != nil {
		return "", err
	}
	id := chat.NewID()
	frame := encodeEvent(id, "", eventName, sortedAttrs(attrs), time.Now())
	return id, g.publishFrame(ctx, roomID, frame)
}

// DeleteMessage broadcasts aws:DELETE_MESSAGE (control-plane DeleteMessage).
func (g *Gateway) DeleteMessage(ctx context.Context, roomID, messageID, reason string) (string, error) {
	if err := g.roomExists(ctx, roomID); err != nil {
		return "", err
	}
	id := chat.NewID()
	frame := encodeEvent(id, "", eventDeleteMessage, deleteMessageAttrs(messageID, reason), time.Now())
	return id, g.publishFrame(ctx, roomID, frame)
}

// DisconnectUser broadcasts aws:DISCONNECT_USER and then closes the user's
// connections in the room with 1000 (control-plane DisconnectUser).
func (g *Gateway) DisconnectUser(ctx context.Context, roomID, userID, reason string) error {
	if err := g.roomExists(ctx, roomID); err != nil {
		return err
	}
	return g.disconnectUser(ctx, roomID, "", userID, reason)
}

func (g *Gateway) disconnectUser(ctx context.Context, roomID, requestID, userID, reason string) error {
	frame := encodeEvent(chat.NewID(), requestID, eventDisconnectUser, disconnectUserAttrs(userID, reason), time.Now())
	if err := g.publishFrame(ctx, roomID, frame); err != nil {
		return err
	}
	// Published after the event, so every node closes the connections only
	// once the event is queued ahead of the close frame.
	err := g.broker.Publish(ctx, roomID, broker.Message{Kind: broker.KindDisconnectUser, UserID: userID, Reason: reason})
	if err != nil {
		return fmt.Errorf("messaging: disconnect user: %w", err)
	}
	return nil
}

// RoomUpdated applies a room's new limits and review handler to its
// connected clients at once.
func (g *Gateway) RoomUpdated(r *chat.Room) {
	// The handler is set here, synchronously, so the next message on this
	// node is reviewed by it; other nodes re-read the room when the broker
	// message below reaches them (it carries only the limits).
	g.mu.Lock()
	if rm := g.rooms[r.ID]; rm != nil {
		rm.setHandler(r, false)
	}
	g.mu.Unlock()
	m := broker.Message{Kind: broker.KindRoomUpdated, MaxMessageLength: r.MaximumMessageLength, MaxMessageRate: r.MaximumMessageRatePerSecond}
	if err := g.broker.Publish(g.ctx, r.ID, m); err != nil {
		g.log.Warn("messaging: room update not propagated", "room", r.ID, "err", err)
	}
}

// RoomDeleted ends the room's connections: ERROR 404, then close 1000.
func (g *Gateway) RoomDeleted(roomID string) {
	if err := g.broker.Publish(g.ctx, roomID, broker.Message{Kind: broker.KindCloseRoom}); err != nil {
		g.log.Warn("messaging: room deletion not propagated", "room", roomID, "err", err)
	}
}

func (g *Gateway) roomExists(ctx context.Context, roomID string) error {
	_, err := g.opts.Rooms.GetRoom(ctx, roomID)
	return err
}

func (g *Gateway) publishFrame(ctx context.Context, roomID string, frame []byte) error {
	if g.opts.Recorder != nil {
		// Recorded before it is published, so no client can have received
		// a frame that a crash would then lose from the chat log. A record
		// that cannot be kept (spool full) is counted and logged by the
		// recorder; chat itself goes on.
		payload := framePayload(frame)
		if err := g.opts.Recorder.Record(ctx, roomID, frameType(payload), payload, time.Now()); err != nil {
			g.log.Debug("messaging: frame not recorded", "room", roomID, "err", err)
		}
	}
	if err := g.broker.Publish(ctx, roomID, broker.Message{Kind: broker.KindFrame, Frame: frame}); err != nil {
		return fmt.Errorf("messaging: publish to room %s: %w", roomID, err)
	}
	g.stats.published.Add(1)
	return nil
}

// framePayload strips the WebSocket header from a complete unmasked server
// frame, leaving the JSON that clients receive.
func framePayload(frame []byte) []byte {
	switch n := frame[1] & 0x7f; {
	case n < 126:
		return frame[2:]
	case n == 126:
		return frame[4:]
	default:
		return frame[10:]
	}
}

// frameType is the Type of a MESSAGE or EVENT frame; the encoders always
// write Type first.
func frameType(payload []byte) string {
	if bytes.HasPrefix(payload, []byte(`{"Type":"MESSAGE"`)) {
		return "MESSAGE"
	}
	return "EVENT"
}

// allowModeration takes one token of the gateway-wide moderation rate,
// cluster-wide when there is a RoomLimiter (like allowMessage).
func (g *Gateway) allowModeration(now time.Time) bool {
	if g.opts.RoomLimiter != nil {
		if ok, err := g.allowShared("moderation", g.opts.ModerationRatePerSecond, now); err == nil {
			return ok
		}
	}
	g.modMu.Lock()
	defer g.modMu.Unlock()
	return g.modBucket.Allow(now, g.opts.ModerationRatePerSecond)
}

// snapshotRooms returns the rooms that have connections now.
func (g *Gateway) snapshotRooms() []*room {
	g.mu.Lock()
	defer g.mu.Unlock()
	rooms := make([]*room, 0, len(g.rooms))
	for _, r := range g.rooms {
		rooms = append(rooms, r)
	}
	return rooms
}

// pingLoop pings every connection each PingInterval. One goroutine for the
// whole gateway costs less than a timer per connection; the idle timeout is
// enforced by each connection's read deadline.
func (g *Gateway) pingLoop() {
	defer g.sweepers.Done()
	t := time.NewTicker(g.opts.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-g.done:
			return
		case <-t.C:
		}
		for _, r := range g.snapshotRooms() {
			r.forEach(func(c *conn) { c.enqueue(pingFrame) })
		}
	}
}

// Shutdown stops accepting connections and closes every connection with 1001
// after the frames already queued for it. It returns when all connections
// have ended, or, when ctx ends first, closes the remaining sockets and
// returns ctx's error. Without a ctx deadline it still returns within about
// WriteTimeout + CloseTimeout.
func (g *Gateway) Shutdown(ctx context.Context) error {
	g.mu.Lock()
	already := g.closing
	g.closing = true
	g.mu.Unlock()
	if !already {
		close(g.done)
	}
	frame := closeFrame(closeGoingAway, reasonShutdown)
	for _, r := range g.snapshotRooms() {
		r.closeAll(nil, frame)
	}
	ended := make(chan struct{})
	go func() {
		g.readers.Wait()
		g.sweepers.Wait()
		close(ended)
	}()
	var err error
	select {
	case <-ended:
	case <-ctx.Done():
		err = ctx.Err()
		for _, r := range g.snapshotRooms() {
			r.forEach(func(c *conn) { c.abort() })
		}
		<-ended
	}
	g.cancel()
	if g.ownBroker {
		g.broker.Close()
	}
	return err
}
