package messaging

import (
	"bytes"
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ivschatd/ivschatd/internal/broker"
	"github.com/ivschatd/ivschatd/internal/chat"
)

// Recent messages on join (the ivschatd:history extension).
//
// A room whose history setting is N > 0 (its ivschatd:history tag, or
// Options.HistoryDefault when it has none) gives every new connection, after
// the 101 and before any live frame, the room's last N MESSAGE frames: the
// very bytes viewers received, in their order, without the messages that
// DELETE_MESSAGE removed.
//
// No gap, no duplicate. Each room struct keeps a copy of the recent
// MESSAGE frames (msgHistory), appended by room.publish under room.mu in
// ring order, every entry tagged with the ring position it was published at
// (pos = sequence + 1; 0 = before this room struct's first frame). A joiner
// receives from the ring every frame from its cursor on; its replay is the
// last N entries with pos <= cursor, i.e. exactly the messages published
// before its cursor. Both are decided by the cursor alone, so the replay may
// be computed any time before the connection starts writing (its cursor
// does not move before that), which lets a joiner wait for the room's
// subscription and history read below.
//
// Single node. Every MESSAGE is sent by a connection of the room, so the
// room struct exists when it is published; the copy outlives the struct in
// Gateway.histories and is handed to the room's next struct (its entries
// then count as before it: pos 0). A room with no connection keeps its copy
// for historyIdle, then it is dropped. A restart keeps nothing.
//
// Cluster. The node that publishes a MESSAGE also appends it, in the same
// Redis script as the PUBLISH, to the room's list (HistoryBroker), so the
// list has the channel's order; DELETE_MESSAGE removes from the list the
// same way. A node keeps its local copy only while it is subscribed to the
// room, and builds it when the room's first connection on the node
// subscribes (seedHistory): subscribe first (the barrier makes the
// subscription effective at a point S of the channel), then read the list
// (at a later point L). A message published before S is in the list (unless
// trimmed or deleted) and never arrives through the subscription; one
// published after L arrives through the subscription only; one published
// between S and L is in both. room.publish notes the IDs of the MESSAGEs
// and DELETE_MESSAGEs that arrive while the room is seeding, and the list's
// entries with those IDs are dropped: what is left was published before S,
// so it precedes everything the subscription brought, in the list's order,
// and it is put in front of the local copy with pos 0 (before every frame of
// the room struct's ring). A deletion that arrives through the subscription
// after L removes the message from the local copy as usual.

const (
	// HistoryTag is the room tag that sets its history: 1–100 messages.
	HistoryTag = chat.TagHistory
	// MaxHistory is the most recent messages a room keeps, whatever its
	// setting, so that raising the setting applies to the next joiner.
	MaxHistory = chat.MaxHistory
	// historyIdle is how long a room's history is kept without a
	// connection on the node (single node), or without a message or a
	// join anywhere (the Redis list's expiry).
	historyIdle = time.Hour
)

// HistoryBroker is a Broker that also keeps rooms' recent messages for
// every node (broker.Redis). When Options.Broker implements it, the
// gateway's history is the cluster's.
type HistoryBroker interface {
	// PublishHistory publishes m like Publish and applies w to the room's
	// history in the same atomic step.
	PublishHistory(ctx context.Context, roomID string, m broker.Message, w broker.HistoryWrite) error
	// History returns the room's recent frames, oldest first, and keeps
	// the list for ttl more.
	History(ctx context.Context, roomID string, ttl time.Duration) ([][]byte, error)
	// ClearHistory forgets the room's history.
	ClearHistory(ctx context.Context, roomID string) error
}

var _ HistoryBroker = (*broker.Redis)(nil)

// HistoryOf is how many recent messages a joiner of rm receives: its
// ivschatd:history tag, def when it has none; 0 (off) when the tag's value
// is not a number from 0 to MaxHistory (the control plane refuses such
// values; a room stored before that check is served without history).
func HistoryOf(rm *chat.Room, def int) int {
	v, ok := rm.Tags[HistoryTag]
	if !ok {
		return min(max(def, 0), MaxHistory)
	}
	n, _ := chat.ExtensionTagInt(v, 0, MaxHistory) // 0 when invalid: off
	return n
}

type histEntry struct {
	frame []byte
	id    []byte // the message's Id, within frame
	pos   uint64 // ring sequence + 1 in the room struct that appended it; 0: before it
}

