package broker_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ivschatd/ivschatd/internal/broker"
)

// messageFrame is a MESSAGE frame whose attribute "Id" names another
// message.
func messageFrame(id, content, attrID string) []byte {
	payload := `{"Type":"MESSAGE","Id":"` + id + `","RequestId":"","Attributes":{"Id":"` + attrID + `"},"Content":"` + content + `"}`
	return append([]byte{0x81, byte(len(payload))}, payload...)
}

// TestRedisHistory: PublishHistory appends to the room's list (bounded),
// removes a deleted message by its Id, publishes like Publish, and History
// reads the list back in order.
func TestRedisHistory(t *testing.T) {
	url := redisURL(t)
	prefix := randomPrefix()
	b := newRedis(t, url, prefix)
	ctx := context.Background()
	got := make(chan broker.Message, 100)
	unsub, err := b.Subscribe("room", func(_ string, m broker.Message) { got <- m })
	if err != nil {
		t.Fatal(err)
	}
	defer unsub()
	t.Cleanup(func() { b.ClearHistory(context.Background(), "room") })
	for i := range 5 {
		m := broker.Message{Kind: broker.KindFrame, Frame: messageFrame(fmt.Sprintf("id%010d", i), fmt.Sprint(i), fmt.Sprintf("id%010d", i-1))}
		if err := b.PublishHistory(ctx, "room", m, broker.HistoryWrite{Append: true, Keep: 3, TTL: time.Minute}); err != nil {
			t.Fatal(err)
		}
		select {
		case r := <-got:
			if string(r.Frame) != string(m.Frame) {
				t.Fatalf("published %q, received %q", m.Frame, r.Frame)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("PublishHistory did not publish")
		}
	}
	read := func() []string {
		t.Helper()
		frames, err := b.History(ctx, "room", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, f := range frames {
			out = append(out, string(f[2:]))
		}
		return out
	}
	if h := read(); len(h) != 3 || h[0] != string(messageFrame("id0000000002", "2", "id0000000001")[2:]) {
		t.Fatalf("history = %q, want the last 3", h)
	}
	// Message 4 carries an attribute whose value is message 3's Id: only
	// message 3 itself goes.
	del := broker.Message{Kind: broker.KindFrame, Frame: []byte("\x81\x02{}")}
	if err := b.PublishHistory(ctx, "room", del, broker.HistoryWrite{RemoveID: "id0000000003", TTL: time.Minute}); err != nil {
		t.Fatal(err)
	}
	if h := read(); len(h) != 2 || h[0] != string(messageFrame("id0000000002", "2", "id0000000001")[2:]) || h[1] != string(messageFrame("id0000000004", "4", "id0000000003")[2:]) {
		t.Fatalf("after removing id0000000003: %q", h)
	}
	if err := b.ClearHistory(ctx, "room"); err != nil {
		t.Fatal(err)
	}
	if h := read(); len(h) != 0 {
		t.Fatalf("after clear: %q", h)
	}
}
