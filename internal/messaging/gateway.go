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
	"github.com/ivschatd/ivschatd/internal/connquota"
	"github.com/ivschatd/ivschatd/internal/ratelimit"
	"github.com/ivschatd/ivschatd/internal/review"
	"github.com/ivschatd/ivschatd/internal/throttle"
	"github.com/ivschatd/ivschatd/internal/token"
)

// Lock order (a lock may only be taken while holding locks to its left):
//
//	Gateway.mu → room.mu → conn.mu
//	broker.topic.pubMu → room.mu → conn.mu   (a broker handler runs room.handle)
//	room.mu → Gateway.histMu → msgHistory.mu   (history.go)
//	room.rateMu, Gateway.modMu, Gateway.actMu, msgHistory.mu: leaves, nothing is taken while holding them
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

// BanSource reads a handshake's room together with the connecting user's
// ban in force at now (nil: not banned), in one lookup (store.Store
// implements it). It returns a *chat.Error with chat.CodeResourceNotFound
// when the room does not exist.
type BanSource interface {
	GetRoomBan(ctx context.Context, roomID, userID string, now time.Time) (*chat.Room, *chat.Ban, error)
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
	// Bans, when set, is asked instead of Rooms on the handshake path, and
	// a user it reports banned from the room is refused with 403 (the
	// token is not used up). Nil: bans are not checked.
	Bans BanSource

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
	// Quota holds the concurrent-connection slots. Default: a
	// connquota.Local of MaxConnections, this node's connections only;
	// cluster mode passes a connquota.Redis so that MaxConnections is the
	// cluster's. MaxConnections is then only reported in refusals.
	Quota ConnectionQuota

	// MaxPendingBytes is how many bytes of room broadcasts a connection may
	// leave untaken — offered to it by a flush at least a grace ago (a
	// tenth of WriteTimeout), not yet accepted by its socket — before it is
	// disconnected as a slow consumer with close code 1008. Broadcasts the
	// server has not yet tried to write, or offered more recently than the
	// grace, never count: a burst of any size reaches a client that reads,
	// even one that stalls for a moment while it arrives. Default 1 MiB
	// (Centrifuge's client queue bound): on top of the kernel's socket
	// buffers, several seconds of a busy room even on a slow mobile link.
	MaxPendingBytes int
	// QueueLimit is how many frames for one connection alone (ERRORs,
	// pongs, pings) may wait before it is disconnected as a slow consumer.
	// Default 256.
	QueueLimit int
	// WriteCoalesce bounds the interval between the starts of two flushes
	// of a room. The interval itself follows what flushing the room costs
	// (flushPacer): a room whose flush fits between its broadcasts writes
	// each at once, and a room whose flushes would not keep up (thousands
	// of connections at high rates) gathers broadcasts for twice its
	// average flush, up to WriteCoalesce, to write several frames per
	// syscall. Broadcasts that arrive while a
	// flush is still running always go out together with the next one.
	// Default 60ms; negative removes the interval (a flush starts as soon
	// as the previous one ended).
	WriteCoalesce time.Duration
	// WriteTimeout bounds one write to a connection; a client that does not
	// take the bytes in time is dropped as a slow consumer. A tenth of it is
	// the grace before offered bytes count against MaxPendingBytes
	// (slowgrace.go). Default 10s.
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
	// connection and lets MaxPendingBytes take effect sooner.
	SocketSendBuffer int
	// Recorder, when set, durably records every MESSAGE and EVENT before it
	// is broadcast (chat logging).
	Recorder Recorder
	// RoomChanged, when set, is told of every room update or deletion the
	// broker brings (another node's, and this node's own echo), for the
	// rooms this node has connections in: chat logging re-reads the room's
	// routing, so a logging change made through another node reaches this
	// one at once. It is called from a broker handler and must not block.
	RoomChanged func(roomID string)

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

	// fixedFlushGap (tests only) paces every room's flushes by
	// WriteCoalesce alone, as before the adaptive rule, so that a test can
	// put a whole burst into one flush whatever a flush costs.
	fixedFlushGap bool

	// HistoryDefault is how many recent messages (0–100) every new
	// connection receives in rooms without an ivschatd:history tag
	// (history.go). Default 0: none.
	HistoryDefault int
}

