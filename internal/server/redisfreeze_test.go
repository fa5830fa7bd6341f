package server

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/ivschatd/ivschatd/internal/faultproxy"
)

// frozenRedisErrorWithin is the longest a sender may wait for its ERROR 500
// while Redis is black-holed: the bound documented in internal/redisconn
// (one command at most about 2 s), with slack for a loaded CI machine.
const frozenRedisErrorWithin = 5 * time.Second

// TestFaultRedisFrozenSender black-holes Redis (no FIN, no RST: a dead
// route) under two nodes. A sender's SEND_MESSAGE is answered with ERROR 500
// within the bound, not after go-redis's retries of its default timeouts;
// its connection, and the viewer's on the other node, stay open; the
// sender's connection is not stuck (a second message is answered as fast);
// and once Redis answers again, messages flow between the nodes.
func TestFaultRedisFrozenSender(t *testing.T) {
	settings := newClusterSettings(t)
	redisURL, _ := startRedis(t)
	proxy, viaProxy := faultproxy.InFront(t, redisURL)

	a := startServer(t, "", settings.node(viaProxy))
	b := startServer(t, "", settings.node(viaProxy))
	room := createRoom(t, a.client(), "frozen-redis")
	sender := watch(t, dialChat(t, a.URL, chatToken(t, a.client(), *room.Arn, "sender", "SEND_MESSAGE")))
	viewer := watch(t, dialChat(t, b.URL, chatToken(t, b.client(), *room.Arn, "viewer")))
	// One message, answered on both nodes, so that no request of the
	// sender's is still in flight when Redis freezes (deliver may leave
	// one).
	content, err := sender.send("before")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []*frameStream{sender, viewer} {
		if err := awaitMessage(f, content, 5*time.Second); err != nil {
			t.Fatalf("before the fault: %v", err)
		}
	}

	proxy.Freeze()
	healed := false
	defer func() {
		if !healed {
			proxy.Heal()
		}
	}()
	for i := range 2 {
		start := time.Now()
		code := sendAndAwaitError(t, sender, 30*time.Second)
		took := time.Since(start)
		t.Logf("SEND_MESSAGE %d with Redis frozen: ERROR %d after %v", i+1, code, took.Round(time.Millisecond))
		if code != 500 {
			t.Fatalf("SEND_MESSAGE %d with Redis frozen: ERROR %d, want 500", i+1, code)
		}
		if took > frozenRedisErrorWithin {
			t.Errorf("SEND_MESSAGE %d with Redis frozen: ERROR 500 after %v, want within %v", i+1, took, frozenRedisErrorWithin)
		}
	}
	if sender.isClosed() || viewer.isClosed() {
		t.Fatalf("connections closed while Redis was frozen (sender %v, viewer %v)", sender.isClosed(), viewer.isClosed())
	}

	proxy.Heal()
	healed = true
	healedAt := time.Now()
	took, err := deliver(sender, 30*time.Second, viewer)
	if err != nil {
		t.Fatalf("after the heal: %v", err)
	}
	t.Logf("RECOVERY frozen Redis: the viewer on the other node got a new message %v after the heal (round trip %v)", time.Since(healedAt).Round(time.Millisecond), took.Round(time.Millisecond))
}

// awaitMessage waits for the MESSAGE with content on f, skipping other
// frames.
func awaitMessage(f *frameStream, content string, within time.Duration) error {
	deadline := time.After(within)
	for {
		select {
		case raw := <-f.frames:
			var m chatFrame
			if json.Unmarshal(raw, &m) == nil && m.Type == "MESSAGE" && m.Content == content {
				return nil
			}
		case <-f.closed:
			return fmt.Errorf("connection closed while waiting for %q", content)
		case <-deadline:
			return fmt.Errorf("no MESSAGE %q within %v", content, within)
		}
	}
}
