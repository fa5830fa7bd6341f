package broker

import (
	"bytes"
	"encoding/binary"
	"reflect"
	"testing"
	"time"
)

func TestCodecRoundTrip(t *testing.T) {
	for _, m := range []Message{
		{Kind: KindFrame, Frame: []byte("\x81\x05hello")},
		{Kind: KindFrame, Frame: bytes.Repeat([]byte{0xff}, 70000)},
		{Kind: KindDisconnectUser, UserID: "u", Reason: "spam"},
		{Kind: KindCloseRoom},
		{Kind: KindRoomUpdated, MaxMessageLength: 500, MaxMessageRate: 10},
		{Kind: KindRoomUpdated, MaxMessageLength: -1, MaxMessageRate: 1 << 31},
		{Kind: KindRoomUpdated, MaxMessageLength: 20, MaxMessageRate: 5,
			UpdateTime: time.Date(2026, 11, 29, 8, 0, 0, 123456000, time.UTC),
			ReviewURI:  "https://review.example/hook", ReviewFallback: "DENY"},
		{Kind: KindRoomUpdated, MaxMessageLength: 20, MaxMessageRate: 5, History: 100},
		{Kind: KindRoomUpdated, History: -1},
	} {
		enc := appendMessage(nil, m)
		got, err := decodeMessage(string(enc))
		if err != nil || !reflect.DeepEqual(got, m) {
			t.Errorf("round trip of %+v: %+v, %v", m.Kind, got.Kind, err)
		}
	}
}

// TestDecodeFirstReleaseRoomUpdate decodes a room update as the first
// release wrote it (ending after maxRate): no UpdateTime, no handler, so
// the receiver knows to re-read the room instead of trusting the order.
func TestDecodeFirstReleaseRoomUpdate(t *testing.T) {
	old := []byte{1, byte(KindRoomUpdated), 0, 0, 0}
	old = binary.AppendVarint(old, 300)
	old = binary.AppendVarint(old, 7)
	got, err := decodeMessage(string(old))
	want := Message{Kind: KindRoomUpdated, MaxMessageLength: 300, MaxMessageRate: 7, History: -1}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("decode: %+v, %v; want %+v", got, err, want)
	}
}

// TestDecodeUpdateWithoutHistory decodes a room update from a node that
// predates recent messages (ending after fallback): History -1, so the
// receiver keeps its setting instead of turning history off.
func TestDecodeUpdateWithoutHistory(t *testing.T) {
	m := Message{Kind: KindRoomUpdated, MaxMessageLength: 300, MaxMessageRate: 7, ReviewURI: "https://x", ReviewFallback: "ALLOW"}
	enc := appendMessage(nil, m)
	got, err := decodeMessage(string(enc[:len(enc)-1]))
	m.History = -1
	if err != nil || !reflect.DeepEqual(got, m) {
		t.Fatalf("decode: %+v, %v; want %+v", got, err, m)
	}
}

// TestCodecCompact pins the encoding of a frame: version, kind, length,
// bytes, one byte for each empty field, and History+1 (1).
// bytes, and one byte for each empty field.
func TestCodecCompact(t *testing.T) {
	got := appendMessage(nil, Message{Kind: KindFrame, Frame: []byte("hi")})
	want := []byte{1, 1, 2, 'h', 'i', 0, 0, 0, 0, 0, 0, 0, 1}
	if !bytes.Equal(got, want) {
		t.Fatalf("encoding: % x, want % x", got, want)
	}
}

func TestDecodeRejects(t *testing.T) {
	good := appendMessage(nil, Message{Kind: KindDisconnectUser, UserID: "user", Reason: "why"})
	for name, p := range map[string][]byte{
		"empty":           nil,
		"version only":    {1},
		"unknown version": append([]byte{2}, good[1:]...),
		"kind zero":       {1, 0, 0, 0, 0, 0, 0},
		"unknown kind":    {1, 9, 0, 0, 0, 0, 0},
		"truncated":       good[:len(good)-2],
		"length too long": {1, 1, 50, 'x'},
		"varint overflow": {1, 4, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
	} {
		if m, err := decodeMessage(string(p)); err == nil {
			t.Errorf("%s: decoded %+v", name, m)
		}
	}
	// Appended fields from a later release are skipped.
	if _, err := decodeMessage(string(append(good, 7, 7))); err != nil {
		t.Errorf("trailing bytes: %v", err)
	}
}

func FuzzDecodeMessage(f *testing.F) {
	f.Add(appendMessage(nil, Message{Kind: KindFrame, Frame: []byte("\x81\x02{}")}))
	f.Add(appendMessage(nil, Message{Kind: KindDisconnectUser, UserID: "u", Reason: "r"}))
	f.Add(appendMessage(nil, Message{Kind: KindCloseRoom}))
	f.Add(appendMessage(nil, Message{Kind: KindRoomUpdated, MaxMessageLength: 500, MaxMessageRate: -3}))
	f.Add(appendMessage(nil, Message{Kind: KindRoomUpdated, MaxMessageLength: 500, History: 50}))
	f.Add([]byte{1, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, p []byte) {
		m, err := decodeMessage(string(p))
		if err != nil {
			return
		}
		// Whatever decodes re-encodes to something that decodes the same.
		again, err := decodeMessage(string(appendMessage(nil, m)))
		if err != nil || !reflect.DeepEqual(again, m) {
			t.Fatalf("re-decode of %+v: %+v, %v", m, again, err)
		}
	})
}