func (o *Options) setDefaults() {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.MaxConnections <= 0 {
		o.MaxConnections = 50000
	}
	if o.MaxPendingBytes <= 0 {
		o.MaxPendingBytes = 1 << 20
	}
	if o.QueueLimit <= 0 {
		o.QueueLimit = 256
	}
	if o.WriteCoalesce == 0 {
		o.WriteCoalesce = 60 * time.Millisecond
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
	quota     ConnectionQuota

	// ctx is the context of requests made on behalf of clients (broker
	// publishes); Shutdown cancels it last.
	ctx    context.Context
	cancel context.CancelFunc

	// active counts this node's open connections plus handshakes that hold
	// a quota slot.
	active atomic.Int64

	mu      sync.Mutex // guards rooms and closing
	rooms   map[string]*room
	closing bool

	modMu     sync.Mutex // guards modBucket
	modBucket ratelimit.Bucket

	// Failures of Options.RoomLimiter, and the throttle that logs an outage
	// once per limiterLogEvery.
	limiterFailures atomic.Uint64
	limiterLog      throttle.Every

	// notPropagated counts room changes the broker did not take
	// (publishControl gave up).
	notPropagated atomic.Uint64

	// readers tracks one reader goroutine per connection, so Shutdown can
	// wait for every connection to end.
	readers  sync.WaitGroup
	sweepers sync.WaitGroup
	done     chan struct{}

	stats      counters
	rejections rejections

	// actMu guards activity: the live figures of rooms (activity.go), of
	// rooms with connections here and of rooms published into lately. A
	// leaf lock.
	actMu    sync.Mutex
	activity map[string]*roomActivity
	samples  deliverySamples
	// connSeq numbers connections (ConnectionInfo.ID).
	connSeq atomic.Uint64
	// kicks counts KindDisconnectUser messages the broker brought, before
	// they are handled: a handshake that saw it move between its ban
	// lookup and joining its room looks again (see banWatch).
	kicks atomic.Uint64

	// histBroker is Options.Broker when it keeps the cluster's room
	// histories; nil on a single node, whose histories are kept here
	// (histories, guarded by histMu; history.go).
	histBroker HistoryBroker
	histMu     sync.Mutex
	histories  map[string]*msgHistory

	// Failures of the extensions (Stats.ViewerCountFailures,
	// Stats.HistoryFailures).
	viewerCountFailures atomic.Uint64
	historyFailures     atomic.Uint64

	// viewerCounts is the viewer-count scheduler, once StartViewerCounts
	// has run (nil before: room changes have nobody to tell).
	viewerCounts atomic.Pointer[viewerCounter]

	// Frames the chat log could not record, and the throttle of their log
	// lines.
	recordFailures atomic.Uint64
	recordLog      throttle.Every
}

type counters struct {
	accepted      atomic.Uint64
	framesOut     atomic.Uint64
	writes        atomic.Uint64
	slowConsumers atomic.Uint64
	idle          atomic.Uint64
	published     atomic.Uint64
	errorsSent    atomic.Uint64
	// writeSizes counts writes by the number of frames they carried.
	writeSizes writeSizes
	// deliveries counts MESSAGE and EVENT frames written to connections by
	// the action that produced them, per write batch (batch.deliveries).
	deliveries atomicActionCounts
	// requests counts every request received (WebSocket frames read as
	// requests, and the control plane's SendEvent, DeleteMessage and
	// DisconnectUser); requestsByAction those whose action is known.
	requests         atomic.Uint64
	requestsByAction atomicActionCounts
}

// countRequest counts one request received; a is noAction for a WebSocket
// request whose Action is missing or unknown.
func (c *counters) countRequest(a Action) {
	c.requests.Add(1)
	if a < numActions {
		c.requestsByAction[a].Add(1)
	}
}

// ConnectionQuota holds the slots of Options.MaxConnections. The gateway
// calls Acquire once per handshake that passed the token and room checks
// (false: refused with 429), and Release exactly once for every slot
// granted, when the handshake is refused later or the connection ends.
// Acquire is on the handshake's path: it may take a Redis round trip, no
// more. An implementation that cannot reach its backend decides by itself
// (connquota.Redis falls back to the node's share) rather than failing.
type ConnectionQuota interface {
	Acquire(ctx context.Context) bool
	Release()
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
	Rejected    uint64 // handshakes refused (RejectedByReason summed)
	// RejectedByReason counts refused handshakes by reason label
	// (token_expired, token_used, room_not_found, quota_exceeded, …).
	RejectedByReason map[string]uint64
	// FramesDelivered counts WebSocket frames written to clients; a
	// broadcast to n connections counts n.
	FramesDelivered uint64
	// Writes counts write calls (one writev each); FramesDelivered/Writes
	// is the coalescing factor.
	Writes uint64
	// FramesPerWrite is the distribution of frames per write (its Count
	// and Sum are Writes and FramesDelivered as of a moment later).
	FramesPerWrite          FramesPerWrite
	SlowConsumerDisconnects uint64
	IdleDisconnects         uint64
	Published               uint64 // MESSAGE and EVENT frames published by this node
	ErrorsSent              uint64
	// LimiterFailures counts calls to the shared room/moderation limiter
	// that failed, so this node's own buckets decided.
	LimiterFailures uint64
	// ChangesNotPropagated counts room updates and deletions (and
	// logging-configuration announcements) that could not be published to
	// the other nodes.
	ChangesNotPropagated uint64
	// ViewerCountFailures counts viewer-count rounds that failed (the tag
	// could not be read, or the lease, the count or the publish failed);
	// HistoryFailures counts reads and clears of a room's shared history
	// (Redis) that failed.
	ViewerCountFailures uint64
	HistoryFailures     uint64
	// RecordFailures counts frames the chat log could not record: messages
	// and events were refused (the sender got an error; nobody received
	// them), moderation events went out unrecorded.
	RecordFailures uint64
	// DeliveriesByAction counts MESSAGE and EVENT frames written to
	// connections (a broadcast to n connections counts n) by the action that
	// produced them: SEND_MESSAGE, DELETE_MESSAGE, DISCONNECT_USER,
	// SEND_EVENT. ERROR, close and control frames are not deliveries.
	DeliveriesByAction map[string]uint64
	// Requests counts requests received: WebSocket requests (malformed
	// ones included) and the control plane's SendEvent, DeleteMessage and
	// DisconnectUser. RequestsByAction counts those with a known action.
	Requests         uint64
	RequestsByAction map[string]uint64
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
		opts:     opts,
		log:      opts.Logger,
		broker:   opts.Broker,
		ledger:   opts.Ledger,
		rooms:    make(map[string]*room),
		activity: make(map[string]*roomActivity),
		done:     make(chan struct{}),
	}
	if g.broker == nil {
		g.broker = broker.NewMemory()
		g.ownBroker = true
	}
	g.histBroker, _ = g.broker.(HistoryBroker)
	g.histories = make(map[string]*msgHistory)
	if g.ledger == nil {
		g.ledger = NewMemoryLedger()
	}
	g.quota = opts.Quota
	if g.quota == nil {
		g.quota = connquota.NewLocal(opts.MaxConnections)
	}
	g.ctx, g.cancel = context.WithCancel(context.Background())
	g.sweepers.Add(2)
	go g.pingLoop()
	go g.statsLoop()
	return g, nil
}

