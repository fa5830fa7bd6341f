package main

import (
	"bytes"
	"math/bits"
	"sync/atomic"
	"time"
)

// histogram records latencies in microseconds in log-linear buckets: exact
// below 32 µs, then 32 buckets per power of two, so a reported percentile is
// at most about 3% above the true value. Fixed buckets instead of a sample
// slice because a 5,000-viewer room at 100 messages/s delivers 500,000 frames
// a second: keeping every sample for 5 minutes would take over a gigabyte.
// All methods are safe for concurrent use.
type histogram struct {
	counts [histBuckets]atomic.Uint64
	n      atomic.Uint64
	max    atomic.Int64 // nanoseconds, exact
}

const (
	histSubBits = 5
	histSub     = 1 << histSubBits
	histBuckets = (64 - histSubBits + 1) * histSub
)

// histBucket maps a value to its bucket: values below histSub have a bucket
// each; above, the bucket is chosen by the top histSubBits+1 significant bits.
func histBucket(v uint64) int {
	if v < histSub {
		return int(v)
	}
	shift := bits.Len64(v) - histSubBits - 1
	return (shift+1)*histSub + int(v>>shift) - histSub
}

// histUpper is the largest value that falls into bucket b.
func histUpper(b int) uint64 {
	if b < histSub {
		return uint64(b)
	}
	shift := b/histSub - 1
	mantissa := uint64(b%histSub + histSub)
	return (mantissa+1)<<shift - 1
}

func (h *histogram) record(d time.Duration) {
	if d < 0 {
		// Sender and receiver read the same clock; a negative value can only
		// come from a wall-clock step, which is not worth a separate figure.
		d = 0
	}
	h.counts[histBucket(uint64(d/time.Microsecond))].Add(1)
	h.n.Add(1)
	for {
		m := h.max.Load()
		if int64(d) <= m || h.max.CompareAndSwap(m, int64(d)) {
			return
		}
	}
}

// latencySummary holds merged percentiles.
type latencySummary struct {
	Count uint64
	P50   time.Duration
	P90   time.Duration
	P99   time.Duration
	Max   time.Duration
}

// summarize merges shards and reports percentiles as bucket upper bounds
// (never above the exact maximum), so they err on the pessimistic side.
func summarize(shards []*histogram) latencySummary {
	var merged [histBuckets]uint64
	var s latencySummary
	for _, h := range shards {
		for i := range merged {
			merged[i] += h.counts[i].Load()
		}
		s.Max = max(s.Max, time.Duration(h.max.Load()))
	}
	for _, c := range merged {
		s.Count += c
	}
	if s.Count == 0 {
		return s
	}
	pct := func(p float64) time.Duration {
		rank := uint64(p*float64(s.Count) + 0.999999)
		rank = max(rank, 1)
		var cum uint64
		for i, c := range merged {
			cum += c
			if cum >= rank {
				return min(time.Duration(histUpper(i))*time.Microsecond, s.Max)
			}
		}
		return s.Max
	}
	s.P50, s.P90, s.P99 = pct(0.50), pct(0.90), pct(0.99)
	return s
}

// tracker is the per-viewer delivery bookkeeping. The per-viewer slices are
// flat (one entry per viewer, or per viewer and sender) rather than a struct
// per viewer so that 10,000 viewers cost a few contiguous arrays, and each
// entry is written only by its viewer's reader goroutine; they are read after
// the readers have stopped. Latencies go into sharded histograms because all
// readers write them concurrently.
type tracker struct {
	senders    int
	lastSeq    []uint32 // [viewer*senders+sender]: last sequence seen, 0 = none
	received   []uint64 // bench messages received per viewer
	reordered  []uint32 // a sender's sequence went backwards
	duplicates []uint32 // a sender's sequence repeated
	shards     []*histogram
}

const trackerShards = 16

func newTracker(viewers, senders int) *tracker {
	t := &tracker{
		senders:    senders,
		lastSeq:    make([]uint32, viewers*senders),
		received:   make([]uint64, viewers),
		reordered:  make([]uint32, viewers),
		duplicates: make([]uint32, viewers),
		shards:     make([]*histogram, trackerShards),
	}
	for i := range t.shards {
		t.shards[i] = new(histogram)
	}
	return t
}

// observe records one bench message at viewer v. Sequences start at 1.
func (t *tracker) observe(v, sender int, seq uint32, latency time.Duration) {
	t.received[v]++
	t.shards[v%trackerShards].record(latency)
	if sender < 0 || sender >= t.senders {
		return
	}
	last := &t.lastSeq[v*t.senders+sender]
	switch {
	case seq > *last:
		*last = seq
	case seq == *last:
		t.duplicates[v]++
	default:
		t.reordered[v]++
	}
}

// delivered is the running total across viewers, safe to call while readers
// are running (it reads the atomic histogram counts).
func (t *tracker) delivered() uint64 {
	var n uint64
	for _, h := range t.shards {
		n += h.n.Load()
	}
	return n
}

// benchAttr is the message attribute that carries "sender.seq.sendUnixNano".
// An attribute rather than Content because the server copies attributes into
// the MESSAGE verbatim and the key is unique in the frame (Sender.Attributes
// come from the token, which the generator creates without attributes).
const benchAttr = "ivsbench"

// benchAttrKey is searched without its opening quote: bytes.Index looks for
// the needle's first bytes, and a leading '"' matches at every JSON key and
// string, while 'i' hardly occurs before the attribute. Measured on a
// typical MESSAGE frame: 215 ns per parse with the quote, 130 ns without; at
// 500,000 frames/s that is 4% of a core the server can use.
var benchAttrKey = []byte(benchAttr + `":"`)

// parseBenchAttr finds the bench attribute in a MESSAGE frame without
// decoding the JSON: a viewer parses every frame of the room, and a full
// json.Unmarshal would allocate several times per frame.
func parseBenchAttr(p []byte) (sender int, seq uint32, sent int64, ok bool) {
	var i int
	for {
		j := bytes.Index(p[i:], benchAttrKey)
		if j < 0 {
			return 0, 0, 0, false
		}
		i += j
		if i > 0 && p[i-1] == '"' {
			break
		}
		i++
	}
	p = p[i+len(benchAttrKey):]
	var vals [3]uint64
	for k := range vals {
		j := 0
		for j < len(p) && p[j] >= '0' && p[j] <= '9' {
			vals[k] = vals[k]*10 + uint64(p[j]-'0')
			j++
		}
		want := byte('.')
		if k == len(vals)-1 {
			want = '"'
		}
		if j == 0 || j >= len(p) || p[j] != want {
			return 0, 0, 0, false
		}
		p = p[j+1:]
	}
	return int(vals[0]), uint32(vals[1]), int64(vals[2]), true
}
