package messaging

import "time"

// flushPacer decides when a room's next flush may start. It is the adaptive
// coalescing rule of issue 11: flush at once while flushing the room is
// cheap, and let frames gather for longer — more frames per writev, the same
// number of writevs per flush — as a flush of the room grows expensive.
//
// The rule. The pacer keeps an exponentially weighted moving average of how
// long the room's flushes take (wall time from the start of the walk to its
// last write: n connections walked and written). The next flush may start no
// sooner than
//
//	gap = min(max, gain × cost)
//
// after the last one started. A broadcast into a room that has not flushed
// for gap goes out at once; one that follows sooner waits for the rest of
// the gap (a timer), together with whatever else arrives meanwhile. Flushes
// never overlap (room.flush), so a flush that takes longer than the gap is
// followed at once by the next, which then carries everything that arrived
// during it.
//
// What that does to a room. Until the gap reaches the maximum, flushing
// takes at most 1/gain of the room's wall time, so a room cannot keep the machine busy flushing one frame per write
// while batching would serve it with a fraction of the syscalls. While the
// messages of a room come further apart than gain × cost, every message is
// flushed on arrival: at 1,000 viewers a flush takes a few milliseconds, so
// at 100 messages/s (10 ms apart) nothing waits for a window. At 5,000
// viewers a flush takes tens of milliseconds and the gap reaches max, the
// fixed window that used to apply to every room. Because the cost is wall
// time, a machine that is short of CPU makes flushes slower and the pacer
// batches more, which is what frees CPU: the loop is stable, it does not
// amplify overload.
//
// No oscillation. The feedback runs the other way too (more batching, less
// contention, cheaper flushes, less batching), so two things damp it: the
// average moves by 1/costWeight of each new sample, and the gap only
// follows the average when the two differ by more than 1/hysteresis of the
// gap. A steady load therefore settles on one gap; noise of a quarter either
// way (a flush preempted by another process) does not move it.
//
// Centrifugo's centrifuge (for comparison) writes each connection's queue
// as soon as its writer goroutine is free and so batches only what queued
// during the previous write, with an optional fixed delay; ivschatd walks a
// whole room per flush, so the natural batching is per room, and the gap
// adds batching in proportion to what a walk costs.
//
// A flushPacer is not safe for concurrent use; room.mu guards it.
type flushPacer struct {
	// max bounds the gap (Options.WriteCoalesce). Zero or negative: no
	// gap at all, every flush starts as soon as the previous one ended.
	max time.Duration
	// cost is the average flush duration; zero until the first sample.
	cost time.Duration
	// gap is the interval between flush starts now in force.
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
//   - costWeight 8, and each sample clamped to [cost/2, 2 × cost]: one
//     outlier (a flush preempted by another process for ten times its
//     usual duration) moves the average by 12.5% at most, within the
//     hysteresis; a lasting tenfold change is followed within about 25
//     flushes up and 45 down (a second or two in any room busy enough
//     for the gap to matter). Rising faster than falling errs towards
//     batching, the safe side for CPU.
//   - hysteresis 4: the gap follows the average only when they differ by
//     more than 25%. One flush's duration on the shared machine varies by
//     ±20–30% from one flush to the next at a steady load.
const (
	pacerGain  = 2
	costWeight = 8
	hysteresis = 4
)

// newFlushPacer returns a pacer whose gap never exceeds max (≤ 0: no gap);
// fixed pins the gap at max whatever flushes cost.
func newFlushPacer(max time.Duration, fixed bool) flushPacer {
	if fixed {
		return flushPacer{max: max, gap: max, fixed: true}
	}
	return flushPacer{max: max}
}

// wait is how long a flush that is due at now must wait when the previous
// one started at last: zero means start it now.
func (p *flushPacer) wait(now, last time.Time) time.Duration {
	if p.gap <= 0 {
		return 0
	}
	return max(0, p.gap-now.Sub(last))
}

// observe records that a flush which wrote to at least one connection took
// d, and updates the gap.
func (p *flushPacer) observe(d time.Duration) {
	if p.max <= 0 || p.fixed {
		return
	}
	d = max(d, 0)
	if p.cost == 0 {
		p.cost = d
	} else {
		// One sample moves the average by at most an eighth of its
		// doubling or halving: a flush preempted for ten times its usual
		// duration is noise, ten such flushes in a row are a change.
		d = min(max(d, p.cost/2), 2*p.cost)
		p.cost += (d - p.cost) / costWeight
	}
	target := min(p.max, pacerGain*p.cost)
	if diff := target - p.gap; diff > p.gap/hysteresis || -diff > p.gap/hysteresis {
		p.gap = target
	}
}

// window is the gap now in force (for tests and diagnostics).
func (p *flushPacer) window() time.Duration { return p.gap }
