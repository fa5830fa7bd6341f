package messaging

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ivschatd/ivschatd/internal/chat"
)

func TestSendMessageEchoAndFanOut(t *testing.T) {
	e := newEnv(t, nil)
	sender := e.connect(t, "room1", "alice", withAttrs(map[string]string{"name": "Alice", "a": "1"}))
	viewer := e.connect(t, "room1", "bob", withCaps())
	defer sender.close()
	defer viewer.close()

	sender.send(t, `{"Action":"SEND_MESSAGE","RequestId":"r-1","Content":"hello \"world\" é\n","Attributes":{"k":"v","b":"2"}}`)
	want := `{"Type":"MESSAGE","Id":"ID","RequestId":"r-1","Attributes":{"b":"2","k":"v"},"Content":"hello \"world\" é\n","SendTime":"T","Sender":{"UserId":"alice","Attributes":{"a":"1","name":"Alice"}}}`
	echo := expectFrame(t, sender, want)
	got := expectFrame(t, viewer, want)
	if echo != got {
		t.Fatalf("sender and viewer got different frames:\n%s\n%s", echo, got)
	}

	// Without RequestId and Attributes: both keys are still present.
	sender.send(t, `{"Action":"SEND_MESSAGE","Content":"x"}`)
	want = `{"Type":"MESSAGE","Id":"ID","RequestId":"","Attributes":{},"Content":"x","SendTime":"T","Sender":{"UserId":"alice","Attributes":{"a":"1","name":"Alice"}}}`
	first := expectFrame(t, viewer, want)
	expectFrame(t, sender, want)

	// Ids are never repeated.
	sender.send(t, `{"Action":"SEND_MESSAGE","Content":"x"}`)
	second := expectFrame(t, viewer, want)
	if frameID(t, first) == frameID(t, second) {
		t.Fatal("two messages with the same Id")
	}
}

func TestKeysCaseInsensitiveUnknownIgnored(t *testing.T) {
	e := newEnv(t, nil)
	c := e.connect(t, "room1", "u")
	defer c.close()
	c.send(t, `{"action":"SEND_MESSAGE","requestid":"r","CONTENT":"hi","attributes":{"x":"y"},"Extra":[1,{"a":null}],"sender":"forged"}`)
	expectFrame(t, c, `{"Type":"MESSAGE","Id":"ID","RequestId":"r","Attributes":{"x":"y"},"Content":"hi","SendTime":"T","Sender":{"UserId":"u","Attributes":{}}}`)
}

