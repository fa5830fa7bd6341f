package clusterstats

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// fakeSource honours Source's contract: figures of the node, connections
// in any order, Node left for the gatherer to set.
type fakeSource struct {
	room   RoomNode
	conns  []Connection
	status NodeStatus
}

func (f *fakeSource) Room(string) RoomNode { return f.room }
func (f *fakeSource) Connections(string) []Connection {
	return append([]Connection(nil), f.conns...)
}
func (f *fakeSource) Status() NodeStatus { return f.status }

var t0 = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

func conn(id uint64, user string, sec int) Connection {
	return Connection{ID: id, UserID: user, ConnectedAt: t0.Add(time.Duration(sec) * time.Second), Capabilities: []string{}}
}

func TestLocalPagesInOrder(t *testing.T) {
	src := &fakeSource{conns: []Connection{conn(3, "c", 2), conn(1, "a", 1), conn(2, "b", 1), conn(4, "d", 3)}}
	l := &Local{Node: "n1", Source: src}
	ctx := context.Background()
	p, _ := l.RoomConnections(ctx, "room", nil, 2)
	if len(p.Connections) != 2 || !p.More || p.Connections[0].UserID != "a" || p.Connections[1].UserID != "b" || p.Connections[0].Node != "n1" {
		t.Fatalf("first page %+v", p)
	}
	after := CursorOf(p.Connections[1])
	p, _ = l.RoomConnections(ctx, "room", &after, 2)
	if len(p.Connections) != 2 || p.More || p.Connections[0].UserID != "c" || p.Connections[1].UserID != "d" {
		t.Fatalf("second page %+v", p)
	}
}

func TestMergeRoomsUnionsUsers(t *testing.T) {
	got := mergeRooms([]RoomNode{
		{Node: "a", Connections: 2, Users: []string{"alice", "bob"}, Messages: 3, Errors: map[int]uint64{429: 1}},
		{Node: "b", Connections: 2, Users: []string{"alice", "carol"}, Messages: 2, Events: 1, Errors: map[int]uint64{429: 2, 400: 1}},
	})
	if got.Connections != 4 || got.Users != 3 || got.Messages != 5 || got.Events != 1 || got.Errors[429] != 3 || got.Errors[400] != 1 || got.Nodes != 2 {
		t.Fatalf("merged %+v", got)
	}
}

