package messaging

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

func TestSessionExpiry(t *testing.T) {
	e := newEnv(t, nil)
	c := e.connect(t, "room1", "u", withSession(time.Now().Add(2*time.Second)))
	defer c.close()
	// Still a working connection before the expiry.
	c.send(t, `{"Action":"SEND_MESSAGE","Content":"before"}`)
	c.read(t)
	expectFrame(t, c, `{"Type":"ERROR","Id":"ID","RequestId":"","ErrorCode":401,"ErrorMessage":"Session expired"}`)
	if reason := c.expectClose(t, 1000); reason != reasonSessionExpired {
		t.Fatalf("reason %q", reason)
	}
}

func TestRoomDeletedClosesConnections(t *testing.T) {
	e := newEnv(t, nil)
	a := e.connect(t, "room1", "a")
	b := e.connect(t, "room1", "b")
	other := e.connect(t, "room2", "c")
	defer other.close()
	e.rooms.del("room1")
	if err := e.g.RoomDeleted(t.Context(), "room1"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*client{a, b} {
		expectFrame(t, c, `{"Type":"ERROR","Id":"ID","RequestId":"","ErrorCode":404,"ErrorMessage":"Room deleted"}`)
		c.expectClose(t, 1000)
	}
	checkFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		if s := e.g.Stats(); s.Connections != 1 || s.Rooms != 1 {
			return fmt.Errorf("stats %+v", s)
		}
		return nil
	})
	other.send(t, `{"Action":"SEND_MESSAGE","Content":"alive"}`)
	if got := other.read(t); !strings.Contains(got, "alive") {
		t.Fatalf("got %s", got)
	}
}

func TestShutdownClosesWith1001(t *testing.T) {
	e := newEnv(t, nil)
	a := e.connect(t, "room1", "a")
	b := e.connect(t, "room2", "b")
	e.g.SendEvent(context.Background(), "room1", "last", nil)
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- e.g.Shutdown(ctx)
	}()
	// Frames queued before the shutdown are delivered first.
	if got := a.read(t); !strings.Contains(got, `"EventName":"last"`) {
		t.Fatalf("got %s", got)
	}
	a.expectClose(t, 1001)
	b.expectClose(t, 1001)
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	_, status, _ := e.tryDial(e.token(t, "room1", "late"))
	if status != 503 {
		t.Fatalf("handshake after shutdown: status %d, want 503", status)
	}
}

func TestShutdownForcesWhenContextEnds(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.CloseTimeout = time.Minute })
	// A client that never answers the close frame.
	nc := rawDial(t, e, e.token(t, "room1", "mute"), 0)
	_ = nc
	checkFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		if e.g.Stats().Connections != 1 {
			return fmt.Errorf("not connected")
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := e.g.Shutdown(ctx); err != context.DeadlineExceeded {
		t.Fatalf("Shutdown: %v, want deadline exceeded", err)
	}
	if n := e.g.Stats().Connections; n != 0 {
		t.Fatalf("%d connections left", n)
	}
}

func TestClientCloseHandshake(t *testing.T) {
	e := newEnv(t, nil)
	c := e.connect(t, "room1", "u")
	defer c.close()
	writeClientFrame(t, c, ws.OpClose, true, ws.NewCloseFrameBody(1000, "bye"))
	op, p := c.next(t)
	if op != ws.OpClose || len(p) < 2 || p[0] != 0x03 || p[1] != 0xe8 {
		t.Fatalf("got %v %q, want close 1000", op, p)
	}
	// The server closes the TCP connection after its reply.
	c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.conn.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("read after close: %v, want EOF", err)
	}
	checkFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		if n := e.g.Stats().Connections; n != 0 {
			return fmt.Errorf("%d connections", n)
		}
		return nil
	})
}

func TestPingPongAndIdleTimeout(t *testing.T) {
	e := newEnv(t, func(o *Options) {
		o.PingInterval = 50 * time.Millisecond
		o.IdleTimeout = time.Second
	})
	// A client's ping is answered with a pong carrying the same payload.
	c := e.connect(t, "room1", "u")
	defer c.close()
	writeClientFrame(t, c, ws.OpPing, true, []byte("hey"))
	for {
		c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		h, err := ws.ReadHeader(c.r)
		if err != nil {
			t.Fatal(err)
		}
		p := make([]byte, h.Length)
		io.ReadFull(c.r, p)
		if h.OpCode == ws.OpPong {
			if string(p) != "hey" {
				t.Fatalf("pong payload %q", p)
			}
			break
		}
		if h.OpCode != ws.OpPing {
			t.Fatalf("unexpected opcode %v", h.OpCode)
		}
	}
	// The server pings; a client that never answers is dropped.
	mute := rawDial(t, e, e.token(t, "room1", "mute"), 0)
	mute.SetReadDeadline(time.Now().Add(5 * time.Second))
	h, err := ws.ReadHeader(mute)
	if err != nil || h.OpCode != ws.OpPing {
		t.Fatalf("first frame %v %v, want a ping; stats %+v", h.OpCode, err, e.g.Stats())
	}
	// Read (without answering) until the server closes the socket.
	if _, err := io.Copy(io.Discard, mute); err != nil {
		t.Fatalf("mute client: %v, want EOF", err)
	}
	if n := e.g.Stats().IdleDisconnects; n < 1 {
		t.Fatalf("%d idle disconnects", n)
	}
}