// releaseSlot gives back the quota slot of a handshake refused after
// Acquire or of a connection that ended.
func (g *Gateway) releaseSlot() {
	g.active.Add(-1)
	g.quota.Release()
}

// Stats returns the gateway's counters.
func (g *Gateway) Stats() Stats {
	g.mu.Lock()
	rooms := len(g.rooms)
	g.mu.Unlock()
	deliveries, requests := g.stats.deliveries.load(), g.stats.requestsByAction.load()
	return Stats{
		Connections:             g.active.Load(),
		Rooms:                   rooms,
		Accepted:                g.stats.accepted.Load(),
		Rejected:                g.rejections.total(),
		RejectedByReason:        g.rejections.byReason(),
		FramesDelivered:         g.stats.framesOut.Load(),
		Writes:                  g.stats.writes.Load(),
		FramesPerWrite:          g.stats.writeSizes.load(),
		SlowConsumerDisconnects: g.stats.slowConsumers.Load(),
		IdleDisconnects:         g.stats.idle.Load(),
		Published:               g.stats.published.Load(),
		ErrorsSent:              g.stats.errorsSent.Load(),
		LimiterFailures:         g.limiterFailures.Load(),
		ChangesNotPropagated:    g.notPropagated.Load(),
		RecordFailures:          g.recordFailures.Load(),
		ViewerCountFailures:     g.viewerCountFailures.Load(),
		HistoryFailures:         g.historyFailures.Load(),
		DeliveriesByAction:      deliveries.byName(),
		Requests:                g.stats.requests.Load(),
		RequestsByAction:        requests.byName(),
	}
}

