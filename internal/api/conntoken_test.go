package api

import (
	"testing"
	"time"

	"github.com/ivschatd/ivschatd/internal/chat"
	"github.com/ivschatd/ivschatd/internal/clusterstats"
)

func TestConnectionTokenRoundTripAndTampering(t *testing.T) {
	h := &Handler{cfg: Config{PageTokenKey: []byte("0123456789abcdef0123456789abcdef")}}
	cur := clusterstats.Cursor{ConnectedAt: time.Date(2026, 11, 29, 12, 59, 1, 500, time.UTC), Node: "node-a1b2", ID: 42}
	tok := h.encodeConnectionToken("AbCdEf123456", cur)
	got, err := h.decodeConnectionToken("AbCdEf123456", tok)
	if err != nil || got == nil || !got.ConnectedAt.Equal(cur.ConnectedAt) || got.Node != cur.Node || got.ID != cur.ID {
		t.Fatalf("round trip = %+v, %v", got, err)
	}
	if _, err := h.decodeConnectionToken("ZZZZZZ123456", tok); err == nil {
		t.Error("a token of another room was accepted")
	}
	if _, err := h.decodePageToken(chat.KindRoom, tok); err == nil {
		t.Error("a connections token was accepted by ListRooms")
	}
	if _, err := h.decodeConnectionToken("AbCdEf123456", h.encodePageToken(chat.KindRoom, chat.Cursor{ID: "AbCdEf123456"})); err == nil {
		t.Error("a ListRooms token was accepted as a connections token")
	}
	for i := range tok {
		b := []byte(tok)
		b[i] ^= 1
		if c, err := h.decodeConnectionToken("AbCdEf123456", string(b)); err == nil {
			t.Errorf("token altered at %d accepted: %+v", i, c)
		}
	}
	if c, err := h.decodeConnectionToken("AbCdEf123456", ""); c != nil || err != nil {
		t.Errorf("empty token = %+v, %v", c, err)
	}
}

func FuzzDecodeConnectionToken(f *testing.F) {
	h := &Handler{cfg: Config{PageTokenKey: []byte("0123456789abcdef0123456789abcdef")}}
	f.Add("AbCdEf123456", h.encodeConnectionToken("AbCdEf123456", clusterstats.Cursor{Node: "n", ID: 1}))
	f.Add("AbCdEf123456", "")
	f.Add("", "AAAA")
	f.Add("x", h.encodePageToken(chat.KindRoom, chat.Cursor{ID: "x"}))
	f.Fuzz(func(t *testing.T, room, tok string) {
		c, err := h.decodeConnectionToken(room, tok)
		if err != nil {
			if chat.ErrorCode(err) != chat.CodeValidation {
				t.Fatalf("error %v is not a ValidationException", err)
			}
			return
		}
		if c == nil {
			if tok != "" {
				t.Fatal("no cursor and no error for a token")
			}
			return
		}
		// Only what this key signed decodes, and it re-encodes the same.
		if again := h.encodeConnectionToken(room, *c); again != tok {
			t.Fatalf("accepted %q, which re-encodes as %q", tok, again)
		}
	})
}
