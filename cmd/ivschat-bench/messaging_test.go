package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
)

// readTestFrame reads one whole frame of a test peer; the payloads here are
// small and made by the test itself.
func readTestFrame(r io.Reader) (ws.Frame, error) {
	h, err := ws.ReadHeader(r)
	if err != nil {
		return ws.Frame{}, err
	}
	if h.Length > 1<<20 {
		return ws.Frame{}, fmt.Errorf("frame of %d bytes", h.Length)
	}
	p := make([]byte, h.Length)
	_, err = io.ReadFull(r, p)
	return ws.Frame{Header: h, Payload: p}, err
}

func TestHistBucketBounds(t *testing.T) {
	// Every value lands in a bucket whose upper bound is at least the value
	// and at most ~3% (1/32) above it, and buckets are monotonic.
	prev := -1
	for _, v := range []uint64{0, 1, 31, 32, 33, 63, 64, 65, 100, 1000, 12345, 1 << 20, 1<<40 + 7, 1<<63 + 5, 1<<64 - 1} {
		b := histBucket(v)
		if b < prev || b >= histBuckets {
			t.Fatalf("bucket(%d) = %d after %d (of %d)", v, b, prev, histBuckets)
		}
		prev = b
		up := histUpper(b)
		if up < v || float64(up-v) > float64(v)/histSub {
			t.Errorf("value %d: bucket %d upper bound %d", v, b, up)
		}
		if b > 0 && histUpper(b-1) >= v {
			t.Errorf("value %d also fits bucket %d (upper %d)", v, b-1, histUpper(b-1))
		}
	}
}

func TestSummarizePercentiles(t *testing.T) {
	// 1..1000 ms spread over two shards: percentiles within bucket precision
	// of the exact ones, never below them, and the maximum exact.
	shards := []*histogram{new(histogram), new(histogram)}
	vals := make([]time.Duration, 1000)
	for i := range vals {
		vals[i] = time.Duration(i+1) * time.Millisecond
	}
	rand.Shuffle(len(vals), func(i, j int) { vals[i], vals[j] = vals[j], vals[i] })
	for i, v := range vals {
		shards[i%2].record(v)
	}
	s := summarize(shards)
	if s.Count != 1000 || s.Max != time.Second {
		t.Fatalf("count %d max %v", s.Count, s.Max)
	}
	for _, c := range []struct {
		got, exact time.Duration
	}{{s.P50, 500 * time.Millisecond}, {s.P90, 900 * time.Millisecond}, {s.P99, 990 * time.Millisecond}} {
		if c.got < c.exact || c.got > c.exact+c.exact/histSub+time.Microsecond {
			t.Errorf("percentile %v, exact %v", c.got, c.exact)
		}
	}
	if z := summarize([]*histogram{new(histogram)}); z != (latencySummary{}) {
		t.Errorf("empty: %+v", z)
	}
	var h histogram
	h.record(-time.Second) // clock step: counted as zero, not lost
	if s := summarize([]*histogram{&h}); s.Count != 1 || s.Max != 0 {
		t.Errorf("negative: %+v", s)
	}
}

func TestTrackerOrdering(t *testing.T) {
	tr := newTracker(3, 2, 1)
	// Viewer 0 in order; viewer 1 sees sender 1 go backwards once and a
	// duplicate; viewer 2 interleaves senders, which is not a violation.
	for _, e := range []struct {
		v, s int
		seq  uint32
	}{
		{0, 0, 1}, {0, 0, 2}, {0, 1, 1}, {0, 0, 3},
		{1, 1, 1}, {1, 1, 3}, {1, 1, 2}, {1, 1, 4}, {1, 1, 4},
		{2, 1, 1}, {2, 0, 1}, {2, 1, 2}, {2, 0, 2},
	} {
		tr.observe(e.v, e.s, e.seq, time.Millisecond)
	}
	if got := tr.received; !slices.Equal(got, []uint64{4, 5, 4}) {
		t.Errorf("received %v", got)
	}
	if got := tr.reordered; !slices.Equal(got, []uint32{0, 1, 0}) {
		t.Errorf("reordered %v", got)
	}
	if got := tr.duplicates; !slices.Equal(got, []uint32{0, 1, 0}) {
		t.Errorf("duplicates %v", got)
	}
	if tr.delivered() != 13 {
		t.Errorf("delivered %d", tr.delivered())
	}
	tr.observe(0, 7, 1, 0) // unknown sender: counted, not tracked
	if tr.received[0] != 5 {
		t.Errorf("unknown sender not counted")
	}
}

