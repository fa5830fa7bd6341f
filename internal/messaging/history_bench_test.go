package messaging

import (
	"bufio"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/ivschatd/ivschatd/internal/chat"
)

// BenchmarkRoomPublishHistory is what a broadcast costs the room under
// room.mu (room.publish: ring, counters, history) for a room without
// history and one that keeps its recent messages: the history's share is
// one atomic load without it, and an entry stored in a fixed ring (no
// allocation) with it. No connection is in the room, so the flush it
// schedules has nothing to write.
func BenchmarkRoomPublishHistory(b *testing.B) {
	for _, n := range []int{0, 50} {
		b.Run("history="+strconv.Itoa(n), func(b *testing.B) {
			e := newEnv(b, nil)
			r := newRoom(e.g, "bench", roomARN("bench"))
			r.hist.n.Store(int32(n))
			frames := make([][]byte, 1024)
			for i := range frames {
				frames[i] = encodeMessage(chat.NewID(), "", nil, "benchmark message "+strconv.Itoa(i), time.Now(), encodeSender("u", nil))
			}
			b.ReportAllocs()
			b.ResetTimer()
			i := 0
			for b.Loop() {
				r.publish(frames[i&1023])
				i++
			}
			b.StopTimer()
			r.mu.Lock()
			r.closed = true
			if r.flushTimer != nil {
				r.flushTimer.Stop()
			}
			r.mu.Unlock()
		})
	}
}

// BenchmarkHandshakeReplay is a whole handshake over loopback, as
// BenchmarkHandshakeLedger measures it, until the client has read the
// room's recent messages: none (no history), or 50 messages of about 250
// bytes. Run it with a fixed count (-benchtime 2000x): each handshake
// leaves a client port in TIME_WAIT.
func BenchmarkHandshakeReplay(b *testing.B) {
	for _, n := range []int{0, 50} {
		b.Run("replay="+strconv.Itoa(n), func(b *testing.B) {
			e := newEnv(b, func(o *Options) { o.MaxConnections, o.RequestRatePerSecond = 1<<20, 1<<20 })
			tags := map[string]string{}
			if n > 0 {
				tags[HistoryTag] = strconv.Itoa(n)
			}
			e.rooms.put(&chat.Room{ID: "room1", MaximumMessageLength: 500, MaximumMessageRatePerSecond: 1000, Tags: tags})
			// A connection that stays keeps the room (and its history) alive.
			keeper := rawDial(b, e, e.token(b, "room1", "keeper"), 0)
			for i := range n {
				content := "a message of the room's recent history, number " + strconv.Itoa(i) + strings.Repeat(".", 60)
				if err := wsutil.WriteClientText(keeper, []byte(`{"Action":"SEND_MESSAGE","Content":"`+content+`"}`)); err != nil {
					b.Fatal(err)
				}
				if _, err := wsutil.ReadServerText(keeper); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			for b.Loop() {
				dialReadReplay(b, e, e.token(b, "room1", "viewer"), n)
			}
		})
	}
}

// dialReadReplay completes a handshake and reads n text frames.
func dialReadReplay(b *testing.B, e *env, tok string, n int) {
	nc, err := net.Dial("tcp", e.srv.Listener.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	req := "GET / HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" +
		"Sec-WebSocket-Protocol: " + tok + "\r\n\r\n"
	if _, err := nc.Write([]byte(req)); err != nil {
		b.Fatal(err)
	}
	br := bufio.NewReader(nc)
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			b.Fatalf("handshake: %v", err)
		}
		if strings.HasPrefix(line, "HTTP/1.1 ") && !strings.HasPrefix(line, "HTTP/1.1 101") {
			b.Fatalf("handshake refused: %s", line)
		}
		if line == "\r\n" {
			break
		}
	}
	for range n {
		h, err := ws.ReadHeader(br)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := br.Discard(int(h.Length)); err != nil {
			b.Fatal(err)
		}
	}
}
