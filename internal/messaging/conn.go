package messaging

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/gobwas/ws"

	"github.com/ivschatd/ivschatd/internal/ratelimit"
)

// conn is one client connection: one room, one user session.
//
// Goroutines: a reader goroutine per connection for its whole life (blocked
// in Read while idle), and a writer goroutine that exists only while there is
// something to write that the room's flush could not write directly (see
// flushDirect and kick). The trade-off: an idle connection costs one
// small goroutine stack (2–8 KB) instead of zero with an epoll loop, but the
// code stays plain blocking Go and client requests are handled without a
// hop; the writer is the goroutine whose count would scale with activity, and
// it is gone as soon as the connection is caught up.
//
// Memory while idle: the struct, the net.Conn, the reader's stack and the
// pre-encoded Sender. No read or write buffer is held: frames are read with
// a 12-byte header array and a payload allocated per request, and frames to
// write live in the room's ring and in short-lived batches from a pool.
type conn struct {
	g    *Gateway
	room *room
	nc   net.Conn
	// r is nc, or the bytes the HTTP server had read ahead of the handshake
	// followed by nc.
	r io.Reader
	// writev is true when nc writes net.Buffers with one writev; otherwise
	// (TLS) a batch is joined into one buffer first so it still costs one
	// write call.
	writev bool
	// raw is nc's file descriptor access for flushDirect's non-blocking
	// writev; nil where that is not available (TLS, other systems).
	raw syscall.RawConn

	id          uint64    // ConnectionInfo.ID
	connectedAt time.Time // when the handshake was accepted
	userID      string
	sender      []byte            // pre-encoded Sender object of this user's messages
	attrs       map[string]string // token attributes, for review requests; read-only
	ip          string            // client address for review requests (see clientIP)
	caps        capSet

	sessionTimer *time.Timer
	closeNC      sync.Once

	idx int // position in room.conns; guarded by room.mu

	// cursor is the sequence number of the next room frame to write. Only
	// the writer stores it (join sets it before the writer can exist); flush
	// reads it to measure the backlog.
	cursor atomic.Uint64

	// started is set once the 101 response is written and nc is attached
	// (start): before that no writer may run, since there is no socket to
	// write to and nothing may overtake the handshake response.
	started atomic.Bool
	// closing is set when the server decides to close the connection (a
	// close was requested: moderation, session expiry, room deletion, slow
	// consumer, protocol error, shutdown). From then on the reader acts on
	// nothing the client sends but its close frame.
	closing atomic.Bool
	// slow is set when the connection is dropped as a slow consumer; it
	// needs no more room frames. Written under mu.
	slow atomic.Bool

	mu      sync.Mutex // guards the fields below
	private [][]byte   // frames for this connection only (errors, pongs, pings)
	writing bool       // a writer goroutine is running
	// replay holds the room's recent messages for a connection that has
	// just joined (history.go); they go out before any room frame.
	replay [][]byte
	// A close is requested: write room frames up to closeAt, then closeFrm.
	closeSet   bool
	closeAt    uint64
	closeFrm   []byte
	closeSent  bool // closeFrm was written; nothing may follow it
	peerClosed bool // the client sent its close frame first
	dead       bool // the socket is closed

	// Reader goroutine only.
	reqRate ratelimit.Bucket
	hdr     [ws.MaxHeaderSize - 2]byte
}

type capSet uint8

const (
	capSendMessage capSet = 1 << iota
	capDeleteMessage
	capDisconnectUser
)

// maxBatchFrames bounds one writev (IOV_MAX is 1024 on Linux) and the time
// one write keeps a batch alive.
const maxBatchFrames = 256

// batchPool recycles the slices a writer assembles a writev in, so an idle
// connection holds none.
var batchPool = sync.Pool{New: func() any {
	b := make([][]byte, 0, 32)
	return &b
}}

// claimWriterLocked reports whether the caller must start a writer
// goroutine, and marks one as running if so. It is the only way a writer
// comes to exist: never before start (there is no socket yet, and the 101
// must go first), never beside a running one, never after the socket closed
// or the close frame went out.
func (c *conn) claimWriterLocked() bool {
	if !c.started.Load() || c.writing || c.dead || c.closeSent {
		return false
	}
	c.writing = true
	return true
}

// kick starts the writer unless it is running; a running writer re-checks
// for pending frames after every write, so nothing is missed.
func (c *conn) kick() {
	c.mu.Lock()
	start := c.claimWriterLocked()
	c.mu.Unlock()
	if start {
		go c.writeLoop(nil)
	}
}

