package messaging

import (
	"math/rand/v2"
	"testing"
	"time"
)

// paceSim replays a room's flush scheduling (room.scheduleFlushLocked,
// startFlushLocked, flushFromTimer and the end of room.flush) against a
// pacer in simulated time: broadcasts arrive every interval, a flush of n
// frames takes cost(n), flushes never overlap. With spreadWalks, a flush
// that starts while the room gathers lasts the pacer's spread (its writes
// paced over it) unless its cost is longer, and the pacer observes the
// cost, as room.flush does.
type paceSim struct {
	p           flushPacer
	interval    time.Duration
	cost        func(frames int) time.Duration
	spreadWalks bool

	flushes int
	frames  int           // frames flushed
	maxWait time.Duration // longest wait of a frame for its flush to start
	sumWait time.Duration
	gaps    []time.Duration // the pacer's gap after each flush
	// arrivals and walks record the run for visitWait.
	arrivals []time.Time
	walks    []simWalk
}

// simWalk is one flush: when it started and how long its walk lasted.
type simWalk struct {
	start time.Time
	dur   time.Duration
}

// visitWait is the longest a frame waited for the walk to reach the
// viewer at position pos of the room (0 the first, 1 the last): a walk
// reaches it pos × its duration after it starts and writes everything
// published by then (conn.assembleLocked reads head at the visit).
func (s *paceSim) visitWait(pos float64) time.Duration {
	var worst time.Duration
	k := 0
	for _, a := range s.arrivals {
		for k < len(s.walks) && s.walks[k].start.Add(time.Duration(pos*float64(s.walks[k].dur))).Before(a) {
			k++
		}
		if k == len(s.walks) {
			break // published after the last walk that reached pos
		}
		worst = max(worst, s.walks[k].start.Add(time.Duration(pos*float64(s.walks[k].dur))).Sub(a))
	}
	return worst
}

func (s *paceSim) run(d time.Duration) {
	var (
		t0      = time.Unix(1_000_000, 0)
		last    time.Time
		pending []time.Time // arrival times of frames not yet flushed
		// flushEnd is when the running flush ends (zero: none runs);
		// timer when the armed timer fires (zero: none armed).
		flushEnd, timer time.Time
		running         time.Duration // the running flush's duration
		nextArrival     = t0
	)
	start := func(now time.Time) {
		if w := s.p.wait(now, last); w > 0 {
			timer = now.Add(w)
			return
		}
		s.p.started(now, last, uint64(len(pending)))
		last = now
		for _, a := range pending {
			w := now.Sub(a)
			s.maxWait = max(s.maxWait, w)
			s.sumWait += w
		}
		s.flushes++
		s.frames += len(pending)
		running = s.cost(len(pending))
		walk := running
		if s.spreadWalks {
			walk = max(walk, s.p.spread())
		}
		s.walks = append(s.walks, simWalk{now, walk})
		flushEnd = now.Add(walk)
		pending = pending[:0]
	}
	end := t0.Add(d)
	for {
		// The next event: a flush ends, the timer fires, or a broadcast
		// arrives (in that order when they coincide).
		now := nextArrival
		if !flushEnd.IsZero() && !flushEnd.After(now) {
			now = flushEnd
		}
		if !timer.IsZero() && !timer.After(now) && (flushEnd.IsZero() || timer.Before(flushEnd)) {
			now = timer
		}
		if now.After(end) {
			return
		}
		switch {
		case now.Equal(flushEnd):
			flushEnd = time.Time{}
			s.p.observe(running)
			s.gaps = append(s.gaps, s.p.window())
			if len(pending) > 0 && timer.IsZero() {
				start(now)
			}
		case now.Equal(timer):
			timer = time.Time{}
			if len(pending) > 0 && flushEnd.IsZero() {
				start(now)
			}
		default:
			pending = append(pending, now)
			s.arrivals = append(s.arrivals, now)
			nextArrival = now.Add(s.interval)
			if flushEnd.IsZero() && timer.IsZero() {
				start(now)
			}
		}
	}
}

// perWrite is the cost model of a flush measured on the 2-core machine: a
// fixed cost per connection written (the writev and the loopback TCP path,
// two workers in parallel) plus a little per frame.
func perWrite(conns int, perConn, perFrame time.Duration) func(int) time.Duration {
	return func(frames int) time.Duration {
		return time.Duration(conns) * (perConn + time.Duration(frames)*perFrame)
	}
}

