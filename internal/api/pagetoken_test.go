package api

import (
	"testing"
	"time"

	"github.com/ivschatd/ivschatd/internal/chat"
)

func TestPageTokenRoundTripAndTampering(t *testing.T) {
	h := &Handler{cfg: Config{PageTokenKey: []byte("0123456789abcdef0123456789abcdef")}}
	cur := chat.Cursor{UpdateTime: time.Date(2026, 11, 21, 23, 0, 0, 123456000, time.UTC), ID: "AbCdEf123456"}
	tok := h.encodePageToken(chat.KindRoom, cur)
	got, err := h.decodePageToken(chat.KindRoom, tok)
	if err != nil || got == nil || !got.UpdateTime.Equal(cur.UpdateTime) || got.ID != cur.ID {
		t.Fatalf("round trip = %+v, %v", got, err)
	}
	if _, err := h.decodePageToken(chat.KindLoggingConfiguration, tok); err == nil {
		t.Error("a room token was accepted for logging configurations")
	}
	for i := range tok {
		b := []byte(tok)
		b[i] ^= 1
		if c, err := h.decodePageToken(chat.KindRoom, string(b)); err == nil {
			t.Errorf("token altered at %d accepted: %+v", i, c)
		}
	}
	other := &Handler{cfg: Config{PageTokenKey: []byte("another key of thirty-two bytes!")}}
	if _, err := other.decodePageToken(chat.KindRoom, tok); err == nil {
		t.Error("a token from another key was accepted")
	}
	if c, err := h.decodePageToken(chat.KindRoom, ""); c != nil || err != nil {
		t.Errorf("empty token = %+v, %v", c, err)
	}
}
