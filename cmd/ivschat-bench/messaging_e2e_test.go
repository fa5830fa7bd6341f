package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// oldReportKeys are the summary's JSON fields before cluster mode: a
// single-endpoint run must still have every one of them.
var oldReportKeys = []string{
	"endpoint", "room", "viewers", "senders", "connected", "connectSeconds", "handshakeFailures",
	"handshakeErrors", "idleOnly", "clientRssBytes", "rate", "sendSeconds", "sent", "accepted",
	"sendFailures", "senderDisconnects", "delivered", "expected", "deliveredPerSec", "expectedPerSec",
	"latencyMs", "otherFrames", "lost", "viewersWithLoss", "disconnectedViewers",
	"disconnectedViewersMissed", "orderingViolations", "viewersOutOfOrder", "duplicates",
	"slowConsumerDisconnects", "closeReasons",
}

func runTestMessaging(t *testing.T, args ...string) *msgReport {
	t.Helper()
	cfg, err := parseMessagingFlags(append([]string{"-access-key", testKey, "-secret-key", testSecret}, args...))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := runMessagingWith(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	rep.print(&text)
	t.Logf("\n%s", text.String())
	return rep
}

// checkDelivery asserts what every run must show: everything sent was
// accepted and reached every viewer once, in order.
func checkDelivery(t *testing.T, rep *msgReport, viewers int) {
	t.Helper()
	if rep.Connected != viewers || rep.HandshakeFailures != 0 {
		t.Fatalf("connected %d of %d: %v", rep.Connected, viewers, rep.HandshakeErrors)
	}
	if rep.Sent < 30 || rep.Accepted != rep.Sent || rep.SendFailures != 0 || len(rep.Rejected) != 0 {
		t.Errorf("sent %d, accepted %d, send failures %d, rejected %v", rep.Sent, rep.Accepted, rep.SendFailures, rep.Rejected)
	}
	if want := uint64(rep.Accepted) * uint64(viewers); rep.Delivered != want || rep.Expected != want || rep.Lost != 0 {
		t.Errorf("delivered %d, expected %d, lost %d; want %d", rep.Delivered, rep.Expected, rep.Lost, want)
	}
	if rep.OrderingViolations != 0 || rep.Duplicates != 0 || rep.SlowConsumerDisconnects != 0 {
		t.Errorf("ordering %d, duplicates %d, slow consumers %d", rep.OrderingViolations, rep.Duplicates, rep.SlowConsumerDisconnects)
	}
}

// checkPerViewer asserts that the per-viewer figures cover every viewer
// and agree with the pooled ones they are drawn from.
func checkPerViewer(t *testing.T, pv *perViewerLatency, pooled *latencyMs, viewers int) {
	t.Helper()
	if pv == nil || pv.Viewers != viewers {
		t.Fatalf("per-viewer latency %+v for %d viewers", pv, viewers)
	}
	for name, s := range map[string]spread{"p50": pv.P50, "p99": pv.P99} {
		if !(0 < s.Min && s.Min <= s.Median && s.Median <= s.P99 && s.P99 <= s.Max) {
			t.Errorf("own %s spread out of order: %+v", name, s)
		}
	}
	// Nobody's p99 is below the best p50 or above the slowest message
	// (plus the per-viewer buckets' 1/64), and the worst p99 is at least
	// the pooled p50.
	slack := 1 + 1.0/64
	if pv.P99.Max < pv.P50.Max || pv.P99.Max > pooled.Max*slack || pv.P99.Max < pooled.P50/slack {
		t.Errorf("per-viewer %+v against pooled %+v", pv, pooled)
	}
}

// TestMessagingEndToEnd runs the messaging mode against a real server for
// two seconds and checks the whole summary, old fields and new.
func TestMessagingEndToEnd(t *testing.T) {
	endpoint := startTestServer(t, nil)
	const viewers = 40
	rep := runTestMessaging(t, "-endpoint", endpoint, "-viewers", "40", "-rate", "20", "-duration", "2s", "-settle", "200ms")
	checkDelivery(t, rep, viewers)
	checkPerViewer(t, rep.PerViewerLatency, rep.Latency, viewers)
	if rep.Senders != 2 || rep.Endpoint != endpoint || rep.Readers != defaultReaders {
		t.Errorf("senders %d endpoint %q readers %q", rep.Senders, rep.Endpoint, rep.Readers)
	}

	// The server's frames per write over the phase: it wrote every message
	// to every viewer and both senders, in fewer writes than frames at
	// 20 messages/s with its write coalescing.
	f := rep.FramesPerWrite
	if f == nil {
		t.Fatal("no frames per write")
	}
	if minFrames := rep.Delivered + uint64(rep.Accepted)*uint64(rep.Senders); f.FramesDelivered < minFrames || f.Writes == 0 || f.Writes > f.FramesDelivered {
		t.Errorf("frames per write %+v; at least %d frames", f, minFrames)
	}
	if mean := float64(f.FramesDelivered) / float64(f.Writes); f.Mean < 1 || f.Mean-mean > 0.001 || mean-f.Mean > 0.001 {
		t.Errorf("mean %v of %d frames in %d writes", f.Mean, f.FramesDelivered, f.Writes)
	}

	// One node: its entry is the totals, without a per-path breakdown.
	if len(rep.Nodes) != 1 {
		t.Fatalf("%d nodes", len(rep.Nodes))
	}
	n := rep.Nodes[0]
	if n.Endpoint != endpoint || n.Viewers != viewers || n.Connected != viewers || n.Senders != 2 ||
		n.Delivered != rep.Delivered || n.Expected != rep.Expected || *n.Latency != *rep.Latency ||
		*n.PerViewerLatency != *rep.PerViewerLatency || n.FramesPerWrite != f || n.LatencyFromNode != nil {
		t.Errorf("node 0: %+v", n)
	}

	data, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	json.Unmarshal(data, &m)
	for _, k := range append(oldReportKeys, "perViewerLatencyMs", "framesPerWrite", "nodes") {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON has no %q", k)
		}
	}
	var text bytes.Buffer
	rep.print(&text)
	for _, want := range []string{"per-viewer latency over 40 viewers: own p50 median ", "server frames per write: "} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text summary has no %q", want)
		}
	}
	if strings.Contains(text.String(), "node 0 (") || strings.Contains(text.String(), "not available") {
		t.Errorf("single-node text summary:\n%s", text.String())
	}
}

