package messaging

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/ivschatd/ivschatd/internal/chat"
	"github.com/ivschatd/ivschatd/internal/token"
)

// memRooms is a RoomSource backed by a map.
type memRooms struct {
	mu    sync.Mutex
	rooms map[string]*chat.Room
	gets  int // GetRoom calls
}

func (m *memRooms) GetRoom(_ context.Context, id string) (*chat.Room, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.gets++
	r, ok := m.rooms[id]
	if !ok {
		return nil, chat.NotFound(chat.KindRoom, id)
	}
	cp := *r
	return &cp, nil
}

func (m *memRooms) put(r *chat.Room) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.rooms[r.ID] = r
}

// getCount is how many times GetRoom was called.
func (m *memRooms) getCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.gets
}

func (m *memRooms) del(id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.rooms, id)
}

type env struct {
	g     *Gateway
	srv   *httptest.Server
	url   string
	keys  *token.Keyring
	rooms *memRooms
}

const testAccount = "123456789012"

func roomARN(id string) string { return "arn:aws:ivschat:us-west-2:" + testAccount + ":room/" + id }

// newEnv starts a gateway behind an httptest server with rooms "room1" and
// "room2" (defaults: 500 code points, 10 messages/s).
func newEnv(t testing.TB, configure func(*Options)) *env {
	t.Helper()
	key, err := token.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	kr, err := token.NewKeyring(key)
	if err != nil {
		t.Fatal(err)
	}
	rooms := &memRooms{rooms: map[string]*chat.Room{}}
	for _, id := range []string{"room1", "room2"} {
		rooms.put(&chat.Room{ID: id, MaximumMessageLength: 500, MaximumMessageRatePerSecond: 10})
	}
	opts := Options{Tokens: kr, Rooms: rooms, CloseTimeout: 500 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)}
	if configure != nil {
		configure(&opts)
	}
	g, err := NewGateway(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(g)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		g.Shutdown(ctx)
		srv.Close()
	})
	return &env{g: g, srv: srv, url: "ws" + strings.TrimPrefix(srv.URL, "http"), keys: kr, rooms: rooms}
}

type tokenOpt func(*token.Claims)

func withCaps(caps ...string) tokenOpt { return func(c *token.Claims) { c.Capabilities = caps } }
func withAttrs(a map[string]string) tokenOpt {
	return func(c *token.Claims) { c.Attributes = a }
}
func withSession(at time.Time) tokenOpt { return func(c *token.Claims) { c.SessionExpiresAt = at } }

var allCaps = []string{chat.CapabilitySendMessage, chat.CapabilityDeleteMessage, chat.CapabilityDisconnectUser}

