package messaging

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/ivschatd/ivschatd/internal/broker"
	"github.com/ivschatd/ivschatd/internal/chat"
	"github.com/ivschatd/ivschatd/internal/throttle"
)

// Live viewer counts (issue 12, an extension): a room tagged
// ivschatd:viewer-count-interval = N receives every N seconds, while it has
// connections, an EVENT ivschatd:VIEWER_COUNT with the cluster's figures:
//
//	{"Type":"EVENT","Id":"…","RequestId":"","EventName":"ivschatd:VIEWER_COUNT",
//	 "Attributes":{"connections":"3","users":"2"},"SendTime":"…"}
//
// shaped exactly like a control-plane SendEvent, so the official clients'
// event listener delivers it.
//
// Every node with connections in a tagged room competes for the room's turn
// once per interval (ViewerCountLease: in a cluster a Redis lease, so exactly
// one node publishes per interval; on a single node always this one). The
// winner gathers the figures (ViewerCounts.Count: the cluster's, by
// clusterstats) and publishes the frame through the broker like any other,
// so every node's viewers get it in order with the room's other frames.
//
// The tags are read from the store, not from the messages: a node reads a
// room's tags when the room gets its first connection here, and again when
// the room's update is announced (TagResource and UntagResource of an
// ivschatd: key announce one through the broker, like UpdateRoom; the
// gateway passes it on, roomChanged), so a tag added, changed or removed
// applies at once on every node. A room whose tags were not re-read for
// viewerCountBackstop is read again anyway, in case an announcement was
// lost on its way through Redis. Nothing is added to the message path.
//
// Not recorded in the chat log (periodic telemetry, not conversation: a
// record per room every few seconds would crowd the conversation out of the
// logs and bill log storage for nothing), and not counted as published
// events (messagesPerSecond and eventsPerSecond and the requests metrics
// measure the application's traffic). Their writes to clients count as
// frames delivered (ivschatd_messaging_frames_delivered_total, and
// ivschat_deliveries_total as SEND_EVENT), which measure the work of the
// fan-out.

// EventViewerCount is the EventName of viewer-count events.
const EventViewerCount = "ivschatd:VIEWER_COUNT"

// ViewerCountLease elects the node that publishes a room's count for one
// interval (lease.Redis implements it).
type ViewerCountLease interface {
	// Acquire takes the lease called name for ttl. ok is false when
	// another node holds it, for wait more.
	Acquire(ctx context.Context, name string, ttl time.Duration) (ok bool, wait time.Duration, err error)
}

// ViewerCounts configures StartViewerCounts.
type ViewerCounts struct {
	// Count returns the room's open connections and distinct user IDs
	// (across the cluster). Required.
	Count func(ctx context.Context, roomID string) (connections, users int, err error)
	// Lease elects the publishing node per room and interval; nil: this
	// node always publishes (a single node).
	Lease ViewerCountLease
	// Second is the length of one second of the tag's value. Tests shorten
	// it; default time.Second.
	Second time.Duration
}

const (
	// viewerCountBackstop is how long (in tag seconds) a node goes on with
	// a room's tags without an announcement before it reads them again.
	// Announced changes apply at once; this bounds one whose announcement
	// was lost (a Redis subscription broken as it was sent: TagResource
	// answers 500 when the broker refused it, so a refused one is retried
	// by the caller). Reading every room with connections every 5 s, as
	// the first version did, cost a node 2,000 store reads a second at
	// 10,000 rooms; every 60 s it is 167.
	viewerCountBackstop = 60
	// viewerCountTicks is how many times per tag second the scheduler
	// looks at the rooms: an event is late by at most 1/viewerCountTicks s.
	viewerCountTicks = 4
	// viewerCountCallTimeout bounds one room's store read, lease and count
	// (in tag seconds).
	viewerCountCallTimeout = 3
	// maxViewerCountTurns bounds the turns (lease, gathering, publish)
	// running at once.
	maxViewerCountTurns = 16
	viewerCountLogEvery = 10 * time.Second
)

// viewerCounter is the scheduler of the gateway's viewer-count events.
type viewerCounter struct {
	g    *Gateway
	opts ViewerCounts
	sem  chan struct{}
	log  throttle.Every

	mu    sync.Mutex // guards rooms
	rooms map[string]*viewerCountRoom
}

// viewerCountRoom is the scheduler's state of one room with connections
// here. Guarded by viewerCounter.mu.
type viewerCountRoom struct {
	interval time.Duration // 0: the room has no (valid) tag
	readAt   time.Time     // last time the tags were read (zero: never)
	stale    bool          // an update was announced since the last read began
	next     time.Time     // when to compete for the next turn
	busy     bool          // a read or a turn is running
}

// StartViewerCounts starts publishing the viewer-count events of tagged
// rooms until Shutdown. Call it at most once.
func (g *Gateway) StartViewerCounts(opts ViewerCounts) {
	if opts.Second <= 0 {
		opts.Second = time.Second
	}
	vc := &viewerCounter{g: g, opts: opts, sem: make(chan struct{}, maxViewerCountTurns), rooms: make(map[string]*viewerCountRoom)}
	g.viewerCounts.Store(vc)
	g.sweepers.Add(1)
	go vc.loop()
}

func (vc *viewerCounter) loop() {
	defer vc.g.sweepers.Done()
	t := time.NewTicker(vc.opts.Second / viewerCountTicks)
	defer t.Stop()
	for {
		select {
		case <-vc.g.done:
			return
		case now := <-t.C:
			vc.tick(now)
		}
	}
}

