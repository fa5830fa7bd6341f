package messaging

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws/wsutil"

	"github.com/ivschatd/ivschatd/internal/chat"
)

func TestMsgHistoryRing(t *testing.T) {
	h := new(msgHistory)
	for i := range MaxHistory + 20 {
		f := encodeMessage(fmt.Sprintf("id%010d", i), "", nil, strconv.Itoa(i), time.Now(), []byte(`{}`))
		h.append(f, messageIDOf(f), uint64(i+1))
	}
	if h.n != MaxHistory {
		t.Fatalf("kept %d entries, want %d", h.n, MaxHistory)
	}
	content := func(frames [][]byte) []int {
		var out []int
		for _, f := range frames {
			var m struct{ Content string }
			json.Unmarshal(framePayload(f), &m)
			n, _ := strconv.Atoi(m.Content)
			out = append(out, n)
		}
		return out
	}
	// The last 3 published before cursor 50 (pos <= 50: sequences 0..49).
	if got := content(h.snapshot(3, 50)); fmt.Sprint(got) != "[47 48 49]" {
		t.Errorf("snapshot(3, 50) = %v", got)
	}
	if got := content(h.snapshot(2, 1000)); fmt.Sprint(got) != "[118 119]" {
		t.Errorf("snapshot(2, end) = %v", got)
	}
	// Entries older than the ring are gone.
	if got := h.snapshot(5, 15); got != nil {
		t.Errorf("snapshot before the oldest kept = %d frames", len(got))
	}
	h.remove([]byte("id0000000118"))
	if got := content(h.snapshot(2, 1000)); fmt.Sprint(got) != "[117 119]" {
		t.Errorf("after remove: %v", got)
	}
	h.adopt()
	if got := content(h.snapshot(1, 0)); fmt.Sprint(got) != "[119]" {
		t.Errorf("adopted entries are not before cursor 0: %v", got)
	}
	older := encodeMessage("idolder00001", "", nil, "-1", time.Now(), []byte(`{}`))
	h.prepend([]histEntry{{frame: older, id: messageIDOf(older)}}) // 99 kept: fits
	if h.n != MaxHistory || string(h.at(0).id) != "idolder00001" {
		t.Errorf("prepend: %d entries, first %s", h.n, h.at(0).id)
	}
	oldest := encodeMessage("idolder00000", "", nil, "-2", time.Now(), []byte(`{}`))
	h.prepend([]histEntry{{frame: oldest, id: messageIDOf(oldest)}})
	if h.n != MaxHistory || string(h.at(0).id) != "idolder00001" {
		t.Errorf("prepend to a full history must keep the newest %d, first is %s", MaxHistory, h.at(0).id)
	}
	h.clear()
	if h.snapshot(10, 1000) != nil {
		t.Error("cleared history still replays")
	}
}

func TestFrameIDs(t *testing.T) {
	m := encodeMessage("AbCdEfGhIjKl", "r", []attr{{"Id", "ZZZZZZZZZZZZ"}}, `"Id":"XXXXXXXXXXXX"`, time.Now(), []byte(`{}`))
	if got := string(messageIDOf(m)); got != "AbCdEfGhIjKl" {
		t.Errorf("messageIDOf = %q", got)
	}
	d := encodeEvent("EvEvEvEvEvEv", `"MessageId":"x"`, eventDeleteMessage, deleteMessageAttrs("AbCdEfGhIjKl", "spam"), time.Now())
	if got := string(deletedIDOf(d)); got != "AbCdEfGhIjKl" {
		t.Errorf("deletedIDOf = %q", got)
	}
	if messageIDOf(d) != nil || deletedIDOf(m) != nil {
		t.Error("an Id found in the wrong kind of frame")
	}
}

func TestHistoryOf(t *testing.T) {
	for _, tc := range []struct {
		tags map[string]string
		def  int
		want int
	}{
		{nil, 0, 0},
		{nil, 7, 7},
		{map[string]string{HistoryTag: "25"}, 7, 25},
		{map[string]string{HistoryTag: "0"}, 7, 0},
		{map[string]string{HistoryTag: "101"}, 7, 0},
		{map[string]string{HistoryTag: "many"}, 7, 0},
		{map[string]string{"other": "1"}, 3, 3},
	} {
		if got := HistoryOf(&chat.Room{Tags: tc.tags}, tc.def); got != tc.want {
			t.Errorf("HistoryOf(%v, %d) = %d, want %d", tc.tags, tc.def, got, tc.want)
		}
	}
}

// putRoom stores a room with the given tags (a fresh struct, as the store
// hands out).
func (e *env) putRoom(id string, tags map[string]string) *chat.Room {
	rm := &chat.Room{ID: id, MaximumMessageLength: 500, MaximumMessageRatePerSecond: 1000, Tags: tags, UpdateTime: time.Now()}
	e.rooms.put(rm)
	return rm
}

