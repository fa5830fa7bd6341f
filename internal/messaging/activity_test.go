package messaging

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/ivschatd/ivschatd/internal/chat"
)

// TestRoomFigures counts what a room's figures say through real
// connections: connections, distinct users, messages sent over WebSocket,
// an event sent through the control plane, and ERROR frames by code.
func TestRoomFigures(t *testing.T) {
	e := newEnv(t, nil)
	alice := e.connect(t, "room1", "alice", withAttrs(map[string]string{"displayName": "Alice"}))
	defer alice.close()
	alice2 := e.connect(t, "room1", "alice", withCaps())
	defer alice2.close()
	bob := e.connect(t, "room1", "bob", withCaps(chat.CapabilitySendMessage))
	defer bob.close()

	for i := range 3 {
		alice.send(t, fmt.Sprintf(`{"Action":"SEND_MESSAGE","RequestId":"m%d","Content":"hi"}`, i))
		alice.read(t)
	}
	if _, err := e.g.SendEvent(context.Background(), "room1", "app:poll", nil); err != nil {
		t.Fatal(err)
	}
	alice.read(t)
	// Two refusals: 403 (no capability) and 400 (no content).
	alice2.send(t, `{"Action":"SEND_MESSAGE","RequestId":"x","Content":"hi"}`)
	bob.send(t, `{"Action":"SEND_MESSAGE","RequestId":"y"}`)

	var f RoomFigures
	// The rates count complete seconds: wait for the second to end.
	checkFor(t, 5*time.Second, 50*time.Millisecond, func() error {
		f = e.g.RoomFigures("room1")
		if f.Messages != 3 || f.Events != 1 || f.Errors[403] != 1 || f.Errors[400] != 1 {
			return fmt.Errorf("figures %+v", f)
		}
		return nil
	})
	if f.Connections != 3 || !slices.Equal(f.Users, []string{"alice", "bob"}) {
		t.Errorf("connections %d users %v, want 3 and [alice bob]", f.Connections, f.Users)
	}
	if len(f.Errors) != 2 {
		t.Errorf("errors %v, want only 400 and 403", f.Errors)
	}

	conns := e.g.RoomConnections("room1")
	if len(conns) != 3 {
		t.Fatalf("RoomConnections: %d, want 3", len(conns))
	}
	slices.SortFunc(conns, func(a, b ConnectionInfo) int { return int(a.ID) - int(b.ID) })
	if c := conns[0]; c.UserID != "alice" || c.Attributes["displayName"] != "Alice" || len(c.Capabilities) != 3 || time.Since(c.ConnectedAt) > time.Minute {
		t.Errorf("first connection %+v", c)
	}
	if c := conns[2]; c.UserID != "bob" || !slices.Equal(c.Capabilities, []string{chat.CapabilitySendMessage}) {
		t.Errorf("bob's connection %+v", c)
	}
	if conns[0].ID == conns[1].ID {
		t.Error("connection IDs repeat")
	}

	n := e.g.NodeFigures()
	if n.Connections != 3 || n.Rooms != 1 || n.MessagesPerSecond != 0.3 || n.EventsPerSecond != 0.1 {
		t.Errorf("node figures %+v", n)
	}
	if got := e.g.RoomFigures("room2"); got.Connections != 0 || got.Users != nil || got.Messages != 0 {
		t.Errorf("an idle room has figures %+v", got)
	}
}

// TestRoomActivityOfRoomWithoutConnections: a control-plane publish into a
// room without connections here is counted, and the activity goes away
// once idle, while a room with connections keeps its activity.
func TestRoomActivityOfRoomWithoutConnections(t *testing.T) {
	e := newEnv(t, nil)
	c := e.connect(t, "room1", "viewer")
	defer c.close()
	if _, err := e.g.SendEvent(context.Background(), "room2", "app:x", nil); err != nil {
		t.Fatal(err)
	}
	e.g.actMu.Lock()
	n := len(e.g.activity)
	e.g.actMu.Unlock()
	if n != 2 {
		t.Fatalf("%d activities, want room1's and room2's", n)
	}
	e.g.sweepActivity(time.Now())
	e.g.actMu.Lock()
	n = len(e.g.activity)
	e.g.actMu.Unlock()
	if n != 2 {
		t.Fatalf("a fresh activity was swept: %d left", n)
	}
	e.g.sweepActivity(time.Now().Add(activityIdle + 2*time.Second))
	e.g.actMu.Lock()
	_, kept := e.g.activity["room1"]
	_, idle := e.g.activity["room2"]
	e.g.actMu.Unlock()
	if !kept || idle {
		t.Fatalf("after the idle time: room1 kept %v (want true), room2 kept %v (want false)", kept, idle)
	}
	// Once its last connection left, room1's activity is swept too.
	c.close()
	checkFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		if e.g.NodeFigures().Rooms != 0 {
			return fmt.Errorf("room still open")
		}
		return nil
	})
	e.g.sweepActivity(time.Now().Add(activityIdle + 2*time.Second))
	e.g.actMu.Lock()
	n = len(e.g.activity)
	e.g.actMu.Unlock()
	if n != 0 {
		t.Fatalf("%d activities left after every room went idle", n)
	}
}

func TestDeliverySamples(t *testing.T) {
	var s deliverySamples
	if s.deliveriesPerSecond() != 0 {
		t.Fatal("no samples must read 0")
	}
	t0 := time.Unix(1_700_000_000, 0)
	for i := range 30 {
		s.add(t0.Add(time.Duration(i)*time.Second), uint64(i*100))
	}
	if got := s.deliveriesPerSecond(); got != 100 {
		t.Fatalf("rate %v, want 100", got)
	}
}

// BenchmarkCountPublished is what the activity count adds to the publish
// path of a connection's message (the room struct is known).
func BenchmarkCountPublished(b *testing.B) {
	g := &Gateway{activity: map[string]*roomActivity{}}
	r := &room{id: "room1", g: g, act: g.acquireActivity("room1")}
	frame := encodeMessage("WhO6MW6iRdS5", "req", nil, "hello", time.Now(), encodeSender("u", nil))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			g.countPublished(r, "room1", frame)
		}
	})
}
