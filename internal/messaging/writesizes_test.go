package messaging

import "testing"

// Each write lands in the least bucket whose bound holds it, and the loaded
// histogram is cumulative with Count and Sum over all writes.
func TestWriteSizes(t *testing.T) {
	for _, c := range []struct{ n, bucket int }{
		{0, 0}, {1, 0}, {2, 1}, {3, 2}, {4, 2}, {5, 3}, {8, 3}, {9, 4},
		{128, 7}, {129, 8}, {256, 8}, {257, 9}, {1000, 9},
	} {
		if got := writeSizeBucket(c.n); got != c.bucket {
			t.Errorf("writeSizeBucket(%d) = %d, want %d", c.n, got, c.bucket)
		}
		if c.bucket < len(framesPerWriteBounds) && uint64(max(c.n, 1)) > framesPerWriteBounds[c.bucket] {
			t.Errorf("%d frames exceed the bound %d of bucket %d", c.n, framesPerWriteBounds[c.bucket], c.bucket)
		}
	}

	var h writeSizes
	var l localWriteSizes
	for _, n := range []int{1, 1, 3, 300} {
		l.observe(n)
	}
	h.add(&l)
	if l != (localWriteSizes{}) {
		t.Error("add did not reset the local counts")
	}
	h.observe(2)
	s := h.load()
	if s.Count != 5 || s.Sum != 307 {
		t.Errorf("count %d sum %d, want 5 and 307", s.Count, s.Sum)
	}
	want := []uint64{2, 3, 4, 4, 4, 4, 4, 4, 4} // ≤1, ≤2, ≤4, … ≤256; the 300 only in Count
	for i := range want {
		if s.Counts[i] != want[i] || s.Bounds[i] != framesPerWriteBounds[i] {
			t.Errorf("bucket ≤%d: %d, want %d", s.Bounds[i], s.Counts[i], want[i])
		}
	}
}
