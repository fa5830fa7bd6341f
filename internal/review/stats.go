package review

import (
	"sync/atomic"
	"time"
)

// latencyBounds are the upper bounds of the latency histogram's buckets,
// chosen around the 200 ms default timeout.
var latencyBounds = [...]time.Duration{
	1 * time.Millisecond, 2 * time.Millisecond, 5 * time.Millisecond,
	10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond,
	100 * time.Millisecond, 200 * time.Millisecond, 500 * time.Millisecond,
	time.Second,
}

// Stats is a snapshot of a Reviewer's counters since New.
type Stats struct {
	Invocations uint64
	// Allowed and Denied count decisions, fallbacks included.
	Allowed uint64
	Denied  uint64
	// Fallbacks counts decisions made by the fallbackResult, by reason.
	Fallbacks FallbackStats
	Latency   Histogram
}

// FallbackStats counts fallbacks by reason.
type FallbackStats struct {
	Timeout       uint64
	Error         uint64
	Invalid       uint64
	TargetRefused uint64
}

// Histogram is a latency distribution in the Prometheus layout: Counts[i] is
// the number of reviews that took at most Bounds[i] (cumulative), and Count
// includes those above the last bound.
type Histogram struct {
	Bounds []time.Duration
	Counts []uint64
	Count  uint64
	Sum    time.Duration
}

type stats struct {
	invocations atomic.Uint64
	allowed     atomic.Uint64
	denied      atomic.Uint64
	timeout     atomic.Uint64
	errors      atomic.Uint64
	invalid     atomic.Uint64
	refused     atomic.Uint64
	sumNanos    atomic.Int64
	// buckets[i] counts reviews in (latencyBounds[i-1], latencyBounds[i]];
	// the last one those above every bound.
	buckets [len(latencyBounds) + 1]atomic.Uint64
}

func (s *stats) record(res Result, d time.Duration) {
	s.invocations.Add(1)
	if res.Allow {
		s.allowed.Add(1)
	} else {
		s.denied.Add(1)
	}
	if res.Fallback {
		switch res.Reason {
		case ReasonTimeout:
			s.timeout.Add(1)
		case ReasonInvalid:
			s.invalid.Add(1)
		case ReasonTargetRefused:
			s.refused.Add(1)
		default:
			s.errors.Add(1)
		}
	}
	s.sumNanos.Add(int64(d))
	i := 0
	for i < len(latencyBounds) && d > latencyBounds[i] {
		i++
	}
	s.buckets[i].Add(1)
}

// Stats returns the counters. Each counter is read atomically; the snapshot
// as a whole is not, so under load the fields may disagree by a few reviews.
func (r *Reviewer) Stats() Stats {
	s := &r.stats
	h := Histogram{Bounds: append([]time.Duration(nil), latencyBounds[:]...), Counts: make([]uint64, len(latencyBounds))}
	var cum uint64
	for i := range s.buckets {
		cum += s.buckets[i].Load()
		if i < len(latencyBounds) {
			h.Counts[i] = cum
		}
	}
	h.Count = cum
	h.Sum = time.Duration(s.sumNanos.Load())
	return Stats{
		Invocations: s.invocations.Load(),
		Allowed:     s.allowed.Load(),
		Denied:      s.denied.Load(),
		Fallbacks:   FallbackStats{Timeout: s.timeout.Load(), Error: s.errors.Load(), Invalid: s.invalid.Load(), TargetRefused: s.refused.Load()},
		Latency:     h,
	}
}