// enqueue queues a frame for this connection only.
func (c *conn) enqueue(frame []byte) {
	c.mu.Lock()
	if c.dead || c.closeSet {
		c.mu.Unlock()
		return
	}
	if len(c.private) >= c.g.opts.QueueLimit {
		c.mu.Unlock()
		c.slowConsumer()
		return
	}
	c.private = append(c.private, frame)
	start := c.claimWriterLocked()
	c.mu.Unlock()
	if start {
		go c.writeLoop(nil)
	}
}

// closeAfter asks the writer to write the room frames below sequence at,
// then errFrame (if any), then closeFrm, and to end the connection. The first
// close requested wins.
func (c *conn) closeAfter(at uint64, errFrame, closeFrm []byte) {
	c.mu.Lock()
	if c.dead || c.closeSet {
		c.mu.Unlock()
		return
	}
	if errFrame != nil {
		c.private = append(c.private, errFrame)
	}
	c.requestCloseLocked(at, closeFrm)
	start := c.claimWriterLocked()
	c.mu.Unlock()
	if start {
		go c.writeLoop(nil)
	}
}

// requestCloseLocked records the server's decision to close: room frames
// below at go out first, then closeFrm.
func (c *conn) requestCloseLocked(at uint64, closeFrm []byte) {
	c.closeSet, c.closeAt, c.closeFrm = true, at, closeFrm
	c.closing.Store(true)
}

// slowConsumer drops a connection that cannot keep up. A writer blocked on
// the full socket is interrupted by an expired write deadline and closes the
// socket; otherwise a writer is started to send close 1008 with the reason
// (once the connection is started: a connection still in its handshake
// sends it right after the 101). Either way the room never waits for this
// client.
func (c *conn) slowConsumer() {
	c.mu.Lock()
	if c.dead || c.slow.Load() {
		c.mu.Unlock()
		return
	}
	c.markSlowLocked()
	if c.writing && c.started.Load() {
		c.nc.SetWriteDeadline(time.Now())
	}
	start := c.claimWriterLocked()
	c.mu.Unlock()
	if start {
		go c.writeLoop(nil)
	}
}

func (c *conn) markSlowLocked() {
	c.slow.Store(true)
	if !c.closeSet {
		c.requestCloseLocked(0, closeFrame(closePolicyViolation, reasonSlowConsumer))
	}
	c.g.stats.slowConsumers.Add(1)
	c.g.log.Info("messaging: slow consumer disconnected", "room", c.room.id, "user", c.userID)
}

// abort closes the socket; the reader and writer notice and end.
func (c *conn) abort() {
	c.mu.Lock()
	c.dead = true
	nc := c.nc // nil while the handshake is being written; start closes it
	c.mu.Unlock()
	if nc != nil {
		c.closeNC.Do(func() { nc.Close() })
	}
}

type batch struct {
	frames  [][]byte
	to      uint64 // cursor after the write
	closing bool   // the batch ends with the close frame
	full    bool   // cut at maxBatchFrames: more room frames are pending
	// sent is how many frames of the original batch an earlier, partial
	// write sent in full: the rest of a batch carries only the frames that
	// remain, so len(frames) alone would undercount the batch.
	sent int
	// deliveries counts the batch's room frames by action, counted once
	// the whole batch is written.
	deliveries actionCounts
}

// next assembles the next write under c.mu, or reports that the writer is
// done (and clears writing, so the next kick starts a new one).
func (c *conn) next(frames [][]byte) (batch, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.assembleLocked(frames)
	if !ok {
		c.writing = false
		return batch{}, false
	}
	c.setWriteDeadlineLocked()
	return b, true
}

// setWriteDeadlineLocked arms the deadline of a write that may block. Set
// under c.mu so that slowConsumer's expired deadline can never be
// overwritten by this one.
func (c *conn) setWriteDeadlineLocked() {
	timeout := c.g.opts.WriteTimeout
	if c.slow.Load() {
		timeout = min(timeout, c.g.opts.CloseTimeout)
	}
	c.nc.SetWriteDeadline(time.Now().Add(timeout))
}

