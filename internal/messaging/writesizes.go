package messaging

import (
	"math/bits"
	"slices"
	"sync/atomic"
)

// framesPerWriteBounds are the upper bounds of the frames-per-write
// histogram's buckets (powers of two up to maxBatchFrames); a last bucket,
// +Inf, takes the rest (a full batch plus private or close frames).
var framesPerWriteBounds = [...]uint64{1, 2, 4, 8, 16, 32, 64, 128, 256}

const writeSizeBuckets = len(framesPerWriteBounds) + 1

// writeSizeBucket is the index of the bucket of a write of n frames: the
// least i with n <= framesPerWriteBounds[i], or the +Inf bucket.
func writeSizeBucket(n int) int {
	if n <= 1 {
		return 0
	}
	return min(bits.Len(uint(n-1)), writeSizeBuckets-1)
}

// localWriteSizes counts one flush worker's writes by size, without
// atomics; writeSizes.add folds it into the gateway's counts.
type localWriteSizes struct {
	counts [writeSizeBuckets]uint64
	frames uint64
}

func (l *localWriteSizes) observe(n int) {
	l.counts[writeSizeBucket(n)]++
	l.frames += uint64(n)
}

// writeSizes is the gateway's frames-per-write histogram (not cumulative:
// counts[i] is the writes of bucket i alone).
type writeSizes struct {
	counts [writeSizeBuckets]atomic.Uint64
	frames atomic.Uint64
}

// observe counts one write of n frames (writer goroutines, which write far
// less often than flush workers).
func (h *writeSizes) observe(n int) {
	h.counts[writeSizeBucket(n)].Add(1)
	h.frames.Add(uint64(n))
}

// add folds l into h and resets l.
func (h *writeSizes) add(l *localWriteSizes) {
	for i, n := range l.counts {
		if n > 0 {
			h.counts[i].Add(n)
		}
	}
	if l.frames > 0 {
		h.frames.Add(l.frames)
	}
	*l = localWriteSizes{}
}

// load returns the histogram in the Prometheus layout.
func (h *writeSizes) load() FramesPerWrite {
	s := FramesPerWrite{
		Bounds: slices.Clone(framesPerWriteBounds[:]),
		Counts: make([]uint64, len(framesPerWriteBounds)),
	}
	for i := range h.counts {
		s.Count += h.counts[i].Load()
		if i < len(s.Counts) {
			s.Counts[i] = s.Count
		}
	}
	s.Sum = h.frames.Load()
	return s
}

// FramesPerWrite is the distribution of the frames carried by one socket
// write, in the Prometheus layout: Counts[i] is the number of writes of at
// most Bounds[i] frames (cumulative), Count all writes, Sum all their
// frames. Sum/Count is the coalescing factor; the distribution shows how
// the flush pacing (flushpace.go) spreads it.
type FramesPerWrite struct {
	Bounds []uint64
	Counts []uint64
	Count  uint64
	Sum    uint64
}
