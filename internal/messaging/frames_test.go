package messaging

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestAppendJSONStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{
		"", "plain", `quote " backslash \ slash /`, "ctl \x00\x01\x1f\x7f", "tab\tnl\ncr\r",
		"é😀中", "bad \xff\xfe utf8", "line\u2028para\u2029", "<html>&amp;",
	} {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		enc.Encode(s)
		want := strings.TrimSuffix(buf.String(), "\n")
		if got := string(appendJSONString(nil, s)); got != want {
			t.Errorf("appendJSONString(%q) = %s, want %s", s, got, want)
		}
	}
}

func TestFrameHeaderLengths(t *testing.T) {
	for _, n := range []int{0, 125, 126, 65535, 65536} {
		f := newFrameBuilder(n)
		f.b = append(f.b, strings.Repeat("x", n)...)
		b := f.finish()
		if b[0] != 0x81 {
			t.Fatalf("first byte %#x", b[0])
		}
		var hl, got int
		switch b[1] {
		case 126:
			hl, got = 4, int(b[2])<<8|int(b[3])
		case 127:
			hl = 10
			for _, c := range b[2:10] {
				got = got<<8 | int(c)
			}
		default:
			hl, got = 2, int(b[1])
		}
		if got != n || len(b) != hl+n {
			t.Fatalf("n=%d: header says %d, frame is %d bytes", n, got, len(b))
		}
	}
}

func TestCloseFrameTruncatesReasonOnRuneBoundary(t *testing.T) {
	f := closeFrame(1000, strings.Repeat("é", 100))
	if len(f) > 127 {
		t.Fatalf("close frame of %d bytes", len(f))
	}
	if !utf8.Valid(f[4:]) {
		t.Fatal("reason cut inside a UTF-8 sequence")
	}
}

func TestMemoryLedgerSingleUseAndExpiry(t *testing.T) {
	l := NewMemoryLedger()
	now := time.Unix(1000, 0)
	l.now = func() time.Time { return now }
	ctx := context.Background()
	if first, _ := l.Use(ctx, "a", now.Add(time.Minute)); !first {
		t.Fatal("first use refused")
	}
	if first, _ := l.Use(ctx, "a", now.Add(time.Minute)); first {
		t.Fatal("second use allowed")
	}
	l.Use(ctx, "b", now.Add(time.Hour))
	// After a's expiry (and the sweep interval), a is forgotten, b is not.
	now = now.Add(2 * time.Minute)
	l.Use(ctx, "c", now.Add(time.Minute))
	if n := l.Len(); n != 2 {
		t.Fatalf("%d entries after the sweep, want 2 (b and c)", n)
	}
	if first, _ := l.Use(ctx, "b", now.Add(time.Hour)); first {
		t.Fatal("b reused before its expiry")
	}
}

// FuzzDecodeClientFrame: the decoder never panics, and whatever it accepts
// is a known action; errors are always 400.
func FuzzDecodeClientFrame(f *testing.F) {
	for _, s := range []string{
		`{"Action":"SEND_MESSAGE","RequestId":"497f6eca-6276-4993-bfeb-53cbbbba6f08","Content":"hello","Attributes":{"k":"v"}}`,
		`{"Action":"DELETE_MESSAGE","RequestId":"r","Id":"I4fme01f7HYM","Reason":"[removed by moderator]"}`,
		`{"Action":"DISCONNECT_USER","RequestId":"r","UserId":"42fb390e","Reason":"spam"}`,
		`{"action":"send_message","content":"x"}`,
		`{"Action":"SEND_MESSAGE","Attributes":{"n":1},"RequestId":"r"}`,
		`{"Action":"SEND_MESSAGE","Content":null}`,
		`[]`, `null`, `"x"`, `{`, ``, " {\"Action\":1} ",
		"{\"Content\":\"\xff\"}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		req, err := decodeClientFrame(payload)
		if err != nil {
			if err.code != codeBadRequest || err.msg == "" {
				t.Fatalf("error %v", err)
			}
			return
		}
		switch req.Action {
		case actionSendMessage, actionDeleteMessage, actionDisconnectUser:
		default:
			t.Fatalf("accepted action %q", req.Action)
		}
		// Anything accepted can be echoed as a valid frame.
		content := ""
		if req.Content != nil {
			content = *req.Content
		}
		frame := encodeMessage("AAAAAAAAAAAA", req.RequestID, sortedAttrs(req.Attributes), content, time.Unix(0, 0), encodeSender("u", nil))
		payloadStart := 2
		switch frame[1] {
		case 126:
			payloadStart = 4
		case 127:
			payloadStart = 10
		}
		if !json.Valid(frame[payloadStart:]) {
			t.Fatalf("invalid frame %q", frame)
		}
	})
}