func TestMalformedRequests(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.RequestRatePerSecond = 1000 })
	c := e.connect(t, "room1", "u")
	defer c.close()
	tests := []struct {
		name    string
		req     string
		want    string
		errCode int
	}{
		{
			name: "not JSON",
			req:  `hello`,
			want: `{"Type":"ERROR","Id":"ID","RequestId":"","ErrorCode":400,"ErrorMessage":"request must be a JSON object"}`,
		},
		{
			name: "broken JSON",
			req:  `{"Action":"SEND_MESSAGE","RequestId":"r1",`,
			want: `{"Type":"ERROR","Id":"ID","RequestId":"","ErrorCode":400,"ErrorMessage":"request is not valid JSON"}`,
		},
		{
			name: "array",
			req:  `[1,2]`,
			want: `{"Type":"ERROR","Id":"ID","RequestId":"","ErrorCode":400,"ErrorMessage":"request must be a JSON object"}`,
		},
		{
			name: "missing Action",
			req:  `{"RequestId":"r2","Content":"x"}`,
			want: `{"Type":"ERROR","Id":"ID","RequestId":"r2","ErrorCode":400,"ErrorMessage":"Action is required (SEND_MESSAGE, DELETE_MESSAGE or DISCONNECT_USER)"}`,
		},
		{
			name: "unknown Action",
			req:  `{"Action":"JUMP","RequestId":"r3"}`,
			want: `{"Type":"ERROR","Id":"ID","RequestId":"r3","ErrorCode":400,"ErrorMessage":"unknown Action \"JUMP\": expected SEND_MESSAGE, DELETE_MESSAGE or DISCONNECT_USER"}`,
		},
		{
			name: "non-string attribute keeps RequestId",
			req:  `{"Action":"SEND_MESSAGE","RequestId":"r4","Content":"x","Attributes":{"n":1}}`,
			want: `{"Type":"ERROR","Id":"ID","RequestId":"r4","ErrorCode":400,"ErrorMessage":"invalid value for Attributes: expected a string"}`,
		},
		{
			name: "Content not a string",
			req:  `{"Action":"SEND_MESSAGE","RequestId":"r5","Content":5}`,
			want: `{"Type":"ERROR","Id":"ID","RequestId":"r5","ErrorCode":400,"ErrorMessage":"invalid value for Content: expected a string"}`,
		},
		{
			name: "missing Content",
			req:  `{"Action":"SEND_MESSAGE","RequestId":"r6"}`,
			want: `{"Type":"ERROR","Id":"ID","RequestId":"r6","ErrorCode":400,"ErrorMessage":"Content is required"}`,
		},
		{
			name: "missing Id",
			req:  `{"Action":"DELETE_MESSAGE","RequestId":"r7"}`,
			want: `{"Type":"ERROR","Id":"ID","RequestId":"r7","ErrorCode":400,"ErrorMessage":"Id is required"}`,
		},
		{
			name: "missing UserId",
			req:  `{"Action":"DISCONNECT_USER","RequestId":"r8"}`,
			want: `{"Type":"ERROR","Id":"ID","RequestId":"r8","ErrorCode":400,"ErrorMessage":"UserId is required"}`,
		},
		{
			name: "Reason too long",
			req:  `{"Action":"DELETE_MESSAGE","RequestId":"r9","Id":"abc","Reason":"` + strings.Repeat("x", 257) + `"}`,
			want: `{"Type":"ERROR","Id":"ID","RequestId":"r9","ErrorCode":400,"ErrorMessage":"Reason must be at most 256 characters, got 257"}`,
		},
		{
			name: "invalid UTF-8",
			req:  "{\"Action\":\"SEND_MESSAGE\",\"Content\":\"\xff\"}",
			want: `{"Type":"ERROR","Id":"ID","RequestId":"","ErrorCode":400,"ErrorMessage":"request is not valid UTF-8"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.send(t, tt.req)
			expectFrame(t, c, tt.want)
		})
	}
	// The connection is still open and usable.
	c.send(t, `{"Action":"SEND_MESSAGE","Content":"still here"}`)
	if got := c.read(t); !strings.Contains(got, `"Content":"still here"`) {
		t.Fatalf("got %s", got)
	}
}

func TestBinaryFrameRefused(t *testing.T) {
	e := newEnv(t, nil)
	c := e.connect(t, "room1", "u")
	defer c.close()
	writeClientFrame(t, c, 0x2, true, []byte(`{"Action":"SEND_MESSAGE","Content":"x"}`))
	expectFrame(t, c, `{"Type":"ERROR","Id":"ID","RequestId":"","ErrorCode":400,"ErrorMessage":"binary frames are not supported: send each request as a JSON text frame"}`)
}

func TestCapabilities(t *testing.T) {
	e := newEnv(t, nil)
	c := e.connect(t, "room1", "viewer", withCaps())
	defer c.close()
	for _, tt := range []struct{ req, cap string }{
		{`{"Action":"SEND_MESSAGE","RequestId":"a","Content":"x"}`, "SEND_MESSAGE"},
		{`{"Action":"DELETE_MESSAGE","RequestId":"a","Id":"abcdefabcdef"}`, "DELETE_MESSAGE"},
		{`{"Action":"DISCONNECT_USER","RequestId":"a","UserId":"x"}`, "DISCONNECT_USER"},
	} {
		c.send(t, tt.req)
		expectFrame(t, c, `{"Type":"ERROR","Id":"ID","RequestId":"a","ErrorCode":403,"ErrorMessage":"Forbidden: the chat token does not grant the `+tt.cap+` capability"}`)
	}
	// Each capability allows only its own action.
	s := e.connect(t, "room1", "sender", withCaps(chat.CapabilitySendMessage))
	defer s.close()
	s.send(t, `{"Action":"DELETE_MESSAGE","RequestId":"b","Id":"abcdefabcdef"}`)
	expectFrame(t, s, `{"Type":"ERROR","Id":"ID","RequestId":"b","ErrorCode":403,"ErrorMessage":"Forbidden: the chat token does not grant the DELETE_MESSAGE capability"}`)
}

func TestDeleteMessageFromClient(t *testing.T) {
	e := newEnv(t, nil)
	mod := e.connect(t, "room1", "mod")
	viewer := e.connect(t, "room1", "v", withCaps())
	defer mod.close()
	defer viewer.close()
	mod.send(t, `{"Action":"DELETE_MESSAGE","RequestId":"d1","Id":"I4fme01f7HYM","Reason":"[removed by moderator]"}`)
	want := `{"Type":"EVENT","Id":"ID","RequestId":"d1","EventName":"aws:DELETE_MESSAGE","Attributes":{"MessageId":"I4fme01f7HYM","MessageID":"I4fme01f7HYM","Reason":"[removed by moderator]"},"SendTime":"T"}`
	expectFrame(t, mod, want)
	expectFrame(t, viewer, want)
	// Without a reason the Reason attribute is omitted.
	mod.send(t, `{"Action":"DELETE_MESSAGE","Id":"I4fme01f7HYM"}`)
	expectFrame(t, viewer, `{"Type":"EVENT","Id":"ID","RequestId":"","EventName":"aws:DELETE_MESSAGE","Attributes":{"MessageId":"I4fme01f7HYM","MessageID":"I4fme01f7HYM"},"SendTime":"T"}`)
}

func TestDisconnectUserFromClient(t *testing.T) {
	e := newEnv(t, nil)
	mod := e.connect(t, "room1", "mod")
	target1 := e.connect(t, "room1", "troll", withCaps())
	target2 := e.connect(t, "room1", "troll", withCaps())
	other := e.connect(t, "room2", "troll", withCaps()) // same user, other room: untouched
	defer mod.close()
	defer other.close()
	mod.send(t, `{"Action":"DISCONNECT_USER","RequestId":"x1","UserId":"troll","Reason":"spam"}`)
	want := `{"Type":"EVENT","Id":"ID","RequestId":"x1","EventName":"aws:DISCONNECT_USER","Attributes":{"Reason":"spam","UserId":"troll"},"SendTime":"T"}`
	expectFrame(t, mod, want)
	for _, c := range []*client{target1, target2} {
		expectFrame(t, c, want)
		if reason := c.expectClose(t, 1000); reason != "spam" {
			t.Fatalf("close reason %q", reason)
		}
	}
	// The moderator stays connected, the same user in another room too.
	mod.send(t, `{"Action":"SEND_MESSAGE","Content":"after"}`)
	if got := mod.read(t); !strings.Contains(got, `"Content":"after"`) {
		t.Fatalf("got %s", got)
	}
	e.g.SendEvent(context.Background(), "room2", "ping", nil)
	if got := other.read(t); !strings.Contains(got, `"EventName":"ping"`) {
		t.Fatalf("got %s", got)
	}
}

func TestControlPlaneOperations(t *testing.T) {
	e := newEnv(t, nil)
	c := e.connect(t, "room1", "troll", withCaps())
	ctx := context.Background()

	id, err := e.g.SendEvent(ctx, "room1", "SystemMessage", map[string]string{"msgType": "user-notification", "a": "b"})
	if err != nil {
		t.Fatal(err)
	}
	got := expectFrame(t, c, `{"Type":"EVENT","Id":"ID","RequestId":"","EventName":"SystemMessage","Attributes":{"a":"b","msgType":"user-notification"},"SendTime":"T"}`)
	if frameID(t, got) != id {
		t.Fatalf("SendEvent returned %s, frame has %s", id, frameID(t, got))
	}
	if _, err := e.g.SendEvent(ctx, "room1", "Empty", nil); err != nil {
		t.Fatal(err)
	}
	expectFrame(t, c, `{"Type":"EVENT","Id":"ID","RequestId":"","EventName":"Empty","Attributes":{},"SendTime":"T"}`)

	id, err = e.g.DeleteMessage(ctx, "room1", "WhO6MW6iRdS5", "bad words")
	if err != nil {
		t.Fatal(err)
	}
	got = expectFrame(t, c, `{"Type":"EVENT","Id":"ID","RequestId":"","EventName":"aws:DELETE_MESSAGE","Attributes":{"MessageId":"WhO6MW6iRdS5","MessageID":"WhO6MW6iRdS5","Reason":"bad words"},"SendTime":"T"}`)
	if frameID(t, got) != id {
		t.Fatal("DeleteMessage returned another Id")
	}

	if err := e.g.DisconnectUser(ctx, "room1", "troll", ""); err != nil {
		t.Fatal(err)
	}
	expectFrame(t, c, `{"Type":"EVENT","Id":"ID","RequestId":"","EventName":"aws:DISCONNECT_USER","Attributes":{"UserId":"troll"},"SendTime":"T"}`)
	c.expectClose(t, 1000)

	// A missing room is reported with the room source's error.
	if _, err := e.g.SendEvent(ctx, "nosuch", "x", nil); chat.ErrorCode(err) != chat.CodeResourceNotFound {
		t.Fatalf("SendEvent to a missing room: %v", err)
	}
	if _, err := e.g.DeleteMessage(ctx, "nosuch", "x", ""); chat.ErrorCode(err) != chat.CodeResourceNotFound {
		t.Fatalf("DeleteMessage in a missing room: %v", err)
	}
	if err := e.g.DisconnectUser(ctx, "nosuch", "x", ""); chat.ErrorCode(err) != chat.CodeResourceNotFound {
		t.Fatalf("DisconnectUser in a missing room: %v", err)
	}
}

func TestRoomsIsolated(t *testing.T) {
	e := newEnv(t, nil)
	a := e.connect(t, "room1", "a")
	b := e.connect(t, "room2", "b")
	defer a.close()
	defer b.close()
	a.send(t, `{"Action":"SEND_MESSAGE","Content":"for room1"}`)
	if got := a.read(t); !strings.Contains(got, "for room1") {
		t.Fatalf("a got %s", got)
	}
	b.send(t, `{"Action":"SEND_MESSAGE","Content":"for room2"}`)
	// b's message is read before the events: the server handles it
	// asynchronously, so only then is it known to precede the marker.
	if got := b.read(t); !strings.Contains(got, "for room2") {
		t.Fatalf("b got %s", got)
	}
	e.g.SendEvent(context.Background(), "room1", "only1", nil)
	if got := a.read(t); !strings.Contains(got, "only1") {
		t.Fatalf("a got %s", got)
	}
	// b sees only its own room's traffic: this marker, not only1.
	e.g.SendEvent(context.Background(), "room2", "marker2", nil)
	if got := b.read(t); !strings.Contains(got, "marker2") {
		t.Fatalf("b got %s, want only room2 traffic", got)
	}
}

func TestContentLengthCodePoints(t *testing.T) {
	e := newEnv(t, nil)
	e.rooms.put(&chat.Room{ID: "short", MaximumMessageLength: 5, MaximumMessageRatePerSecond: 100})
	c := e.connect(t, "short", "u")
	defer c.close()
	five := strings.Repeat("😀", 5) // 5 code points, 20 bytes
	c.send(t, `{"Action":"SEND_MESSAGE","RequestId":"ok","Content":"`+five+`"}`)
	if got := c.read(t); !strings.Contains(got, `"Content":"`+five+`"`) {
		t.Fatalf("got %s", got)
	}
	c.send(t, `{"Action":"SEND_MESSAGE","RequestId":"long","Content":"`+five+`a"}`)
	expectFrame(t, c, `{"Type":"ERROR","Id":"ID","RequestId":"long","ErrorCode":400,"ErrorMessage":"Content must be at most 5 characters, got 6"}`)
}

// Empty Content is accepted (README, compatibility notes: no source says
// the service refuses it, the official JS client sends it, and messages that
// carry everything in Attributes — reactions, stickers — are a real
// pattern); an absent or null Content is a 400.
func TestEmptyContent(t *testing.T) {
	e := newEnv(t, nil)
	c := e.connect(t, "room1", "u")
	defer c.close()
	c.send(t, `{"Action":"SEND_MESSAGE","RequestId":"empty","Content":"","Attributes":{"reaction":"clap"}}`)
	expectFrame(t, c, `{"Type":"MESSAGE","Id":"ID","RequestId":"empty","Attributes":{"reaction":"clap"},"Content":"","SendTime":"T","Sender":{"UserId":"u","Attributes":{}}}`)
	for _, req := range []string{`{"Action":"SEND_MESSAGE","RequestId":"absent"}`, `{"Action":"SEND_MESSAGE","RequestId":"null","Content":null}`} {
		c.send(t, req)
		f := c.read(t)
		if !strings.Contains(f, `"ErrorCode":400`) {
			t.Fatalf("%s: got %s, want ERROR 400", req, f)
		}
	}
}

func TestAttributesLimit(t *testing.T) {
	e := newEnv(t, nil)
	c := e.connect(t, "room1", "u")
	defer c.close()
	exact := `{"k":"` + strings.Repeat("v", 1023) + `"}` // 1 + 1023 = 1024 bytes
	c.send(t, `{"Action":"SEND_MESSAGE","Content":"x","Attributes":`+exact+`}`)
	if got := c.read(t); !strings.Contains(got, `"Type":"MESSAGE"`) {
		t.Fatalf("got %s", got)
	}
	over := `{"k":"` + strings.Repeat("v", 1024) + `"}`
	c.send(t, `{"Action":"SEND_MESSAGE","RequestId":"big","Content":"x","Attributes":`+over+`}`)
	expectFrame(t, c, `{"Type":"ERROR","Id":"ID","RequestId":"big","ErrorCode":413,"ErrorMessage":"Attributes must be at most 1024 bytes (keys and values together), got 1025"}`)
}

func TestRoomRateLimitAcrossSenders(t *testing.T) {
	e := newEnv(t, nil)
	e.rooms.put(&chat.Room{ID: "slow", MaximumMessageLength: 100, MaximumMessageRatePerSecond: 2})
	a := e.connect(t, "slow", "a")
	b := e.connect(t, "slow", "b")
	defer a.close()
	defer b.close()
	a.send(t, `{"Action":"SEND_MESSAGE","RequestId":"1","Content":"x"}`)
	b.send(t, `{"Action":"SEND_MESSAGE","RequestId":"2","Content":"x"}`)
	// Two messages used the room's budget; a third from either sender waits.
	for range 2 {
		a.read(t)
	}
	a.send(t, `{"Action":"SEND_MESSAGE","RequestId":"3","Content":"x"}`)
	expectFrame(t, a, `{"Type":"ERROR","Id":"ID","RequestId":"3","ErrorCode":429,"ErrorMessage":"Too many messages: the room allows 2 per second"}`)
	// Recovery: within about a second a message goes through again.
	checkFor(t, 5*time.Second, 200*time.Millisecond, func() error {
		a.send(t, `{"Action":"SEND_MESSAGE","RequestId":"again","Content":"x"}`)
		got := a.read(t)
		if strings.Contains(got, `"Type":"MESSAGE"`) {
			return nil
		}
		return errorf("still refused: %s", got)
	})
}

func TestConnectionRateLimit(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.RequestRatePerSecond = 3 })
	e.rooms.put(&chat.Room{ID: "fast", MaximumMessageLength: 100, MaximumMessageRatePerSecond: 100})
	c := e.connect(t, "fast", "u")
	defer c.close()
	for i := range 3 {
		c.send(t, fmt.Sprintf(`{"Action":"SEND_MESSAGE","RequestId":"%d","Content":"x"}`, i))
	}
	for range 3 {
		c.read(t)
	}
	c.send(t, `{"Action":"SEND_MESSAGE","RequestId":"over","Content":"x"}`)
	expectFrame(t, c, `{"Type":"ERROR","Id":"ID","RequestId":"over","ErrorCode":429,"ErrorMessage":"Too many requests: at most 3 per second per connection"}`)
	checkFor(t, 5*time.Second, 200*time.Millisecond, func() error {
		c.send(t, `{"Action":"SEND_MESSAGE","RequestId":"again","Content":"x"}`)
		if got := c.read(t); !strings.Contains(got, `"Type":"MESSAGE"`) {
			return errorf("still refused: %s", got)
		}
		return nil
	})
}

func TestModerationRateLimit(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.ModerationRatePerSecond = 1 })
	c := e.connect(t, "room1", "mod")
	defer c.close()
	c.send(t, `{"Action":"DELETE_MESSAGE","RequestId":"1","Id":"abcdefabcdef"}`)
	c.read(t)
	c.send(t, `{"Action":"DISCONNECT_USER","RequestId":"2","UserId":"x"}`)
	expectFrame(t, c, `{"Type":"ERROR","Id":"ID","RequestId":"2","ErrorCode":429,"ErrorMessage":"Too many moderation requests: at most 1 per second"}`)
}

func TestRoomUpdatedAppliesToConnectedClients(t *testing.T) {
	e := newEnv(t, nil)
	c := e.connect(t, "room1", "u")
	defer c.close()
	c.send(t, `{"Action":"SEND_MESSAGE","Content":"1234567890"}`)
	if got := c.read(t); !strings.Contains(got, `"Type":"MESSAGE"`) {
		t.Fatalf("got %s", got)
	}
	if err := e.g.RoomUpdated(t.Context(), &chat.Room{ID: "room1", MaximumMessageLength: 5, MaximumMessageRatePerSecond: 10, UpdateTime: time.Now()}); err != nil {
		t.Fatal(err)
	}
	c.send(t, `{"Action":"SEND_MESSAGE","RequestId":"r","Content":"1234567890"}`)
	expectFrame(t, c, `{"Type":"ERROR","Id":"ID","RequestId":"r","ErrorCode":400,"ErrorMessage":"Content must be at most 5 characters, got 10"}`)
}
