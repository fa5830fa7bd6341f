package messaging

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ivschatd/ivschatd/internal/broker"
	"github.com/ivschatd/ivschatd/internal/chat"
	"github.com/ivschatd/ivschatd/internal/ratelimit"
)

// room is one chat room's connections on this node and the shared log of the
// frames broadcast to them.
//
// Fan-out design. A broadcast costs O(1) under room.mu: its frame (encoded
// once, header included) is stored in the ring at the next sequence number
// and head advances. Each connection keeps a cursor, the next sequence it has
// to write; everything in [cursor, head) is its outbound queue, so queued
// frames cost no per-connection memory and one frame's bytes are shared by
// every connection. A flush walks a snapshot of the connections (without
// room.mu, with up to GOMAXPROCS workers) and writes each one's pending frames
// with one non-blocking writev straight from the worker; only a connection
// whose socket is full gets a writer goroutine (one that exists only while
// there is something to write).
//
// Flushes never overlap and are paced per room (flushPacer, flushpace.go):
// the next flush may start no sooner than twice the room's average flush
// duration after the last one started, bounded by Options.WriteCoalesce. A
// room whose flushes are cheap therefore flushes every broadcast at once;
// in a room whose flushes are expensive, broadcasts that arrive while a
// flush runs, or within the gap after one started, gather and go out
// together with the next flush, so each connection writes several frames
// per syscall, and the walk is spread over the gap (flushPacer.spread) so
// that every viewer is visited once per gap at an even rate. The syscall
// count, not the byte count, is the ceiling of a fan-out server (design.md:
// ~250k writes/s on the 2-core machine, millions of frames/s when batched).
//
// Slow consumers are judged on evidence about the client, never on how many
// frames the room happened to publish since the last flush nor on a moment's
// stall: a connection is dropped when more than Options.MaxPendingBytes of
// the frames offered to it at least a grace ago (a tenth of
// Options.WriteTimeout, slowgrace.go) are still not taken, when a write to
// it blocks past Options.WriteTimeout, or when it fell so far behind that
// the ring, grown to its bound, no longer holds its next frame. A burst of a
// thousand broadcasts within one coalescing window therefore reaches every
// reading viewer, however many frames it is, even one that stops reading
// for a moment while the burst is offered to it.
type room struct {
	id string
	// arn is the room's ARN as the chat tokens of its connections name it
	// (the control plane mints it from its region and account); review
	// handlers receive it as RoomArn. The store keeps no ARNs.
	arn string
	g   *Gateway
	// act is the room's live figures on this node, shared with any later
	// room struct of the same ID (activity.go).
	act *roomActivity

	// cfg is the room's configuration — limits and review handler — as of
	// the room's UpdateTime, applied to the next request of every connection
	// (UpdateRoom). It is replaced whole, never modified.
	cfg atomic.Pointer[roomConfig]

	rateMu sync.Mutex       // guards rate
	rate   ratelimit.Bucket // room-wide SEND_MESSAGE rate across all senders

	// head is the sequence number the next broadcast gets; frames below it
	// are in the ring. Written under mu, read lock-free by writers.
	head atomic.Uint64
	ring atomic.Pointer[ring]

	mu          sync.Mutex // guards the fields below
	conns       []*conn    // conn.idx is its position
	closed      bool       // removed from the gateway; drops late broker messages
	deleted     bool       // the room was deleted (KindCloseRoom): refuse new connections
	unsubscribe func()
	// subscribed is closed once the broker subscription attempt of the
	// room's first connection finished; unsubscribe and subErr are set
	// before and only read after it.
	subscribed   chan struct{}
	subErr       error
	lastFlush    time.Time
	pacer        flushPacer // when the next flush may start
	flushPending bool       // frames were published since the last flush started
	flushing     bool       // a flush is walking the connections (see flush)
	timerArmed   bool       // flushTimer will start the next flush
	flushTimer   *time.Timer
	walk         []*conn // the running flush's snapshot of conns, reused
	// offers remembers what the flushes offered when, so that connections
	// are judged on what was offered at least a grace ago (slowgrace.go);
	// its newest mark is the last flush, from which the pacer counts the
	// frames of the next.
	offers offerLog
	// tail is a sequence below which no connection still being served needs
	// a frame (the least cursor the last flush saw): the ring keeps
	// [tail, head) and may reuse the slots of older frames.
	tail uint64
	// bytes is the total size of the frames below head.
	bytes uint64
	// actions counts the frames below head by the action that produced
	// them (entry.cum).
	actions actionCounts

	// hist is the room's recent messages (history.go).
	hist roomHistory
}

