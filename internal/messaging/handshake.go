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

	// The connection joins its room before the 101 goes out, so a client
	// that sees the handshake complete receives every frame broadcast after
	// that. Until start, no writer runs (writing is held), so queued frames
	// cannot overtake the 101 response.
	c := newConn(g, &claims)
	c.ip = clientIP(r, g.opts.TrustedProxies)
	if err := g.register(c, room); err != nil {
		g.active.Add(-1)
		if errors.Is(err, errClosing) {
			g.reject(w, http.StatusServiceUnavailable, "server is shutting down")
		} else {
			g.log.Error("messaging: broker subscribe failed", "room", room.ID, "err", err)
			g.reject(w, http.StatusInternalServerError, "room subscription failed")
		}
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
		g.stats.rejected.Add(1)
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

func newConn(g *Gateway, claims *token.Claims) *conn {
	return &conn{
		g:       g,
		userID:  claims.UserID,
		sender:  encodeSender(claims.UserID, claims.Attributes),
		attrs:   claims.Attributes,
		caps:    capsOf(claims.Capabilities),
		idx:     -1,
		writing: true, // held until start
	}
}

var errClosing = errors.New("messaging: gateway is shutting down")

// register adds a connection whose handshake is about to complete to its
// room. It fails with errClosing when the gateway is shutting down, or with
// the broker's error. On success the caller must call start or teardown.
func (g *Gateway) register(c *conn, rm *chat.Room) error {
	g.mu.Lock()
	if g.closing {
		g.mu.Unlock()
		return errClosing
	}
	r := g.rooms[rm.ID]
	first := r == nil
	if first {
		r = newRoom(g, rm.ID)
		r.subscribed = make(chan struct{})
		g.rooms[rm.ID] = r
	}
	// The stored room is the freshest view of its limits.
	r.setLimits(rm.MaximumMessageLength, rm.MaximumMessageRatePerSecond)
	r.setHandler(rm, false)
	c.room = r
	r.join(c)
	g.readers.Add(1)
	g.mu.Unlock()

	// Subscribing can take a broker round trip (Redis), so it happens
	// outside g.mu: one slow subscription must not stall every handshake
	// and disconnect of the node. Connections that join the room meanwhile
	// wait for it, because a connection must be subscribed before its 101
	// goes out or it could miss a broadcast sent right after.
	if first {
		r.unsubscribe, r.subErr = g.broker.Subscribe(rm.ID, r.handle)
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
	return nil
}

// start attaches the upgraded socket, releases the writer and starts the
// reader.
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
	c.writing = false
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
