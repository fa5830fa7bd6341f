package messaging

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/ivschatd/ivschatd/internal/chat"
	"github.com/ivschatd/ivschatd/internal/ratelimit"
	"github.com/ivschatd/ivschatd/internal/testlog"
)

// TestRoomLimiterSharedByGateways: two gateways (two nodes) with one
// RoomLimiter together accept the room's rate, not twice it.
func TestRoomLimiterSharedByGateways(t *testing.T) {
	shared := ratelimit.NewMemory()
	slow := &chat.Room{ID: "slow", MaximumMessageLength: 100, MaximumMessageRatePerSecond: 2}
	e1 := newEnv(t, func(o *Options) { o.RoomLimiter = shared })
	e2 := newEnv(t, func(o *Options) { o.RoomLimiter = shared })
	e1.rooms.put(slow)
	e2.rooms.put(slow)
	a := e1.connect(t, "slow", "a")
	defer a.close()
	b := e2.connect(t, "slow", "b")
	defer b.close()
	a.send(t, `{"Action":"SEND_MESSAGE","RequestId":"1","Content":"x"}`)
	if got := a.read(t); !strings.Contains(got, `"Type":"MESSAGE"`) {
		t.Fatalf("first message: %s", got)
	}
	a.send(t, `{"Action":"SEND_MESSAGE","RequestId":"2","Content":"x"}`)
	if got := a.read(t); !strings.Contains(got, `"Type":"MESSAGE"`) {
		t.Fatalf("second message: %s", got)
	}
	// Node 2's own bucket for the room is full; the shared one is empty.
	b.send(t, `{"Action":"SEND_MESSAGE","RequestId":"3","Content":"x"}`)
	expectFrame(t, b, `{"Type":"ERROR","Id":"ID","RequestId":"3","ErrorCode":429,"ErrorMessage":"Too many messages: the room allows 2 per second"}`)
}

// TestModerationLimiterShared: the moderation rate goes through the
// RoomLimiter too.
func TestModerationLimiterShared(t *testing.T) {
	shared := ratelimit.NewMemory()
	e1 := newEnv(t, func(o *Options) { o.RoomLimiter = shared; o.ModerationRatePerSecond = 1 })
	e2 := newEnv(t, func(o *Options) { o.RoomLimiter = shared; o.ModerationRatePerSecond = 1 })
	m1 := e1.connect(t, "room1", "mod1")
	defer m1.close()
	m2 := e2.connect(t, "room1", "mod2")
	defer m2.close()
	m1.send(t, `{"Action":"DELETE_MESSAGE","RequestId":"1","Id":"abcdefabcdef"}`)
	m1.read(t)
	m2.send(t, `{"Action":"DISCONNECT_USER","RequestId":"2","UserId":"x"}`)
	expectFrame(t, m2, `{"Type":"ERROR","Id":"ID","RequestId":"2","ErrorCode":429,"ErrorMessage":"Too many moderation requests: at most 1 per second"}`)
}

// TestRoomLimiterFailure: while the limiter fails, the node's own bucket
// applies the room's rate (neither unlimited nor blocked), and the failure
// is logged once, not per message. The failing limiter is a real Redis
// limiter whose client is closed: every call fails at once.
func TestRoomLimiterFailure(t *testing.T) {
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	client.Close()
	var logs testlog.Buffer
	e := newEnv(t, func(o *Options) {
		o.RoomLimiter = ratelimit.NewRedis(client, "unused")
		o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	e.rooms.put(&chat.Room{ID: "slow", MaximumMessageLength: 100, MaximumMessageRatePerSecond: 2})
	c := e.connect(t, "slow", "u")
	defer c.close()
	for _, id := range []string{"1", "2"} {
		c.send(t, `{"Action":"SEND_MESSAGE","RequestId":"`+id+`","Content":"x"}`)
		if got := c.read(t); !strings.Contains(got, `"Type":"MESSAGE"`) {
			t.Fatalf("message %s with the limiter down: %s", id, got)
		}
	}
	c.send(t, `{"Action":"SEND_MESSAGE","RequestId":"3","Content":"x"}`)
	expectFrame(t, c, `{"Type":"ERROR","Id":"ID","RequestId":"3","ErrorCode":429,"ErrorMessage":"Too many messages: the room allows 2 per second"}`)
	if n := strings.Count(logs.String(), "shared rate limiter failed"); n != 1 {
		t.Fatalf("%d warnings for 3 failures, want 1:\n%s", n, logs.String())
	}
	if n := e.g.Stats().LimiterFailures; n != 3 {
		t.Errorf("Stats().LimiterFailures = %d, want 3", n)
	}
}