// roomConfig is a room's limits and review handler as of its UpdateTime.
type roomConfig struct {
	maxLen  int
	maxRate int
	handler *chat.MessageReviewHandler // nil: no review
	updated time.Time
}

// configOf takes what the gateway applies of a stored room.
func configOf(rm *chat.Room) *roomConfig {
	cfg := &roomConfig{
		maxLen:  rm.MaximumMessageLength,
		maxRate: rm.MaximumMessageRatePerSecond,
		updated: rm.UpdateTime,
	}
	if h := rm.MessageReviewHandler; h != nil && h.URI != "" {
		cp := *h // the caller's room may change after we return
		cfg.handler = &cp
	}
	if cfg.maxLen <= 0 {
		cfg.maxLen = chat.DefaultMaximumMessageLength
	}
	if cfg.maxRate <= 0 {
		cfg.maxRate = chat.DefaultMaximumMessageRatePerSecond
	}
	return cfg
}

// configFromMessage takes the configuration a broker room update carries.
func configFromMessage(m broker.Message) *roomConfig {
	rm := &chat.Room{
		MaximumMessageLength:        m.MaxMessageLength,
		MaximumMessageRatePerSecond: m.MaxMessageRate,
		UpdateTime:                  m.UpdateTime,
	}
	if m.ReviewURI != "" {
		rm.MessageReviewHandler = &chat.MessageReviewHandler{URI: m.ReviewURI, FallbackResult: m.ReviewFallback}
	}
	return configOf(rm)
}

// ring holds the frames a room's connections may still need. Slots are
// atomic so that writers can read them without room.mu; an entry carries its
// sequence number so a writer notices when it was lapped (its slot was
// reused). The ring grows (publish) while connections need more frames than
// it holds, up to maxRingFrames.
type ring struct {
	slots []atomic.Pointer[entry]
	mask  uint64
}

type entry struct {
	seq   uint64
	frame []byte
	end   uint64 // room.bytes after this frame: the size of frames [0, seq]
	// action produced the frame; cum counts the room's frames of each
	// action up to and including this one, so that a write of frames
	// [from, to) counts its deliveries by action from two entries.
	action Action
	cum    actionCounts
}

// deliveriesBetween is the number of frames of each action in [first, last]
// (first.seq <= last.seq).
func deliveriesBetween(first, last *entry) actionCounts {
	d := last.cum
	for i := range d {
		d[i] -= first.cum[i]
	}
	if first.action < numActions {
		d[first.action]++
	}
	return d
}

// Ring bounds. A room starts with a small ring (most rooms never have more
// than a few frames in flight) and doubles it when a broadcast would reuse
// the slot of a frame some connection still needs. maxRingFrames bounds the
// frames a room keeps whatever happens: a connection that stays more than
// Options.MaxPendingBytes behind what was offered to it a grace ago
// (slowgrace.go) is dropped at the next flush, so what the ring keeps for
// it is the budget plus about a grace of the room's broadcasts, and the
// ring only approaches the bound when a grace receives tens of thousands of
// broadcasts; then the connections it laps are dropped as slow consumers
// rather than letting the room's memory grow without limit.
const (
	minRingFrames = 64
	maxRingFrames = 1 << 16
)

func newRoom(g *Gateway, id, arn string) *room {
	return &room{id: id, arn: arn, g: g, act: g.acquireActivity(id), pacer: newFlushPacer(g.opts.WriteCoalesce, g.opts.fixedFlushGap)}
}

// setConfig installs cfg unless the room already has a view at least as new.
// Views arrive out of order — a handshake that read the room before an
// UpdateRoom registers after it, broker messages race store re-reads — so
// the newest UpdateTime wins, whatever the order of arrival.
func (r *room) setConfig(cfg *roomConfig) {
	for {
		cur := r.cfg.Load()
		if cur != nil && !cfg.updated.After(cur.updated) {
			return
		}
		if r.cfg.CompareAndSwap(cur, cfg) {
			return
		}
	}
}

// config is the configuration to apply to a request now.
func (r *room) config() *roomConfig { return r.cfg.Load() }