func sendMsg(t *testing.T, c *client, content string) {
	t.Helper()
	c.send(t, `{"Action":"SEND_MESSAGE","RequestId":"`+content+`","Content":"`+content+`"}`)
}

// sendAndEcho sends messages and returns the frames as the sender received
// them.
func sendAndEcho(t *testing.T, c *client, contents ...string) []string {
	t.Helper()
	var out []string
	for _, s := range contents {
		sendMsg(t, c, s)
		out = append(out, c.read(t))
	}
	return out
}

func contentOf(t *testing.T, frame string) string {
	t.Helper()
	var m struct{ Type, Content string }
	if err := json.Unmarshal([]byte(frame), &m); err != nil || m.Type != "MESSAGE" {
		t.Fatalf("not a MESSAGE: %s", frame)
	}
	return m.Content
}

// expectReplay reads the joiner's first frames: exactly want (byte for
// byte), then nothing before the marker message the joiner sends itself.
func expectReplay(t *testing.T, c *client, want []string) {
	t.Helper()
	for i, w := range want {
		if got := c.read(t); got != w {
			t.Fatalf("replayed frame %d:\n got %s\nwant %s", i, got, w)
		}
	}
	sendMsg(t, c, "marker")
	if got := c.read(t); contentOf(t, got) != "marker" {
		t.Fatalf("after %d replayed frames: got %s, want the live marker", len(want), got)
	}
}

func TestHistoryReplayOrderAndBound(t *testing.T) {
	e := newEnv(t, nil)
	e.putRoom("room1", map[string]string{HistoryTag: "5"})
	sender := e.connect(t, "room1", "alice")
	defer sender.close()
	sent := sendAndEcho(t, sender, "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8")

	joiner := e.connect(t, "room1", "bob")
	defer joiner.close()
	for i, w := range sent[3:] {
		if got := joiner.read(t); got != w {
			t.Fatalf("replayed frame %d:\n got %s\nwant %s", i, got, w)
		}
	}
	// Then live, in order.
	live := sendAndEcho(t, sender, "m9")
	if got := joiner.read(t); got != live[0] {
		t.Fatalf("live frame after the replay: %s, want %s", got, live[0])
	}
}

func TestHistoryDeletedNotReplayed(t *testing.T) {
	e := newEnv(t, nil)
	e.putRoom("room1", map[string]string{HistoryTag: "10"})
	sender := e.connect(t, "room1", "alice")
	sent := sendAndEcho(t, sender, "m1", "m2", "m3", "m4")
	// m2 deleted by a moderator's client, while the room has connections.
	sender.send(t, `{"Action":"DELETE_MESSAGE","RequestId":"d","Id":"`+frameID(t, sent[1])+`"}`)
	sender.read(t)
	sender.close()
	// m3 deleted through the control plane once nobody is connected: the
	// history the node keeps for the room must still forget it.
	checkFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		if n := e.g.Stats().Rooms; n != 0 {
			return fmt.Errorf("%d rooms", n)
		}
		return nil
	})
	if _, err := e.g.DeleteMessage(context.Background(), "room1", frameID(t, sent[2]), ""); err != nil {
		t.Fatal(err)
	}
	joiner := e.connect(t, "room1", "bob")
	defer joiner.close()
	expectReplay(t, joiner, []string{sent[0], sent[3]})
}

func TestHistoryTagChangeAppliesToLaterConnections(t *testing.T) {
	e := newEnv(t, nil)
	e.putRoom("room1", nil)
	sender := e.connect(t, "room1", "alice")
	defer sender.close()
	sendAndEcho(t, sender, "before")

	a := e.connect(t, "room1", "a")
	expectReplay(t, a, nil)
	a.close()
	sender.read(t) // a's marker

	// Tagged while the room has a connection: the control plane announces
	// the change (RoomUpdated), and the room records from now on.
	rm := e.putRoom("room1", map[string]string{HistoryTag: "10"})
	if err := e.g.RoomUpdated(context.Background(), rm); err != nil {
		t.Fatal(err)
	}
	sent := sendAndEcho(t, sender, "x1", "x2")
	b := e.connect(t, "room1", "b")
	expectReplay(t, b, sent)
	b.close()
	bMarker := sender.read(t)

	// A lower setting applies to the next joiner as its handshake reads it.
	e.putRoom("room1", map[string]string{HistoryTag: "1"})
	c := e.connect(t, "room1", "c")
	expectReplay(t, c, []string{bMarker})
	c.close()
	sender.read(t)

	// Removed: later joiners get nothing, and nothing is kept.
	rm = e.putRoom("room1", nil)
	if err := e.g.RoomUpdated(context.Background(), rm); err != nil {
		t.Fatal(err)
	}
	d := e.connect(t, "room1", "d")
	expectReplay(t, d, nil)
	d.close()
	sender.read(t)
	rm = e.putRoom("room1", map[string]string{HistoryTag: "10"})
	e.g.RoomUpdated(context.Background(), rm)
	f := e.connect(t, "room1", "f")
	defer f.close()
	expectReplay(t, f, nil)
}

