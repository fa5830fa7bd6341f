package main

import (
	"math"
	"slices"
	"sync"
	"time"
)

// seriesGrowth is how one sampled series moved after warm-up.
type seriesGrowth struct {
	Samples     int     `json:"samples"`
	First       float64 `json:"first"`
	Last        float64 `json:"last"`
	Abs         float64 `json:"growth"`         // last - first
	Pct         float64 `json:"growthPct"`      // of first
	SlopePerMin float64 `json:"slopePerMinute"` // least squares, units per minute
	// FitPct is the growth of the least-squares line over the samples, in
	// percent of the line's value at the first sample. The verdict uses it:
	// one noisy sample at either end (RSS moves by a few percent as the
	// allocator returns and takes pages) decides first-versus-last, while a
	// leak shows as a slope over every sample.
	FitPct float64 `json:"fittedGrowthPct"`
	Pass   bool    `json:"pass"`
}

// growthOf measures a series from its first to its last sample, and its
// least-squares line. t is in seconds; samples before warmup (seconds) are
// left out, and so are samples that could not be read (NaN). A series with
// fewer than two samples after warm-up has nothing to judge and fails, so a
// run too short for its warm-up cannot pass.
func growthOf(t, v []float64, warmup, maxGrowthPct float64) seriesGrowth {
	var xs, ys []float64
	for i := range t {
		if t[i] >= warmup && !math.IsNaN(v[i]) {
			xs, ys = append(xs, t[i]/60), append(ys, v[i])
		}
	}
	g := seriesGrowth{Samples: len(xs)}
	if len(xs) < 2 {
		return g
	}
	g.First, g.Last = ys[0], ys[len(ys)-1]
	g.Abs = g.Last - g.First
	if g.First != 0 {
		g.Pct = 100 * g.Abs / g.First
	}
	g.SlopePerMin = lsqSlope(xs, ys)
	var mx, my float64
	for i := range xs {
		mx += xs[i]
		my += ys[i]
	}
	mx, my = mx/float64(len(xs)), my/float64(len(ys))
	x0, xn := xs[0], xs[len(xs)-1]
	fitStart := my - g.SlopePerMin*(mx-x0)
	fitGrowth := g.SlopePerMin * (xn - x0)
	if fitStart > 0 {
		g.FitPct = 100 * fitGrowth / fitStart
	}
	g.Pass = g.FitPct <= maxGrowthPct && (fitStart > 0 || fitGrowth <= 0)
	return g
}

// lsqSlope is the least-squares slope of y over x.
func lsqSlope(x, y []float64) float64 {
	n := float64(len(x))
	var sx, sy float64
	for i := range x {
		sx += x[i]
		sy += y[i]
	}
	mx, my := sx/n, sy/n
	var num, den float64
	for i := range x {
		num += (x[i] - mx) * (y[i] - my)
		den += (x[i] - mx) * (x[i] - mx)
	}
	if den == 0 {
		return 0
	}
	return num / den
}

// soakTracker is the soak's delivery bookkeeping, bounded by connection
// slots × senders whatever the run's length: instead of remembering each
// message, a connection remembers per sender the highest sequence the
// sender had begun to send when the handshake completed (base), the highest
// sequence it received (last) and how many sequences above base it received
// in order (count). The server delivers each sender's messages in order, so
// when the connection ends, every sequence in (base, top] that was not
// counted is lost, where top is the higher of last and the sender's highest
// sequence written at least the grace period before the end (messages that
// had time to arrive). Sequences written later that did not arrive are
// missed because the viewer left, not lost.
//
// Each slot's entries are written only by the goroutine that reads the
// slot's current connection, and begin/end are called by that goroutine (or
// before it starts), so they need no locks.
type soakTracker struct {
	senders int
	base    []uint32 // [slot*senders+sender]
	last    []uint32
	count   []uint32
	reorder []uint32 // per slot: a sequence at or below last
}

func newSoakTracker(slots, senders int) *soakTracker {
	return &soakTracker{
		senders: senders,
		base:    make([]uint32, slots*senders),
		last:    make([]uint32, slots*senders),
		count:   make([]uint32, slots*senders),
		reorder: make([]uint32, slots),
	}
}

// begin starts a new connection in slot: started[s] is sender s's highest
// sequence whose send had begun when the handshake completed.
func (t *soakTracker) begin(slot int, started []uint32) {
	row := slot * t.senders
	copy(t.base[row:row+t.senders], started)
	copy(t.last[row:row+t.senders], started)
	clear(t.count[row : row+t.senders])
	t.reorder[slot] = 0
}

