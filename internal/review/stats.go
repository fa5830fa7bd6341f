package review

import (
	"net/url"
	"strings"
	"sync"
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
	// ByURI counts failures by handler URI (HandlerURILabel of it), for
	// the IVS Chat metrics InvocationErrors and ResponseValidationErrors.
	// Only handlers that failed appear.
	ByURI map[string]URIErrors
}

// URIErrors counts one handler's failures.
type URIErrors struct {
	// InvocationErrors: the handler could not be invoked or gave no usable
	// answer in time (fallback reasons timeout, error, target_refused).
	InvocationErrors uint64
	// ResponseValidationErrors: the handler answered, but the answer could
	// not be parsed or broke the contract (fallback reason invalid).
	ResponseValidationErrors uint64
}

// maxURIs bounds the handler URIs counted separately; the failures of any
// further ones are counted under OtherURIs. Handler URIs come from rooms,
// which API callers create: the bound keeps /metrics (and Prometheus) from
// growing with them.
const maxURIs = 256

// OtherURIs is the ByURI key of the handlers beyond the first maxURIs.
const OtherURIs = "other"

// HandlerURILabel is how a handler URI is named in Stats.ByURI: a Lambda
// ARN as it is, a webhook URL without its user information, query and
// fragment, which may carry credentials that /metrics must not show.
func HandlerURILabel(uri string) string {
	if !isWebhook(uri) {
		return uri
	}
	u, err := url.Parse(uri)
	if err != nil {
		return "invalid-url"
	}
	u.User, u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = nil, "", false, "", ""
	return strings.TrimSuffix(u.String(), "?")
}

// uriErrors is the failure counts by handler, on the failure path only.
type uriErrors struct {
	mu sync.Mutex
	m  map[string]*URIErrors
}

func (u *uriErrors) record(uri, reason string) {
	label := HandlerURILabel(uri)
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.m == nil {
		u.m = map[string]*URIErrors{}
	}
	e := u.m[label]
	if e == nil {
		if len(u.m) >= maxURIs {
			label = OtherURIs
			e = u.m[label]
		}
		if e == nil {
			e = &URIErrors{}
			u.m[label] = e
		}
	}
	if reason == ReasonInvalid {
		e.ResponseValidationErrors++
	} else {
		e.InvocationErrors++
	}
}

func (u *uriErrors) snapshot() map[string]URIErrors {
	u.mu.Lock()
	defer u.mu.Unlock()
	m := make(map[string]URIErrors, len(u.m))
	for k, v := range u.m {
		m[k] = *v
	}
	return m
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
	byURI   uriErrors
}

func (s *stats) record(uri string, res Result, d time.Duration) {
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
		s.byURI.record(uri, res.Reason)
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
		ByURI:       s.byURI.snapshot(),
	}
}