func (e *env) token(t testing.TB, roomID, userID string, opts ...tokenOpt) string {
	t.Helper()
	now := time.Now()
	c := token.Claims{
		ID:                     chat.NewID(),
		RoomARN:                roomARN(roomID),
		UserID:                 userID,
		Capabilities:           allCaps,
		SessionDurationMinutes: 60,
		IssuedAt:               now,
		TokenExpiresAt:         now.Add(time.Hour),
		SessionExpiresAt:       now.Add(time.Hour),
	}
	for _, o := range opts {
		o(&c)
	}
	tok, err := e.keys.Seal(c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// client is a minimal WebSocket client for tests: it reads server frames
// itself so that tests can see pings and close codes.
type client struct {
	conn net.Conn
	r    io.Reader
}

func (e *env) dial(t *testing.T, tok string) *client {
	t.Helper()
	c, status, err := e.tryDial(tok)
	if err != nil {
		t.Fatalf("dial: status %d: %v", status, err)
	}
	return c
}

func (e *env) connect(t *testing.T, roomID, userID string, opts ...tokenOpt) *client {
	t.Helper()
	return e.dial(t, e.token(t, roomID, userID, opts...))
}

// tryDial returns the client, or the HTTP status of the refused handshake.
func (e *env) tryDial(protocols ...string) (*client, int, error) {
	var status int
	d := ws.Dialer{
		Protocols:     protocols,
		Timeout:       5 * time.Second,
		OnStatusError: func(s int, _ []byte, _ io.Reader) { status = s },
	}
	if len(protocols) == 1 && protocols[0] == "" {
		d.Protocols = nil
	}
	conn, br, hs, err := d.Dial(context.Background(), e.url)
	if err != nil {
		return nil, status, err
	}
	if len(d.Protocols) > 0 && hs.Protocol == "" {
		conn.Close()
		return nil, 0, errors.New("no sub-protocol selected")
	}
	var r io.Reader = conn
	if br != nil {
		r = io.MultiReader(br, conn)
	}
	return &client{conn: conn, r: r}, 101, nil
}

func (c *client) close() { c.conn.Close() }

// next reads one frame, answering pings. It fails the test after 5s.
func (c *client) next(t *testing.T) (ws.OpCode, []byte) {
	t.Helper()
	for {
		c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		h, err := ws.ReadHeader(c.r)
		if err != nil {
			t.Fatalf("read header: %v", err)
		}
		p := make([]byte, h.Length)
		if _, err := io.ReadFull(c.r, p); err != nil {
			t.Fatalf("read payload: %v", err)
		}
		if h.Masked {
			t.Fatal("server frame is masked")
		}
		if h.OpCode == ws.OpPing {
			wsutil.WriteClientMessage(c.conn, ws.OpPong, p)
			continue
		}
		if h.OpCode == ws.OpPong {
			continue
		}
		return h.OpCode, p
	}
}

// read returns the next text frame.
func (c *client) read(t *testing.T) string {
	t.Helper()
	op, p := c.next(t)
	if op != ws.OpText {
		t.Fatalf("got opcode %v (%q), want a text frame", op, p)
	}
	return string(p)
}

// expectClose reads until a close frame and checks its code.
func (c *client) expectClose(t *testing.T, code uint16) string {
	t.Helper()
	for {
		op, p := c.next(t)
		if op == ws.OpText {
			continue
		}
		if op != ws.OpClose {
			t.Fatalf("got opcode %v, want close", op)
		}
		if len(p) < 2 {
			t.Fatalf("close frame without a code")
		}
		got := binary.BigEndian.Uint16(p)
		if got != code {
			t.Fatalf("close code %d (%q), want %d", got, p[2:], code)
		}
		// Answer like a browser, which completes the closing handshake.
		wsutil.WriteClientMessage(c.conn, ws.OpClose, p[:2])
		return string(p[2:])
	}
}

func (c *client) send(t *testing.T, s string) {
	t.Helper()
	if err := wsutil.WriteClientText(c.conn, []byte(s)); err != nil {
		t.Fatalf("send: %v", err)
	}
}

var (
	idRE       = regexp.MustCompile(`"Id":"([A-Za-z0-9]*)"`)
	sendTimeRE = regexp.MustCompile(`"SendTime":"([^"]*)"`)
)

// normalize replaces the frame's random Id and its SendTime with fixed
// placeholders after checking their format, so tests compare exact bytes.
func normalize(t *testing.T, frame string) string {
	t.Helper()
	m := idRE.FindStringSubmatch(frame)
	if m == nil || !chat.IsID(m[1]) {
		t.Fatalf("frame without a 12-character Id: %s", frame)
	}
	frame = strings.Replace(frame, m[0], `"Id":"ID"`, 1)
	if st := sendTimeRE.FindStringSubmatch(frame); st != nil {
		ts, err := time.Parse(time.RFC3339Nano, st[1])
		if err != nil || ts.Location() != time.UTC || !strings.HasSuffix(st[1], "Z") {
			t.Fatalf("SendTime %q is not RFC 3339 UTC", st[1])
		}
		if time.Since(ts) > time.Minute || time.Until(ts) > time.Second {
			t.Fatalf("SendTime %q is not now", st[1])
		}
		frame = strings.Replace(frame, st[0], `"SendTime":"T"`, 1)
	}
	if !json.Valid([]byte(frame)) {
		t.Fatalf("frame is not valid JSON: %s", frame)
	}
	return frame
}

func frameID(t *testing.T, frame string) string {
	t.Helper()
	m := idRE.FindStringSubmatch(frame)
	if m == nil {
		t.Fatalf("no Id in %s", frame)
	}
	return m[1]
}

// checkFor polls f until it returns nil or the timeout passes.
func checkFor(t testing.TB, timeout, interval time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met after %v: %v", timeout, err)
		}
		time.Sleep(interval)
	}
}

func expectFrame(t *testing.T, c *client, want string) string {
	t.Helper()
	got := c.read(t)
	if n := normalize(t, got); n != want {
		t.Fatalf("frame mismatch\n got: %s\nwant: %s", n, want)
	}
	return got
}

// rawDial completes a handshake over a plain TCP connection and returns it;
// configure may adjust the socket before connecting.
func rawDial(t testing.TB, e *env, tok string, rcvBuf int) net.Conn {
	t.Helper()
	d := net.Dialer{}
	if rcvBuf > 0 {
		d.Control = setRcvBuf(rcvBuf)
	}
	nc, err := d.Dial("tcp", e.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	req := "GET / HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" +
		"Sec-WebSocket-Protocol: " + tok + "\r\n\r\n"
	if _, err := nc.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(nc)
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("raw handshake: %v", err)
		}
		if strings.HasPrefix(line, "HTTP/1.1 ") && !strings.HasPrefix(line, "HTTP/1.1 101") {
			t.Fatalf("raw handshake refused: %s", line)
		}
		if line == "\r\n" {
			break
		}
	}
	if br.Buffered() > 0 {
		t.Fatal("unexpected data after the handshake")
	}
	nc.SetReadDeadline(time.Time{})
	t.Cleanup(func() { nc.Close() })
	return nc
}

func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }

// writeClientFrame writes one masked frame with the given opcode and FIN bit.
func writeClientFrame(t *testing.T, c *client, op ws.OpCode, fin bool, payload []byte) {
	t.Helper()
	f := ws.NewFrame(op, fin, append([]byte(nil), payload...))
	f = ws.MaskFrameInPlace(f)
	if err := ws.WriteFrame(c.conn, f); err != nil {
		t.Fatalf("write frame: %v", err)
	}
}
