package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestGrowthOf(t *testing.T) {
	// Samples every 10 s; the first three (before the 30 s warm-up) are a
	// ramp and must not count.
	ts := []float64{0, 10, 20, 30, 40, 50, 60, 70, 80, 90}
	flat := []float64{1, 50, 90, 100, 101, 99, 100, 102, 100, 101}
	g := growthOf(ts, flat, 30, 5)
	if g.Samples != 7 || g.First != 100 || g.Last != 101 || g.Abs != 1 || math.Abs(g.Pct-1) > 1e-9 || !g.Pass {
		t.Errorf("flat: %+v", g)
	}
	// A line: 100 + 2 per 10 s = 12 per minute; 100 -> 112 is +12%.
	line := make([]float64, len(ts))
	for i, x := range ts {
		line[i] = 94 + x/5
	}
	g = growthOf(ts, line, 30, 5)
	if g.First != 100 || g.Last != 112 || math.Abs(g.Pct-12) > 1e-9 || math.Abs(g.SlopePerMin-12) > 1e-9 || math.Abs(g.FitPct-12) > 1e-9 || g.Pass {
		t.Errorf("line: %+v", g)
	}
	if g := growthOf(ts, line, 30, 12); !g.Pass {
		t.Errorf("12%% growth with a 12%% limit failed: %+v", g)
	}
	// Shrinking passes; unreadable samples (NaN) are left out.
	nan := math.NaN()
	g = growthOf(ts, []float64{0, 0, 0, 200, nan, 190, 180, nan, 170, 160}, 30, 5)
	if g.Samples != 5 || g.First != 200 || g.Last != 160 || g.Pct != -20 || g.SlopePerMin >= 0 || !g.Pass {
		t.Errorf("shrinking with gaps: %+v", g)
	}
	// Too short a run for its warm-up has nothing to judge: it fails.
	if g := growthOf(ts, flat, 90, 5); g.Samples != 1 || g.Pass {
		t.Errorf("one sample: %+v", g)
	}
	// One high sample at the end fails first-versus-last but not the fitted
	// line; a steady climb fails both.
	spike := []float64{0, 0, 0, 100, 100, 100, 100, 100, 100, 106}
	if g := growthOf(ts, spike, 30, 5); g.Pct != 6 || g.FitPct > 5 || !g.Pass {
		t.Errorf("last-sample spike: %+v", g)
	}
	if s := lsqSlope([]float64{1, 2, 3}, []float64{5, 5, 5}); s != 0 {
		t.Errorf("flat slope %v", s)
	}
}

func TestSoakTrackerLoss(t *testing.T) {
	// Two senders; the viewer judges only sender 0 (its room) unless asked.
	room0 := func(s int) bool { return s == 0 }
	both := func(int) bool { return true }
	tr := newSoakTracker(3, 2)
	none := newRefusedSeqs(2)

	// Slot 0 connects when sender 0 has begun 10 messages: 11..20 arrive,
	// 15 twice; 21..22 were sent too late before it left (arrived = 20);
	// 5 (sent before the handshake) arrives and is not judged.
	tr.begin(0, []uint32{10, 3})
	for seq := uint32(11); seq <= 20; seq++ {
		tr.observe(0, 0, seq)
	}
	tr.observe(0, 0, 15)
	tr.observe(0, 0, 5)
	r := tr.end(0, []uint32{20, 9}, []uint32{22, 9}, room0, none.within)
	if r != (slotResult{expected: 10, received: 10, lost: 0, left: 2, reorder: 1}) {
		t.Errorf("clean viewer: %+v", r)
	}

	// Slot 1: 13 and 14 missing in the middle, and 19..20 missing at the end
	// although they had time to arrive: 4 lost. Sender 1's messages 4..6
	// had time and none came: lost too when judged.
	tr.begin(1, []uint32{10, 3})
	for _, seq := range []uint32{11, 12, 15, 16, 17, 18} {
		tr.observe(1, 0, seq)
	}
	if r := tr.end(1, []uint32{20, 6}, []uint32{21, 6}, room0, none.within); r != (slotResult{expected: 10, received: 6, lost: 4, left: 1}) {
		t.Errorf("lossy viewer: %+v", r)
	}
	if r := tr.end(1, []uint32{20, 6}, []uint32{21, 6}, both, none.within); r.expected != 13 || r.lost != 7 {
		t.Errorf("lossy viewer, both senders: %+v", r)
	}

	// A message that arrived although the viewer left before its grace
	// period ended still counts as delivered, and a gap below it is loss.
	tr.begin(2, []uint32{0, 0})
	tr.observe(2, 0, 1)
	tr.observe(2, 0, 3)
	if r := tr.end(2, []uint32{1, 0}, []uint32{4, 0}, room0, none.within); r != (slotResult{expected: 3, received: 2, lost: 1, left: 1}) {
		t.Errorf("early arrival: %+v", r)
	}

	// A viewer that left before anything sent after its handshake had
	// time to arrive expects nothing; the slot starts afresh on reuse.
	tr.begin(2, []uint32{50, 0})
	if r := tr.end(2, []uint32{48, 0}, []uint32{52, 0}, room0, none.within); r != (slotResult{left: 2}) {
		t.Errorf("short-lived viewer: %+v", r)
	}
	tr.observe(2, 7, 1) // unknown sender: ignored

	// Sequences the server refused with an ERROR are not expected: the
	// lossy viewer above, with 13 and 19 refused, lost only 14 and 20.
	refused := newRefusedSeqs(2)
	refused.add(0, 19)
	refused.add(0, 13)
	refused.add(0, 13) // the same refusal twice counts once
	refused.add(5, 1)  // unknown sender: ignored
	tr.begin(1, []uint32{10, 3})
	for _, seq := range []uint32{11, 12, 15, 16, 17, 18} {
		tr.observe(1, 0, seq)
	}
	if r := tr.end(1, []uint32{20, 6}, []uint32{21, 6}, room0, refused.within); r != (slotResult{expected: 8, received: 6, lost: 2, left: 1}) {
		t.Errorf("viewer with refused messages: %+v", r)
	}
	if n := refused.within(0, 13, 19); n != 1 {
		t.Errorf("refused in (13, 19] = %d, want 1", n)
	}
}