// A room whose flush is cheap next to the interval between its messages
// flushes every message on arrival: 1,000 viewers at 2 µs of wall time per
// connection (a 2 ms flush), 100 messages/s.
func TestPacerCheapFlushWritesAtOnce(t *testing.T) {
	s := &paceSim{p: newFlushPacer(60*time.Millisecond, false), interval: 10 * time.Millisecond, cost: perWrite(1000, 2*time.Microsecond, 50*time.Nanosecond)}
	s.run(10 * time.Second)
	if s.maxWait != 0 {
		t.Errorf("a message waited %v for its flush; want every flush at once", s.maxWait)
	}
	if s.flushes != s.frames {
		t.Errorf("%d flushes for %d frames, want one flush per frame", s.flushes, s.frames)
	}
	if g := s.p.window(); g != 0 {
		t.Errorf("gap %v, want none (a duty of 0.2)", g)
	}
}

// A flush that takes most of the interval between messages still goes out
// on arrival: 1,000 viewers at 7 µs (a 7 ms flush, the cost measured on the
// loaded machine), 100 messages/s. A message that arrives during a flush
// waits for it to end, never for a window.
func TestPacerFlushThatFitsBetweenMessagesWritesOnArrival(t *testing.T) {
	s := &paceSim{p: newFlushPacer(60*time.Millisecond, false), interval: 10 * time.Millisecond, cost: perWrite(1000, 7*time.Microsecond, 50*time.Nanosecond)}
	s.run(10 * time.Second)
	if g := s.p.window(); g != 0 {
		t.Errorf("gap %v, want none (a duty of 0.7)", g)
	}
	if s.maxWait != 0 {
		t.Errorf("a message waited %v; messages 10 ms apart with a 7 ms flush need not wait", s.maxWait)
	}
}

// A room whose flush is expensive gathers frames, for at most the
// configured maximum: 5,000 viewers at 6 µs per connection (a 30 ms
// flush), 100 messages/s.
func TestPacerExpensiveFlushGathersUpToMax(t *testing.T) {
	const maxGap = 60 * time.Millisecond
	s := &paceSim{p: newFlushPacer(maxGap, false), interval: 10 * time.Millisecond, cost: perWrite(5000, 6*time.Microsecond, 50*time.Nanosecond)}
	s.run(10 * time.Second)
	if g := s.p.window(); g != maxGap {
		t.Errorf("gap %v, want the maximum %v (twice the flush exceeds it)", g, maxGap)
	}
	if perFlush := float64(s.frames) / float64(s.flushes); perFlush < 5 || perFlush > 7 {
		t.Errorf("%.1f frames per flush, want about 6 (60 ms of 100 msg/s)", perFlush)
	}
	if s.maxWait > maxGap {
		t.Errorf("a message waited %v, more than the maximum gap %v", s.maxWait, maxGap)
	}
}

// Between the two, once flushes per message would run back to back with
// room to spare (duty above 1.5), the gap is twice the flush cost and only
// the messages that arrive within it wait: 2,000 viewers at 8 µs (a 16 ms
// flush) and 100 messages/s give a 32 ms gap, about 3.2 frames per flush.
func TestPacerMediumRoomGapFollowsCost(t *testing.T) {
	s := &paceSim{p: newFlushPacer(60*time.Millisecond, false), interval: 10 * time.Millisecond, cost: perWrite(2000, 8*time.Microsecond, 0)}
	s.run(10 * time.Second)
	if g := s.p.window(); g != 32*time.Millisecond {
		t.Errorf("gap %v, want 32ms (twice the 16 ms flush)", g)
	}
	if s.maxWait > 32*time.Millisecond {
		t.Errorf("a message waited %v, more than the gap", s.maxWait)
	}
	if perFlush := float64(s.frames) / float64(s.flushes); perFlush < 2.7 || perFlush > 3.7 {
		t.Errorf("%.2f frames per flush, want about 3.2", perFlush)
	}
}

// Up to a duty of 1.5 the room flushes on arrival, back to back when a
// flush outlasts the interval: 2,000 viewers at 6 µs (12 ms) and 100
// messages/s.
func TestPacerBackToBackBelowEnterThreshold(t *testing.T) {
	s := &paceSim{p: newFlushPacer(60*time.Millisecond, false), interval: 10 * time.Millisecond, cost: perWrite(2000, 6*time.Microsecond, 0)}
	s.run(10 * time.Second)
	if g := s.p.window(); g != 0 {
		t.Errorf("gap %v, want none at a duty of 1.2", g)
	}
	if s.maxWait > 12*time.Millisecond {
		t.Errorf("a message waited %v, more than one flush", s.maxWait)
	}
}