// refreshConfig re-reads the room from the store. It serves a broker update
// from a node that predates versioned updates (the message then carries no
// UpdateTime and no handler).
func (r *room) refreshConfig() {
	ctx, cancel := context.WithTimeout(r.g.ctx, 10*time.Second)
	defer cancel()
	rm, err := r.g.opts.Rooms.GetRoom(ctx, r.id)
	if err != nil {
		if chat.ErrorCode(err) != chat.CodeResourceNotFound && r.g.ctx.Err() == nil {
			r.g.log.Warn("messaging: room re-read after update failed; configuration unchanged", "room", r.id, "err", err)
		}
		return
	}
	r.setConfig(configOf(rm))
}

// allowMessage takes one token of the room-wide message rate: from the
// cluster-wide limiter when there is one (key room:<id>), else, or when it
// fails, from this node's bucket (see Gateway.allowShared).
func (r *room) allowMessage(now time.Time, rate int) bool {
	if r.g.opts.RoomLimiter != nil {
		if ok, err := r.g.allowShared("room:"+r.id, rate, now); err == nil {
			return ok
		}
	}
	r.rateMu.Lock()
	defer r.rateMu.Unlock()
	return r.rate.Allow(now, rate)
}

// handle is the broker subscription of the room on this node.
func (r *room) handle(_ string, m broker.Message) {
	switch m.Kind {
	case broker.KindFrame:
		r.publish(m.Frame)
	case broker.KindDisconnectUser:
		frame := closeFrame(closeNormal, orDefault(m.Reason, reasonDisconnected))
		r.mu.Lock()
		head := r.head.Load()
		for _, c := range r.conns {
			if c.userID == m.UserID {
				c.closeAfter(head, nil, frame)
			}
		}
		r.mu.Unlock()
	case broker.KindCloseRoom:
		r.deleteRoom()
		r.g.roomChanged(r.id)
	case broker.KindRoomUpdated:
		// Whatever the update's version: the room's logging configurations
		// may have changed (or one of theirs, announced as an update of
		// the room), and the store has the truth.
		r.g.roomChanged(r.id)
		if m.History >= 0 {
			r.setHistory(m.History)
		}
		if m.UpdateTime.IsZero() {
			// From a node that predates versioned updates: the message
			// cannot be ordered, the store can. Not inline: a broker
			// handler must not block.
			go r.refreshConfig()
			return
		}
		r.setConfig(configFromMessage(m))
	}
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// deleteRoom ends every connection after the frames broadcast so far (ERROR
// 404, then close 1000) and refuses connections that try to join from now
// on: a handshake that read the room before the deletion must not open a
// connection into it.
func (r *room) deleteRoom() {
	errFrame := encodeError(chat.NewID(), "", codeNotFound, "Room deleted")
	r.mu.Lock()
	r.deleted = true
	n := len(r.conns)
	r.mu.Unlock()
	now := time.Now().Unix()
	for range n {
		r.act.errorSent(codeNotFound, now)
	}
	r.closeAll(errFrame, closeFrame(closeNormal, reasonRoomDeleted))
}

// publish appends a frame to the ring and schedules a flush.
func (r *room) publish(frame []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	seq := r.head.Load()
	rg := r.ringForLocked(seq)
	r.bytes += uint64(len(frame))
	a := actionOfFrame(frame)
	if a < numActions {
		r.actions[a]++
	}
	r.recordLocked(a, frame, seq)
	rg.slots[seq&rg.mask].Store(&entry{seq: seq, frame: frame, end: r.bytes, action: a, cum: r.actions})
	r.head.Store(seq + 1)
	r.scheduleFlushLocked()
}

func newRing(n int) *ring {
	return &ring{slots: make([]atomic.Pointer[entry], n), mask: uint64(n - 1)}
}

// ringForLocked returns the ring that frame seq goes into. The ring grows
// (doubling, up to maxRingFrames) when seq's slot still holds a frame at or
// above tail, which some connection may not have written yet. At the bound
// the slot is reused: tail moves past the overwritten frame, and a
// connection that still needed it finds it gone (frameAt) and is dropped as
// a slow consumer.
func (r *room) ringForLocked(seq uint64) *ring {
	rg := r.ring.Load()
	if rg == nil {
		// Allocated on the first broadcast: a room whose connections never
		// receive anything costs no ring.
		rg = newRing(minRingFrames)
		r.ring.Store(rg)
		r.tail = seq
	}
	size := uint64(len(rg.slots))
	if seq-r.tail < size {
		return rg
	}
	n := size
	for n <= seq-r.tail && n < maxRingFrames {
		n *= 2
	}
	if seq-r.tail >= n {
		r.tail = seq - n + 1
	}
	if n == size {
		return rg
	}
	bigger := newRing(int(n))
	for s := r.tail; s < seq; s++ {
		if e := rg.slots[s&rg.mask].Load(); e != nil && e.seq == s {
			bigger.slots[s&bigger.mask].Store(e)
		}
	}
	// Writers that loaded the old ring find the same entries there (nothing
	// in it is overwritten); frameAt reloads the ring for every frame.
	r.ring.Store(bigger)
	return bigger
}

// entryAt returns the entry with sequence seq, or nil when its slot was
// reused or released (the reader was lapped).
func (r *room) entryAt(seq uint64) *entry {
	rg := r.ring.Load()
	if rg == nil {
		return nil
	}
	e := rg.slots[seq&rg.mask].Load()
	if e == nil || e.seq != seq {
		return nil
	}
	return e
}

// unsentBytes is the size of frames [from, to), or false when from is no
// longer in the ring.
func (r *room) unsentBytes(from, to uint64) (uint64, bool) {
	first, last := r.entryAt(from), r.entryAt(to-1)
	if first == nil || last == nil {
		return 0, false
	}
	return last.end - (first.end - uint64(len(first.frame))), true
}

// releaseBelowLocked lets go of the frames below least (no connection still
// needs them) and makes least the new tail, so that the ring holds on to no
// more memory than its connections' backlog.
func (r *room) releaseBelowLocked(least uint64) {
	if least <= r.tail {
		return
	}
	if rg := r.ring.Load(); rg != nil {
		from := max(r.tail, least-min(least, uint64(len(rg.slots))))
		for s := from; s < least; s++ {
			slot := &rg.slots[s&rg.mask]
			if e := slot.Load(); e != nil && e.seq == s {
				slot.CompareAndSwap(e, nil)
			}
		}
	}
	r.tail = least
}

// writerCaughtUp is called by a connection's writer when it has written all
// it was given. The last flush could not release the frames this connection
// had not yet written; unless another flush is coming anyway, one more walk
// (cheap: every connection is caught up) releases them, so that a room that
// goes quiet after a burst does not hold the burst until its next message.
func (r *room) writerCaughtUp() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || r.flushing || r.timerArmed || r.flushPending || r.tail >= r.head.Load() {
		return
	}
	r.scheduleFlushLocked()
}

