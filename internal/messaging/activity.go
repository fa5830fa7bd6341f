package messaging

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ivschatd/ivschatd/internal/chat"
	"github.com/ivschatd/ivschatd/internal/window"
)

// Live figures of rooms (the ivschatd:GetRoomStats and GetServerStatus
// extension): what this node published into each room over the last
// seconds, and the ERROR frames its clients received over the last minute.
//
// Cost on the publish path: one atomic add into a per-second bucket of the
// room's activity, reached through the room the sending connection belongs
// to (no map lookup, no lock, no allocation). Control-plane publishes
// (SendEvent, DeleteMessage, DisconnectUser) may address a room without
// connections on this node; they find its activity in a map under actMu,
// which costs nothing next to the HTTP request they serve.
//
// Frames are counted where they are published, not where they are
// delivered, so that the figures of a cluster are the sum of its nodes'.

// RateWindow is the window of the published-frame rates; ErrorWindow that
// of the error counts.
const (
	RateWindow  = 10 * time.Second
	ErrorWindow = 60 * time.Second
)

const (
	// rateBuckets: RateWindow of complete 1-s buckets, plus the current
	// one, plus one spare so the current never reuses the oldest's slot.
	rateBuckets = int(RateWindow/time.Second) + 2
	// Errors are counted in 5-s buckets: 12 cover ErrorWindow (the oldest
	// partly), one more keeps the current off the oldest's slot.
	errorBucketSeconds = 5
	errorBuckets       = int(ErrorWindow/time.Second)/errorBucketSeconds + 1
	// activityIdle is how long a room's activity outlives its last frame
	// once the room has no connections on this node.
	activityIdle = ErrorWindow + 10*time.Second
)

// errorCodes are the ERROR codes the gateway sends (codes.go), in the order
// of roomActivity.errors.
var errorCodes = [...]int{codeBadRequest, codeUnauthorized, codeForbidden, codeNotFound, codeNotAcceptable, codePayloadTooLarge, codeTooManyRequests, codeInternal}

// roomActivity is one room's counters on this node. It lives as long as the
// room has connections here (every room struct of the ID holds a
// reference), and after that until it has been idle for activityIdle.
type roomActivity struct {
	messages, events *window.Counter
	// errors has one counter per entry of errorCodes, made on the first
	// error of that code (most rooms never see one).
	errors [len(errorCodes)]atomic.Pointer[window.Counter]
	refs   int // rooms using it; guarded by Gateway.actMu
}

func newRoomActivity() *roomActivity {
	return &roomActivity{messages: window.New(rateBuckets, 1), events: window.New(rateBuckets, 1)}
}

func (a *roomActivity) published(payload []byte, now int64) {
	if frameType(payload) == "MESSAGE" {
		a.messages.Add(now)
	} else {
		a.events.Add(now)
	}
}

func (a *roomActivity) errorSent(code int, now int64) {
	i := slices.Index(errorCodes[:], code)
	if i < 0 {
		return
	}
	c := a.errors[i].Load()
	if c == nil {
		a.errors[i].CompareAndSwap(nil, window.New(errorBuckets, errorBucketSeconds))
		c = a.errors[i].Load()
	}
	c.Add(now)
}

// idleSince is the newest second in which anything was counted.
func (a *roomActivity) idleSince() int64 {
	last := max(a.messages.Latest(), a.events.Latest())
	for i := range a.errors {
		if c := a.errors[i].Load(); c != nil {
			last = max(last, c.Latest()+errorBucketSeconds-1)
		}
	}
	return last
}

// acquireActivity gives a new room struct the activity of its ID.
// Called with g.mu held (actMu is taken inside it).
func (g *Gateway) acquireActivity(roomID string) *roomActivity {
	g.actMu.Lock()
	defer g.actMu.Unlock()
	a := g.activity[roomID]
	if a == nil {
		a = newRoomActivity()
		g.activity[roomID] = a
	}
	a.refs++
	return a
}

// releaseActivity drops a room struct's reference; the activity stays
// until the sweeper finds it idle.
func (g *Gateway) releaseActivity(a *roomActivity) {
	g.actMu.Lock()
	a.refs--
	g.actMu.Unlock()
}

// countPublished counts a frame published into a room: through the room's
// own activity when the publisher is one of its connections (r != nil),
// else through the map.
func (g *Gateway) countPublished(r *room, roomID string, frame []byte) {
	payload := framePayload(frame)
	now := time.Now().Unix()
	if r != nil {
		r.act.published(payload, now)
		return
	}
	// Under actMu, so the sweeper cannot drop the activity between the
	// lookup and the count.
	g.actMu.Lock()
	a := g.activity[roomID]
	if a == nil {
		a = newRoomActivity()
		g.activity[roomID] = a
	}
	a.published(payload, now)
	g.actMu.Unlock()
}

// sweepActivity forgets the activity of rooms that have no connections here
// and have been idle for activityIdle.
func (g *Gateway) sweepActivity(now time.Time) {
	cutoff := now.Add(-activityIdle).Unix()
	g.actMu.Lock()
	defer g.actMu.Unlock()
	for id, a := range g.activity {
		if a.refs == 0 && a.idleSince() < cutoff {
			delete(g.activity, id)
		}
	}
}

// RoomFigures is this node's view of one room.
type RoomFigures struct {
	Connections int
	// Users are the distinct user IDs of the room's connections here,
	// sorted.
	Users []string
	// Messages and Events count the MESSAGE and EVENT frames this node
	// published into the room in the last RateWindow (complete seconds).
	Messages, Events uint64
	// Errors counts the ERROR frames sent to the room's clients here in
	// the last ErrorWindow, by error code; codes with none are absent.
	Errors map[int]uint64
}

