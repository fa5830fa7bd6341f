package messaging

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ivschatd/ivschatd/internal/token"
)

func TestHandshakeEchoesToken(t *testing.T) {
	e := newEnv(t, nil)
	tok := e.token(t, "room1", "u1")
	// Raw handshake so the test sees the exact response header.
	req, _ := http.NewRequest("GET", e.srv.URL, nil)
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Protocol", tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d, want 101", resp.StatusCode)
	}
	if got := resp.Header.Get("Sec-WebSocket-Protocol"); got != tok {
		t.Fatalf("Sec-WebSocket-Protocol %q, want the token", got)
	}
	if got := resp.Header.Get("Sec-WebSocket-Accept"); got != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Fatalf("Sec-WebSocket-Accept %q", got)
	}
}

func TestHandshakeTokenInList(t *testing.T) {
	e := newEnv(t, nil)
	tok := e.token(t, "room1", "u1")
	c, status, err := e.tryDial("chat", tok)
	if err != nil {
		t.Fatalf("status %d: %v", status, err)
	}
	c.close()
}

func flipByte(tok string, i int) string {
	b := []byte(tok)
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}

func TestHandshakeRefusals(t *testing.T) {
	e := newEnv(t, nil)
	now := time.Now()
	used := e.token(t, "room1", "u1")
	e.dial(t, used).close()

	expired, err := e.keys.Seal(token.Claims{ID: "expired1", RoomARN: roomARN("room1"), UserID: "u",
		IssuedAt: now.Add(-2 * time.Hour), TokenExpiresAt: now.Add(-time.Hour), SessionExpiresAt: now.Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	valid := e.token(t, "room1", "u2")
	badARN, err := e.keys.Seal(token.Claims{ID: "badarn", RoomARN: "arn:aws:ivschat:us-west-2:1:logging-configuration/x",
		UserID: "u", TokenExpiresAt: now.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		tok    string
		status int
	}{
		{
			name:   "missing token",
			tok:    "",
			status: http.StatusUnauthorized,
		},
		{
			name:   "garbage",
			tok:    "not-a-token",
			status: http.StatusUnauthorized,
		},
		{
			name:   "forged: one byte flipped in the ciphertext",
			tok:    flipByte(valid, len(valid)/2),
			status: http.StatusUnauthorized,
		},
		{
			name:   "forged: last byte flipped",
			tok:    flipByte(valid, len(valid)-1),
			status: http.StatusUnauthorized,
		},
		{
			name:   "expired",
			tok:    expired,
			status: http.StatusUnauthorized,
		},
		{
			name:   "reused",
			tok:    used,
			status: http.StatusUnauthorized,
		},
		{
			name:   "not a room ARN",
			tok:    badARN,
			status: http.StatusUnauthorized,
		},
		{
			name:   "room missing",
			tok:    e.token(t, "nosuchroom", "u"),
			status: http.StatusNotFound,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, status, err := e.tryDial(tt.tok)
			if err == nil {
				c.close()
				t.Fatalf("handshake succeeded, want %d", tt.status)
			}
			if status != tt.status {
				t.Fatalf("status %d, want %d", status, tt.status)
			}
		})
	}
	// The valid token was not burnt by the forged copies.
	e.dial(t, valid).close()
}

func TestHandshakeNotWebSocket(t *testing.T) {
	e := newEnv(t, nil)
	resp, err := http.Get(e.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUpgradeRequired {
		t.Fatalf("status %d, want 426", resp.StatusCode)
	}
}

func TestConnectionQuota(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.MaxConnections = 2 })
	a := e.connect(t, "room1", "a")
	defer a.close()
	b := e.connect(t, "room2", "b")
	tok := e.token(t, "room1", "c")
	_, status, err := e.tryDial(tok)
	if err == nil || status != http.StatusTooManyRequests {
		t.Fatalf("third connection: status %d err %v, want 429", status, err)
	}
	// A slot frees when a connection ends, and the refused token was not
	// burnt by the quota check.
	b.close()
	checkFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		if n := e.g.Stats().Connections; n != 1 {
			return errorf("%d connections", n)
		}
		return nil
	})
	e.dial(t, tok).close()
}

func TestRoomDeletedRefusesHandshake(t *testing.T) {
	e := newEnv(t, nil)
	tok := e.token(t, "room2", "u")
	e.rooms.del("room2")
	_, status, _ := e.tryDial(tok)
	if status != http.StatusNotFound {
		t.Fatalf("status %d, want 404", status)
	}
}

func TestOfferedProtocols(t *testing.T) {
	h := http.Header{}
	h.Add("Sec-WebSocket-Protocol", " a , b")
	h.Add("Sec-WebSocket-Protocol", "c,,")
	if got := strings.Join(offeredProtocols(h), "|"); got != "a|b|c" {
		t.Fatalf("got %q", got)
	}
}
