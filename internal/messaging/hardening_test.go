package messaging

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/ivschatd/ivschatd/internal/broker"
	"github.com/ivschatd/ivschatd/internal/chat"
	"github.com/ivschatd/ivschatd/internal/token"
)

// gatedRooms is a RoomSource whose next GetRoom, once armed, takes its view
// of the room and then waits for release: the test can change the room (or
// delete it) between a handshake's read and the rest of the handshake.
type gatedRooms struct {
	*memRooms
	mu      sync.Mutex
	armed   bool
	reached chan struct{} // closed when the armed call has read the room
	release chan struct{}
}

func (g *gatedRooms) arm() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.armed = true
	g.reached = make(chan struct{})
	g.release = make(chan struct{})
}

func (g *gatedRooms) GetRoom(ctx context.Context, id string) (*chat.Room, error) {
	r, err := g.memRooms.GetRoom(ctx, id)
	g.mu.Lock()
	armed, reached, release := g.armed, g.reached, g.release
	g.armed = false
	g.mu.Unlock()
	if armed {
		close(reached)
		<-release
	}
	return r, err
}

func newGatedEnv(t *testing.T, configure func(*Options)) (*env, *gatedRooms) {
	t.Helper()
	var gated *gatedRooms
	e := newEnv(t, func(o *Options) {
		gated = &gatedRooms{memRooms: o.Rooms.(*memRooms)}
		o.Rooms = gated
		if configure != nil {
			configure(o)
		}
	})
	return e, gated
}

// dialAsync starts a handshake and returns a channel with its outcome.
func (e *env) dialAsync(tok string) <-chan dialResult {
	out := make(chan dialResult, 1)
	go func() {
		c, status, err := e.tryDial(tok)
		out <- dialResult{c, status, err}
	}()
	return out
}

type dialResult struct {
	c      *client
	status int
	err    error
}

// A connection judged a slow consumer while its handshake is still being
// written must not get a writer before it has a socket (the process used to
// die of a nil dereference); it is closed with 1008 right after the 101.
func TestSlowConsumerDuringHandshake(t *testing.T) {
	e := newEnv(t, nil)
	claims := token.Claims{ID: "pending", RoomARN: roomARN("room1"), UserID: "u"}
	c := newConn(e.g, &claims)
	rm, _ := e.rooms.GetRoom(t.Context(), "room1")
	if err := e.g.register(t.Context(), c, rm, claims.RoomARN); err != nil {
		t.Fatal(err)
	}
	// As ServeHTTP holds a slot for a registered connection.
	e.g.quota.Acquire(t.Context())
	e.g.active.Add(1)
	c.slowConsumer()
	c.enqueue(pingFrame)
	e.g.SendEvent(t.Context(), "room1", "while-handshaking", nil)
	time.Sleep(50 * time.Millisecond) // a writer started by mistake would have crashed by now

	server, client := net.Pipe()
	defer client.Close()
	c.start(server, nil, time.Time{})
	client.SetReadDeadline(time.Now().Add(5 * time.Second))
	h, err := ws.ReadHeader(client)
	if err != nil {
		t.Fatal(err)
	}
	p := make([]byte, h.Length)
	if _, err := io.ReadFull(client, p); err != nil {
		t.Fatal(err)
	}
	if h.OpCode != ws.OpClose || binary.BigEndian.Uint16(p) != 1008 {
		t.Fatalf("first frame after the handshake: opcode %v %q, want close 1008", h.OpCode, p)
	}
}

// A handshake that read the room before an UpdateRoom must not put the old
// limits back when it registers after it.
func TestStaleHandshakeDoesNotUndoRoomUpdate(t *testing.T) {
	e, gated := newGatedEnv(t, nil)
	first := e.connect(t, "room1", "first") // the room is live on this node
	defer first.close()
	old, _ := e.rooms.GetRoom(t.Context(), "room1")

	gated.arm()
	late := e.dialAsync(e.token(t, "room1", "late"))
	<-gated.reached // the handshake holds its view of the room: 500 code points
	updated := *old
	updated.MaximumMessageLength = 5
	updated.UpdateTime = time.Now()
	e.rooms.put(&updated)
	if err := e.g.RoomUpdated(t.Context(), &updated); err != nil {
		t.Fatal(err)
	}
	close(gated.release)
	res := <-late
	if res.err != nil {
		t.Fatalf("late handshake: %v", res.err)
	}
	defer res.c.close()
	first.send(t, `{"Action":"SEND_MESSAGE","RequestId":"r","Content":"123456"}`)
	expectFrame(t, first, `{"Type":"ERROR","Id":"ID","RequestId":"r","ErrorCode":400,"ErrorMessage":"Content must be at most 5 characters, got 6"}`)
}