// assembleLocked collects everything pending into frames: room frames from
// the cursor on, then the private frames, then the close frame when one is
// due. It reports false when there is nothing to write.
func (c *conn) assembleLocked(frames [][]byte) (batch, bool) {
	if c.dead || c.closeSent {
		return batch{}, false
	}
	from := c.cursor.Load()
	to := c.room.head.Load()
	closing := c.closeSet
	if closing {
		to = min(to, max(c.closeAt, from))
	}
	full := false
	if to-from > maxBatchFrames {
		to, closing, full = from+maxBatchFrames, false, true
	}
	if len(c.replay) > 0 {
		// At most MaxHistory frames, before the first room frame: a batch
		// stays far below IOV_MAX.
		frames = append(frames, c.replay...)
		c.replay = nil
	}
	var first, last *entry
	for seq := from; seq < to; seq++ {
		e := c.room.entryAt(seq)
		if e == nil {
			// The ring reused the slot: this connection fell a whole ring
			// behind between two flushes. Drop it like any slow consumer,
			// writing only the close frame.
			if !c.slow.Load() {
				c.markSlowLocked()
			}
			frames = frames[:0]
			to, closing, full = from, true, false
			first = nil
			break
		}
		if first == nil {
			first = e
		}
		last = e
		frames = append(frames, e.frame)
	}
	var deliveries actionCounts
	if first != nil {
		deliveries = deliveriesBetween(first, last)
	}
	frames = append(frames, c.private...)
	c.private = nil
	if closing {
		frames = append(frames, c.closeFrm)
	}
	if len(frames) == 0 {
		return batch{}, false
	}
	return batch{frames: frames, to: to, closing: closing, full: full, deliveries: deliveries}, true
}

// flushDirect writes c's pending frames from a flush worker with one
// non-blocking writev, without a goroutine or a deadline: the common case
// under load, where the socket has room. Only when the socket is full (or
// a close is due) does the connection get its own writer goroutine, which
// finishes the batch with a blocking, deadline-bounded write.
//
// Measured with ivschat-bench (5,000 viewers, 100 messages/s, 2 cores
// shared with the generator): starting a goroutine per connection and flush
// cost about 20% of the server's CPU (newproc, schedule, gdestroy, gfget,
// SetWriteDeadline timers); together with non-overlapping flushes (see
// room.flush) p99 latency at --write-coalesce 20ms fell from 1.2 s to 0.43 s.
func (c *conn) flushDirect(w *flushWorker) {
	c.mu.Lock()
	if !c.started.Load() || c.writing || c.dead || c.closeSent {
		c.mu.Unlock()
		return
	}
	if c.raw == nil || c.closeSet {
		// No direct write on this socket (TLS), or a close is due, whose
		// bookkeeping lives in writeLoop.
		c.writing = true
		c.mu.Unlock()
		go c.writeLoop(nil)
		return
	}
	b, ok := c.assembleLocked(w.frames[:0])
	if !ok {
		c.mu.Unlock()
		return
	}
	c.writing = true
	c.mu.Unlock()
	w.frames = b.frames
	w.writes++
	n, total, err := c.writeNonblocking(b.frames, w)
	var rest *batch
	if err == nil && n < total {
		rest = &batch{frames: skipBytes(b.frames, n), to: b.to, deliveries: b.deliveries}
		rest.sent = len(b.frames) - len(rest.frames)
	}
	clear(w.frames) // drop the frame references until the next use
	switch {
	case err != nil:
		c.abort()
		c.mu.Lock()
		c.writing = false
		c.mu.Unlock()
	case n < total:
		// The socket is full: the rest goes out from a writer goroutine,
		// which may block (bounded by WriteTimeout).
		go c.writeLoop(rest)
	default:
		c.cursor.Store(b.to)
		c.g.stats.framesOut.Add(uint64(b.sent + len(b.frames)))
		c.g.stats.writes.Add(1)
		w.sizes.observe(b.sent + len(b.frames))
		c.g.stats.deliveries.add(&b.deliveries)
		c.mu.Lock()
		more := b.full || len(c.private) > 0 || c.closeSet
		if !more {
			c.writing = false
		}
		c.mu.Unlock()
		if more {
			// Room frames published since are the next flush's; what is
			// left here (a full batch, private frames or a close queued
			// meanwhile) goes to a writer goroutine.
			go c.writeLoop(nil)
		}
	}
}

// skipBytes returns a copy of frames without their first n bytes.
func skipBytes(frames [][]byte, n int) [][]byte {
	rest := make([][]byte, 0, len(frames))
	for _, f := range frames {
		if n >= len(f) {
			n -= len(f)
			continue
		}
		rest = append(rest, f[n:])
		n = 0
	}
	return rest
}

