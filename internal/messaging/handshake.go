package messaging

import (
	"errors"
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
// (see the package documentation for the table).
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !headerHasToken(r.Header, "Upgrade", "websocket") {
		w.Header().Set("Upgrade", "websocket")
		g.reject(w, http.StatusUpgradeRequired, "this endpoint only accepts WebSocket connections")
		return
	}
	g.mu.Lock()
	closing := g.closing
	g.mu.Unlock()
	if closing {
		g.reject(w, http.StatusServiceUnavailable, "server is shutting down")
		return
	}

	offered := offeredProtocols(r.Header)
	if len(offered) == 0 {
		g.reject(w, http.StatusUnauthorized, "missing chat token: send it as the Sec-WebSocket-Protocol header")
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
			g.reject(w, http.StatusUnauthorized, "chat token expired")
		} else {
			g.reject(w, http.StatusUnauthorized, "invalid chat token")
		}
		return
	}
	arn, ok := chat.ParseARN(claims.RoomARN)
	if !ok || arn.Kind != chat.KindRoom {
		g.reject(w, http.StatusUnauthorized, "invalid chat token")
		return
	}
	ctx := r.Context()
	room, err := g.opts.Rooms.GetRoom(ctx, arn.ID)
	if err != nil {
		if chat.ErrorCode(err) == chat.CodeResourceNotFound {
			g.reject(w, http.StatusNotFound, "room not found: "+arn.ID)
			return
		}
		g.log.Error("messaging: room lookup failed", "room", arn.ID, "err", err)
		g.reject(w, http.StatusInternalServerError, "room lookup failed")
		return
	}
	// The quota is checked before the token is recorded as used, so a client
	// refused for the quota may retry with the same token.
	if g.active.Add(1) > int64(g.opts.MaxConnections) {
		g.active.Add(-1)
		g.reject(w, http.StatusTooManyRequests, "too many connections: the quota is exceeded")
		return
	}
	first, err := g.ledger.Use(ctx, claims.ID, claims.TokenExpiresAt)
	if err != nil || !first {
		g.active.Add(-1)
		if err != nil {
			g.log.Error("messaging: token ledger failed", "err", err)
			g.reject(w, http.StatusInternalServerError, "token check failed")
			return
		}
		g.reject(w, http.StatusUnauthorized, "chat token already used: tokens are single use")
		return
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
		g.active.Add(-1)
		g.stats.rejected.Add(1)
		if nc != nil {
			nc.Close()
		}
		return
	}
	// Keep bytes the HTTP server read past the request, then drop its
	// buffers: an idle connection must not hold 8 KB of bufio.
	var ahead []byte
	if n := rw.Reader.Buffered(); n > 0 {
		ahead, _ = rw.Reader.Peek(n)
		ahead = append([]byte(nil), ahead...)
	}
	if !g.open(nc, ahead, &claims, room) {
		g.active.Add(-1)
	}
}

// open registers an upgraded connection with its room and starts its reader.
// The caller has reserved a connection slot; open reports false (and closes
// nc) when the gateway is shutting down, leaving the slot to the caller.
func (g *Gateway) open(nc net.Conn, ahead []byte, claims *token.Claims, rm *chat.Room) bool {
	_, writev := nc.(*net.TCPConn)
	if tcp, ok := nc.(*net.TCPConn); ok && g.opts.SocketSendBuffer > 0 {
		tcp.SetWriteBuffer(g.opts.SocketSendBuffer)
	}
	c := &conn{
		g:      g,
		nc:     nc,
		r:      readerWithAhead(nc, ahead),
		writev: writev,
		userID: claims.UserID,
		sender: encodeSender(claims.UserID, claims.Attributes),
		caps:   capsOf(claims.Capabilities),
		idx:    -1,
	}
	roomID := rm.ID
	g.mu.Lock()
	if g.closing {
		g.mu.Unlock()
		nc.Write(closeFrame(closeGoingAway, reasonShutdown))
		nc.Close()
		return false
	}
	r := g.rooms[roomID]
	if r == nil {
		r = newRoom(g, roomID)
		unsub, err := g.broker.Subscribe(roomID, r.handle)
		if err != nil {
			g.mu.Unlock()
			g.log.Error("messaging: broker subscribe failed", "room", roomID, "err", err)
			nc.Write(closeFrame(1011, "internal error"))
			nc.Close()
			return false
		}
		r.unsubscribe = unsub
		g.rooms[roomID] = r
	}
	// The stored room is the freshest view of its limits.
	r.setLimits(rm.MaximumMessageLength, rm.MaximumMessageRatePerSecond)
	c.room = r
	r.join(c)
	g.readers.Add(1)
	g.mu.Unlock()

	g.stats.accepted.Add(1)
	if !claims.SessionExpiresAt.IsZero() {
		c.sessionTimer = time.AfterFunc(time.Until(claims.SessionExpiresAt), c.expireSession)
	}
	go c.readLoop()
	return true
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

func (g *Gateway) reject(w http.ResponseWriter, status int, msg string) {
	g.stats.rejected.Add(1)
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
