package api

import (
	"testing"

	"github.com/ivschatd/ivschatd/internal/chat"
	"github.com/ivschatd/ivschatd/internal/clusterstats"
)

func TestBanTokenRoundTripAndTampering(t *testing.T) {
	h := &Handler{cfg: Config{PageTokenKey: []byte("0123456789abcdef0123456789abcdef")}}
	tok := h.encodeBanToken("AbCdEf123456", "user-ü 7")
	got, err := h.decodeBanToken("AbCdEf123456", tok)
	if err != nil || got != "user-ü 7" {
		t.Fatalf("round trip = %q, %v", got, err)
	}
	if _, err := h.decodeBanToken("ZZZZZZ123456", tok); err == nil {
		t.Error("a token of another room was accepted")
	}
	if _, err := h.decodeConnectionToken("AbCdEf123456", tok); err == nil {
		t.Error("a bans token was accepted by ListRoomConnections")
	}
	if _, err := h.decodePageToken(chat.KindRoom, tok); err == nil {
		t.Error("a bans token was accepted by ListRooms")
	}
	if _, err := h.decodeBanToken("AbCdEf123456", h.encodeConnectionToken("AbCdEf123456", clusterstats.Cursor{Node: "n"})); err == nil {
		t.Error("a connections token was accepted as a bans token")
	}
	for i := range tok {
		b := []byte(tok)
		b[i] ^= 1
		if u, err := h.decodeBanToken("AbCdEf123456", string(b)); err == nil {
			t.Errorf("token altered at %d accepted: %q", i, u)
		}
	}
	if u, err := h.decodeBanToken("AbCdEf123456", ""); u != "" || err != nil {
		t.Errorf("empty token = %q, %v", u, err)
	}
	if _, err := h.decodeBanToken("AbCdEf123456", h.encodeBanToken("AbCdEf123456", "")); err == nil {
		t.Error("a token without a user was accepted")
	}
}

func FuzzDecodeBanToken(f *testing.F) {
	h := &Handler{cfg: Config{PageTokenKey: []byte("0123456789abcdef0123456789abcdef")}}
	f.Add("AbCdEf123456", h.encodeBanToken("AbCdEf123456", "mallory"))
	f.Add("AbCdEf123456", "")
	f.Add("", "AAAA")
	f.Add("x", h.encodePageToken(chat.KindRoom, chat.Cursor{ID: "x"}))
	f.Add("x", h.encodeBanToken("x", ""))
	f.Fuzz(func(t *testing.T, room, tok string) {
		after, err := h.decodeBanToken(room, tok)
		if err != nil {
			if chat.ErrorCode(err) != chat.CodeValidation {
				t.Fatalf("error %v is not a ValidationException", err)
			}
			return
		}
		if after == "" {
			if tok != "" {
				t.Fatal("no position and no error for a token")
			}
			return
		}
		// Only what this key signed decodes, and it re-encodes the same.
		if again := h.encodeBanToken(room, after); again != tok {
			t.Fatalf("accepted %q, which re-encodes as %q", tok, again)
		}
	})
}