func TestFragmentedRequest(t *testing.T) {
	e := newEnv(t, nil)
	c := e.connect(t, "room1", "u")
	defer c.close()
	writeClientFrame(t, c, ws.OpText, false, []byte(`{"Action":"SEND_`))
	writeClientFrame(t, c, ws.OpPing, true, nil) // control frames may interleave
	writeClientFrame(t, c, ws.OpContinuation, true, []byte(`MESSAGE","Content":"joined"}`))
	if got := c.read(t); !strings.Contains(got, `"Content":"joined"`) {
		t.Fatalf("got %s", got)
	}
}

func TestProtocolViolations(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.MaxFrameSize = 1024 })
	t.Run("unmasked", func(t *testing.T) {
		c := e.connect(t, "room1", "u")
		defer c.close()
		if err := wsutil.WriteServerText(c.conn, []byte(`{}`)); err != nil { // server frames are unmasked
			t.Fatal(err)
		}
		c.expectClose(t, 1002)
	})
	t.Run("too big", func(t *testing.T) {
		c := e.connect(t, "room1", "u")
		defer c.close()
		c.send(t, `{"Action":"SEND_MESSAGE","Content":"`+strings.Repeat("x", 2000)+`"}`)
		c.expectClose(t, 1009)
	})
	t.Run("continuation without start", func(t *testing.T) {
		c := e.connect(t, "room1", "u")
		defer c.close()
		writeClientFrame(t, c, ws.OpContinuation, true, []byte(`x`))
		c.expectClose(t, 1002)
	})
}

// TestSlowConsumer: a client that completes the handshake and never reads
// is disconnected once more than MaxPendingBytes of what was offered to it
// a grace ago is not taken — after the grace, and long before its blocked
// write would time out — while the other viewers get every frame in order.
func TestSlowConsumer(t *testing.T) {
	e := newEnv(t, func(o *Options) {
		o.MaxPendingBytes = 16 << 10
		o.SocketSendBuffer = 4096
		o.WriteCoalesce = -1
	})
	rawDial(t, e, e.token(t, "room1", "stuck"), 4096)

	viewers := make([]*client, 3)
	for i := range viewers {
		viewers[i] = e.connect(t, "room1", fmt.Sprintf("v%d", i), withCaps())
		defer viewers[i].close()
	}
	// Each viewer reports every frame it read in order; the publisher waits
	// for all of them before the next broadcast, so the healthy viewers are
	// never behind while the stuck one falls further back each round.
	progress := make(chan error, len(viewers))
	done := make(chan struct{})
	defer close(done)
	for _, v := range viewers {
		go func() {
			for i := 0; ; i++ {
				v.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
				p, err := wsutil.ReadServerText(v.conn)
				if err == nil && !strings.Contains(string(p), fmt.Sprintf(`"seq":"%06d"`, i)) {
					err = fmt.Errorf("frame %d out of order: %.80s", i, p)
				}
				select {
				case progress <- err:
				case <-done:
					return
				}
				if err != nil {
					return
				}
			}
		}()
	}
	pad := strings.Repeat("p", 900)
	began := time.Now()
	for i := 0; e.g.Stats().SlowConsumerDisconnects == 0; i++ {
		if since := time.Since(began); since > e.g.opts.WriteTimeout/2 {
			t.Fatalf("the stuck client was still connected after %v (%d frames)", since, i)
		}
		_, err := e.g.SendEvent(context.Background(), "room1", "tick", map[string]string{"seq": fmt.Sprintf("%06d", i), "pad": pad})
		if err != nil {
			t.Fatal(err)
		}
		for range viewers {
			select {
			case err := <-progress:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("viewers stalled at frame %d", i)
			}
		}
	}
	if took, grace := time.Since(began), e.g.opts.slowConsumerGrace(); took < grace {
		t.Fatalf("the stuck client was dropped %v after the first frame, within the %v grace", took, grace)
	}
	checkFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		s := e.g.Stats()
		if s.SlowConsumerDisconnects != 1 || s.Connections != int64(len(viewers)) {
			return fmt.Errorf("stats %+v", s)
		}
		return nil
	})
}