// SendEvent broadcasts a custom event to the room (control-plane SendEvent).
// The event's RequestId is "" as in captured control-plane events.
func (g *Gateway) SendEvent(ctx context.Context, roomID, eventName string, attrs map[string]string) (string, error) {
	g.stats.countRequest(ActionSendEvent)
	if err := g.roomExists(ctx, roomID); err != nil {
		return "", err
	}
	id := chat.NewID()
	frame := encodeEvent(id, "", eventName, sortedAttrs(attrs), time.Now())
	return id, g.publishFrame(ctx, roomID, frame, refuseUnrecorded)
}

// DeleteMessage broadcasts aws:DELETE_MESSAGE (control-plane DeleteMessage).
func (g *Gateway) DeleteMessage(ctx context.Context, roomID, messageID, reason string) (string, error) {
	g.stats.countRequest(ActionDeleteMessage)
	if err := g.roomExists(ctx, roomID); err != nil {
		return "", err
	}
	id := chat.NewID()
	frame := encodeEvent(id, "", eventDeleteMessage, deleteMessageAttrs(messageID, reason), time.Now())
	if err := g.publishFrame(ctx, roomID, frame, deliverUnrecorded); err != nil {
		return id, err
	}
	g.historyDeleted(roomID, messageID)
	return id, nil
}

// DisconnectUser broadcasts aws:DISCONNECT_USER and then closes the user's
// connections in the room with 1000 (control-plane DisconnectUser).
func (g *Gateway) DisconnectUser(ctx context.Context, roomID, userID, reason string) error {
	g.stats.countRequest(ActionDisconnectUser)
	if err := g.roomExists(ctx, roomID); err != nil {
		return err
	}
	return g.disconnectUser(ctx, roomID, "", userID, reason)
}