// TestMessagingGoroutineReaders runs the viewers on a goroutine each, the
// generator's only way off Linux and the comparison for its epoll loops.
func TestMessagingGoroutineReaders(t *testing.T) {
	endpoint := startTestServer(t, nil)
	rep := runTestMessaging(t, "-endpoint", endpoint, "-viewers", "30", "-rate", "20", "-duration", "2s", "-settle", "200ms", "-readers", "goroutines")
	checkDelivery(t, rep, 30)
	if rep.Readers != "goroutines" {
		t.Errorf("readers %q", rep.Readers)
	}
}

// TestMessagingClusterEndToEnd runs the messaging mode against two nodes on
// PostgreSQL and Redis: viewers and senders are split over both, every
// message reaches every viewer whichever node it was sent through, and the
// summary has each node's share.
func TestMessagingClusterEndToEnd(t *testing.T) {
	endpoints := startTestCluster(t, 2)
	const viewers = 60
	rep := runTestMessaging(t, "-endpoint", strings.Join(endpoints, ","), "-viewers", "60", "-rate", "20", "-duration", "2s", "-settle", "200ms")
	checkDelivery(t, rep, viewers)
	checkPerViewer(t, rep.PerViewerLatency, rep.Latency, viewers)
	if len(rep.Nodes) != 2 {
		t.Fatalf("%d nodes", len(rep.Nodes))
	}
	var frames, writes uint64
	for i, n := range rep.Nodes {
		if n.Endpoint != endpoints[i] || n.Viewers != viewers/2 || n.Connected != viewers/2 || n.Senders != 1 {
			t.Errorf("node %d: %s, %d of %d viewers, %d senders", i, n.Endpoint, n.Connected, n.Viewers, n.Senders)
		}
		if want := uint64(rep.Accepted) * viewers / 2; n.Delivered != want || n.Expected != want || n.Lost != 0 {
			t.Errorf("node %d: delivered %d, expected %d, lost %d; want %d", i, n.Delivered, n.Expected, n.Lost, want)
		}
		checkPerViewer(t, n.PerViewerLatency, n.Latency, viewers/2)
		// Messages came through both nodes: each path has latencies.
		if len(n.LatencyFromNode) != 2 || n.LatencyFromNode[0].P50 <= 0 || n.LatencyFromNode[1].P50 <= 0 {
			t.Errorf("node %d by sending node: %+v", i, n.LatencyFromNode)
		}
		// Each node writes every message to its own viewers and sender.
		f := n.FramesPerWrite
		if f == nil || f.FramesDelivered < n.Delivered+uint64(rep.Accepted) || f.Writes == 0 {
			t.Fatalf("node %d frames per write %+v", i, f)
		}
		frames += f.FramesDelivered
		writes += f.Writes
	}
	if f := rep.FramesPerWrite; f == nil || f.FramesDelivered != frames || f.Writes != writes || f.Histogram != nil {
		t.Errorf("total frames per write %+v; nodes %d frames, %d writes", f, frames, writes)
	}
	var text bytes.Buffer
	rep.print(&text)
	for _, want := range []string{"node 0 (" + endpoints[0] + "): 30 of 30 viewers", "node 1 (" + endpoints[1] + ")", "  sent through node 1: p50 "} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text summary has no %q", want)
		}
	}
}

