package messaging

import "time"

// flushPacer decides when a room's next flush may start. It is the adaptive
// coalescing rule of issue 11: flush at once while flushing the room is
// cheap next to the interval between its messages, and let frames gather —
// more frames per writev, the same number of writevs per flush — once
// flushing every message on arrival would keep the room flushing all the
// time.
//
// The rule. The pacer keeps two exponentially weighted moving averages: how
// long the room's flushes take (wall time from the start of the walk to its
// last write: n connections walked and written) and how far apart its
// broadcasts arrive (time between flush starts over the frames they
// carried). Their ratio, duty = cost / interval, is the share of the room's
// time that flushing would take if every message were flushed on arrival.
//
//   - While duty stays at or below enterBatching (1.5), every message is
//     flushed on arrival, and a message that arrives during a flush goes
//     with the next one, started as soon as the running one ends
//     (room.flush): up to a duty of 1 nothing waits but for a running
//     flush, and a little above it flushes run back to back, carrying what
//     arrived meanwhile. Latency is then the walk itself.
//   - Above it, the room gathers: the next flush may start no sooner than
//     gap = min(max, gain × cost) after the last one started, so flushing
//     takes at most 1/gain of the room's time and every writev carries the
//     frames of gap. It flushes on arrival again only once duty falls below
//     leaveBatching (¾): the band between the two thresholds keeps a room
//     whose gathering made its flushes cheaper from flipping straight back.
//     While it gathers, each walk is spread evenly over the gap (spread),
//     and a spread walk's cost is what its workers spent writing.
//
// What that does to a room (figures of the 2-core machine, docs/
// benchmarks.md "Adaptive flushing"): 1,000 viewers take a 3–7 ms flush, so
// at 100 messages/s (10 ms apart) every message goes out on arrival; 5,000
// viewers take 28–32 ms, so the gap reaches max, the fixed window that
// used to apply to every room; 19,000 viewers at 10 messages/s sit near a
// duty of 1 either way. Because the cost is wall time, a machine that is
// short of CPU makes flushes slower and the room gathers sooner, which is
// what frees CPU: the loop is stable, it does not amplify overload.
//
// No oscillation. Within the gathering regime the feedback runs both ways
// (more batching, less contention, cheaper flushes, less batching), so two
// things damp it: the averages move by 1/costWeight of each new sample, and
// the gap only follows the average cost when the two differ by more than
// 1/hysteresis of the gap. A steady load therefore settles on one gap;
// noise of a quarter either way (a flush preempted by another process)
// does not move it. Between the regimes, the factor of two between
// enterBatching and leaveBatching does the same.
//
// Centrifugo's centrifuge (for comparison) writes each connection's queue
// as soon as its writer goroutine is free and so batches only what queued
// during the previous write, with an optional fixed delay; ivschatd walks a
// whole room per flush, so the natural batching is per room, and the gap
// adds batching only where a walk per message would not keep up.
//
// A flushPacer is not safe for concurrent use; room.mu guards it.
type flushPacer struct {
	// max bounds the gap (Options.WriteCoalesce). Zero or negative: no
	// gap at all, every flush starts as soon as the previous one ended.
	max time.Duration
	// cost is the average flush duration; zero until the first sample.
	cost time.Duration
	// interval is the average time between the room's broadcasts; zero
	// until the first sample.
	interval time.Duration
	// windowStart and windowFrames accumulate the frames flushed since
	// the last interval sample (started).
	windowStart  time.Time
	windowFrames uint64
	// gathering: the room's duty passed enterBatching and has not yet
	// fallen below leaveBatching, so gap applies.
	gathering bool
	// gap is the interval between flush starts in force while gathering.
	gap time.Duration
	// fixed pins gap at max (Options.fixedFlushGap).
	fixed bool
}