// Room updates apply in the order of the rooms' UpdateTime, not in the order
// they arrive: a delayed older update is ignored.
func TestRoomUpdatesOrderedByUpdateTime(t *testing.T) {
	e := newEnv(t, nil)
	c := e.connect(t, "room1", "u")
	defer c.close()
	now := time.Now()
	newer := broker.Message{Kind: broker.KindRoomUpdated, MaxMessageLength: 5, MaxMessageRate: 10, UpdateTime: now.Add(2 * time.Second)}
	older := broker.Message{Kind: broker.KindRoomUpdated, MaxMessageLength: 300, MaxMessageRate: 10, UpdateTime: now.Add(time.Second)}
	for _, m := range []broker.Message{newer, older} {
		if err := e.g.broker.Publish(t.Context(), "room1", m); err != nil {
			t.Fatal(err)
		}
	}
	c.send(t, `{"Action":"SEND_MESSAGE","RequestId":"r","Content":"123456"}`)
	expectFrame(t, c, `{"Type":"ERROR","Id":"ID","RequestId":"r","ErrorCode":400,"ErrorMessage":"Content must be at most 5 characters, got 6"}`)
}

// DeleteRoom racing a handshake: the handshake read the room before the
// deletion and completes after it. It must be refused (or closed at once),
// whether or not the room already had connections on this node.
func TestDeleteRoomRacingHandshake(t *testing.T) {
	for _, tc := range []struct {
		name       string
		subscribed bool
	}{{"room live on the node", true}, {"first connection of the room", false}} {
		t.Run(tc.name, func(t *testing.T) {
			e, gated := newGatedEnv(t, nil)
			if tc.subscribed {
				other := e.connect(t, "room1", "other")
				defer other.close()
			}
			gated.arm()
			late := e.dialAsync(e.token(t, "room1", "late"))
			<-gated.reached
			// As DeleteRoom does: the store first, then the gateway.
			e.rooms.del("room1")
			if err := e.g.RoomDeleted(t.Context(), "room1"); err != nil {
				t.Fatal(err)
			}
			close(gated.release)
			res := <-late
			if res.err == nil {
				defer res.c.close()
				// Accepted before the deletion reached it: it must be told
				// at once, not chat on.
				expectFrame(t, res.c, `{"Type":"ERROR","Id":"ID","RequestId":"","ErrorCode":404,"ErrorMessage":"Room deleted"}`)
				res.c.expectClose(t, 1000)
				return
			}
			if res.status != 404 {
				t.Fatalf("late handshake: status %d, %v; want 404", res.status, res.err)
			}
			if got := e.g.Stats().RejectedByReason["room_not_found"]; got != 1 {
				t.Fatalf("room_not_found refusals = %d, want 1", got)
			}
		})
	}
}

// After the server decided to close a connection, nothing the client sends
// is acted on: a kicked user's messages do not reach the room.
func TestNothingActedOnAfterServerClose(t *testing.T) {
	e := newEnv(t, nil)
	viewer := e.connect(t, "room1", "viewer", withCaps())
	defer viewer.close()
	bot := e.connect(t, "room1", "bot")
	defer bot.close()
	if err := e.g.DisconnectUser(t.Context(), "room1", "bot", "spam"); err != nil {
		t.Fatal(err)
	}
	if got := viewer.read(t); !strings.Contains(got, `"EventName":"aws:DISCONNECT_USER"`) {
		t.Fatalf("viewer got %s", got)
	}
	// The bot saw its close frame and ignores it, posting on.
	bot.read(t)
	bot.expectCloseNoReply(t, 1000)
	for i := range 3 {
		bot.send(t, fmt.Sprintf(`{"Action":"SEND_MESSAGE","Content":"after kick %d"}`, i))
		bot.send(t, `{"Action":"DISCONNECT_USER","UserId":"viewer"}`)
	}
	// Give the server time to act on them if it would (well within the
	// 500 ms it waits for the bot's close frame), then publish a marker:
	// whatever the bot got broadcast would arrive ahead of it.
	time.Sleep(100 * time.Millisecond)
	e.g.SendEvent(t.Context(), "room1", "marker", nil)
	if got := viewer.read(t); !strings.Contains(got, `"EventName":"marker"`) {
		t.Fatalf("viewer got %s after the bot was disconnected, want only the marker", got)
	}
	if s := e.g.Stats(); s.Published != 2 { // aws:DISCONNECT_USER and the marker
		t.Fatalf("%d frames published, want 2: the bot's requests were acted on", s.Published)
	}
}