func TestHistoryDefault(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.HistoryDefault = 2 })
	e.putRoom("room1", nil)
	e.putRoom("room2", map[string]string{HistoryTag: "1"})
	s1 := e.connect(t, "room1", "alice")
	defer s1.close()
	s2 := e.connect(t, "room2", "alice")
	defer s2.close()
	sent1 := sendAndEcho(t, s1, "a", "b", "c")
	sent2 := sendAndEcho(t, s2, "a", "b", "c")
	j1 := e.connect(t, "room1", "bob")
	defer j1.close()
	expectReplay(t, j1, sent1[1:])
	j2 := e.connect(t, "room2", "bob")
	defer j2.close()
	expectReplay(t, j2, sent2[2:]) // the tag wins over the default
}

// TestHistoryJoinRace sends numbered messages continuously while viewers
// join: every joiner's stream, replay and live together, must be
// consecutive numbers (no gap, no duplicate), and must start N messages
// before the join: between N before what was published when the dial
// began and N before what was published when it returned.
func TestHistoryJoinRace(t *testing.T) {
	const n = 50
	e := newEnv(t, func(o *Options) { o.RequestRatePerSecond = 10000 })
	e.putRoom("room1", map[string]string{HistoryTag: strconv.Itoa(n)})
	sender := e.connect(t, "room1", "alice")
	defer sender.close()
	var echoed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 1; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			msg := `{"Action":"SEND_MESSAGE","Content":"` + strconv.Itoa(i) + `"}`
			if wsutil.WriteClientText(sender.conn, []byte(msg)) != nil {
				return
			}
			if i%2 == 0 {
				time.Sleep(time.Millisecond)
			}
		}
	})
	wg.Go(func() {
		for {
			p, err := wsutil.ReadServerText(sender.conn)
			if err != nil {
				return
			}
			var m struct{ Content string }
			json.Unmarshal(p, &m)
			v, _ := strconv.Atoi(m.Content)
			echoed.Store(int64(v))
		}
	})
	checkFor(t, 10*time.Second, time.Millisecond, func() error {
		if echoed.Load() < n {
			return fmt.Errorf("%d messages echoed", echoed.Load())
		}
		return nil
	})
	for j := range 25 {
		// Published counts a message once its publish returned: the
		// join saw at least lo and at most hi+1 messages (one in flight).
		lo := int(e.g.Stats().Published)
		tok := e.token(t, "room1", "viewer"+strconv.Itoa(j))
		c := e.dial(t, tok)
		hi := int(e.g.Stats().Published)
		prev := 0
		for k := range 2 * n {
			v, err := strconv.Atoi(contentOf(t, c.read(t)))
			if err != nil {
				t.Fatal(err)
			}
			if k == 0 && (v < lo-n+1 || v > hi+1-n+1) {
				t.Fatalf("joiner %d: first message %d, want one from %d to %d (a replay of %d)", j, v, lo-n+1, hi-n+2, n)
			}
			if prev != 0 && v != prev+1 {
				t.Fatalf("joiner %d: message %d after %d (gap or duplicate)", j, v, prev)
			}
			prev = v
		}
		c.close()
	}
	close(stop)
	sender.close()
	wg.Wait()
}

// A deleted room's recent messages are forgotten at once, and a room whose
// last connection left keeps them until historyIdle has passed.
func TestHistoryKeptAndForgotten(t *testing.T) {
	e := newEnv(t, nil)
	e.putRoom("room1", map[string]string{HistoryTag: "10"})
	e.putRoom("room2", map[string]string{HistoryTag: "10"})
	for _, id := range []string{"room1", "room2"} {
		c := e.connect(t, id, "alice")
		sendAndEcho(t, c, "a", "b")
		c.close()
	}
	checkFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		if n := e.g.Stats().Rooms; n != 0 {
			return fmt.Errorf("%d rooms", n)
		}
		return nil
	})
	if err := e.g.RoomDeleted(context.Background(), "room2"); err != nil {
		t.Fatal(err)
	}
	if n1, n2 := e.g.historyLen("room1"), e.g.historyLen("room2"); n1 != 2 || n2 != 0 {
		t.Fatalf("kept %d and %d messages, want 2 (room1, nobody connected) and 0 (room2, deleted)", n1, n2)
	}
	e.g.sweepHistories(time.Now().Add(historyIdle - time.Minute))
	if n := e.g.historyLen("room1"); n != 2 {
		t.Fatalf("swept before historyIdle: %d kept", n)
	}
	e.g.sweepHistories(time.Now().Add(historyIdle + time.Second))
	if n := e.g.historyLen("room1"); n != 0 {
		t.Fatalf("not swept after historyIdle: %d kept", n)
	}
}
