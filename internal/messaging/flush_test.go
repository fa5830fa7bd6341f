package messaging

import (
	"bytes"
	"testing"
)

// TestSkipBytes: the rest of a partial writev must be exactly the bytes the
// kernel did not take, frame boundaries or not.
func TestSkipBytes(t *testing.T) {
	frames := [][]byte{[]byte("abc"), []byte("de"), []byte("fghi")}
	all := bytes.Join(frames, nil)
	for n := 0; n <= len(all); n++ {
		got := bytes.Join(skipBytes(frames, n), nil)
		if !bytes.Equal(got, all[n:]) {
			t.Errorf("skipBytes(%d) = %q, want %q", n, got, all[n:])
		}
	}
	if string(frames[0]) != "abc" {
		t.Error("skipBytes modified its input")
	}
}