// expectCloseNoReply reads up to the close frame without answering it, as a
// misbehaving client would.
func (c *client) expectCloseNoReply(t *testing.T, code uint16) {
	t.Helper()
	op, p := c.next(t)
	if op != ws.OpClose || len(p) < 2 || binary.BigEndian.Uint16(p) != code {
		t.Fatalf("got opcode %v %q, want close %d", op, p, code)
	}
}

// failingRecorder is a chat log whose disk fails: Record reports that the
// frame was not recorded, as chatlog.Pipeline does on an I/O error.
type failingRecorder struct{}

func (failingRecorder) Record(context.Context, string, string, []byte, time.Time) error {
	return errors.New("chatlog: write spool segment: input/output error")
}

// A message or event the chat log cannot record is not delivered: the
// sender gets ERROR 500, nobody sees it, and it is counted. Moderation goes
// out regardless.
func TestRecordFailureRefusesFrame(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Recorder = failingRecorder{} })
	viewer := e.connect(t, "room1", "viewer", withCaps())
	defer viewer.close()
	sender := e.connect(t, "room1", "sender")
	defer sender.close()
	sender.send(t, `{"Action":"SEND_MESSAGE","RequestId":"r","Content":"lost?"}`)
	expectFrame(t, sender, `{"Type":"ERROR","Id":"ID","RequestId":"r","ErrorCode":500,"ErrorMessage":"Internal error: the room's chat log could not record the request, so it was not delivered"}`)
	if _, err := e.g.SendEvent(t.Context(), "room1", "ev", nil); err == nil {
		t.Fatal("SendEvent succeeded although the chat log failed")
	}
	if s := e.g.Stats(); s.RecordFailures != 2 || s.Published != 0 {
		t.Fatalf("stats: %d record failures, %d published; want 2, 0", s.RecordFailures, s.Published)
	}
	// Moderation still works, unrecorded: the viewer's first frame is the
	// aws:DELETE_MESSAGE, nothing of the refused ones came before it.
	if _, err := e.g.DeleteMessage(t.Context(), "room1", "abcdefABCDEF", "abuse"); err != nil {
		t.Fatalf("DeleteMessage while the chat log fails: %v", err)
	}
	if got := viewer.read(t); !strings.Contains(got, `"EventName":"aws:DELETE_MESSAGE"`) {
		t.Fatalf("viewer got %s, want the aws:DELETE_MESSAGE event", got)
	}
	if s := e.g.Stats(); s.RecordFailures != 3 {
		t.Fatalf("%d record failures, want 3", s.RecordFailures)
	}
}