// Constants of the rule, chosen with ivschat-bench (15 s runs, server and
// generator on the same 2 cores, which other work was loading at the time:
// load average 3–5, so the figures are rough; see the commit message):
//
//   - pacerGain 2: flushing takes at most half of the room's time. At 5,000
//     viewers one flush took 28–32 ms, so the gap reaches the 60 ms maximum
//     and the room is served as with the old fixed window (≈ 500,000
//     frames/s, 6.3 frames per write); a gain of 1.5 would leave it at
//     45 ms, nearer the 20–50 ms windows that cost 88–107% of a core
//     there (docs/benchmarks.md). At 1,000 viewers one flush took 4–7 ms
//     on the loaded machine, so the gap was about 12 ms, 1.7–2 frames per
//     write at 100 msg/s, and p50 fell from 35–37 ms to 13.5–15 ms, p99
//     from 65–70 ms to 34–47 ms in interleaved runs; on an idle machine a
//     flush of 1,000 connections is cheaper and the gap shorter than the
//     10 ms between messages. Gain 1.5 measured no better at 1,000 ×
//     100 in the same noise.
//
//   - costWeight 8, and each sample clamped to [cost/2, 2 × cost]: one
//     outlier (a flush preempted by another process for ten times its
//     usual duration) moves the average by 12.5% at most, within the
//     hysteresis; a lasting tenfold change is followed within about 25
//     flushes up and 45 down (a second or two in any room busy enough
//     for the gap to matter). Rising faster than falling errs towards
//     batching, the safe side for CPU.
//
//   - hysteresis 4: the gap follows the average only when they differ by
//     more than 25%. One flush's duration on the shared machine varies by
//     ±20–30% from one flush to the next at a steady load.
//
//   - enterBatching 1.5, leaveBatching ¾ (quiet machine, 15 s runs): at
//     1,000 × 100 the gain-only rule kept a 12–16 ms gap (p50 14–16 ms,
//     p99 28–31 ms), because a 5–7 ms flush next to 10 ms between messages
//     was "expensive" to it; never gathering (--write-coalesce 0) gave p50
//     5.6 ms, p99 13.6 ms. With thresholds 1 and ½ a cold start (the first
//     flushes of a room are slower) put the room into gathering and kept
//     it there (p50 15 ms); 1 and ¾ still flipped now and then (p99
//     20.5 ms); 1.5 and ¾ gave p50 5.5 ms, p99 12.8 ms there while 5,000
//     viewers (duty about 3) still gather at the 60 ms maximum (500,329
//     frames/s, p99 78 ms).
const (
	pacerGain     = 2
	costWeight    = 8
	hysteresis    = 4
	enterBatching = 1.5
	leaveBatching = 0.75
	// rateWindow is the least time one interval sample covers: ten
	// messages at 100/s, so that one sample is an average, not the gap
	// between two messages.
	rateWindow = 100 * time.Millisecond
)

// newFlushPacer returns a pacer whose gap never exceeds max (≤ 0: no gap);
// fixed pins the gap at max whatever flushes cost.
func newFlushPacer(max time.Duration, fixed bool) flushPacer {
	if fixed {
		return flushPacer{max: max, gap: max, fixed: true, gathering: max > 0}
	}
	return flushPacer{max: max}
}

// wait is how long a flush that is due at now must wait when the previous
// one started at last: zero means start it now.
func (p *flushPacer) wait(now, last time.Time) time.Duration {
	if !p.gathering || p.gap <= 0 {
		return 0
	}
	return max(0, p.gap-now.Sub(last))
}

