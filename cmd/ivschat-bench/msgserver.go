package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The server's own view of the sending phase: how many frames it wrote per
// socket write, read from its /metrics (unauthenticated, on the
// control-plane listener) before and after the phase. A change of the
// server's flush rule shows up here as well as in the viewers' latency.

const (
	metricFramesDelivered = "ivschatd_messaging_frames_delivered_total"
	metricWrites          = "ivschatd_messaging_writes_total"
	// metricFramesPerWrite is a histogram of frames per socket write, if
	// the server has one (older servers only have the two counters).
	metricFramesPerWrite = "ivschatd_messaging_frames_per_write"
	// maxMetricsPage bounds what is read of a /metrics page.
	maxMetricsPage = 64 << 20
)

// serverMetrics is what one scrape of a node's /metrics says.
type serverMetrics struct {
	frames, writes float64
	counters       bool         // both counters were present
	perWrite       []promBucket // the frames-per-write histogram, nil if absent
	perWriteSum    float64
	perWriteCount  float64
}

// scrapeServer reads a node's /metrics.
func scrapeServer(ctx context.Context, httpc *http.Client, endpoint string) (*serverMetrics, error) {
	samples, err := metricsPage(ctx, httpc, endpoint)
	if err != nil {
		return nil, err
	}
	return serverMetricsOf(samples), nil
}

// metricsPage reads and parses a node's /metrics page (at most
// maxMetricsPage bytes of it).
func metricsPage(ctx context.Context, httpc *http.Client, endpoint string) ([]promSample, error) {
	url := strings.TrimSuffix(endpoint, "/") + "/metrics"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := httpc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: HTTP %d", url, resp.StatusCode)
	}
	samples, err := parsePromText(io.LimitReader(resp.Body, maxMetricsPage))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", url, err)
	}
	return samples, nil
}

// parsePIDs reads -server-pid: comma-separated process IDs, one per
// endpoint ("" = none).
func parsePIDs(s string, endpoints int) ([]int, error) {
	if s == "" {
		return nil, nil
	}
	var pids []int
	for p := range strings.SplitSeq(s, ",") {
		pid, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || pid <= 0 {
			return nil, fmt.Errorf("server-pid: %q is not a process ID", p)
		}
		pids = append(pids, pid)
	}
	if len(pids) != endpoints {
		return nil, fmt.Errorf("server-pid: %d PIDs for %d endpoints", len(pids), endpoints)
	}
	return pids, nil
}

func serverMetricsOf(samples []promSample) *serverMetrics {
	m := &serverMetrics{}
	var okF, okW bool
	m.frames, okF = promSum(samples, metricFramesDelivered)
	m.writes, okW = promSum(samples, metricWrites)
	m.counters = okF && okW
	if m.perWrite = promHistogram(samples, metricFramesPerWrite); m.perWrite != nil {
		m.perWriteSum, _ = promSum(samples, metricFramesPerWrite+"_sum")
		m.perWriteCount, _ = promSum(samples, metricFramesPerWrite+"_count")
	}
	return m
}

// framesPerWrite is a node's coalescing over the sending phase.
type framesPerWrite struct {
	FramesDelivered uint64  `json:"framesDelivered"`
	Writes          uint64  `json:"writes"`
	Mean            float64 `json:"mean"` // framesDelivered / writes
	// From the server's frames-per-write histogram, when it has one.
	Histogram *framesPerWriteHist `json:"histogram,omitempty"`
}

// framesPerWriteHist is the phase's frames-per-write distribution from the
// server's histogram. Percentiles are bucket upper bounds; one beyond the
// largest finite bound is reported as that bound with the Above flag.
type framesPerWriteHist struct {
	Writes   uint64  `json:"writes"`
	Mean     float64 `json:"mean"`
	P50      float64 `json:"p50"`
	P50Above bool    `json:"p50AboveLargestBucket,omitempty"`
	P99      float64 `json:"p99"`
	P99Above bool    `json:"p99AboveLargestBucket,omitempty"`
}

// framesPerWriteOver is the difference of two scrapes; nil if the server
// does not expose the counters or they went backwards (a restart).
func framesPerWriteOver(before, after *serverMetrics) *framesPerWrite {
	if before == nil || after == nil || !before.counters || !after.counters {
		return nil
	}
	frames, writes := after.frames-before.frames, after.writes-before.writes
	if frames < 0 || writes < 0 {
		return nil
	}
	f := &framesPerWrite{FramesDelivered: uint64(frames), Writes: uint64(writes)}
	if writes > 0 {
		f.Mean = round3(frames / writes)
	}
	if d := histDelta(before.perWrite, after.perWrite); d != nil {
		h := &framesPerWriteHist{Writes: uint64(d[len(d)-1].count)}
		if n := after.perWriteCount - before.perWriteCount; n > 0 {
			h.Mean = round3((after.perWriteSum - before.perWriteSum) / n)
		}
		h.P50, h.P50Above, _ = histQuantile(d, 0.50)
		h.P99, h.P99Above, _ = histQuantile(d, 0.99)
		f.Histogram = h
	}
	return f
}

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }

// scrapeAll reads every node's /metrics; a node that cannot be read gets
// nil, and the first failure is logged once (a server without metrics is
// not an error of the run).
func (b *msgBench) scrapeAll(ctx context.Context) []*serverMetrics {
	httpc := &http.Client{Timeout: 5 * time.Second}
	out := make([]*serverMetrics, len(b.nodes))
	for i, n := range b.nodes {
		m, err := scrapeServer(ctx, httpc, n.endpoint)
		if err != nil {
			b.logf("node %d: frames per write not available: %v", i, err)
			continue
		}
		out[i] = m
	}
	return out
}