// The room goes back to flushing on arrival when its messages thin out
// (duty below three quarters), and not before.
func TestPacerLeavesGatheringWhenIdleEnough(t *testing.T) {
	p := newFlushPacer(60*time.Millisecond, false)
	t0 := time.Unix(100, 0)
	busy(&p, t0, 12*time.Millisecond, 6*time.Millisecond, 50) // duty 2
	if p.window() == 0 {
		t.Fatal("a duty of 2 must gather")
	}
	busy(&p, t0.Add(time.Hour), 12*time.Millisecond, 14*time.Millisecond, 100) // duty 0.86
	if p.window() == 0 {
		t.Error("a duty of 0.86 left gathering; want it kept until below 0.75")
	}
	busy(&p, t0.Add(2*time.Hour), 12*time.Millisecond, 40*time.Millisecond, 100) // duty 0.3
	if g := p.window(); g != 0 {
		t.Errorf("a duty of 0.3 still gathers with a %v gap", g)
	}
}

// busy feeds p n interval samples (each a rateWindow of broadcasts every
// interval), each followed by a flush of cost.
func busy(p *flushPacer, t0 time.Time, cost, interval time.Duration, n int) {
	t := t0
	for range n {
		next := t.Add(rateWindow)
		p.started(next, t, uint64(rateWindow/interval))
		p.observe(cost)
		t = next
	}
}

// Messages further apart than the gap never wait, however expensive the
// flush: 5,000 viewers (30 ms flush, 60 ms gap), one message per 100 ms.
func TestPacerSparseMessagesNeverWait(t *testing.T) {
	s := &paceSim{p: newFlushPacer(60*time.Millisecond, false), interval: 100 * time.Millisecond, cost: perWrite(5000, 6*time.Microsecond, 0)}
	s.run(10 * time.Second)
	if s.maxWait != 0 {
		t.Errorf("a message waited %v; want none (messages 100 ms apart, gap 60 ms)", s.maxWait)
	}
}

// A flush longer than the gap is followed at once by the next, which takes
// everything that arrived meanwhile: 19,000 viewers at 6 µs (114 ms) and
// 10 messages/s with the 60 ms maximum.
func TestPacerFlushLongerThanGapBackToBack(t *testing.T) {
	s := &paceSim{p: newFlushPacer(60*time.Millisecond, false), interval: 100 * time.Millisecond, cost: perWrite(19000, 6*time.Microsecond, 0)}
	s.run(10 * time.Second)
	if s.maxWait > 114*time.Millisecond {
		t.Errorf("a message waited %v, longer than one flush", s.maxWait)
	}
	if s.frames < 95 {
		t.Errorf("%d frames flushed in 10 s at 10/s", s.frames)
	}
}

// 0 (or negative) means write at once: the pacer never asks to wait,
// whatever flushes cost.
func TestPacerZeroMaxNeverWaits(t *testing.T) {
	for _, maxGap := range []time.Duration{0, -1} {
		p := newFlushPacer(maxGap, false)
		for range 100 {
			p.observe(time.Second)
		}
		now := time.Now()
		if w := p.wait(now, now); w != 0 || p.window() != 0 {
			t.Errorf("max %v: wait %v, gap %v; want 0", maxGap, w, p.window())
		}
	}
}

// The gap never exceeds the maximum, and wait counts from the last start.
func TestPacerBoundedByMax(t *testing.T) {
	p := newFlushPacer(60*time.Millisecond, false)
	busy(&p, time.Unix(0, 0), 2*time.Second, 10*time.Millisecond, 50)
	if g := p.window(); g != 60*time.Millisecond {
		t.Fatalf("gap %v, want the 60ms maximum", g)
	}
	last := time.Unix(100, 0)
	for _, c := range []struct{ since, want time.Duration }{
		{0, 60 * time.Millisecond},
		{20 * time.Millisecond, 40 * time.Millisecond},
		{60 * time.Millisecond, 0},
		{time.Hour, 0},
	} {
		if got := p.wait(last.Add(c.since), last); got != c.want {
			t.Errorf("wait %v after the last start = %v, want %v", c.since, got, c.want)
		}
	}
}