func TestParseBenchAttr(t *testing.T) {
	frame := `{"Type":"MESSAGE","Id":"WhO6MW6iRdS5","RequestId":"3-17","Attributes":{"ivsbench":"3.17.1700000000123456789"},"Content":"xx","SendTime":"2023-01-05T14:33:32.894089757Z","Sender":{"UserId":"sender-3","Attributes":{}}}`
	s, seq, sent, ok := parseBenchAttr([]byte(frame))
	if !ok || s != 3 || seq != 17 || sent != 1700000000123456789 {
		t.Fatalf("got %d %d %d %v", s, seq, sent, ok)
	}
	for _, bad := range []string{
		`{"Type":"EVENT","Attributes":{"x":"1.2.3"}}`,
		`{"Attributes":{"ivsbench":"3.17"}}`,
		`{"Attributes":{"ivsbench":"3..5"}}`,
		`{"Attributes":{"ivsbench":"3.17.5`,
		`{"Attributes":{"ivsbench":"a.1.2"}}`,
	} {
		if _, _, _, ok := parseBenchAttr([]byte(bad)); ok {
			t.Errorf("parsed %s", bad)
		}
	}
	fb := []byte(frame)
	if n := testing.AllocsPerRun(100, func() { parseBenchAttr(fb) }); n != 0 {
		t.Errorf("%v allocations per frame", n)
	}
}

func TestAppendSendFrame(t *testing.T) {
	// The frame must be a masked client text frame whose payload carries the
	// attribute the viewers parse (the server echoes attributes verbatim).
	f := appendSendFrame(nil, 2, 9, 123456789, "hello")
	frame, err := readTestFrame(bytes.NewReader(f))
	if err != nil {
		t.Fatal(err)
	}
	if !frame.Header.Masked || frame.Header.OpCode != ws.OpText || !frame.Header.Fin {
		t.Fatalf("header %+v", frame.Header)
	}
	frame = ws.UnmaskFrameInPlace(frame)
	want := `{"Action":"SEND_MESSAGE","RequestId":"2-9","Content":"hello","Attributes":{"ivsbench":"2.9.123456789"}}`
	if string(frame.Payload) != want {
		t.Fatalf("payload %s", frame.Payload)
	}
	if s, seq, sent, ok := parseBenchAttr(frame.Payload); !ok || s != 2 || seq != 9 || sent != 123456789 {
		t.Errorf("round trip: %d %d %d %v", s, seq, sent, ok)
	}
}

func TestReadFrames(t *testing.T) {
	// A server that sends a text frame, a ping, a text frame larger than the
	// read buffer, and a close: the reader must hand over both texts, answer
	// the ping with a masked pong and echo the close code.
	client, server := net.Pipe()
	defer client.Close()
	large := bytes.Repeat([]byte("y"), readBufSize*2)
	go func() {
		for _, f := range []ws.Frame{
			ws.NewTextFrame([]byte("first")),
			ws.NewPingFrame([]byte("p")),
			ws.NewTextFrame(large),
			ws.NewCloseFrame(ws.NewCloseFrameBody(ws.StatusPolicyViolation, "slow consumer")),
		} {
			if err := ws.WriteFrame(server, f); err != nil {
				return
			}
		}
	}()
	var replies []ws.Frame
	var wg sync.WaitGroup
	wg.Go(func() {
		defer server.Close()
		for len(replies) < 2 {
			f, err := readTestFrame(server)
			if err != nil {
				return
			}
			replies = append(replies, ws.UnmaskFrameInPlace(f))
		}
	})
	var texts []string
	st := readFrames(client, bufio.NewReaderSize(client, readBufSize), &sync.Mutex{}, func(p []byte) {
		texts = append(texts, string(p))
	})
	wg.Wait()
	if !st.closed || st.code != ws.StatusPolicyViolation || st.reason != "slow consumer" {
		t.Errorf("end %+v", st)
	}
	if len(texts) != 2 || texts[0] != "first" || texts[1] != string(large) {
		t.Errorf("texts: %d", len(texts))
	}
	if len(replies) != 2 || replies[0].Header.OpCode != ws.OpPong || string(replies[0].Payload) != "p" ||
		replies[1].Header.OpCode != ws.OpClose {
		t.Fatalf("replies %+v", replies)
	}
	if code, _ := ws.ParseCloseFrameData(replies[1].Payload); code != ws.StatusPolicyViolation {
		t.Errorf("close echoed with %d", code)
	}
}

