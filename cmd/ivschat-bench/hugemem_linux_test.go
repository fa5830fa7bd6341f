package main

import (
	"testing"
	"unsafe"
)

func TestCountersAreZeroedAndWritable(t *testing.T) {
	for _, n := range []int{0, 1, 1000, 19000 * viewerBuckets} {
		c := counters[uint32](n)
		if len(c) != n {
			t.Fatalf("counters(%d): len %d", n, len(c))
		}
		for i := range c {
			if c[i] != 0 {
				t.Fatalf("counters(%d)[%d] = %d, want 0", n, i, c[i])
			}
			c[i]++
		}
		if n > 0 && (c[0] != 1 || c[n-1] != 1) {
			t.Fatalf("counters(%d): writes did not stick", n)
		}
	}
}

// A mapping of huge pages starts on a huge-page boundary; a smaller one is
// an ordinary slice.
func TestCountersOfHugePagesAreAligned(t *testing.T) {
	big := counters[uint64](hugePage) // 8 huge pages
	if p := uintptr(unsafe.Pointer(&big[0])); p%hugePage != 0 {
		t.Fatalf("counters of %d bytes start at %#x, not on a %d-byte boundary", len(big)*8, p, hugePage)
	}
	big[len(big)-1] = 7 // the last counter is inside the mapping
}
