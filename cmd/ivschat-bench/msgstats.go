package main

import (
	"bytes"
	"math"
	"math/bits"
	"slices"
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
	h.recordIn(latencyBucket(d), d)
}

// latencyBucket is the bucket of a latency in microseconds.
func latencyBucket(d time.Duration) int {
	if d < 0 {
		// Sender and receiver read the same clock; a negative value can only
		// come from a wall-clock step, which is not worth a separate figure.
		d = 0
	}
	return histBucket(uint64(d / time.Microsecond))
}

// recordIn records d into bucket b, which the caller computed with
// latencyBucket (a viewer files each latency in two histograms).
func (h *histogram) recordIn(b int, d time.Duration) {
	d = max(d, 0)
	h.counts[b].Add(1)
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
// the readers have stopped. Pooled latencies go into sharded histograms
// because all readers write them concurrently; there are trackerShards per
// path (viewer's node, sender's node), so that a cluster run can tell the
// latency through the broker from the latency on one node.
type tracker struct {
	senders    int
	nodes      int      // viewer v is on node v%nodes, sender s on node s%nodes
	lastSeq    []uint32 // [viewer*senders+sender]: last sequence seen, 0 = none
	received   []uint64 // bench messages received per viewer
	reordered  []uint32 // a sender's sequence went backwards
	duplicates []uint32 // a sender's sequence repeated
	viewerHist []uint32 // [viewer*viewerBuckets+bucket]: each viewer's own latencies
	shards     []*histogram
}

const trackerShards = 16

// viewerBuckets is the size of a viewer's own latency histogram: the
// pooled histogram's buckets (histBucket, 32 per power of two) up to 2^24 µs
// (16.8 s; anything slower is counted in the last bucket). 640 uint32 are
// 2.5 KB per viewer, 46 MiB at 19,000 viewers; the pooled layout's full
// range would be three times that, and a sample slice at 100 messages/s for
// 5 minutes 120 KB per viewer. Reported as bucket midpoints, a per-viewer
// percentile is within 1/64 (1.6%) of the true value.
const (
	viewerMaxMicros = 1<<24 - 1
	viewerBuckets   = (24 - histSubBits + 1) * histSub
)

func newTracker(viewers, senders, nodes int) *tracker {
	t := &tracker{
		senders:    senders,
		nodes:      nodes,
		lastSeq:    counters[uint32](viewers * senders),
		received:   counters[uint64](viewers),
		reordered:  counters[uint32](viewers),
		duplicates: counters[uint32](viewers),
		viewerHist: counters[uint32](viewers * viewerBuckets),
		shards:     make([]*histogram, nodes*nodes*trackerShards),
	}
	for i := range t.shards {
		t.shards[i] = new(histogram)
	}
	return t
}

// pathShards are the pooled histograms of messages sent through node from
// and received at node to.
func (t *tracker) pathShards(to, from int) []*histogram {
	i := (to*t.nodes + from) * trackerShards
	return t.shards[i : i+trackerShards]
}

// nodeShards are the pooled histograms of every message received at node.
func (t *tracker) nodeShards(node int) []*histogram {
	i := node * t.nodes * trackerShards
	return t.shards[i : i+t.nodes*trackerShards]
}

// observe records one bench message at viewer v. Sequences start at 1.
func (t *tracker) observe(v, sender int, seq uint32, latency time.Duration) {
	t.received[v]++
	b := latencyBucket(latency)
	t.viewerHist[v*viewerBuckets+min(b, viewerBuckets-1)]++
	from := 0
	if sender >= 0 {
		from = sender % t.nodes
	}
	t.pathShards(v%t.nodes, from)[(v/t.nodes)%trackerShards].recordIn(b, latency)
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

// viewerPercentiles returns viewer v's own p50 and p99 (ok is false if it
// received nothing). Only call it once the readers have stopped.
func (t *tracker) viewerPercentiles(v int) (p50, p99 time.Duration, ok bool) {
	return bucketPercentiles(t.viewerHist[v*viewerBuckets : (v+1)*viewerBuckets])
}

// bucketPercentiles computes the nearest-rank p50 and p99 of one viewer's
// histogram, each reported as the midpoint of its bucket.
func bucketPercentiles(counts []uint32) (p50, p99 time.Duration, ok bool) {
	var n uint64
	for _, c := range counts {
		n += uint64(c)
	}
	if n == 0 {
		return 0, 0, false
	}
	r50, r99 := nearestRank(0.50, n), nearestRank(0.99, n)
	var cum uint64
	found50 := false
	for b, c := range counts {
		cum += uint64(c)
		if !found50 && cum >= r50 {
			p50, found50 = bucketMid(b), true
		}
		if cum >= r99 {
			return p50, bucketMid(b), true
		}
	}
	panic("unreachable: the ranks are at most the count")
}

// nearestRank is the 1-based rank of percentile p among n values:
// ceil(p*n), at least 1.
func nearestRank(p float64, n uint64) uint64 {
	return max(uint64(math.Ceil(p*float64(n)-1e-9)), 1)
}

// bucketMid is the middle of bucket b's range of microseconds.
func bucketMid(b int) time.Duration {
	lo := uint64(0)
	if b > 0 {
		lo = histUpper(b-1) + 1
	}
	return time.Duration((lo+histUpper(b))/2) * time.Microsecond
}

// spread is how a per-viewer figure is distributed over the viewers: the
// best viewer, the median one, the 99th percentile and the worst
// (nearest rank over the viewers' exact values).
type spread struct {
	Min    float64 `json:"min"`
	Median float64 `json:"median"`
	P99    float64 `json:"p99"`
	Max    float64 `json:"max"`
}

func spreadOf(vals []float64) spread {
	if len(vals) == 0 {
		return spread{}
	}
	s := slices.Clone(vals)
	slices.Sort(s)
	at := func(p float64) float64 { return s[nearestRank(p, uint64(len(s)))-1] }
	return spread{Min: s[0], Median: at(0.50), P99: at(0.99), Max: s[len(s)-1]}
}

// perViewerLatency is the distribution over viewers of each viewer's own
// p50 and p99, in milliseconds: the pooled percentiles can hide a minority
// of viewers that see every message late.
type perViewerLatency struct {
	Viewers int    `json:"viewers"` // viewers that received at least one message
	P50     spread `json:"p50"`
	P99     spread `json:"p99"`
}

// perViewer summarizes the viewers for which include is true. ceiling is
// the exact slowest latency among them (the pooled maximum): a bucket's
// midpoint can lie above it, and no viewer's percentile can.
func (t *tracker) perViewer(include func(v int) bool, ceiling time.Duration) *perViewerLatency {
	var p50s, p99s []float64
	for v := range t.received {
		if !include(v) {
			continue
		}
		if a, b, ok := t.viewerPercentiles(v); ok {
			p50s, p99s = append(p50s, ms(min(a, ceiling))), append(p99s, ms(min(b, ceiling)))
		}
	}
	return &perViewerLatency{Viewers: len(p50s), P50: spreadOf(p50s), P99: spreadOf(p99s)}
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