// started records that a flush started at now, carrying frames broadcasts,
// and the previous one at last (zero: none). The arrival interval is taken
// over at least rateWindow of flushes (elapsed time over frames), not per
// flush: per flush, a message that arrived during the previous flush makes
// the next one start when that ends, so its sample would be the flush's own
// cost and a room flushing on arrival would look twice as busy as it is
// (measured: 1,000 viewers × 100 msg/s went to gathering, p50 15 ms instead
// of 5.6 ms).
func (p *flushPacer) started(now, last time.Time, frames uint64) {
	if p.max <= 0 || p.fixed || last.IsZero() {
		return
	}
	if p.windowStart.IsZero() {
		p.windowStart = last
	}
	p.windowFrames += frames
	elapsed := now.Sub(p.windowStart)
	if elapsed < rateWindow || p.windowFrames == 0 {
		return
	}
	p.interval = ewma(p.interval, elapsed/time.Duration(p.windowFrames))
	p.windowStart, p.windowFrames = now, 0
	p.decide()
}

// ewma folds sample d into the average avg (zero: none yet). One sample
// moves the average by at most an eighth of its doubling or halving: a
// flush preempted for ten times its usual duration, or one quiet second in
// a busy room, is noise; ten such samples in a row are a change.
func ewma(avg, d time.Duration) time.Duration {
	if avg == 0 {
		return d
	}
	d = min(max(d, avg/2), 2*avg)
	return avg + (d-avg)/costWeight
}

// observe records that a flush which wrote to at least one connection took
// d, and updates the gap.
func (p *flushPacer) observe(d time.Duration) {
	if p.max <= 0 || p.fixed {
		return
	}
	p.cost = ewma(p.cost, max(d, 0))
	p.decide()
}

// decide moves the room between flushing on arrival and gathering, by its
// duty, and while gathering keeps the gap at gain × cost (hysteresis: only
// a change of more than a quarter moves it). Until both averages exist the
// room flushes on arrival: nothing says it is busy.
func (p *flushPacer) decide() {
	if p.cost == 0 || p.interval == 0 {
		return
	}
	duty := float64(p.cost) / float64(p.interval)
	switch {
	case !p.gathering && duty > enterBatching:
		p.gathering = true
		p.gap = min(p.max, pacerGain*p.cost)
		return
	case p.gathering && duty < leaveBatching:
		p.gathering = false
		return
	case !p.gathering:
		return
	}
	target := min(p.max, pacerGain*p.cost)
	if diff := target - p.gap; diff > p.gap/hysteresis || -diff > p.gap/hysteresis {
		p.gap = target
	}
}

// spread is how long a flush that starts now should take to walk the room
// (room.flush paces its chunks of connections evenly over it): the gap
// while the room gathers, zero — as fast as it can — while it flushes on
// arrival.
//
// Why. A viewer's frames wait for the walk's next visit to it: the walk
// writes everything published up to the moment it reaches a connection,
// so with walks starting every gap each viewer is visited every gap and no
// frame should wait longer. A walk that runs flat out, though, keeps both
// cores busy for most of the gap and then leaves them idle: the clients'
// reads (on the benchmark machine, the generator's) queue behind it, and
// the viewers late in the walk see the walk's length on top of the gap. A
// walk spread over the whole gap writes at an even rate, so the machine
// is never saturated in bursts and the last viewer's wait is the gap.
//
// Measured (ivschat-bench, 5,000 viewers × 100 msg/s, quiet 2-core
// machine shared with the generator, 60 ms gap, 6.0 frames per write and
// the same CPU either way; docs/benchmarks.md "Spread walks"): flat-out
// walks p50 41 ms, p99 78–80 ms; walks spread over the whole gap p50
// 32 ms, p99 62–63 ms. Spread over part of it, in single exploratory runs:
// 75% of the gap p99 76 ms, 90% 65–68 ms, so the whole gap it is. A room
// flushing on arrival (1,000 × 100, 1,000 × 10) never spreads: there the
// walk is the message's whole latency and must run flat out.
func (p *flushPacer) spread() time.Duration {
	if !p.gathering || p.gap <= 0 {
		return 0
	}
	return p.gap
}

// window is the gap now in force (for tests and diagnostics): zero while
// the room flushes on arrival.
func (p *flushPacer) window() time.Duration {
	if !p.gathering {
		return 0
	}
	return p.gap
}