func TestErrorRequestSeq(t *testing.T) {
	s, seq, ok := errorRequestSeq([]byte(`{"Type":"ERROR","Id":"x","RequestId":"3-1234","ErrorCode":429,"ErrorMessage":"slow down"}`))
	if !ok || s != 3 || seq != 1234 {
		t.Errorf("got %d %d %v", s, seq, ok)
	}
	for _, p := range []string{`{"Type":"ERROR","ErrorCode":429}`, `{"RequestId":"abc"}`, `{"RequestId":"1-x"}`} {
		if _, _, ok := errorRequestSeq([]byte(p)); ok {
			t.Errorf("%s: parsed", p)
		}
	}
}

func TestSeqHistory(t *testing.T) {
	h := newSeqHistory(3, 1)
	t0 := time.Unix(1000, 0)
	dst := []uint32{99}
	h.at(t0, dst)
	if dst[0] != 0 {
		t.Errorf("empty history: %v", dst)
	}
	for i := range 5 {
		h.record(t0.Add(time.Duration(i)*time.Second), []uint32{uint32(10 * i)})
	}
	for _, c := range []struct {
		at   time.Duration
		want uint32
	}{{4 * time.Second, 40}, {3500 * time.Millisecond, 30}, {2 * time.Second, 20}, {time.Second, 0}, {time.Hour, 40}} {
		h.at(t0.Add(c.at), dst)
		if dst[0] != c.want {
			t.Errorf("at +%v: %d, want %d", c.at, dst[0], c.want)
		}
	}
}

func TestParseMetrics(t *testing.T) {
	page := "# HELP go_goroutines x\n# TYPE go_goroutines gauge\ngo_goroutines 5021\ngo_goroutines_other 1\n" +
		"process_resident_memory_bytes 1.2345e+08\nivschatd_x{a=\"b\"} 3\n"
	v, err := parseMetrics(strings.NewReader(page), "go_goroutines", "process_resident_memory_bytes", "process_open_fds")
	if err != nil || v[0] != 5021 || v[1] != 123450000 || !math.IsNaN(v[2]) {
		t.Errorf("%v %v", v, err)
	}
}

func TestParseSoakFlags(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "AKID")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	c, err := parseSoakFlags([]string{"-endpoint", "http://127.0.0.1:1, http://127.0.0.1:2", "-server-pid", "10,11", "-rate", "25", "-rooms", "4"})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.endpoints) != 2 || c.endpoints[1] != "http://127.0.0.1:2" || c.serverPIDs[1] != 11 || c.senders() != 5 { // 25/s at 5/s a sender
		t.Errorf("%+v senders %d", c, c.senders())
	}
	for _, args := range [][]string{
		{"-endpoint", "http://127.0.0.1:1,http://192.0.2.1:8080"},
		{"-endpoint", "http://127.0.0.1:1,http://127.0.0.1:2", "-server-pid", "10"},
		{"-rate", "101"},
		{"-churn", "2000", "-connections", "1000"},
		{"-warmup", "10m", "-duration", "5m"},
		{"-connections", "0"},
	} {
		if _, err := parseSoakFlags(args); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}