// msgHistory is a room's last MaxHistory MESSAGE frames on this node,
// oldest first, in a fixed ring: appending stores three words and
// allocates nothing.
type msgHistory struct {
	mu    sync.Mutex // a leaf: taken under room.mu or Gateway.histMu
	buf   [MaxHistory]histEntry
	start int
	n     int

	// Guarded by Gateway.histMu (single node): the room structs holding
	// it (0 or 1), and since when it has none.
	refs      int
	idleSince time.Time
}

func (h *msgHistory) at(i int) *histEntry { return &h.buf[(h.start+i)%MaxHistory] }

func (h *msgHistory) appendLocked(e histEntry) {
	if h.n < MaxHistory {
		*h.at(h.n) = e
		h.n++
		return
	}
	h.buf[h.start] = e
	h.start = (h.start + 1) % MaxHistory
}

func (h *msgHistory) append(frame, id []byte, pos uint64) {
	h.mu.Lock()
	h.appendLocked(histEntry{frame: frame, id: id, pos: pos})
	h.mu.Unlock()
}

// remove drops the message with the given Id, if it is kept.
func (h *msgHistory) remove(id []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i := 0; i < h.n; i++ {
		if !bytes.Equal(h.at(i).id, id) {
			continue
		}
		for j := i; j < h.n-1; j++ {
			*h.at(j) = *h.at(j + 1)
		}
		*h.at(h.n - 1) = histEntry{}
		h.n--
		return
	}
}

func (h *msgHistory) clear() {
	h.mu.Lock()
	clear(h.buf[:])
	h.start, h.n = 0, 0
	h.mu.Unlock()
}

// adopt makes every entry count as published before the room struct that
// takes the history over (its ring numbers frames from 0 again).
func (h *msgHistory) adopt() {
	h.mu.Lock()
	for i := 0; i < h.n; i++ {
		h.at(i).pos = 0
	}
	h.mu.Unlock()
}

// prepend puts older entries (pos 0) in front, keeping the newest
// MaxHistory.
func (h *msgHistory) prepend(older []histEntry) {
	h.mu.Lock()
	defer h.mu.Unlock()
	all := make([]histEntry, 0, len(older)+h.n)
	all = append(all, older...)
	for i := 0; i < h.n; i++ {
		all = append(all, *h.at(i))
	}
	all = all[max(0, len(all)-MaxHistory):]
	clear(h.buf[:])
	h.start, h.n = 0, 0
	for _, e := range all {
		h.appendLocked(e)
	}
}

// snapshot returns the frames of the last n entries published before
// cursor (pos <= cursor). Entries are in pos order.
func (h *msgHistory) snapshot(n int, cursor uint64) [][]byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	end := h.n
	for end > 0 && h.at(end-1).pos > cursor {
		end--
	}
	start := max(0, end-n)
	if start == end {
		return nil
	}
	out := make([][]byte, 0, end-start)
	for i := start; i < end; i++ {
		out = append(out, h.at(i).frame)
	}
	return out
}

// roomHistory is a room struct's part of the history.
type roomHistory struct {
	// n is the room's history setting as this node last saw it: whether
	// (and, for the cluster's list, that) MESSAGEs are recorded. Joiners
	// replay as many as their own handshake's view of the room says.
	n atomic.Int32

	// Guarded by room.mu.
	h *msgHistory // nil until the room records or receives one
	// seeding is set from the room struct's creation until seedHistory
	// has merged the cluster's list; skip holds the IDs of the messages
	// and deletions that arrived meanwhile (see the top of the file).
	seeding bool
	skip    [][]byte
}

var (
	messageIDPrefix   = []byte(`{"Type":"MESSAGE","Id":"`)
	deletedAttrPrefix = []byte(`,"Attributes":{"MessageId":"`)
)

// messageIDOf returns the Id of a MESSAGE frame (encodeMessage writes Type
// and Id first; Ids need no escaping), within frame.
func messageIDOf(frame []byte) []byte {
	p := framePayload(frame)
	if !bytes.HasPrefix(p, messageIDPrefix) {
		return nil
	}
	p = p[len(messageIDPrefix):]
	if i := bytes.IndexByte(p, '"'); i > 0 {
		return p[:i]
	}
	return nil
}