func TestSourceAddr(t *testing.T) {
	for _, c := range []struct {
		idx  int
		want string
	}{{0, "127.0.0.2"}, {connsPerSource - 1, "127.0.0.2"}, {connsPerSource, "127.0.0.3"}, {10 * connsPerSource, "127.0.0.12"}} {
		if got := sourceAddr(c.idx).String(); got != c.want {
			t.Errorf("sourceAddr(%d) = %s, want %s", c.idx, got, c.want)
		}
	}
	// The rotated addresses must be usable as-is: dial a local listener from
	// the second one.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: sourceAddr(connsPerSource)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := c.LocalAddr().(*net.TCPAddr).IP.String(); got != "127.0.0.3" {
		t.Errorf("local address %s", got)
	}
}

func TestParseMessagingFlags(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "AKID")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	c, err := parseMessagingFlags([]string{"-endpoint", "http://127.0.0.1:1", "-rate", "95"})
	if err != nil {
		t.Fatal(err)
	}
	if c.senders != 10 || c.readers != defaultReaders {
		t.Errorf("automatic senders for 95/s: %d; readers %q", c.senders, c.readers)
	}
	// A cluster: one endpoint and PID per node, at least one sender each.
	c, err = parseMessagingFlags([]string{"-endpoint", "http://127.0.0.1:1, http://127.0.0.1:2", "-rate", "5", "-server-pid", "10,11"})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.endpoints) != 2 || c.endpoints[1] != "http://127.0.0.1:2" || c.senders != 2 || c.serverPIDs[1] != 11 {
		t.Errorf("cluster: %+v", c)
	}
	for _, args := range [][]string{
		{"-endpoint", "http://192.0.2.1:8080"},
		{"-endpoint", "http://127.0.0.1:1,http://192.0.2.1:8080"},
		{"-endpoint", "http://127.0.0.1:1,http://127.0.0.1:2", "-senders", "1"},
		{"-endpoint", "http://127.0.0.1:1,http://127.0.0.1:2", "-server-pid", "10"},
		{"-server-pid", "x"},
		{"-rate", "101"},
		{"-duration", "6m"},
		{"-viewers", "0"},
		{"-size", "501"},
		{"-readers", "threads"},
	} {
		if _, err := parseMessagingFlags(args); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}

func TestParseProcStatCPU(t *testing.T) {
	// A command name with a space and a parenthesis: fields are counted
	// after the last ')'. utime 250 and stime 50 ticks are 3 s.
	stat := "4242 (ivs (x) d) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 50 0 0 20 0 9 0 100 1000000 500 18446744073709551615"
	if d, err := parseProcStatCPU(stat); err != nil || d != 3*time.Second {
		t.Errorf("got %v, %v; want 3s", d, err)
	}
	for _, bad := range []string{"", "4242 ivschatd S 1", "1 (x) S 1 2 3", "1 (x) S 1 2 3 4 5 6 7 8 9 10 u s"} {
		if _, err := parseProcStatCPU(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	if _, err := readCPU(os.Getpid()); err != nil {
		t.Errorf("own CPU time: %v", err)
	}
}

func FuzzParseProcStatCPU(f *testing.F) {
	f.Add("4242 (ivschatd) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 50 0 0")
	f.Fuzz(func(t *testing.T, stat string) {
		if d, err := parseProcStatCPU(stat); err == nil && d < 0 {
			t.Errorf("%q: negative %v", stat, d)
		}
	})
}