// TestMessagingReportFields checks the summary's arithmetic on a run staged
// by hand: two nodes, four viewers, one lossy and one dropped.
func TestMessagingReportFields(t *testing.T) {
	cfg := &messagingConfig{endpoints: []string{"http://127.0.0.1:1", "http://127.0.0.1:2"}, viewers: 4, senders: 2, rate: 5}
	b := &msgBench{
		cfg:   cfg,
		nodes: []msgNode{{endpoint: cfg.endpoints[0]}, {endpoint: cfg.endpoints[1]}},
		track: newTracker(4, 2, 2),
		state: make([]atomic.Uint32, 4),
		conns: make([]net.Conn, 6),
		other: make([]uint64, 4),
		perWrite: []*framesPerWrite{
			{FramesDelivered: 300, Writes: 100, Mean: 3},
			{FramesDelivered: 100, Writes: 100, Mean: 1, Histogram: &framesPerWriteHist{Writes: 100, Mean: 1, P50: 1, P99: 1}},
		},
	}
	c0, c1 := net.Pipe()
	defer c0.Close()
	defer c1.Close()
	b.conns[4], b.conns[5] = c0, c1
	b.sent.Store(10)
	for v, st := range []uint32{stateOpen, stateOpen, stateOpen, stateDropped} {
		b.state[v].Store(st)
	}
	// Viewer 1 (node 1) misses sequence 3 of sender 0; viewer 3 (node 1)
	// dropped after five messages.
	for v, got := range []int{10, 9, 10, 5} {
		n := 0
		for seq := uint32(1); seq <= 5; seq++ {
			for s := range 2 {
				if n == got || (v == 1 && s == 0 && seq == 3) {
					continue
				}
				b.track.observe(v, s, seq, time.Duration(v+1)*time.Millisecond)
				n++
			}
		}
	}
	rep := &msgReport{SendSeconds: 2}
	b.finish(rep, []int64{0, 0}, []int64{0, 0})
	if rep.Sent != 10 || rep.Accepted != 10 || rep.Delivered != 34 || rep.Expected != 30 || rep.Lost != 1 ||
		rep.ViewersWithLoss != 1 || rep.Disconnected != 1 || rep.DisconnectedMissed != 5 || rep.DeliveredPerSec != 17 || rep.ExpectedPerSec != 15 {
		t.Errorf("totals: %+v", rep)
	}
	n0, n1 := rep.Nodes[0], rep.Nodes[1]
	if n0.Viewers != 2 || n0.Connected != 2 || n0.Senders != 1 || n0.Delivered != 20 || n0.Expected != 20 || n0.Lost != 0 || n0.DeliveredPerSec != 10 {
		t.Errorf("node 0: %+v", n0)
	}
	if n1.Viewers != 2 || n1.Connected != 2 || n1.Senders != 1 || n1.Delivered != 14 || n1.Expected != 10 || n1.Lost != 1 || n1.ViewersWithLoss != 1 || n1.Disconnected != 1 {
		t.Errorf("node 1: %+v", n1)
	}
	// Viewer v's every message took v+1 ms: node 0 has viewers at 1 and
	// 3 ms, node 1 at 2 and 4 ms.
	if pv := rep.PerViewerLatency; pv.Viewers != 4 || !within(ms2d(pv.P50.Min), 1e6) || !within(ms2d(pv.P50.Max), 4e6) || !within(ms2d(pv.P50.Median), 2e6) {
		t.Errorf("per-viewer: %+v", pv)
	}
	if pv := n1.PerViewerLatency; pv.Viewers != 2 || !within(ms2d(pv.P99.Min), 2e6) || !within(ms2d(pv.P99.Max), 4e6) {
		t.Errorf("node 1 per-viewer: %+v", pv)
	}
	if rep.Latency.Max != 4 || n0.Latency.Max != 3 || len(n0.LatencyFromNode) != 2 || n0.LatencyFromNode[1].Max != 3 {
		t.Errorf("pooled: %+v, node 0 %+v by sender %+v", rep.Latency, n0.Latency, n0.LatencyFromNode)
	}
	// Across nodes only the counters add up.
	if f := rep.FramesPerWrite; f == nil || *f != (framesPerWrite{FramesDelivered: 400, Writes: 200, Mean: 2}) {
		t.Errorf("frames per write: %+v", f)
	}
	// A node whose metrics could not be read leaves the total out too.
	b.perWrite[1] = nil
	rep = &msgReport{SendSeconds: 2}
	b.finish(rep, []int64{0, 0}, []int64{0, 0})
	if rep.FramesPerWrite != nil || rep.Nodes[1].FramesPerWrite != nil || rep.Nodes[0].FramesPerWrite == nil {
		t.Errorf("one node unreadable: %+v", rep.FramesPerWrite)
	}
	var text bytes.Buffer
	rep.print(&text)
	if !strings.Contains(text.String(), "server frames per write: not available") || !strings.Contains(text.String(), "node 1 (http://127.0.0.1:2): 2 of 2 viewers connected") {
		t.Errorf("text:\n%s", text.String())
	}
}