// A burst of broadcasts far beyond what one coalescing window used to allow
// reaches a viewer that reads, while one that never reads is dropped with
// bounded memory.
func TestBurstReachesReadingViewer(t *testing.T) {
	e := newEnv(t, func(o *Options) {
		o.WriteCoalesce = 200 * time.Millisecond // every event of the burst lands in one window
		o.fixedFlushGap = true                   // even though flushing this small room is cheap
		o.MaxPendingBytes = 256 << 10            // the reader may be starved of CPU for a while on a busy machine
		o.SocketSendBuffer = 4096                // the stuck client's socket fills at once
	})
	stuck := rawDial(t, e, e.token(t, "room1", "stuck"), 4096)
	defer stuck.Close()
	viewer := e.connect(t, "room1", "viewer", withCaps())
	defer viewer.close()
	// One broadcast starts the clock of the coalescing window.
	e.g.SendEvent(t.Context(), "room1", "start", nil)
	viewer.read(t)

	const n = 1000
	pad := strings.Repeat("p", 500) // 1,000 events of ~560 bytes: twice the budget
	received := make(chan error, 1)
	go func() {
		for i := range n {
			viewer.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			p, err := wsutil.ReadServerText(struct {
				io.Reader
				io.Writer
			}{viewer.r, viewer.conn})
			if err == nil && !strings.Contains(string(p), `"EventName":"burst"`) {
				err = fmt.Errorf("frame %d: %.100s", i, p)
			}
			if err != nil {
				received <- err
				return
			}
		}
		received <- nil
	}()
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if _, err := e.g.SendEvent(context.Background(), "room1", "burst", map[string]string{"seq": fmt.Sprint(i), "pad": pad}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	sent := time.Now()
	if err := <-received; err != nil {
		t.Fatalf("the reading viewer did not get all %d events: %v", n, err)
	}
	// The first flush a grace after the burst's finds the stuck client
	// still holding what the burst's flush offered it (a room with no more
	// traffic drops it when its blocked write passes WriteTimeout instead).
	// The viewer is still served.
	for e.g.Stats().SlowConsumerDisconnects == 0 {
		if since := time.Since(sent); since > 5*time.Second {
			t.Fatalf("the stuck client was still connected %v after the burst", since)
		}
		e.g.SendEvent(t.Context(), "room1", "after", nil)
		if got := viewer.read(t); !strings.Contains(got, `"EventName":"after"`) {
			t.Fatalf("got %s", got)
		}
		time.Sleep(20 * time.Millisecond)
	}
	checkFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		if s := e.g.Stats(); s.SlowConsumerDisconnects != 1 || s.Connections != 1 {
			return fmt.Errorf("%d slow-consumer disconnects, %d connections; want 1, 1 (the stuck one dropped)", s.SlowConsumerDisconnects, s.Connections)
		}
		return nil
	})
}

// The ring keeps what connections still need and lets go of the rest: after
// a burst has been written, the frames are released, also when the room goes
// quiet while a viewer is still catching up (its small socket buffer makes
// the flushes leave the rest of the burst to its writer).
func TestRingReleasesWrittenFrames(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.WriteCoalesce = -1; o.SocketSendBuffer = 4096 })
	viewer := e.connect(t, "room1", "viewer", withCaps())
	defer viewer.close()
	for range 500 {
		e.g.SendEvent(t.Context(), "room1", "x", nil)
	}
	for range 500 {
		viewer.read(t)
	}
	e.g.mu.Lock()
	r := e.g.rooms["room1"]
	e.g.mu.Unlock()
	checkFor(t, 5*time.Second, 5*time.Millisecond, func() error {
		r.mu.Lock()
		head, tail := r.head.Load(), r.tail
		r.mu.Unlock()
		if head != 500 || tail != head {
			return fmt.Errorf("head %d tail %d", head, tail)
		}
		return nil
	})
	held := 0
	rg := r.ring.Load()
	for i := range rg.slots {
		if rg.slots[i].Load() != nil {
			held++
		}
	}
	if held != 0 {
		t.Fatalf("the ring still holds %d frames every connection has written", held)
	}
}

// A burst written partly by the flush and partly by the connection's own
// writer (its socket buffer is small) is counted in full in
// FramesDelivered, and in the IVS-named deliveries.
func TestPartialWritesCountEveryFrame(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.WriteCoalesce = -1; o.SocketSendBuffer = 4096; o.MaxPendingBytes = 16 << 20 })
	viewer := e.connect(t, "room1", "viewer", withCaps())
	defer viewer.close()
	before := e.g.Stats().FramesDelivered
	// More than the client's receive buffer holds, so that writes are cut
	// short while it does not read yet.
	const n = 2000
	for range n {
		if _, err := e.g.SendEvent(t.Context(), "room1", "x", map[string]string{"pad": strings.Repeat("p", 900)}); err != nil {
			t.Fatal(err)
		}
	}
	for range n {
		viewer.read(t)
	}
	checkFor(t, 5*time.Second, 5*time.Millisecond, func() error {
		if got := e.g.Stats().FramesDelivered - before; got != n {
			return fmt.Errorf("FramesDelivered grew by %d, want %d", got, n)
		}
		return nil
	})
}