// scheduleFlushLocked notes that frames wait and starts a flush unless one
// is running (the frames then go with the next flush, started as soon as the
// running one ends) or the pacer's gap since the last flush has not passed
// (a timer starts it then).
func (r *room) scheduleFlushLocked() {
	r.flushPending = true
	if r.flushing || r.timerArmed {
		return
	}
	r.startFlushLocked(time.Now())
}

// startFlushLocked starts a flush of what is pending now, or arms the timer
// when the pacer's gap since the last flush started has not passed.
func (r *room) startFlushLocked(now time.Time) {
	if wait := r.pacer.wait(now, r.lastFlush); wait > 0 {
		r.timerArmed = true
		if r.flushTimer == nil {
			r.flushTimer = time.AfterFunc(wait, r.flushFromTimer)
		} else {
			r.flushTimer.Reset(wait)
		}
		return
	}
	r.flushPending = false
	r.flushing = true
	start := r.head.Load()
	r.pacer.started(now, r.lastFlush, start-r.offers.lastOffer())
	r.lastFlush = now
	r.walk = append(r.walk[:0], r.conns...)
	offeredGraceAgo := r.offers.record(now, start, r.g.opts.slowConsumerGrace())
	go r.flush(r.walk, offeredGraceAgo, start, now, r.pacer.spread())
}

func (r *room) flushFromTimer() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.timerArmed = false
	if r.closed || !r.flushPending || r.flushing {
		return
	}
	r.startFlushLocked(time.Now())
}

// flushChunk is how many connections a flush worker takes at a time: small
// enough that the workers end together, large enough that they rarely meet
// on the shared counter.
const flushChunk = 32