// tick forgets rooms without connections here, starts the tag reads that
// are due and the turns of rooms whose interval came round.
func (vc *viewerCounter) tick(now time.Time) {
	live := vc.g.snapshotRooms()
	ids := make(map[string]struct{}, len(live))
	for _, r := range live {
		ids[r.id] = struct{}{}
	}
	backstop := viewerCountBackstop * vc.opts.Second
	vc.mu.Lock()
	defer vc.mu.Unlock()
	for id := range vc.rooms {
		if _, ok := ids[id]; !ok {
			delete(vc.rooms, id)
		}
	}
	for id := range ids {
		st := vc.rooms[id]
		if st == nil {
			st = &viewerCountRoom{}
			vc.rooms[id] = st
		}
		if st.busy {
			continue
		}
		switch {
		case st.stale || now.Sub(st.readAt) >= backstop:
			if !vc.start(func() { vc.readTags(id, st) }) {
				return
			}
			// An update announced from now on may not be in what this
			// read sees: it makes the room stale again.
			st.busy, st.stale = true, false
		case st.interval > 0 && !now.Before(st.next):
			if !vc.start(func() { vc.turn(id, st) }) {
				return
			}
			st.busy = true
		}
	}
}

// roomChanged marks the room's tags to be read again at the next tick: its
// update was announced (Gateway.roomChanged).
func (vc *viewerCounter) roomChanged(roomID string) {
	vc.mu.Lock()
	defer vc.mu.Unlock()
	if st := vc.rooms[roomID]; st != nil {
		st.stale = true
	}
}

// start runs f in the background if fewer than maxViewerCountTurns run.
func (vc *viewerCounter) start(f func()) bool {
	select {
	case vc.sem <- struct{}{}:
	default:
		return false
	}
	vc.g.sweepers.Add(1)
	go func() {
		defer vc.g.sweepers.Done()
		defer func() { <-vc.sem }()
		f()
	}()
	return true
}

func (vc *viewerCounter) callContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(vc.g.ctx, viewerCountCallTimeout*vc.opts.Second)
}

// readTags reads the room's viewer-count interval from the store. A new
// or changed interval competes for a turn at once; a failed read keeps
// what was known.
func (vc *viewerCounter) readTags(roomID string, st *viewerCountRoom) {
	ctx, cancel := vc.callContext()
	rm, err := vc.g.opts.Rooms.GetRoom(ctx, roomID)
	cancel()
	var interval time.Duration
	if err == nil {
		if secs, ok := chat.ViewerCountInterval(rm.Tags); ok {
			interval = time.Duration(secs/time.Second) * vc.opts.Second
		}
	} else if !isNotFound(err) {
		vc.warn("messaging: cannot read a room's viewer-count tag; keeping the last known", roomID, err)
	}
	vc.mu.Lock()
	defer vc.mu.Unlock()
	st.busy = false
	st.readAt = time.Now()
	if err != nil && !isNotFound(err) {
		return
	}
	if interval != st.interval {
		st.interval, st.next = interval, time.Time{}
	}
}

// turn competes for the room's lease and, when it wins, publishes the
// room's figures.
func (vc *viewerCounter) turn(roomID string, st *viewerCountRoom) {
	vc.mu.Lock()
	interval := st.interval
	vc.mu.Unlock()
	next := vc.publishTurn(roomID, interval)
	vc.mu.Lock()
	st.busy = false
	st.next = next
	vc.mu.Unlock()
}

// publishTurn returns when to compete next.
func (vc *viewerCounter) publishTurn(roomID string, interval time.Duration) time.Time {
	ctx, cancel := vc.callContext()
	defer cancel()
	retry := time.Now().Add(vc.opts.Second)
	if vc.opts.Lease != nil {
		ok, wait, err := vc.opts.Lease.Acquire(ctx, "viewercount:"+roomID, interval)
		if err != nil {
			vc.warn("messaging: cannot take a room's viewer-count lease; no event this interval", roomID, err)
			return retry
		}
		if !ok {
			return time.Now().Add(wait)
		}
	}
	next := time.Now().Add(interval)
	conns, users, err := vc.opts.Count(ctx, roomID)
	if err != nil {
		vc.warn("messaging: cannot count a room's viewers; no event this interval", roomID, err)
		return next
	}
	if conns == 0 {
		return next
	}
	frame := encodeEvent(chat.NewID(), "", EventViewerCount, []attr{
		{"connections", strconv.Itoa(conns)},
		{"users", strconv.Itoa(users)},
	}, time.Now())
	// Straight to the broker: not recorded in the chat log and not counted
	// as the application's traffic (see the top of this file).
	if err := vc.g.broker.Publish(ctx, roomID, broker.Message{Kind: broker.KindFrame, Frame: frame}); err != nil {
		vc.warn("messaging: cannot publish a room's viewer count", roomID, err)
	}
	return next
}

func (vc *viewerCounter) warn(msg, roomID string, err error) {
	vc.g.viewerCountFailures.Add(1)
	if vc.log.Allow(time.Now(), viewerCountLogEvery) {
		vc.g.log.Warn(msg, "room", roomID, "err", err)
	}
}

func isNotFound(err error) bool {
	var ce *chat.Error
	return errors.As(err, &ce) && ce.Code == chat.CodeResourceNotFound
}