// deletedIDOf returns the MessageId of an aws:DELETE_MESSAGE frame
// (deleteMessageAttrs writes it first). An Id that needed escaping comes
// out escaped and matches no message, as no message has such an Id.
func deletedIDOf(frame []byte) []byte {
	p := framePayload(frame)
	i := bytes.Index(p, deletedAttrPrefix)
	if i < 0 {
		return nil
	}
	p = p[i+len(deletedAttrPrefix):]
	if j := bytes.IndexByte(p, '"'); j > 0 {
		return p[:j]
	}
	return nil
}

// recordLocked applies a frame being published into the room's ring at
// sequence seq to the room's history. r.mu is held. For a room without
// history this is one atomic load per MESSAGE.
func (r *room) recordLocked(a Action, frame []byte, seq uint64) {
	hs := &r.hist
	switch a {
	case ActionSendMessage:
		if hs.n.Load() <= 0 && !hs.seeding {
			return
		}
		id := messageIDOf(frame)
		if id == nil {
			return
		}
		if hs.seeding {
			hs.skip = append(hs.skip, id)
		}
		if hs.n.Load() > 0 {
			r.historyLocked().append(frame, id, seq+1)
		}
	case ActionDeleteMessage:
		id := deletedIDOf(frame)
		if id == nil {
			return
		}
		if hs.seeding {
			hs.skip = append(hs.skip, id)
		}
		if hs.h != nil {
			hs.h.remove(id)
		}
	}
}

// historyLocked returns the room's history copy, making it on first use:
// on a single node the one the gateway keeps for the room's ID (which
// outlives the struct), in a cluster the struct's own.
func (r *room) historyLocked() *msgHistory {
	if r.hist.h == nil {
		if r.g.histBroker != nil {
			r.hist.h = new(msgHistory)
		} else {
			r.hist.h = r.g.acquireHistory(r.id, true)
		}
	}
	return r.hist.h
}

// setHistory applies a room update's history setting: 0 turns recording
// off and forgets what was kept, so that turning it on again never replays
// messages from before a gap.
func (r *room) setHistory(n int) {
	r.hist.n.Store(int32(n))
	if n > 0 {
		return
	}
	r.mu.Lock()
	h := r.hist.h
	r.mu.Unlock()
	if h != nil {
		h.clear()
	}
}

// prepareReplay gives c, which joined the room but has not started, the
// last n messages published before its cursor.
func (r *room) prepareReplay(c *conn, n int) {
	if n <= 0 {
		return
	}
	r.mu.Lock()
	h := r.hist.h
	r.mu.Unlock()
	if h == nil {
		return
	}
	// The cursor cannot move before start: only the connection's writer
	// stores it, and no writer runs before start.
	frames := h.snapshot(n, c.cursor.Load())
	if len(frames) == 0 {
		return
	}
	c.mu.Lock()
	c.replay = frames
	c.mu.Unlock()
}

// attachHistory prepares a new room struct's history. Called with g.mu
// held, before the room subscribes.
func (g *Gateway) attachHistory(r *room, n int) {
	r.hist.n.Store(int32(n))
	if g.histBroker != nil {
		// Build the copy from the cluster's list once subscribed.
		r.hist.seeding = n > 0
		return
	}
	r.hist.h = g.acquireHistory(r.id, false)
}

