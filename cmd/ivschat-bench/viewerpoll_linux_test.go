package main

import (
	"bufio"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"
)

// TestViewerPollerOverTCP hands a real socket to the poller with a frame and
// a half already read by the handshake's reader, as happens when the server
// writes right behind its 101: the poller must handle the buffered frame,
// complete the split one from the socket, answer a ping and end on the
// server's close, recording it as a slow-consumer disconnect.
func TestViewerPollerOverTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server := <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}
	defer server.Close()

	b := &msgBench{
		cfg:          &messagingConfig{viewers: 1},
		track:        newTracker(1, 1, 1),
		state:        make([]atomic.Uint32, 1),
		other:        make([]uint64, 1),
		closeReasons: map[string]int{},
	}
	p, err := newViewerPoller(b)
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()

	early := serverFrames(t, ws.NewTextFrame([]byte("one")), ws.NewTextFrame([]byte("two")))
	split := len(early) - 2
	if _, err := server.Write(early[:split]); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReaderSize(nc, readBufSize)
	for br.Buffered() < split {
		if _, err := br.Peek(br.Buffered() + 1); err != nil {
			t.Fatal(err)
		}
	}
	b.state[0].Store(stateOpen)
	p.add(0, newStampConn(nc), br)

	rest := append(early[split:], serverFrames(t,
		ws.NewPingFrame([]byte("hi")),
		ws.NewCloseFrame(ws.NewCloseFrameBody(ws.StatusPolicyViolation, "slow consumer")))...)
	if _, err := server.Write(rest); err != nil {
		t.Fatal(err)
	}
	server.SetReadDeadline(time.Now().Add(10 * time.Second))
	var replies []ws.Frame
	for len(replies) < 2 {
		f, err := readTestFrame(server)
		if err != nil {
			t.Fatalf("after %d replies: %v", len(replies), err)
		}
		replies = append(replies, ws.UnmaskFrameInPlace(f))
	}
	if replies[0].Header.OpCode != ws.OpPong || string(replies[0].Payload) != "hi" || replies[1].Header.OpCode != ws.OpClose {
		t.Fatalf("replies %+v", replies)
	}
	// The viewer's socket is closed after the close echo.
	if _, err := server.Read(make([]byte, 1)); err == nil {
		t.Error("the viewer's socket is still open after the close")
	}
	p.close()
	if b.other[0] != 2 {
		t.Errorf("%d text frames handled, want 2", b.other[0])
	}
	if b.slow != 1 || b.closeReasons["1008 slow consumer"] != 1 || b.state[0].Load() != stateClosed {
		t.Errorf("slow %d, close reasons %v, state %d", b.slow, b.closeReasons, b.state[0].Load())
	}
}
