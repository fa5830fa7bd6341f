package messaging

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/gobwas/ws"

	"github.com/ivschatd/ivschatd/internal/chat"
	"github.com/ivschatd/ivschatd/internal/token"
)

// ServeHTTP performs the WebSocket handshake (mount it at "/"). Every check
// runs before the upgrade so that a refused client gets a plain HTTP status
// (see the package documentation for the table); every refusal is counted
// and logged with its reason (reject.go).
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !headerHasToken(r.Header, "Upgrade", "websocket") {
		w.Header().Set("Upgrade", "websocket")
		g.reject(w, r, rejectNotWebSocket, http.StatusUpgradeRequired, "this endpoint only accepts WebSocket connections")
		return
	}
	g.mu.Lock()
	closing := g.closing
	g.mu.Unlock()
	if closing {
		g.reject(w, r, rejectShuttingDown, http.StatusServiceUnavailable, "server is shutting down")
		return
	}

	offered := offeredProtocols(r.Header)
	if len(offered) == 0 {
		g.reject(w, r, rejectTokenMissing, http.StatusUnauthorized, "missing chat token: send it as the Sec-WebSocket-Protocol header")
		return
	}
	now := time.Now()
	var (
		claims  token.Claims
		tok     string
		openErr error
	)
	// A client that offers a list gets the single value that opens (spec §2).
	for _, p := range offered {
		cl, err := g.opts.Tokens.Open(p, now)
		if err == nil {
			claims, tok = cl, p
			break
		}
		openErr = err
	}
	if tok == "" {
		if errors.Is(openErr, token.ErrExpired) {
			g.reject(w, r, rejectTokenExpired, http.StatusUnauthorized, "chat token expired", "err", openErr)
		} else {
			g.reject(w, r, rejectTokenInvalid, http.StatusUnauthorized, "invalid chat token", "err", openErr)
		}
		return
	}
	arn, ok := chat.ParseARN(claims.RoomARN)
	if !ok || arn.Kind != chat.KindRoom {
		g.reject(w, r, rejectTokenInvalid, http.StatusUnauthorized, "invalid chat token", "err", "the token names no room")
		return
	}
	ctx := r.Context()
	watch := g.watchBans(arn.ID)
	room, ban, err := g.lookupRoom(ctx, arn.ID, claims.UserID, now)
	if err != nil {
		if chat.ErrorCode(err) == chat.CodeResourceNotFound {
			g.reject(w, r, rejectRoomNotFound, http.StatusNotFound, "room not found: "+arn.ID, "room", arn.ID)
			return
		}
		g.log.Error("messaging: room lookup failed", "room", arn.ID, "err", err)
		g.reject(w, r, rejectRoomLookupFailed, lookupStatus(err), "room lookup failed", "room", arn.ID)
		return
	}
	// Like every refusal before the ledger, a ban leaves the token unused:
	// it refuses the user, not the token, which opens once the ban ends.
	if ban != nil {
		g.reject(w, r, rejectBanned, http.StatusForbidden, "banned from the room", "room", arn.ID, "user", claims.UserID)
		return
	}
	// The quota is checked before the token is recorded as used, so a client
	// refused for the quota may retry with the same token.
	if !g.quota.Acquire(ctx) {
		g.reject(w, r, rejectQuota, http.StatusTooManyRequests, "too many connections: the quota is exceeded", "room", arn.ID, "limit", g.opts.MaxConnections)
		return
	}
	// From here on every path gives the slot back exactly once: the
	// refusals below through releaseSlot, a connection that registered
	// through its teardown.
	g.active.Add(1)
	first, err := g.ledger.Use(ctx, claims.ID, claims.TokenExpiresAt)
	if err != nil || !first {
		g.releaseSlot()
		if err != nil {
			g.log.Error("messaging: token ledger failed", "err", err)
			g.reject(w, r, rejectLedgerFailed, http.StatusInternalServerError, "token check failed", "room", arn.ID)
			return
		}
		g.reject(w, r, rejectTokenUsed, http.StatusUnauthorized, "chat token already used: tokens are single use", "room", arn.ID, "user", claims.UserID)
		return
	}

	// The connection joins its room before the 101 goes out, so a client
	// that sees the handshake complete receives every frame broadcast after
	// that. Until start, no writer runs (claimWriterLocked), so queued
	// frames cannot overtake the 101 response.
	c := newConn(g, &claims)
	c.ip = clientIP(r, g.opts.TrustedProxies)
	if err := g.register(ctx, c, room, claims.RoomARN); err != nil {
		g.releaseSlot()
		switch {
		case errors.Is(err, errClosing):
			g.reject(w, r, rejectShuttingDown, http.StatusServiceUnavailable, "server is shutting down")
		case errors.Is(err, errRoomDeleted):
			g.reject(w, r, rejectRoomNotFound, http.StatusNotFound, "room not found: "+arn.ID, "room", arn.ID)
		case errors.Is(err, errRoomLookup):
			g.log.Error("messaging: room lookup failed", "room", arn.ID, "err", err)
			g.reject(w, r, rejectRoomLookupFailed, lookupStatus(err), "room lookup failed", "room", arn.ID)
		default:
			g.log.Error("messaging: broker subscribe failed", "room", room.ID, "err", err)
			g.reject(w, r, rejectSubscribeFailed, http.StatusInternalServerError, "room subscription failed", "room", arn.ID)
		}
		return
	}
	if watch.recheck(g, c) {
		if _, ban, err := g.opts.Bans.GetRoomBan(ctx, arn.ID, claims.UserID, now); err != nil || ban != nil {
			c.teardown()
			if chat.ErrorCode(err) == chat.CodeResourceNotFound {
				g.reject(w, r, rejectRoomNotFound, http.StatusNotFound, "room not found: "+arn.ID, "room", arn.ID)
				return
			}
			if err != nil {
				g.log.Error("messaging: room lookup failed", "room", arn.ID, "err", err)
				g.reject(w, r, rejectRoomLookupFailed, lookupStatus(err), "room lookup failed", "room", arn.ID)
				return
			}
			g.reject(w, r, rejectBanned, http.StatusForbidden, "banned from the room", "room", arn.ID, "user", claims.UserID)
			return
		}
	}
	up := ws.HTTPUpgrader{
		Timeout: g.opts.HandshakeTimeout,
		// Echo the token: browsers fail a handshake whose offered
		// sub-protocol is not selected.
		Protocol: func(p string) bool { return p == tok },
	}
	nc, rw, _, err := up.Upgrade(r, w)
	if err != nil {
		// The upgrader has answered with an HTTP error on the hijacked
		// connection.
		g.rejections.note(g.log, rejectUpgradeFailed, 0, "WebSocket upgrade failed", r, "room", arn.ID, "err", err)
		if nc != nil {
			nc.Close()
		}
		c.teardown()
		return
	}
	// Keep bytes the HTTP server read past the request, then drop its
	// buffers: an idle connection must not hold 8 KB of bufio.
	var ahead []byte
	if n := rw.Reader.Buffered(); n > 0 {
		ahead, _ = rw.Reader.Peek(n)
		ahead = append([]byte(nil), ahead...)
	}
	g.stats.accepted.Add(1)
	c.start(nc, ahead, claims.SessionExpiresAt)
}