// TestSoakEndToEnd soaks a real in-process server for a few seconds: 50
// connections with 10 closed and reopened (new tokens) a second and 20
// messages a second. Every message must reach every viewer that was there
// for it, and the report must show the churn and the samples.
func TestSoakEndToEnd(t *testing.T) {
	endpoint := startTestServer(t, nil)

	csvPath := filepath.Join(t.TempDir(), "samples.csv")
	sc, err := parseSoakFlags([]string{
		"-endpoint", endpoint, "-access-key", testKey, "-secret-key", testSecret,
		"-connections", "50", "-churn", "10", "-rate", "20", "-duration", "6s",
		"-warmup", "2s", "-sample", "1s", "-grace", "1s", "-max-growth", "1000", "-csv", csvPath,
	})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	rep, err := runSoakWith(context.Background(), sc, &out)
	if err != nil {
		t.Fatal(err)
	}
	var sum bytes.Buffer
	rep.print(&sum)
	t.Logf("%s%s", out.String(), sum.String())

	if rep.Lost != 0 || rep.ConnsWithLoss != 0 || rep.OutOfOrder != 0 {
		t.Errorf("lost %d at %d connections, %d out of order", rep.Lost, rep.ConnsWithLoss, rep.OutOfOrder)
	}
	// About 20/s for ~6 s, minus the fill; every sent message reached the
	// viewers that were there for it.
	if rep.Sent < 60 || rep.Expected == 0 || rep.Delivered != rep.Expected || rep.Received < rep.Delivered {
		t.Errorf("sent %d, expected %d, delivered %d, received %d", rep.Sent, rep.Expected, rep.Delivered, rep.Received)
	}
	// 50 connections in the one room, ~20 msg/s: roughly 1,000 frames a
	// second once filled.
	if float64(rep.Received) < 0.5*float64(rep.Sent)*50 {
		t.Errorf("received %d frames for %d messages at 50 viewers", rep.Received, rep.Sent)
	}
	if rep.ChurnedClosed < 20 || rep.ChurnClosePerS < 5 || rep.Opened < int64(50+rep.ChurnedClosed/2) {
		t.Errorf("churn: closed %d (%.1f/s), opened %d", rep.ChurnedClosed, rep.ChurnClosePerS, rep.Opened)
	}
	if len(rep.HandshakeErrors)+len(rep.TokenErrors)+len(rep.ServerCloses)+len(rep.Rejected) != 0 || rep.SendFailures != 0 {
		t.Errorf("errors: handshake %v token %v closes %v rejected %v send failures %d",
			rep.HandshakeErrors, rep.TokenErrors, rep.ServerCloses, rep.Rejected, rep.SendFailures)
	}
	if rep.Latency.P99 <= 0 || rep.Latency.P99 > 1000 {
		t.Errorf("p99 %vms", rep.Latency.P99)
	}
	// Samples from the server's /metrics (no PID given): goroutines, RSS
	// and open files all read, at least three after the warm-up.
	n := rep.Nodes[0]
	for name, g := range map[string]seriesGrowth{"rss": n.RSS, "goroutines": n.Goroutines, "fds": n.FDs} {
		if g.Samples < 3 || g.First <= 0 || math.IsNaN(g.SlopePerMin) {
			t.Errorf("%s: %+v", name, g)
		}
	}
	if n.Goroutines.First < 50 {
		t.Errorf("server goroutines %v with 50 connections", n.Goroutines.First)
	}
	if !rep.Pass || !strings.Contains(sum.String(), "soak: PASS") {
		t.Errorf("not a pass")
	}
	f, err := os.Open(csvPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil || len(rows) < 5 || rows[0][4] != "goroutines" || rows[1][2] != endpoint {
		t.Errorf("csv: %d rows, %v", len(rows), err)
	}
	if got := strings.Count(out.String(), "node 0: rss"); got != len(rows)-1 {
		t.Errorf("%d sample lines, %d csv rows", got, len(rows)-1)
	}
}