// Until a flush was measured, or in a room of no cost, nothing waits.
func TestPacerStartsAtOnce(t *testing.T) {
	p := newFlushPacer(60*time.Millisecond, false)
	now := time.Now()
	if w := p.wait(now, now); w != 0 {
		t.Errorf("a new room waits %v; want 0", w)
	}
}

// Flush costs that vary by ±20% around a steady mean (the spread measured
// on the shared machine) leave the gap where it is: after warm-up it
// changes rarely, and stays within a quarter of twice the mean.
func TestPacerSteadyLoadDoesNotOscillate(t *testing.T) {
	for _, mean := range []time.Duration{time.Millisecond, 5 * time.Millisecond, 12 * time.Millisecond, 25 * time.Millisecond} {
		rng := rand.New(rand.NewPCG(1, uint64(mean)))
		p := newFlushPacer(60*time.Millisecond, false)
		busy(&p, time.Unix(0, 0), mean, mean/2, 1) // a duty of 2: gathering
		changes, prev := 0, time.Duration(0)
		lo, hi := time.Duration(1<<62), time.Duration(0)
		for i := range 2000 {
			noise := 0.8 + 0.4*rng.Float64()
			p.observe(time.Duration(float64(mean) * noise))
			g := p.window()
			if i >= 100 {
				if g != prev {
					changes++
				}
				lo, hi = min(lo, g), max(hi, g)
			}
			prev = g
		}
		want := min(60*time.Millisecond, 2*mean)
		if changes > 5 {
			t.Errorf("mean %v: the gap changed %d times in 1,900 steady flushes", mean, changes)
		}
		if lo < want*3/4 || hi > want*5/4 {
			t.Errorf("mean %v: gap in [%v, %v], want within 25%% of %v", mean, lo, hi, want)
		}
	}
}

// The loop through the machine: batching more frees CPU, which makes the
// next flush cheaper, which shortens the gap. With a flush cost that falls
// as the gap grows (contention) and noise on top, the simulated room
// settles on one gap instead of flapping between two.
func TestPacerFeedbackSettles(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	const base = 4 * time.Millisecond
	s := &paceSim{p: newFlushPacer(60*time.Millisecond, false), interval: 5 * time.Millisecond}
	s.cost = func(int) time.Duration {
		// Contention: more flushes per second (a shorter gap) slow each
		// one down, up to doubling it when flushes run back to back.
		busy := 2.0
		if g := s.p.window(); g > 0 {
			busy = 1 + min(1, float64(base)/float64(g))
		}
		return time.Duration(float64(base) * busy * (0.85 + 0.3*rng.Float64()))
	}
	s.run(60 * time.Second)
	tail := s.gaps[len(s.gaps)/2:]
	changes := 0
	for i := 1; i < len(tail); i++ {
		if tail[i] != tail[i-1] {
			changes++
		}
	}
	if changes > len(tail)/100 {
		t.Errorf("the gap changed %d times in the last %d flushes", changes, len(tail))
	}
	t.Logf("settled on %v; %d changes in the last %d flushes", s.p.window(), changes, len(tail))
}

// The gap follows a lasting change of load both ways within tens of
// flushes, but not a single outlier.
func TestPacerFollowsLoadNotOutliers(t *testing.T) {
	p := newFlushPacer(60*time.Millisecond, false)
	busy(&p, time.Unix(0, 0), 2*time.Millisecond, time.Millisecond, 50) // a duty of 2
	if g := p.window(); g != 4*time.Millisecond {
		t.Fatalf("gap %v, want 4ms", g)
	}
	p.observe(20 * time.Millisecond) // one flush preempted for 18 ms
	if g := p.window(); g != 4*time.Millisecond {
		t.Errorf("one 20 ms outlier moved the gap to %v", g)
	}
	// The room grew tenfold: the gap reaches the hysteresis band around
	// the new target (40 ms ± 25%).
	n := 0
	for p.window() < 30*time.Millisecond && n < 100 {
		p.observe(20 * time.Millisecond)
		n++
	}
	if n > 30 {
		t.Errorf("the gap took %d flushes to follow a tenfold cost (now %v)", n, p.window())
	}
	// And back (4 ms ± 25%).
	n = 0
	for p.window() > 5*time.Millisecond+time.Millisecond/3 && n < 100 {
		p.observe(2 * time.Millisecond)
		n++
	}
	if n > 60 {
		t.Errorf("the gap took %d flushes to come back down (now %v)", n, p.window())
	}
}