// lookupStatus is the answer to a handshake whose room could not be read:
// 503 when the store cannot serve now (its database unreachable), so that
// clients and load balancers retry, else 500.
func lookupStatus(err error) int {
	if chat.ErrorCode(err) == chat.CodeServiceUnavailable {
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

func newConn(g *Gateway, claims *token.Claims) *conn {
	return &conn{
		g:           g,
		id:          g.connSeq.Add(1),
		connectedAt: time.Now(),
		userID:      claims.UserID,
		sender:      encodeSender(claims.UserID, claims.Attributes),
		attrs:       claims.Attributes,
		caps:        capsOf(claims.Capabilities),
		idx:         -1,
	}
}

var (
	errClosing     = errors.New("messaging: gateway is shutting down")
	errRoomDeleted = errors.New("messaging: the room was deleted")
	errRoomLookup  = errors.New("messaging: room lookup failed")
)

// register adds a connection whose handshake is about to complete to its
// room. It fails with errClosing when the gateway is shutting down, with
// errRoomDeleted when the room was deleted since the handshake read it, or
// with the broker's or the room source's error. On success the caller must
// call start or teardown.
//
// A DeleteRoom racing the handshake is caught either way: the store forgets
// the room before its deletion is published to the broker, so a room that is
// subscribed on this node hears of it (deleteRoom marks it, and join then
// refuses, or closes the connection if it joined first), and a room that this
// handshake subscribes re-reads the store once the subscription is in
// effect — a deletion published before then is visible there.
func (g *Gateway) register(ctx context.Context, c *conn, rm *chat.Room, roomARN string) error {
	g.mu.Lock()
	if g.closing {
		g.mu.Unlock()
		return errClosing
	}
	r := g.rooms[rm.ID]
	first := r == nil
	// How many recent messages this connection receives: the room as its
	// handshake just read it, so a tag change applies to every later
	// connection.
	hist := HistoryOf(rm, g.opts.HistoryDefault)
	if first {
		r = newRoom(g, rm.ID, roomARN)
		r.subscribed = make(chan struct{})
		g.rooms[rm.ID] = r
		g.attachHistory(r, hist)
	} else {
		r.hist.n.Store(int32(hist))
	}
	// A view of the room older than what the room knows is ignored (an
	// UpdateRoom may have landed since this handshake read it).
	r.setConfig(configOf(rm))
	c.room = r
	if !r.join(c) {
		g.mu.Unlock()
		return errRoomDeleted
	}
	g.readers.Add(1)
	g.mu.Unlock()

	// Subscribing can take a broker round trip (Redis), so it happens
	// outside g.mu: one slow subscription must not stall every handshake
	// and disconnect of the node. Connections that join the room meanwhile
	// wait for it, because a connection must be subscribed before its 101
	// goes out or it could miss a broadcast sent right after.
	if first {
		r.unsubscribe, r.subErr = g.broker.Subscribe(rm.ID, g.roomHandler(r))
		if r.subErr == nil {
			r.subErr = g.confirmRoom(ctx, r)
		}
		if r.subErr == nil {
			g.seedHistory(ctx, r)
		}
		if r.subErr != nil {
			// Later handshakes start over with a fresh room.
			g.mu.Lock()
			if g.rooms[rm.ID] == r {
				delete(g.rooms, rm.ID)
			}
			g.mu.Unlock()
		}
		close(r.subscribed) // publishes unsubscribe and subErr to waiters
	} else {
		<-r.subscribed
	}
	if r.subErr != nil {
		g.detach(c)
		g.readers.Done()
		return r.subErr
	}
	r.prepareReplay(c, hist)
	return nil
}

// confirmRoom re-reads a room that was just subscribed: a deletion
// published before the subscription took effect never reaches this node,
// but the store, which forgot the room before that publish, shows it. The
// re-read also brings the freshest limits.
func (g *Gateway) confirmRoom(ctx context.Context, r *room) error {
	rm, err := g.opts.Rooms.GetRoom(ctx, r.id)
	if err != nil {
		if chat.ErrorCode(err) == chat.CodeResourceNotFound {
			r.mu.Lock()
			r.deleted = true
			r.mu.Unlock()
			return errRoomDeleted
		}
		return fmt.Errorf("%w: %w", errRoomLookup, err)
	}
	r.setConfig(configOf(rm))
	return nil
}

// start attaches the upgraded socket, lets writers run and starts the
// reader. Whatever was decided while the handshake was written — frames
// broadcast, a close requested (the room deleted, the user disconnected,
// judged slow) — is written now, after the 101.
func (c *conn) start(nc net.Conn, ahead []byte, sessionExpires time.Time) {
	tcp, writev := nc.(*net.TCPConn)
	if writev && c.g.opts.SocketSendBuffer > 0 {
		tcp.SetWriteBuffer(c.g.opts.SocketSendBuffer)
	}
	c.mu.Lock()
	c.nc = nc
	c.r = readerWithAhead(nc, ahead)
	c.writev = writev
	if writev && directWrite {
		c.raw, _ = tcp.SyscallConn()
	}
	c.started.Store(true)
	dead := c.dead
	c.mu.Unlock()
	if dead {
		// Aborted while the handshake was being written.
		c.closeNC.Do(func() { nc.Close() })
	}
	if !sessionExpires.IsZero() {
		c.sessionTimer = time.AfterFunc(time.Until(sessionExpires), c.expireSession)
	}
	go c.readLoop()
	c.kick()
}

// detach removes a finished connection from its room, and the room from the
// gateway once it is empty.
func (g *Gateway) detach(c *conn) {
	r := c.room
	g.mu.Lock()
	empty := r.leave(c)
	if empty && g.rooms[r.id] == r {
		delete(g.rooms, r.id)
	}
	g.mu.Unlock()
	if empty && r.unsubscribe != nil {
		r.unsubscribe()
	}
}

// reject refuses a handshake with an HTTP status, and counts and logs why.
func (g *Gateway) reject(w http.ResponseWriter, r *http.Request, reason rejection, status int, msg string, attrs ...any) {
	g.rejections.note(g.log, reason, status, msg, r, attrs...)
	http.Error(w, msg, status)
}

func capsOf(capabilities []string) capSet {
	var s capSet
	for _, c := range capabilities {
		switch c {
		case chat.CapabilitySendMessage:
			s |= capSendMessage
		case chat.CapabilityDeleteMessage:
			s |= capDeleteMessage
		case chat.CapabilityDisconnectUser:
			s |= capDisconnectUser
		}
	}
	return s
}

// offeredProtocols returns the trimmed, non-empty values of every
// Sec-WebSocket-Protocol header (comma-separated lists included).
func offeredProtocols(h http.Header) []string {
	var out []string
	for _, v := range h.Values("Sec-WebSocket-Protocol") {
		for p := range strings.SplitSeq(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

func headerHasToken(h http.Header, name, tok string) bool {
	for _, v := range h.Values(name) {
		for p := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(p), tok) {
				return true
			}
		}
	}
	return false
}