// seedHistory merges the cluster's list of a room whose first connection on
// this node just subscribed (see the top of the file). A list that cannot
// be read leaves the copy with what the subscription brings: joiners get
// fewer messages, never wrong ones.
func (g *Gateway) seedHistory(ctx context.Context, r *room) {
	if g.histBroker == nil {
		return
	}
	var frames [][]byte
	if r.hist.n.Load() > 0 {
		var err error
		if frames, err = g.histBroker.History(ctx, r.id, historyIdle); err != nil {
			g.historyFailures.Add(1)
			g.log.Warn("messaging: could not read the room's recent messages; joiners get only those sent from now on", "room", r.id, "err", err)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	skip := r.hist.skip
	r.hist.seeding, r.hist.skip = false, nil
	if len(frames) == 0 {
		return
	}
	seen := make(map[string]struct{}, len(skip))
	for _, id := range skip {
		seen[string(id)] = struct{}{}
	}
	older := make([]histEntry, 0, len(frames))
	for _, f := range frames {
		id := messageIDOf(f)
		if id == nil {
			continue
		}
		if _, dup := seen[string(id)]; dup {
			continue
		}
		older = append(older, histEntry{frame: f, id: id})
	}
	if len(older) > 0 {
		r.historyLocked().prepend(older)
	}
}

// acquireHistory returns the kept history of a room ID for a new room
// struct (single node), making one when create is set. Its entries then
// count as published before the struct.
func (g *Gateway) acquireHistory(roomID string, create bool) *msgHistory {
	g.histMu.Lock()
	defer g.histMu.Unlock()
	h := g.histories[roomID]
	if h == nil {
		if !create {
			return nil
		}
		h = new(msgHistory)
		g.histories[roomID] = h
	}
	if h.refs == 0 {
		h.adopt()
	}
	h.refs++
	return h
}

// releaseHistory is called when a room struct closes (its last connection
// on this node left). On a single node its history stays for historyIdle.
func (g *Gateway) releaseHistory(r *room) {
	h := r.hist.h
	if h == nil || g.histBroker != nil {
		return
	}
	g.histMu.Lock()
	h.refs--
	h.idleSince = time.Now()
	g.histMu.Unlock()
}

// sweepHistories drops the kept histories of rooms that have had no
// connection for historyIdle.
func (g *Gateway) sweepHistories(now time.Time) {
	g.histMu.Lock()
	defer g.histMu.Unlock()
	for id, h := range g.histories {
		if h.refs == 0 && now.Sub(h.idleSince) >= historyIdle {
			delete(g.histories, id)
		}
	}
}

// keptHistory returns the history a single node keeps for a room with no
// connection here (nil when there is none or the room has a struct).
func (g *Gateway) keptHistory(roomID string) *msgHistory {
	g.histMu.Lock()
	defer g.histMu.Unlock()
	return g.histories[roomID]
}

// publishBroker hands a frame to the broker; in a cluster with history, a
// MESSAGE of a room with history, and every DELETE_MESSAGE, also go to the
// room's list, in the same atomic step.
func (g *Gateway) publishBroker(ctx context.Context, r *room, roomID string, frame []byte) error {
	m := broker.Message{Kind: broker.KindFrame, Frame: frame}
	if g.histBroker != nil {
		switch actionOfFrame(frame) {
		case ActionSendMessage:
			if r != nil && r.hist.n.Load() > 0 {
				return g.histBroker.PublishHistory(ctx, roomID, m, broker.HistoryWrite{Append: true, Keep: MaxHistory, TTL: historyIdle})
			}
		case ActionDeleteMessage:
			// Whatever this node thinks of the room's setting: the list
			// may hold the message.
			if id := deletedIDOf(frame); id != nil {
				return g.histBroker.PublishHistory(ctx, roomID, m, broker.HistoryWrite{RemoveID: string(id), TTL: historyIdle})
			}
		}
	}
	return g.broker.Publish(ctx, roomID, m)
}

// historyDeleted removes a message deleted through the control plane from
// the history a single node keeps for a room that has no connection here
// (with connections, room.publish did it).
func (g *Gateway) historyDeleted(roomID, messageID string) {
	if g.histBroker != nil {
		return
	}
	if h := g.keptHistory(roomID); h != nil {
		h.remove([]byte(messageID))
	}
}

// historyUpdated applies a room update's history setting on this node (the
// room struct, if any, and the history a single node keeps) and, when it
// turns history off, clears the cluster's list.
func (g *Gateway) historyUpdated(ctx context.Context, r *room, roomID string, n int) {
	if r != nil {
		r.setHistory(n)
	}
	if n > 0 {
		return
	}
	if g.histBroker != nil {
		if err := g.histBroker.ClearHistory(ctx, roomID); err != nil {
			g.historyFailures.Add(1)
			g.log.Warn("messaging: could not clear the room's recent messages", "room", roomID, "err", err)
		}
		return
	}
	if h := g.keptHistory(roomID); h != nil {
		h.clear()
	}
}

// historyLen is how many recent messages this node keeps for a room (the
// copy a single node keeps, or the room struct's in a cluster); for tests
// and diagnostics.
func (g *Gateway) historyLen(roomID string) int {
	g.mu.Lock()
	r := g.rooms[roomID]
	g.mu.Unlock()
	var h *msgHistory
	if r != nil {
		r.mu.Lock()
		h = r.hist.h
		r.mu.Unlock()
	} else {
		h = g.keptHistory(roomID)
	}
	if h == nil {
		return 0
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n
}