func (g *Gateway) disconnectUser(ctx context.Context, roomID, requestID, userID, reason string) error {
	frame := encodeEvent(chat.NewID(), requestID, eventDisconnectUser, disconnectUserAttrs(userID, reason), time.Now())
	if err := g.publishFrame(ctx, roomID, frame, deliverUnrecorded); err != nil {
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
// connected clients at once: on this node directly, on the others through the
// broker. The update carries the room's UpdateTime, so that every node ends
// with the newest configuration whatever order the views of the room reach
// it in. An error means other nodes were not told (see publishControl).
func (g *Gateway) RoomUpdated(ctx context.Context, rm *chat.Room) error {
	cfg := configOf(rm)
	hist := HistoryOf(rm, g.opts.HistoryDefault)
	g.mu.Lock()
	r := g.rooms[rm.ID]
	if r != nil {
		r.setConfig(cfg)
	}
	g.mu.Unlock()
	g.historyUpdated(ctx, r, rm.ID, hist)
	m := broker.Message{
		Kind:             broker.KindRoomUpdated,
		MaxMessageLength: cfg.maxLen,
		MaxMessageRate:   cfg.maxRate,
		UpdateTime:       cfg.updated,
		History:          hist,
	}
	if h := cfg.handler; h != nil {
		m.ReviewURI, m.ReviewFallback = h.URI, h.FallbackResult
	}
	if err := g.publishControl(ctx, rm.ID, m); err != nil {
		return notPropagated("The room was updated, but its connections on other nodes could not be told")
	}
	return nil
}

// RoomDeleted ends the room's connections (ERROR 404, then close 1000) and
// refuses new ones: on this node directly, on the others through the
// broker. The caller deletes the room from the store first, so a handshake
// racing the deletion is caught (see register). An error means other nodes
// were not told.
func (g *Gateway) RoomDeleted(ctx context.Context, roomID string) error {
	g.mu.Lock()
	r := g.rooms[roomID]
	g.mu.Unlock()
	if r != nil {
		r.deleteRoom()
	}
	// Room IDs never come back: its recent messages can go now.
	g.historyUpdated(ctx, nil, roomID, 0)
	if err := g.publishControl(ctx, roomID, broker.Message{Kind: broker.KindCloseRoom}); err != nil {
		return notPropagated("The room was deleted, but its connections on other nodes could not be told to close")
	}
	return nil
}

// notPropagated is the control plane's answer when a room change is stored
// but could not reach the other nodes: a 500 the SDKs retry (a retried
// DeleteRoom then finds the room gone, a retried UpdateRoom propagates).
// The broker's error is logged by publishControl.
func notPropagated(what string) error {
	return &chat.Error{Code: chat.CodeInternal, Message: what + ": the message broker did not take the change; retry the call"}
}

// publishControlTimeout bounds publishControl: long enough to ride out a
// Redis failover's first seconds, short enough that the control-plane call
// fails fast (a go-redis Publish alone retries for up to ~2 s against a
// server that refuses connections).
const publishControlTimeout = 3 * time.Second

// publishControl publishes a room update or deletion, retrying a failing
// broker with backoff until publishControlTimeout (within ctx): nodes that
// miss it would keep serving the room as it was.
func (g *Gateway) publishControl(ctx context.Context, roomID string, m broker.Message) error {
	ctx, cancel := context.WithTimeout(ctx, publishControlTimeout)
	defer cancel()
	backoff := 50 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := g.broker.Publish(ctx, roomID, m)
		if err == nil {
			return nil
		}
		if errors.Is(err, broker.ErrClosed) || ctx.Err() != nil {
			g.notPropagated.Add(1)
			g.log.Error("messaging: room change not propagated to other nodes", "room", roomID, "attempts", attempt, "err", err)
			return err
		}
		g.log.Warn("messaging: room change not propagated yet; retrying", "room", roomID, "attempt", attempt, "err", err)
		select {
		case <-ctx.Done():
			g.notPropagated.Add(1)
			g.log.Error("messaging: room change not propagated to other nodes", "room", roomID, "attempts", attempt, "err", err)
			return err
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

func (g *Gateway) roomExists(ctx context.Context, roomID string) error {
	_, err := g.opts.Rooms.GetRoom(ctx, roomID)
	return err
}

// errNotRecorded is returned by publishFrame when the chat log could not
// record the frame; nothing was broadcast.
var errNotRecorded = errors.New("messaging: the room's chat log could not record the frame")

// unrecordedPolicy says what publishFrame does with a frame the chat log
// could not record.
type unrecordedPolicy int

const (
	// refuseUnrecorded: messages and custom events. The frame is not
	// delivered and the sender gets an error, as for a broker failure: no
	// client sees what the room's log will never show.
	refuseUnrecorded unrecordedPolicy = iota
	// deliverUnrecorded: moderation (aws:DELETE_MESSAGE,
	// aws:DISCONNECT_USER). Removing abuse must work even while the log's
	// disk fails; the missing record is counted and logged like any other.
	deliverUnrecorded
)

func (g *Gateway) publishFrame(ctx context.Context, roomID string, frame []byte, policy unrecordedPolicy) error {
	return g.publishIn(ctx, nil, roomID, frame, policy)
}

// publishIn is publishFrame for a publisher that may know the room struct
// (a connection of the room: r is its room; else nil), which saves the
// activity count a map lookup.
func (g *Gateway) publishIn(ctx context.Context, r *room, roomID string, frame []byte, policy unrecordedPolicy) error {
	if g.opts.Recorder != nil {
		// Recorded before it is published, so no client can have received
		// a frame that a crash would then lose from the chat log. (A
		// destination whose spool is full drops the record instead, counted
		// by the recorder, and chat goes on: that bound is the operator's
		// choice.)
		payload := framePayload(frame)
		if err := g.opts.Recorder.Record(ctx, roomID, frameType(payload), payload, time.Now()); err != nil {
			g.noteRecordFailure(roomID, err)
			if policy == refuseUnrecorded {
				return fmt.Errorf("%w: %w", errNotRecorded, err)
			}
		}
	}
	if err := g.publishBroker(ctx, r, roomID, frame); err != nil {
		return fmt.Errorf("messaging: publish to room %s: %w", roomID, err)
	}
	g.stats.published.Add(1)
	g.countPublished(r, roomID, frame)
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

// recordLogEvery bounds the log lines about frames the chat log could not
// record to one per interval; the count is in Stats.RecordFailures.
const recordLogEvery = 10 * time.Second

func (g *Gateway) noteRecordFailure(roomID string, err error) {
	n := g.recordFailures.Add(1)
	if g.recordLog.Allow(time.Now(), recordLogEvery) {
		g.log.Warn("messaging: the chat log could not record a frame: messages and events are refused, moderation goes out unrecorded", "room", roomID, "err", err, "failuresSoFar", n)
	}
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

// roomChanged passes a room change the broker brought to the viewer counts
// and to Options.RoomChanged.
func (g *Gateway) roomChanged(roomID string) {
	if vc := g.viewerCounts.Load(); vc != nil {
		vc.roomChanged(roomID)
	}
	if g.opts.RoomChanged != nil {
		g.opts.RoomChanged(roomID)
	}
}