// RoomFigures returns this node's figures of a room (zero for a room it
// knows nothing of).
func (g *Gateway) RoomFigures(roomID string) RoomFigures {
	var out RoomFigures
	g.mu.Lock()
	r := g.rooms[roomID]
	g.mu.Unlock()
	if r != nil {
		r.mu.Lock()
		out.Connections = len(r.conns)
		out.Users = make([]string, 0, len(r.conns))
		for _, c := range r.conns {
			out.Users = append(out.Users, c.userID)
		}
		r.mu.Unlock()
		slices.Sort(out.Users)
		out.Users = slices.Compact(out.Users)
	}
	g.actMu.Lock()
	a := g.activity[roomID]
	g.actMu.Unlock()
	if a == nil {
		return out
	}
	now := time.Now().Unix()
	n := int(RateWindow / time.Second)
	out.Messages = a.messages.Sum(now, n, false)
	out.Events = a.events.Sum(now, n, false)
	for i, code := range errorCodes {
		if c := a.errors[i].Load(); c != nil {
			if k := c.Sum(now, errorBuckets-1, true); k > 0 {
				if out.Errors == nil {
					out.Errors = make(map[int]uint64)
				}
				out.Errors[code] = k
			}
		}
	}
	return out
}

// ConnectionInfo describes one open connection.
type ConnectionInfo struct {
	// ID is unique among this process's connections (not across nodes).
	ID           uint64
	UserID       string
	ConnectedAt  time.Time
	Capabilities []string
	Attributes   map[string]string // the token's; must not be modified
}

// RoomConnections lists the room's connections on this node, in no
// particular order.
func (g *Gateway) RoomConnections(roomID string) []ConnectionInfo {
	g.mu.Lock()
	r := g.rooms[roomID]
	g.mu.Unlock()
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]ConnectionInfo, len(r.conns))
	for i, c := range r.conns {
		out[i] = ConnectionInfo{ID: c.id, UserID: c.userID, ConnectedAt: c.connectedAt, Capabilities: c.caps.names(), Attributes: c.attrs}
	}
	return out
}

// names lists the capabilities in the model's order.
func (s capSet) names() []string {
	out := make([]string, 0, 3)
	if s&capSendMessage != 0 {
		out = append(out, chat.CapabilitySendMessage)
	}
	if s&capDisconnectUser != 0 {
		out = append(out, chat.CapabilityDisconnectUser)
	}
	if s&capDeleteMessage != 0 {
		out = append(out, chat.CapabilityDeleteMessage)
	}
	return out
}

// NodeFigures is this node's load.
type NodeFigures struct {
	Connections int64 // open connections (and handshakes holding a slot)
	Rooms       int   // rooms with connections here
	// DeliveriesPerSecond is frames written to clients per second, over
	// about RateWindow; MessagesPerSecond and EventsPerSecond are the
	// MESSAGE and EVENT frames this node published per second over
	// RateWindow, all rooms together.
	DeliveriesPerSecond float64
	MessagesPerSecond   float64
	EventsPerSecond     float64
}

// NodeFigures returns this node's load figures.
func (g *Gateway) NodeFigures() NodeFigures {
	g.mu.Lock()
	rooms := len(g.rooms)
	g.mu.Unlock()
	out := NodeFigures{Connections: g.active.Load(), Rooms: rooms, DeliveriesPerSecond: g.samples.deliveriesPerSecond()}
	now := time.Now().Unix()
	n := int(RateWindow / time.Second)
	var msgs, events uint64
	g.actMu.Lock()
	for _, a := range g.activity {
		msgs += a.messages.Sum(now, n, false)
		events += a.events.Sum(now, n, false)
	}
	g.actMu.Unlock()
	out.MessagesPerSecond = float64(msgs) / float64(n)
	out.EventsPerSecond = float64(events) / float64(n)
	return out
}

// deliverySamples keeps the frames-delivered counter as sampled each
// second, so the delivery rate is a difference of two samples about
// RateWindow apart.
type deliverySamples struct {
	mu   sync.Mutex
	at   [rateBuckets]time.Time
	n    [rateBuckets]uint64
	next int // slot of the next sample
	have int // samples taken, up to rateBuckets
}

func (s *deliverySamples) add(at time.Time, n uint64) {
	s.mu.Lock()
	s.at[s.next], s.n[s.next] = at, n
	s.next = (s.next + 1) % rateBuckets
	s.have = min(s.have+1, rateBuckets)
	s.mu.Unlock()
}

// deliveriesPerSecond compares the newest sample with the one about
// RateWindow older (or the oldest there is).
func (s *deliverySamples) deliveriesPerSecond() float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.have < 2 {
		return 0
	}
	newest := (s.next - 1 + rateBuckets) % rateBuckets
	back := min(s.have-1, int(RateWindow/time.Second))
	oldest := (newest - back + rateBuckets) % rateBuckets
	secs := s.at[newest].Sub(s.at[oldest]).Seconds()
	if secs <= 0 {
		return 0
	}
	return float64(s.n[newest]-s.n[oldest]) / secs
}

// statsLoop samples the delivery counter every second and sweeps idle room
// activity every few seconds.
func (g *Gateway) statsLoop() {
	defer g.sweepers.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	g.samples.add(time.Now(), g.stats.framesOut.Load())
	for tick := 1; ; tick++ {
		select {
		case <-g.done:
			return
		case now := <-t.C:
			g.samples.add(now, g.stats.framesOut.Load())
			if tick%10 == 0 {
				g.sweepActivity(now)
			}
			if tick%60 == 0 {
				g.sweepHistories(now)
			}
		}
	}
}
