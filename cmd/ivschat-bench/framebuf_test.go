package main

import (
	"bytes"
	"slices"
	"testing"

	"github.com/gobwas/ws"
)

// splitAll feeds stream to a frameSplitter in reads of the given sizes
// (cycled), carrying what a read left incomplete into the next as the epoll
// viewers do, and returns the texts, what was written back and the end.
func splitAll(stream []byte, sizes []int) (texts []string, written []byte, st endState, done bool) {
	var s frameSplitter
	var out bytes.Buffer
	var carry []byte
	for i := 0; len(stream) > 0 && !done; i++ {
		n := min(max(sizes[i%len(sizes)], 1), len(stream))
		buf := append(slices.Clone(carry), stream[:n]...)
		stream = stream[n:]
		var used int
		used, st, done = s.split(buf, frameWriter{w: &out}, func(p []byte) { texts = append(texts, string(p)) })
		carry = buf[used:]
	}
	return texts, out.Bytes(), st, done
}

func serverFrames(t testing.TB, frames ...ws.Frame) []byte {
	var b bytes.Buffer
	for _, f := range frames {
		if err := ws.WriteFrame(&b, f); err != nil {
			t.Fatal(err)
		}
	}
	return b.Bytes()
}

func TestFrameSplitterAcrossReads(t *testing.T) {
	large := bytes.Repeat([]byte("y"), 70000) // a 64-bit length header
	medium := bytes.Repeat([]byte("m"), 300)  // a 16-bit length header
	stream := serverFrames(t,
		ws.NewTextFrame([]byte("first")),
		ws.NewPingFrame([]byte("p")),
		ws.NewTextFrame(medium),
		ws.NewTextFrame(large),
		ws.NewCloseFrame(ws.NewCloseFrameBody(ws.StatusPolicyViolation, "slow consumer")),
		ws.NewTextFrame([]byte("after the close")),
	)
	for _, sizes := range [][]int{{len(stream)}, {1}, {2, 3}, {7}, {4096}, {100, 1, 9000}} {
		texts, written, st, done := splitAll(stream, sizes)
		if !done || !st.closed || st.code != ws.StatusPolicyViolation || st.reason != "slow consumer" {
			t.Errorf("reads of %v: end %+v done %v", sizes, st, done)
		}
		if len(texts) != 3 || texts[0] != "first" || texts[1] != string(medium) || texts[2] != string(large) {
			t.Errorf("reads of %v: %d texts", sizes, len(texts))
		}
		// What went back: a masked pong with the ping's payload, then the
		// close echoed with its code.
		r := bytes.NewReader(written)
		var replies []ws.Frame
		for r.Len() > 0 {
			f, err := readTestFrame(r)
			if err != nil {
				t.Fatalf("reads of %v: reply: %v", sizes, err)
			}
			if !f.Header.Masked {
				t.Errorf("reads of %v: unmasked %v frame", sizes, f.Header.OpCode)
			}
			replies = append(replies, ws.UnmaskFrameInPlace(f))
		}
		if len(replies) != 2 || replies[0].Header.OpCode != ws.OpPong || string(replies[0].Payload) != "p" ||
			replies[1].Header.OpCode != ws.OpClose {
			t.Fatalf("reads of %v: replies %+v", sizes, replies)
		}
		if code, _ := ws.ParseCloseFrameData(replies[1].Payload); code != ws.StatusPolicyViolation {
			t.Errorf("reads of %v: close echoed with %d", sizes, code)
		}
	}
}

func TestFrameSplitterRejects(t *testing.T) {
	tooLong := ws.Header{Fin: true, OpCode: ws.OpText, Length: maxFrameSize + 1}
	var b bytes.Buffer
	ws.WriteHeader(&b, tooLong)
	_, _, st, done := splitAll(b.Bytes(), []int{1})
	if !done || st.closed || st.err == nil {
		t.Errorf("a frame over %d bytes: end %+v done %v", maxFrameSize, st, done)
	}
	// A 64-bit length with its most significant bit set is malformed.
	_, _, st, done = splitAll([]byte{0x81, 127, 0x80, 0, 0, 0, 0, 0, 0, 1}, []int{3})
	if !done || st.err == nil {
		t.Errorf("malformed length: end %+v done %v", st, done)
	}
}

// FuzzFrameSplitter checks that any bytes, however a socket splits them,
// give the same frames and the same end as when read at once, and never
// a panic.
func FuzzFrameSplitter(f *testing.F) {
	f.Add(serverFrames(f, ws.NewTextFrame([]byte("a")), ws.NewPingFrame(nil), ws.NewTextFrame(bytes.Repeat([]byte("b"), 200))), uint8(3))
	f.Add(serverFrames(f, ws.NewCloseFrame(ws.NewCloseFrameBody(ws.StatusNormalClosure, "bye"))), uint8(1))
	f.Add([]byte{0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0}, uint8(2))
	f.Fuzz(func(t *testing.T, stream []byte, size uint8) {
		wantTexts, wantWritten, wantSt, wantDone := splitAll(stream, []int{len(stream)})
		texts, written, st, done := splitAll(stream, []int{int(size)})
		if !slices.Equal(texts, wantTexts) || done != wantDone || st.closed != wantSt.closed ||
			st.code != wantSt.code || st.reason != wantSt.reason || (st.err == nil) != (wantSt.err == nil) {
			t.Fatalf("reads of %d: %q %+v %v; at once: %q %+v %v", size, texts, st, done, wantTexts, wantSt, wantDone)
		}
		// Replies are masked with random keys; compare their count.
		if (len(written) == 0) != (len(wantWritten) == 0) {
			t.Fatalf("reads of %d wrote %d bytes, at once %d", size, len(written), len(wantWritten))
		}
	})
}