// writeLoop writes everything pending, in as few write calls as possible,
// and exits when the connection is caught up. first, if not nil, is the
// rest of a batch that flushDirect could not finish.
func (c *conn) writeLoop(first *batch) {
	bp := batchPool.Get().(*[][]byte)
	defer func() {
		clear(*bp) // drop the frame references before pooling
		*bp = (*bp)[:0]
		batchPool.Put(bp)
	}()
	for {
		var b batch
		if first != nil {
			b, first = *first, nil
			c.mu.Lock()
			c.setWriteDeadlineLocked()
			c.mu.Unlock()
		} else {
			var ok bool
			if b, ok = c.next((*bp)[:0]); !ok {
				c.room.writerCaughtUp()
				return
			}
			*bp = b.frames
		}
		err := c.write(b.frames)
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				c.mu.Lock()
				if !c.slow.Load() {
					c.markSlowLocked()
				}
				c.mu.Unlock()
			}
			c.abort()
			c.mu.Lock()
			c.writing = false
			c.mu.Unlock()
			return
		}
		c.cursor.Store(b.to)
		c.g.stats.framesOut.Add(uint64(b.sent + len(b.frames)))
		c.g.stats.writes.Add(1)
		c.g.stats.writeSizes.observe(b.sent + len(b.frames))
		c.g.stats.deliveries.add(&b.deliveries)
		if b.closing {
			c.mu.Lock()
			c.closeSent = true
			c.writing = false
			done := c.peerClosed || c.slow.Load()
			// Wait a little for the client's close frame, then the reader
			// gives up and closes the socket.
			c.nc.SetReadDeadline(time.Now().Add(c.g.opts.CloseTimeout))
			c.mu.Unlock()
			if done {
				c.abort()
			}
			return
		}
	}
}

func (c *conn) write(frames [][]byte) error {
	if c.writev {
		bufs := net.Buffers(frames)
		_, err := bufs.WriteTo(c.nc)
		return err
	}
	n := 0
	for _, f := range frames {
		n += len(f)
	}
	joined := make([]byte, 0, n)
	for _, f := range frames {
		joined = append(joined, f...)
	}
	_, err := c.nc.Write(joined)
	return err
}

// setIdleDeadline pushes the read deadline out after the client sent
// something, unless a close is under way (its own, shorter deadline wins).
func (c *conn) setIdleDeadline(now time.Time) {
	c.mu.Lock()
	if !c.closeSet {
		c.nc.SetReadDeadline(now.Add(c.g.opts.IdleTimeout))
	}
	c.mu.Unlock()
}

// closeFromReader starts a close the reader decided on (protocol error, frame
// too big) and bounds how long the reader keeps draining.
func (c *conn) closeFromReader(code uint16, reason string) {
	c.closeAfter(0, nil, closeFrame(code, reason))
	c.mu.Lock()
	c.nc.SetReadDeadline(time.Now().Add(c.g.opts.WriteTimeout + c.g.opts.CloseTimeout))
	c.mu.Unlock()
}

// readLoop reads client frames until the connection ends, then tears it down.
func (c *conn) readLoop() {
	defer c.teardown()
	c.setIdleDeadline(time.Now())
	maxSize := int64(c.g.opts.MaxFrameSize)
	var (
		msg      []byte // a fragmented message being assembled
		msgOp    ws.OpCode
		inMsg    bool
		draining bool // we started the close: discard everything but the client's close
	)
	for {
		h, err := ws.ReadHeaderBuffer(c.r, c.hdr[:])
		if err != nil {
			c.readFailed(err)
			return
		}
		// Once the server has decided to close (ours or the reader's own
		// decision), nothing the client sends is acted on, broadcast or
		// logged: a kicked user's bot must not go on posting until its
		// close frame arrives. Only that close frame still counts.
		if (draining || c.closing.Load()) && h.OpCode != ws.OpClose {
			if _, err := io.CopyN(io.Discard, c.r, h.Length); err != nil {
				return
			}
			continue
		}
		if reason := checkClientHeader(h, inMsg); reason != "" {
			c.closeFromReader(closeProtocolError, reason)
			draining = true
			continue
		}
		if h.Length > maxSize || (inMsg && int64(len(msg))+h.Length > maxSize) {
			c.closeFromReader(closeTooBig, "message exceeds the frame size limit")
			draining = true
			// Skip the payload (within the drain deadline just set), so the
			// next header is read where the client wrote it, and so the
			// socket is not closed with the payload unread: the kernel
			// would answer with a reset that can destroy the close frame
			// before the client reads it.
			if _, err := io.CopyN(io.Discard, c.r, h.Length); err != nil {
				return
			}
			continue
		}
		payload := make([]byte, h.Length)
		if _, err := io.ReadFull(c.r, payload); err != nil {
			c.readFailed(err)
			return
		}
		ws.Cipher(payload, h.Mask, 0)
		now := time.Now()
		c.setIdleDeadline(now)

		switch h.OpCode {
		case ws.OpPing:
			c.enqueue(controlFrame(opPong, payload))
			continue
		case ws.OpPong:
			continue
		case ws.OpClose:
			if c.onPeerClose(payload) {
				return
			}
			draining = true
			continue
		case ws.OpText, ws.OpBinary:
			msgOp = h.OpCode
			if !h.Fin {
				msg, inMsg = payload, true
				continue
			}
		case ws.OpContinuation:
			msg = append(msg, payload...)
			if !h.Fin {
				continue
			}
			payload, msg, inMsg = msg, nil, false
		}
		if msgOp == ws.OpBinary {
			c.sendError("", "", codeBadRequest, "binary frames are not supported: send each request as a JSON text frame")
			continue
		}
		if !utf8.Valid(payload) {
			c.sendError("", "", codeBadRequest, "request is not valid UTF-8")
			continue
		}
		c.handleRequest(payload, now)
	}
}