// observe records one message from sender s with sequence seq at slot.
// Messages at or below base were sent before the connection existed: the
// server may deliver them or not, and they are not judged.
func (t *soakTracker) observe(slot, s int, seq uint32) {
	if s < 0 || s >= t.senders {
		return
	}
	i := slot*t.senders + s
	switch {
	case seq <= t.base[i]:
	case seq > t.last[i]:
		t.last[i] = seq
		t.count[i]++
	default:
		t.reorder[slot]++ // duplicate or out of order
	}
}

// slotResult is one ended connection's account.
type slotResult struct {
	expected uint64 // messages the connection had to receive
	received uint64 // of those, received
	lost     uint64 // expected - received
	left     uint64 // sent while it was leaving and not received: not loss
	reorder  uint64
}

// end settles slot's connection. arrived[s] is sender s's highest sequence
// written at least the grace period before the connection ended, started[s]
// the highest begun by then; only senders with judge(s) true (the room's)
// are counted. refused(s, lo, hi) is how many of sender s's sequences in
// (lo, hi] the server refused with an ERROR frame: those were never
// accepted, so no viewer is expected to receive them.
func (t *soakTracker) end(slot int, arrived, started []uint32, judge func(s int) bool, refused func(s int, lo, hi uint32) int) slotResult {
	r := slotResult{reorder: uint64(t.reorder[slot])}
	row := slot * t.senders
	for s := range t.senders {
		if !judge(s) {
			continue
		}
		i := row + s
		base, last, n := t.base[i], t.last[i], uint64(t.count[i])
		top := max(last, arrived[s])
		if top > base {
			exp := uint64(top-base) - uint64(refused(s, base, top))
			r.expected += exp
			r.received += n
			if exp > n {
				r.lost += exp - n
			}
		}
		if started[s] > top {
			r.left += uint64(started[s] - top)
		}
	}
	return r
}

// refusedSeqs remembers, per sender, the sequences the server refused with
// an ERROR frame (rate limit, validation): the sender was told, so they are
// not loss. Refusals are rare (senders run at half the connection's rate
// limit), so a sorted slice per sender is enough; it is capped so that a
// run refused wholesale cannot grow without bound (beyond the cap refusals
// show as loss, and in the rejected counts).
type refusedSeqs struct {
	mu  sync.Mutex
	seq [][]uint32 // per sender, ascending
}

const maxRefusedPerSender = 1 << 16

func newRefusedSeqs(senders int) *refusedSeqs {
	return &refusedSeqs{seq: make([][]uint32, senders)}
}

func (r *refusedSeqs) add(s int, seq uint32) {
	if s < 0 || s >= len(r.seq) {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	l := r.seq[s]
	if len(l) >= maxRefusedPerSender {
		return
	}
	i, found := slices.BinarySearch(l, seq)
	if !found {
		r.seq[s] = slices.Insert(l, i, seq)
	}
}

// within counts sender s's refused sequences in (lo, hi].
func (r *refusedSeqs) within(s int, lo, hi uint32) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	l := r.seq[s]
	a, _ := slices.BinarySearch(l, lo+1)
	b, _ := slices.BinarySearch(l, hi+1)
	return b - a
}

// seqHistory remembers the senders' written sequences every tick for a
// little longer than the grace period, to answer "what had been written by
// time t" when a connection ends.
type seqHistory struct {
	mu    sync.Mutex
	times []time.Time
	snaps [][]uint32
	next  int
	n     int
}

func newSeqHistory(entries, senders int) *seqHistory {
	h := &seqHistory{times: make([]time.Time, entries), snaps: make([][]uint32, entries)}
	for i := range h.snaps {
		h.snaps[i] = make([]uint32, senders)
	}
	return h
}

// record stores a snapshot of written taken at now.
func (h *seqHistory) record(now time.Time, written []uint32) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.times[h.next] = now
	copy(h.snaps[h.next], written)
	h.next = (h.next + 1) % len(h.times)
	h.n = min(h.n+1, len(h.times))
}

// at copies into dst the newest snapshot taken at or before t, or zeros if
// there is none (t before the run, or older than the history: the history
// is sized so that this does not happen for t = now - grace).
func (h *seqHistory) at(t time.Time, dst []uint32) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for k := 1; k <= h.n; k++ {
		i := (h.next - k + len(h.times)) % len(h.times)
		if !h.times[i].After(t) {
			copy(dst, h.snaps[i])
			return
		}
	}
	clear(dst)
}
