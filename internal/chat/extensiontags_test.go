package chat

import (
	"strconv"
	"testing"
	"time"
)

func TestExtensionTagInt(t *testing.T) {
	for _, tc := range []struct {
		in string
		n  int
		ok bool
	}{
		{"5", 5, true}, {"300", 300, true}, {"005", 5, true}, {"60", 60, true},
		{"4", 0, false}, {"301", 0, false}, {"0", 0, false}, {"", 0, false},
		{"abc", 0, false}, {"+5", 0, false}, {"-5", 0, false}, {" 5", 0, false},
		{"5 ", 0, false}, {"5.0", 0, false}, {"1e2", 0, false}, {"99999999999999999999", 0, false},
		{"٥", 0, false}, // an Arabic-Indic digit is not an ASCII digit
	} {
		n, ok := ExtensionTagInt(tc.in, 5, 300)
		if n != tc.n || ok != tc.ok {
			t.Errorf("ExtensionTagInt(%q) = %d, %v; want %d, %v", tc.in, n, ok, tc.n, tc.ok)
		}
	}
}

func TestViewerCountInterval(t *testing.T) {
	if d, ok := ViewerCountInterval(map[string]string{TagViewerCountInterval: "10"}); !ok || d != 10*time.Second {
		t.Errorf("got %v, %v", d, ok)
	}
	for _, tags := range []map[string]string{nil, {}, {TagViewerCountInterval: "4"}, {"team": "10"}, {TagViewerCountInterval: "x"}} {
		if d, ok := ViewerCountInterval(tags); ok {
			t.Errorf("ViewerCountInterval(%v) = %v, want off", tags, d)
		}
	}
}

// FuzzExtensionTagInt: tag values are untrusted input. The parser must agree
// with strconv on every decimal it accepts and accept nothing else.
func FuzzExtensionTagInt(f *testing.F) {
	for _, s := range []string{"5", "300", "", "abc", "-1", "+5", "0x10", "007", "1_0", "\x00", "9999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, ok := ExtensionTagInt(s, 1, 100)
		if !ok {
			if n != 0 {
				t.Fatalf("%q: n = %d with ok = false", s, n)
			}
			return
		}
		if n < 1 || n > 100 {
			t.Fatalf("%q: accepted %d out of range", s, n)
		}
		want, err := strconv.ParseUint(s, 10, 64)
		if err != nil || int(want) != n || s[0] == '+' {
			t.Fatalf("%q: accepted as %d; strconv says %d, %v", s, n, want, err)
		}
	})
}
