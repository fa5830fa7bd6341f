package messaging

import (
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ivschatd/ivschatd/internal/broker"
)

// gatedBroker is the in-process broker with a Subscribe that can be held or
// made to fail, standing in for a slow or failing Redis.
type gatedBroker struct {
	*broker.Memory
	mu   sync.Mutex
	gate map[string]chan struct{} // Subscribe(room) waits for the channel to close
	fail map[string]bool
}

func (b *gatedBroker) Subscribe(roomID string, h broker.Handler) (func(), error) {
	b.mu.Lock()
	gate, fail := b.gate[roomID], b.fail[roomID]
	b.mu.Unlock()
	if gate != nil {
		<-gate
	}
	if fail {
		return nil, errors.New("broker down")
	}
	return b.Memory.Subscribe(roomID, h)
}

func TestSlowSubscribeBlocksOnlyItsRoom(t *testing.T) {
	gb := &gatedBroker{Memory: broker.NewMemory(), gate: map[string]chan struct{}{"room1": make(chan struct{})}, fail: map[string]bool{}}
	e := newEnv(t, func(o *Options) { o.Broker = gb })

	type result struct {
		c   *client
		err error
	}
	pending := make(chan result, 2)
	for _, user := range []string{"first", "second"} {
		tok := e.token(t, "room1", user)
		go func() {
			c, _, err := e.tryDial(tok)
			pending <- result{c, err}
		}()
	}
	// While room1's subscription hangs, another room's handshake completes.
	other := e.connect(t, "room2", "elsewhere")
	defer other.close()
	select {
	case r := <-pending:
		t.Fatalf("a room1 handshake finished before its subscription: %v", r.err)
	case <-time.After(100 * time.Millisecond):
	}
	close(gb.gate["room1"])
	var clients []*client
	for range 2 {
		select {
		case r := <-pending:
			if r.err != nil {
				t.Fatalf("room1 handshake: %v", r.err)
			}
			clients = append(clients, r.c)
		case <-time.After(5 * time.Second):
			t.Fatal("room1 handshakes did not finish after the subscription")
		}
	}
	// Both joined the one subscription: a broadcast reaches both.
	clients[0].send(t, `{"Action":"SEND_MESSAGE","RequestId":"x","Content":"hi"}`)
	for _, c := range clients {
		if f := c.read(t); !strings.Contains(f, `"Content":"hi"`) {
			t.Errorf("frame %s", f)
		}
		c.close()
	}
}

func TestFailedSubscribeRefusesThenRecovers(t *testing.T) {
	gb := &gatedBroker{Memory: broker.NewMemory(), gate: map[string]chan struct{}{}, fail: map[string]bool{"room1": true}}
	e := newEnv(t, func(o *Options) { o.Broker = gb })
	if _, status, err := e.tryDial(e.token(t, "room1", "u")); err == nil || status != http.StatusInternalServerError {
		t.Fatalf("handshake with the broker down: status %d, err %v", status, err)
	}
	if s := e.g.Stats(); s.Connections != 0 || s.Rooms != 0 {
		t.Errorf("failed handshake left state behind: %+v", s)
	}
	gb.mu.Lock()
	gb.fail["room1"] = false
	gb.mu.Unlock()
	c := e.connect(t, "room1", "u")
	c.close()
}