// checkClientHeader enforces RFC 6455 framing for client frames.
func checkClientHeader(h ws.Header, inMsg bool) string {
	switch {
	case h.Rsv != 0:
		return "reserved bits set (no extension negotiated)"
	case !h.Masked:
		return "client frames must be masked"
	case h.OpCode.IsReserved():
		return "reserved opcode"
	case h.OpCode.IsControl() && (!h.Fin || h.Length > 125):
		return "control frames must be final and at most 125 bytes"
	case h.OpCode == ws.OpContinuation && !inMsg:
		return "continuation frame without a message to continue"
	case (h.OpCode == ws.OpText || h.OpCode == ws.OpBinary) && inMsg:
		return "new message before the fragmented one ended"
	}
	return ""
}

// onPeerClose handles the client's close frame. It reports whether the
// closing handshake is complete (we had sent ours), in which case the reader
// ends; otherwise our reply is queued and the writer closes the socket after
// sending it.
func (c *conn) onPeerClose(payload []byte) (done bool) {
	code := closeNormal
	if len(payload) >= 2 {
		code = binary.BigEndian.Uint16(payload)
		// Codes that must not be sent back in a frame (RFC 6455 §7.4.1).
		if code == 1005 || code == 1006 || code == 1015 || code < 1000 {
			code = closeNormal
		}
	}
	c.mu.Lock()
	if c.closeSent || c.dead {
		c.mu.Unlock()
		return true
	}
	c.peerClosed = true
	c.nc.SetReadDeadline(time.Now().Add(c.g.opts.CloseTimeout))
	c.mu.Unlock()
	c.closeAfter(0, nil, closeFrame(code, ""))
	return false
}

func (c *conn) readFailed(err error) {
	c.mu.Lock()
	idle := !c.closeSet && !c.dead && errors.Is(err, os.ErrDeadlineExceeded)
	c.mu.Unlock()
	if idle {
		c.g.stats.idle.Add(1)
	}
}

// teardown runs once, when the reader ends.
func (c *conn) teardown() {
	c.abort()
	if c.sessionTimer != nil {
		c.sessionTimer.Stop()
	}
	c.g.detach(c)
	c.g.releaseSlot()
	c.g.readers.Done()
}

// expireSession ends the session at the token's session expiry: ERROR 401
// (the JS SDK reconnects with a fresh token on it) and then close 1000.
func (c *conn) expireSession() {
	errFrame := encodeError(newID(), "", codeUnauthorized, "Session expired")
	c.room.act.errorSent(codeUnauthorized, time.Now().Unix())
	c.closeAfter(c.room.head.Load(), errFrame, closeFrame(closeNormal, reasonSessionExpired))
}

func (c *conn) sendError(requestID, id string, code int, msg string) {
	if id == "" {
		id = newID()
	}
	c.enqueue(encodeError(id, requestID, code, msg))
	c.g.stats.errorsSent.Add(1)
	c.room.act.errorSent(code, time.Now().Unix())
}

// readerWithAhead returns a reader that first yields the bytes the HTTP
// server buffered beyond the handshake request.
func readerWithAhead(nc net.Conn, ahead []byte) io.Reader {
	if len(ahead) == 0 {
		return nc
	}
	return io.MultiReader(bytes.NewReader(ahead), nc)
}