// TestRedisGathersEveryNode runs three gatherers on one prefix of a real
// Redis: each sees the others' figures, and a node that stopped answering
// is not waited for.
func TestRedisGathersEveryNode(t *testing.T) {
	url := os.Getenv("IVSCHATD_TEST_REDIS_URL")
	if url == "" {
		t.Skip("IVSCHATD_TEST_REDIS_URL not set")
	}
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	client := redis.NewClient(opt)
	defer client.Close()
	var rb [6]byte
	rand.Read(rb[:])
	prefix := "ivschatd-test-" + hex.EncodeToString(rb[:])
	ctx := context.Background()
	start := func(node string, src Source) *Redis {
		r, err := NewRedis(ctx, client, RedisOptions{Prefix: prefix, Node: node, Source: src, Timeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		return r
	}
	a := start("node-a", &fakeSource{
		room:   RoomNode{Connections: 2, Users: []string{"alice", "bob"}, Messages: 2},
		conns:  []Connection{conn(1, "alice", 1), conn(2, "bob", 3)},
		status: NodeStatus{Version: "v1", Connections: 2},
	})
	start("node-b", &fakeSource{
		room:   RoomNode{Connections: 1, Users: []string{"alice"}, Messages: 1, Events: 1, Errors: map[int]uint64{429: 1}},
		conns:  []Connection{conn(1, "alice", 2)},
		status: NodeStatus{Version: "v1", Connections: 1},
	})

	rs, err := a.RoomStats(ctx, "room")
	if err != nil {
		t.Fatal(err)
	}
	if rs.Connections != 3 || rs.Users != 2 || rs.Messages != 3 || rs.Events != 1 || rs.Errors[429] != 1 || rs.Nodes != 2 || rs.NodesMissing != 0 {
		t.Fatalf("room stats %+v", rs)
	}
	p, err := a.RoomConnections(ctx, "room", nil, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Connections) != 2 || !p.More || p.Connections[0].Node != "node-a" || p.Connections[1].Node != "node-b" {
		t.Fatalf("page %+v", p)
	}
	after := CursorOf(p.Connections[1])
	p, _ = a.RoomConnections(ctx, "room", &after, 2)
	if len(p.Connections) != 1 || p.More || p.Connections[0].UserID != "bob" {
		t.Fatalf("second page %+v", p)
	}
	st, err := a.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Nodes) != 2 || st.Nodes[0].Node != "node-a" || st.Nodes[1].Node != "node-b" || st.Nodes[1].Connections != 1 {
		t.Fatalf("status %+v", st)
	}

	// A subscriber that never answers: counted as missing after the
	// timeout, not waited for longer.
	mute := client.Subscribe(ctx, prefix+":stats:requests")
	defer mute.Close()
	if _, err := mute.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	rs, _ = a.RoomStats(ctx, "room")
	if rs.Nodes != 2 || rs.NodesMissing != 1 {
		t.Fatalf("with a mute node: %+v", rs)
	}
	if took := time.Since(began); took > 5*time.Second {
		t.Fatalf("waited %v for a mute node", took)
	}
	if got := a.Stats().Failures; got["missing"] != 1 || got["redis"] != 0 {
		t.Fatalf("failures %v, want missing 1 and nothing else", got)
	}

	// A question that does not decode (another program on the prefix) is
	// ignored and counted by every node that got it.
	if err := client.Publish(ctx, prefix+":stats:requests", "not json").Err(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); a.Stats().Failures["malformed"] != 1; {
		if time.Now().After(deadline) {
			t.Fatalf("failures %v, want malformed 1", a.Stats().Failures)
		}
		time.Sleep(10 * time.Millisecond)
	}

	// Redis gone: the answer holds this node's own figures, and the
	// failure is counted.
	lost := redis.NewClient(opt)
	solo, err := NewRedis(ctx, lost, RedisOptions{Prefix: prefix, Node: "node-d", Source: &fakeSource{room: RoomNode{Connections: 4}}, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	lost.Close()
	rs, err = solo.RoomStats(ctx, "room")
	if err != nil || rs.Connections != 4 || rs.Nodes != 1 {
		t.Fatalf("without Redis: %+v, %v; want this node's 4 connections", rs, err)
	}
	if got := solo.Stats().Failures; got["redis"] != 1 {
		t.Fatalf("failures %v, want redis 1", got)
	}
	solo.Close()
}

func FuzzDecodeRequest(f *testing.F) {
	ok, _ := json.Marshal(request{ID: newRequestID(), From: "n", Kind: kindConnections, Room: "r", Limit: 5, After: &Cursor{Node: "x", ID: 3}, Deadline: 1})
	for _, s := range []string{string(ok), `{}`, `{"id":"zz","kind":"room"}`, `[1,2]`, `{"kind":"status","limit":-1}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		q, err := decodeRequest(b)
		if err != nil {
			return
		}
		if !validID(q.ID) || q.From == "" || q.Limit < 0 || q.Limit > 1000 || (q.Kind == kindConnections && q.Limit < 1) {
			t.Fatalf("accepted an invalid request %+v", q)
		}
	})
}

func FuzzDecodeReply(f *testing.F) {
	room, _ := json.Marshal(reply{Node: "n", Room: &RoomNode{Connections: 1, Users: []string{"u"}}})
	conns, _ := json.Marshal(reply{Node: "n", Connections: []Connection{conn(1, "u", 1)}})
	st, _ := json.Marshal(reply{Node: "n", Status: &NodeStatus{Connections: 2}})
	for _, s := range []string{string(room), string(conns), string(st), `{"node":"n"}`, `{}`, `null`, `{"node":"n","room":{"connections":-1}}`} {
		f.Add([]byte(s), kindRoom)
		f.Add([]byte(s), kindConnections)
		f.Add([]byte(s), kindStatus)
	}
	f.Fuzz(func(t *testing.T, b []byte, kind string) {
		p, err := decodeReply(b, kind)
		if err != nil {
			return
		}
		if p.Node == "" {
			t.Fatal("accepted a reply without a node")
		}
		if (p.Room != nil && kind != kindRoom) || (p.Status != nil && kind != kindStatus) || (p.Connections != nil && kind != kindConnections) {
			t.Fatalf("accepted figures of another kind than %q: %s", kind, b)
		}
		// Whatever was accepted merges without panicking.
		if p.Room != nil {
			mergeRooms([]RoomNode{*p.Room})
		}
		pageOf(p.Connections, nil, 10)
	})
}