// minTurnWait is the least a spread walk waits for a chunk's turn: a walk
// less than a millisecond ahead of its schedule carries on, since a shorter
// sleep costs a timer and two goroutine switches for a difference no viewer
// would notice.
const minTurnWait = time.Millisecond

// waitTurn sleeps until chunk's turn in a walk of chunks chunks spread
// evenly over spread from began (flushPacer.spread), and returns how long
// it slept.
func waitTurn(began time.Time, spread time.Duration, chunk, chunks int) time.Duration {
	due := began.Add(spread * time.Duration(chunk) / time.Duration(chunks))
	d := time.Until(due)
	if d < minTurnWait {
		return 0
	}
	t := time.Now()
	time.Sleep(d)
	return time.Since(t)
}

// flushWorker holds one flush worker's scratch buffers, and what it wrote
// during one flush: counted locally and added to the gateway's atomics once
// per flush (done), so that a write costs no shared cache line.
type flushWorker struct {
	frames [][]byte
	iov    iovecs
	// writes counts the connections this worker wrote to (a writev, whole
	// or partial); sizes the frames of each completed write.
	writes int
	sizes  localWriteSizes
}

var flushWorkers = sync.Pool{New: func() any { return new(flushWorker) }}

// flush walks a snapshot of the room's connections, without room.mu, with
// up to GOMAXPROCS workers, and writes each one's pending frames with one
// non-blocking writev (flushDirect). A connection that still has more than
// Options.MaxPendingBytes of the frames offered to it at least a grace ago
// (those below offeredGraceAgo, offerLog) has not been taking what it was
// sent, and is dropped as a slow consumer; frames offered since, however
// many — a whole burst the previous flush offered a millisecond ago — are
// not held against it, so a reader that stalls for less than the grace is
// not dropped. Broadcasts published meanwhile wait for the next flush,
// which starts when this one ends, so the flush rate adapts to the load: at
// once when the room is quiet, and under load each connection's frames
// gather for as long as one walk takes. start is head when the flush began,
// began the time it was started; the walk's duration, when it wrote
// anything, is the pacer's sample of what a flush of this room costs.
//
// spread > 0 (a room that gathers, flushPacer.spread) paces the walk: chunk
// i of n is not started before began + spread × i/n, so the writes go out
// at an even rate over the gap instead of in a burst. A walk that had to
// wait for a turn lasts about the spread whatever it cost, so its sample
// is instead the time the workers spent writing, without their waits; were
// it the duration, the gap (twice the cost) would ratchet up to the
// maximum. That time is summed over the workers, not divided by their
// number as a flat-out walk's duration in effect is: a spread walk's
// chunks run mostly one at a time and meet little contention, so the
// divided figure understated what the walk costs the machine and the gap
// shrank. Measured (ivschat-bench, 2 cores shared with the generator): two
// nodes on one machine at 5,000 × 100 wrote 4.1–4.4 frames per write with
// p99 94–102 ms with the divided sample, 5.9–6.0 and 62.5–65.5 ms summed
// (4.8–5.6 and 78–88 ms with flat-out walks); one node at 2,000 × 100 spent
// 3.6–4.6 µs of CPU per delivery divided, 2.1–2.4 summed (2.6–2.8 flat
// out), p99 28–35, 40–45 and 42–48 ms (docs/benchmarks.md, "Spread
// walks"). A walk behind its schedule throughout never waited: it ran
// flat out, and its duration is the sample as before.
//
// Measured with ivschat-bench (5,000 viewers, 100 messages/s, 2 cores
// shared with the generator): a writev costs the server ~10 µs of CPU, most
// of it the kernel's loopback TCP path, so one walk is ~50 ms of CPU; one
// worker per P spreads it over both cores. Walks that overlapped (the old
// fixed timer started a flush while the previous one's writers still ran)
// kept both cores saturated; not overlapping, with the same 50ms window,
// gave p99 160 ms instead of 180-980 ms.
func (r *room) flush(conns []*conn, offeredGraceAgo, start uint64, began time.Time, spread time.Duration) {
	budget := uint64(r.g.opts.MaxPendingBytes)
	chunks := (len(conns) + flushChunk - 1) / flushChunk
	workers := min(runtime.GOMAXPROCS(0), chunks)
	var next atomic.Int64
	// least is the smallest cursor of a connection still served: frames
	// below it can be released once the walk is over.
	var least atomic.Uint64
	least.Store(start)
	// wrote counts the connections written to, added once per worker;
	// busy the workers' time walking, without their waits for a turn;
	// anyWaited says some worker waited for one.
	var wrote, busy atomic.Int64
	var anyWaited atomic.Bool
	work := func() {
		w := flushWorkers.Get().(*flushWorker)
		defer flushWorkers.Put(w)
		from := time.Now()
		var waited time.Duration
		defer func() {
			wrote.Add(int64(w.writes))
			busy.Add(int64(time.Since(from) - waited))
			if waited > 0 {
				anyWaited.Store(true)
			}
			w.writes = 0
			r.g.stats.writeSizes.add(&w.sizes)
		}()
		low := start
		for {
			i := int(next.Add(flushChunk)) - flushChunk
			if i >= len(conns) {
				break
			}
			if spread > 0 {
				waited += waitTurn(began, spread, i/flushChunk, chunks)
			}
			for _, c := range conns[i:min(i+flushChunk, len(conns))] {
				// The cursor is read before head: head only grows, so a
				// cursor equal to head means caught up.
				cursor := c.cursor.Load()
				switch {
				case cursor == r.head.Load() || !c.started.Load():
					// Caught up, or still in its handshake (start writes
					// what it missed).
				case cursor < offeredGraceAgo && r.pendingOverBudget(cursor, offeredGraceAgo, budget):
					c.slowConsumer()
					continue
				default:
					c.flushDirect(w)
					cursor = c.cursor.Load()
				}
				if !c.slow.Load() {
					low = min(low, cursor)
				}
			}
		}
		for cur := least.Load(); low < cur && !least.CompareAndSwap(cur, low); cur = least.Load() {
		}
	}
	var wg sync.WaitGroup
	for range workers - 1 {
		wg.Go(work)
	}
	work()
	wg.Wait()
	took := time.Since(began)
	if anyWaited.Load() {
		took = time.Duration(busy.Load())
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	clear(conns) // do not keep connections that left alive
	r.flushing = false
	if r.closed {
		return
	}
	if wrote.Load() > 0 {
		// A walk that wrote nothing (every connection caught up, the
		// release walk of writerCaughtUp) says nothing about what
		// delivering a frame to the room costs.
		r.pacer.observe(took)
	}
	r.releaseBelowLocked(least.Load())
	if r.flushPending && !r.timerArmed {
		r.startFlushLocked(time.Now())
	}
}

// pendingOverBudget reports whether the frames [cursor, offered), offered to
// a connection by earlier flushes (at least a grace ago) and not yet taken,
// exceed budget bytes (or are no longer in the ring, in which case the
// connection cannot be served).
func (r *room) pendingOverBudget(cursor, offered, budget uint64) bool {
	n, ok := r.unsentBytes(cursor, offered)
	return !ok || n > budget
}

// join adds c to the room; c receives the broadcasts from now on (and,
// from prepareReplay, recent messages before them). It reports false, adding nothing, when the room was deleted.
func (r *room) join(c *conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.deleted {
		return false
	}
	c.cursor.Store(r.head.Load())
	c.idx = len(r.conns)
	r.conns = append(r.conns, c)
	return true
}

// leave removes c; it reports whether the room became empty, in which case
// the room is closed and the caller removes it from the gateway.
func (r *room) leave(c *conn) (empty bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c.idx < 0 || c.idx >= len(r.conns) || r.conns[c.idx] != c {
		return len(r.conns) == 0
	}
	last := len(r.conns) - 1
	r.conns[c.idx] = r.conns[last]
	r.conns[c.idx].idx = c.idx
	r.conns[last] = nil
	r.conns = r.conns[:last]
	c.idx = -1
	if len(r.conns) == 0 {
		r.closed = true
		if r.flushTimer != nil {
			r.flushTimer.Stop()
		}
		// Release the frames the ring holds.
		r.ring.Store(nil)
		r.g.releaseActivity(r.act)
		r.g.releaseHistory(r)
		return true
	}
	return false
}

// forEach calls f for every connection while holding room.mu; f must not
// block (it may take conn.mu).
func (r *room) forEach(f func(*conn)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.conns {
		f(c)
	}
}

// closeAll closes every connection after the frames broadcast so far,
// optionally preceded by errFrame.
func (r *room) closeAll(errFrame, closeFrame []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	head := r.head.Load()
	for _, c := range r.conns {
		c.closeAfter(head, errFrame, closeFrame)
	}
}