// The test-only fixed pacer keeps the configured gap whatever flushes cost.
func TestPacerFixed(t *testing.T) {
	p := newFlushPacer(200*time.Millisecond, true)
	p.observe(time.Microsecond)
	if g := p.window(); g != 200*time.Millisecond {
		t.Errorf("gap %v, want 200ms", g)
	}
}

// A room that gathers spreads its walk over the gap, and every viewer is
// still visited once per gap: with 5,000 viewers at 6 µs (a 30 ms flush)
// and 100 messages/s, the walks last the 60 ms gap, a frame waits at most
// about a gap for the first viewer and for the last, and the pacer, which
// observes what the walk cost rather than its spread duration, keeps the
// gap (the cost of a walk did not grow to the gap and push it further).
// Flat-out walks (spreadWalks false) give the same bound in this model,
// which has no CPU to contend for; what spreading buys on a real machine
// (the burst of writes no longer starving the clients' reads, the
// senders' requests and other rooms) is in docs/benchmarks.md.
func TestPacerSpreadWalkVisitsEveryViewerOncePerGap(t *testing.T) {
	const maxGap = 60 * time.Millisecond
	for _, spread := range []bool{false, true} {
		s := &paceSim{p: newFlushPacer(maxGap, false), interval: 10 * time.Millisecond, cost: perWrite(5000, 6*time.Microsecond, 50*time.Nanosecond), spreadWalks: spread}
		s.run(10 * time.Second)
		if g := s.p.window(); g != maxGap {
			t.Fatalf("spread %v: gap %v, want %v", spread, g, maxGap)
		}
		if spread {
			last := s.walks[len(s.walks)-1]
			if last.dur != maxGap {
				t.Errorf("a walk lasted %v, want the gap %v", last.dur, maxGap)
			}
		}
		// A gap, plus one interval of slack: the flush that follows a
		// gap starts with the next arrival's timer, not before.
		bound := maxGap + s.interval
		for _, pos := range []float64{0, 0.5, 1} {
			if w := s.visitWait(pos); w > bound || w < maxGap/2 {
				t.Errorf("spread %v: the viewer at %.1f of the walk waited up to %v for a frame, want about the gap (≤ %v)", spread, pos, w, bound)
			}
		}
	}
}

// A walk spread over a gap that its cost outgrows simply runs as fast as it
// can; the pacer's gap still follows the cost: 2,000 viewers at 8 µs (a
// 16 ms flush) gather with a 32 ms gap whether or not the walks are
// spread.
func TestPacerSpreadWalkKeepsGapOfCost(t *testing.T) {
	s := &paceSim{p: newFlushPacer(60*time.Millisecond, false), interval: 10 * time.Millisecond, cost: perWrite(2000, 8*time.Microsecond, 0), spreadWalks: true}
	s.run(10 * time.Second)
	if g := s.p.window(); g != 32*time.Millisecond {
		t.Errorf("gap %v, want 32ms (twice the 16 ms flush)", g)
	}
	if got := s.p.spread(); got != s.p.window() {
		t.Errorf("spread %v, want the gap %v", got, s.p.window())
	}
}

// Only a room that gathers spreads its walks: one flushing on arrival walks
// as fast as it can, since the walk is then the whole latency.
func TestPacerSpreadOnlyWhileGathering(t *testing.T) {
	p := newFlushPacer(60*time.Millisecond, false)
	if d := p.spread(); d != 0 {
		t.Errorf("new room: spread %v, want 0", d)
	}
	s := &paceSim{p: newFlushPacer(60*time.Millisecond, false), interval: 10 * time.Millisecond, cost: perWrite(1000, 7*time.Microsecond, 50*time.Nanosecond), spreadWalks: true}
	s.run(10 * time.Second)
	if d := s.p.spread(); d != 0 {
		t.Errorf("room flushing on arrival: spread %v, want 0", d)
	}
	if s.maxWait != 0 {
		t.Errorf("a message waited %v; a room flushing on arrival never waits", s.maxWait)
	}
	fixed, none := newFlushPacer(200*time.Millisecond, true), newFlushPacer(0, false)
	if d := fixed.spread(); d != 200*time.Millisecond {
		t.Errorf("fixed gap: spread %v, want the gap", d)
	}
	if d := none.spread(); d != 0 {
		t.Errorf("no gap: spread %v, want 0", d)
	}
}
