package main

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivschat"
	"github.com/aws/smithy-go"
	"github.com/gobwas/ws"
)

// soakConfig is the parsed command line of the soak mode.
type soakConfig struct {
	endpoints    []string
	creds        credFlags
	connections  int
	churn        int
	rate         int
	rooms        int
	duration     time.Duration
	warmup       time.Duration
	sample       time.Duration
	grace        time.Duration
	serverPIDs   []int
	maxGrowth    float64
	size         int
	ramp         int
	inflight     int
	tokenWorkers int
	csvPath      string
	jsonOut      bool
}

func parseSoakFlags(args []string) (*soakConfig, error) {
	c := &soakConfig{}
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	endpoints := fs.String("endpoint", "http://127.0.0.1:8080", "comma-separated control-plane URLs, one per node; connections are split evenly and each node's chat address is ws://HOST:PORT/ (loopback only)")
	c.creds.register(fs)
	fs.IntVar(&c.connections, "connections", 1000, "live viewer connections, split evenly over the endpoints and rooms")
	fs.IntVar(&c.churn, "churn", 50, "connections closed and opened (with a freshly minted token) per second")
	fs.IntVar(&c.rate, "rate", 20, "messages per second across all senders and rooms")
	fs.IntVar(&c.rooms, "rooms", 1, "rooms the connections and messages are spread over")
	fs.DurationVar(&c.duration, "duration", 10*time.Minute, "length of the run, ramp included (at most 24h)")
	fs.DurationVar(&c.warmup, "warmup", 2*time.Minute, "samples before this are left out of the growth check")
	fs.DurationVar(&c.sample, "sample", 10*time.Second, "interval between samples of the servers' RSS, goroutines and open files")
	fs.DurationVar(&c.grace, "grace", 5*time.Second, "time a message has to reach a viewer: a viewer that leaves sooner after a send is not expected to have it")
	pids := fs.String("server-pid", "", "comma-separated server PIDs, one per endpoint, for RSS and open files from /proc (default: the process_* metrics of /metrics)")
	fs.Float64Var(&c.maxGrowth, "max-growth", 5, "largest growth after warm-up, in percent, that passes")
	fs.IntVar(&c.size, "size", 32, "message Content length in bytes (at most 500)")
	fs.IntVar(&c.ramp, "ramp", 500, "connections opened per second at most (the initial fill; churn is below it)")
	fs.IntVar(&c.inflight, "inflight", 64, "token requests and handshakes in progress at once at most")
	fs.IntVar(&c.tokenWorkers, "token-workers", 16, "keep-alive control-plane connections per endpoint")
	fs.StringVar(&c.csvPath, "csv", "", "also write the samples to this CSV file")
	fs.BoolVar(&c.jsonOut, "json", false, "print the summary as one JSON object")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	for e := range strings.SplitSeq(*endpoints, ",") {
		e = strings.TrimSpace(e)
		if err := requireLoopback(e); err != nil {
			return nil, err
		}
		c.endpoints = append(c.endpoints, e)
	}
	var err error
	if c.serverPIDs, err = parsePIDs(*pids, len(c.endpoints)); err != nil {
		return nil, err
	}
	switch {
	case c.creds.missing():
		return nil, errMissingCreds
	case c.connections < 1 || c.connections > connsPerSource:
		return nil, fmt.Errorf("connections must be between 1 and %d", connsPerSource)
	case c.churn < 0 || c.churn > c.connections:
		return nil, errors.New("churn must be between 0 and connections")
	case c.rooms < 1 || c.rooms > 100:
		return nil, errors.New("rooms must be between 1 and 100")
	case c.rate < 1 || c.rate > maxRoomRate*c.rooms:
		return nil, fmt.Errorf("rate must be between 1 and %d per room", maxRoomRate)
	case c.duration <= 0 || c.duration > 24*time.Hour:
		return nil, errors.New("duration must be between 0 and 24h")
	case c.warmup < 0 || c.warmup >= c.duration:
		return nil, errors.New("warmup must be shorter than duration")
	case c.sample < 100*time.Millisecond:
		return nil, errors.New("sample must be at least 100ms")
	case c.grace < 100*time.Millisecond || c.grace > time.Minute:
		return nil, errors.New("grace must be between 100ms and 1m")
	case c.size < 1 || c.size > 500:
		return nil, errors.New("size must be between 1 and 500")
	case c.ramp < 1 || c.inflight < 1 || c.tokenWorkers < 1:
		return nil, errors.New("ramp, inflight and token-workers must be positive")
	case c.maxGrowth < 0:
		return nil, errors.New("max-growth must not be negative")
	}
	return c, nil
}

// senders is the number of sending connections: enough for the rate at half
// the server's per-connection limit, and at least one per room. At the full
// limit a sender whose ticks bunch up after a stall of the machine (one
// second of burst is all the bucket holds) is refused with ERROR 429.
func (c *soakConfig) senders() int {
	perSender := max(perConnRate/2, 1)
	return max((c.rate+perSender-1)/perSender, c.rooms)
}

// Slot states.
const (
	slotFree uint32 = iota // waiting for a token and a handshake
	slotOpen               // connected
	slotGone               // being closed by the churn or the end of the run
)

// soakConn is one live viewer connection. mu serializes its writes (pongs
// and close echoes from the reader, the close frame from the churn).
type soakConn struct {
	conn     net.Conn
	mu       sync.Mutex
	churned  atomic.Bool
	closedAt atomic.Int64 // UnixNano when the generator closed it
}

type soakSlot struct {
	state atomic.Uint32
	conn  atomic.Pointer[soakConn]
}

// soakNode is one endpoint of the cluster under test.
type soakNode struct {
	endpoint string
	wsURL    string
	srcIPv4  bool
	pid      int
	client   *ivschat.Client
}

// soak is one run of the soak mode. Connection slot i is on node i%E and in
// room (i/E)%R; sender s is in room s%R on node (s/R)%E, so with two nodes
// every room has viewers and senders on both.
type soak struct {
	cfg     *soakConfig
	out     io.Writer
	nodes   []soakNode
	rooms   []string
	senders int
	start   time.Time
	session int32

	slots   []soakSlot
	free    chan int
	track   *soakTracker
	history *seqHistory
	started []atomic.Uint32 // per sender: highest sequence whose send began
	written []atomic.Uint32 // per sender: highest sequence written
	lat     []*histogram

	stopping atomic.Bool
	readers  sync.WaitGroup

	live, opened, churned, sent, sendFailures, reconnects atomic.Int64

	mu        sync.Mutex
	hsErrors  map[string]int // failed viewer and sender handshakes by cause
	tokenErrs map[string]int // failed CreateChatToken by error code
	closes    map[string]int // connections the server closed or dropped
	rejected  map[string]int // ERROR frames the senders received, by code
	refused   *refusedSeqs   // the sequences those ERRORs refused: not expected anywhere
	res       slotResult     // ended connections, summed
	withLoss  int            // ended connections that lost messages
	other     uint64         // frames that were not bench messages
}

// runSoak is the soak mode's command line entry.
func runSoak(args []string) error {
	cfg, err := parseSoakFlags(args)
	if err != nil {
		return err
	}
	raiseFileLimit()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := runSoakWith(ctx, cfg, os.Stdout)
	if err != nil {
		return err
	}
	if cfg.jsonOut {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		rep.print(os.Stdout)
	}
	if !rep.Pass {
		return errors.New("soak FAILED")
	}
	return nil
}

// runSoakWith runs a soak until cfg.duration passes or ctx is cancelled
// (Ctrl-C), printing one line per sample to out, and returns the summary.
// Only setup errors end it early; everything during the run is counted.
func runSoakWith(ctx context.Context, cfg *soakConfig, out io.Writer) (*soakReport, error) {
	k := &soak{
		cfg: cfg, out: out, senders: cfg.senders(),
		session:   int32(min(180, 10+int(cfg.duration/time.Minute))),
		slots:     make([]soakSlot, cfg.connections),
		free:      make(chan int, cfg.connections),
		hsErrors:  map[string]int{},
		tokenErrs: map[string]int{},
		closes:    map[string]int{},
		rejected:  map[string]int{},
	}
	if lim := fileLimit(); lim > 0 && uint64(cfg.connections+k.senders+len(cfg.endpoints)*cfg.tokenWorkers+100) > lim {
		return nil, fmt.Errorf("%d connections need more than the open-file limit of %d", cfg.connections, lim)
	}
	for i, e := range cfg.endpoints {
		n := soakNode{endpoint: e, client: cfg.creds.client(e, cfg.tokenWorkers)}
		n.wsURL, n.srcIPv4 = chatURL(e)
		if len(cfg.serverPIDs) > 0 {
			n.pid = cfg.serverPIDs[i]
		}
		k.nodes = append(k.nodes, n)
	}
	k.track = newSoakTracker(cfg.connections, k.senders)
	k.refused = newRefusedSeqs(k.senders)
	k.history = newSeqHistory(int(cfg.grace/historyTick)+40, k.senders)
	k.started = make([]atomic.Uint32, k.senders)
	k.written = make([]atomic.Uint32, k.senders)
	k.lat = make([]*histogram, trackerShards)
	for i := range k.lat {
		k.lat[i] = new(histogram)
	}
	for r := range cfg.rooms {
		room, err := createBenchRoom(ctx, k.nodes[0].client, "ivschat-soak-"+strconv.Itoa(r))
		if err != nil {
			return nil, err
		}
		defer deleteBenchRoom(k.nodes[0].client, room.Arn)
		k.rooms = append(k.rooms, aws.ToString(room.Arn))
	}
	var csvw *csv.Writer
	if cfg.csvPath != "" {
		f, err := os.Create(cfg.csvPath)
		if err != nil {
			return nil, fmt.Errorf("csv: %w", err)
		}
		defer f.Close()
		csvw = csv.NewWriter(f)
		csvw.Write([]string{"seconds", "node", "endpoint", "rss_bytes", "goroutines", "open_fds", "live", "opened", "churned", "sent", "received", "lost"})
		csvw.Flush()
	}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	k.start = time.Now()
	deadline := k.start.Add(cfg.duration)
	var bg sync.WaitGroup // everything but the readers
	bg.Go(func() { k.recordHistory(runCtx) })
	bg.Go(func() { k.openLoop(runCtx) })
	for i := range cfg.connections {
		k.free <- i
	}
	samples := &soakSamples{}
	bg.Go(func() { k.sampleLoop(runCtx, samples, csvw) })
	fmt.Fprintf(out, "soak: %d connections over %d endpoint(s) and %d room(s), churn %d/s, %d msg/s from %d senders, %v (warm-up %v)\n",
		cfg.connections, len(k.nodes), cfg.rooms, cfg.churn, cfg.rate, k.senders, cfg.duration, cfg.warmup)

	// Churn and messages start once the initial fill is done (or has had
	// time to be), so that the churn figure is about steady state.
	fillBy := k.start.Add(time.Duration(cfg.connections)*time.Second/time.Duration(cfg.ramp) + 30*time.Second)
	for k.live.Load() < int64(cfg.connections) && time.Now().Before(fillBy) && time.Now().Before(deadline) && ctx.Err() == nil {
		sleepCtx(ctx, 50*time.Millisecond)
	}
	fill := time.Since(k.start)
	openedAtFill := k.opened.Load()
	fmt.Fprintf(out, "soak: %d connections open after %.1fs\n", k.live.Load(), fill.Seconds())
	churnStart := time.Now()
	sendCtx, stopSending := context.WithCancel(runCtx)
	var sendersWG sync.WaitGroup
	for s := range k.senders {
		sendersWG.Go(func() { k.senderLoop(sendCtx, s, churnStart) })
	}
	if cfg.churn > 0 {
		sendersWG.Go(func() { k.churnLoop(sendCtx) })
	}
	sleepCtx(ctx, time.Until(deadline))
	stopSending()
	sendersWG.Wait()
	churnSecs := time.Since(churnStart).Seconds()
	interrupted := ctx.Err() != nil
	if !interrupted {
		// Let the last messages arrive before the viewers are settled.
		sleepCtx(ctx, cfg.grace)
	}

	// Stop opening, then close every connection; each reader settles its
	// account as it ends.
	k.stopping.Store(true)
	cancel()
	bg.Wait()
	now := time.Now().UnixNano()
	for i := range k.slots {
		if c := k.slots[i].conn.Load(); c != nil {
			c.closedAt.CompareAndSwap(0, now)
			c.conn.Close()
		}
	}
	k.readers.Wait()
	return k.report(samples, fill, churnSecs, openedAtFill, interrupted), nil
}

// historyTick is how often the senders' written sequences are remembered;
// it bounds how much earlier than "end - grace" the expected set is cut.
const historyTick = 50 * time.Millisecond

func (k *soak) recordHistory(ctx context.Context) {
	t := time.NewTicker(historyTick)
	defer t.Stop()
	snap := make([]uint32, k.senders)
	for {
		k.snapshot(k.written, snap)
		k.history.record(time.Now(), snap)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (k *soak) snapshot(from []atomic.Uint32, dst []uint32) {
	for s := range from {
		dst[s] = from[s].Load()
	}
}

// openLoop opens a connection for every free slot, at most cfg.ramp a
// second and cfg.inflight at once, each with a token minted for it.
func (k *soak) openLoop(ctx context.Context) {
	sem := make(chan struct{}, k.cfg.inflight)
	tick := time.NewTicker(time.Second / time.Duration(k.cfg.ramp))
	defer tick.Stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		var slot int
		select {
		case <-ctx.Done():
			return
		case slot = <-k.free:
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		select {
		case <-ctx.Done():
			return
		case sem <- struct{}{}:
		}
		wg.Go(func() {
			defer func() { <-sem }()
			if !k.open(ctx, slot) && ctx.Err() == nil {
				// Retry the slot after a pause, not in a tight loop
				// against a failing server.
				time.AfterFunc(time.Second, func() {
					if !k.stopping.Load() {
						k.free <- slot
					}
				})
			}
		})
	}
}

// open mints a token and opens slot's connection; the slot's reader runs
// until the connection ends.
func (k *soak) open(ctx context.Context, slot int) bool {
	node := &k.nodes[slot%len(k.nodes)]
	room := (slot / len(k.nodes)) % len(k.rooms)
	tok, err := mintToken(ctx, node.client, k.rooms[room], "soak-viewer-"+strconv.Itoa(slot), k.session, false)
	if err != nil {
		k.tokenFailed(err)
		return false
	}
	var src net.IP
	if node.srcIPv4 {
		src = sourceAddr(slot)
	}
	conn, br, err := dialChat(ctx, node.wsURL, src, tok)
	if err != nil {
		if ctx.Err() == nil {
			k.count(k.hsErrors, handshakeCause(err))
		}
		return false
	}
	started := make([]uint32, k.senders)
	k.snapshot(k.started, started)
	k.track.begin(slot, started)
	c := &soakConn{conn: conn}
	k.slots[slot].conn.Store(c)
	k.slots[slot].state.Store(slotOpen)
	k.live.Add(1)
	k.opened.Add(1)
	k.readers.Add(1)
	go k.viewer(slot, room, c, br)
	if k.stopping.Load() {
		// The end of the run may have swept the slots before this one was
		// stored.
		c.closedAt.CompareAndSwap(0, time.Now().UnixNano())
		conn.Close()
	}
	return true
}

// viewer reads slot's connection until it ends, then settles its account
// and frees the slot.
func (k *soak) viewer(slot, room int, c *soakConn, br *bufio.Reader) {
	defer k.readers.Done()
	sc := c.conn.(*stampConn)
	var other uint64
	lat := k.lat[slot%len(k.lat)]
	st := readFrames(c.conn, br, &c.mu, func(p []byte) {
		sender, seq, sent, ok := parseBenchAttr(p)
		if !ok {
			other++
			return
		}
		k.track.observe(slot, sender, seq)
		lat.record(time.Duration(sc.lastRead - sent))
	})
	end := time.Now()
	if at := c.closedAt.Load(); at != 0 {
		end = time.Unix(0, at)
	} else if !k.stopping.Load() {
		// Neither the churn nor the end of the run closed it.
		reason := "dropped without close frame"
		if st.closed {
			reason = strings.TrimSpace(fmt.Sprintf("%d %s", st.code, st.reason))
		}
		k.count(k.closes, reason)
	}
	c.conn.Close()
	arrived := make([]uint32, k.senders)
	k.history.at(end.Add(-k.cfg.grace), arrived)
	started := make([]uint32, k.senders)
	k.snapshot(k.started, started)
	r := k.track.end(slot, arrived, started, func(s int) bool { return s%len(k.rooms) == room }, k.refused.within)
	k.mu.Lock()
	k.res.expected += r.expected
	k.res.received += r.received
	k.res.lost += r.lost
	k.res.left += r.left
	k.res.reorder += r.reorder
	if r.lost > 0 {
		k.withLoss++
	}
	k.other += other
	k.mu.Unlock()
	k.live.Add(-1)
	k.slots[slot].conn.Store(nil)
	k.slots[slot].state.Store(slotFree)
	if !k.stopping.Load() {
		k.free <- slot
	}
}

// churnLoop closes cfg.churn random open connections a second, evenly
// spaced; each freed slot goes back to openLoop, which opens a new one.
func (k *soak) churnLoop(ctx context.Context) {
	t := time.NewTicker(time.Second / time.Duration(k.cfg.churn))
	defer t.Stop()
	closeFrame := ws.MustCompileFrame(ws.MaskFrame(ws.NewCloseFrame(ws.NewCloseFrameBody(ws.StatusGoingAway, ""))))
	start := time.Now()
	var closed int64
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		// A busy machine delays ticks, and a ticker drops the ones it
		// could not deliver: close as many as are due so far.
		due := min(int64(time.Since(start).Seconds()*float64(k.cfg.churn))-closed, int64(k.cfg.churn))
		for range due {
			if k.closeRandom(closeFrame) {
				closed++
			}
		}
	}
}

// closeRandom closes one random open connection, as the churn.
func (k *soak) closeRandom(closeFrame []byte) bool {
	// Nearly every slot is open; a few tries find one.
	for range 50 {
		slot := rand.IntN(len(k.slots))
		if !k.slots[slot].state.CompareAndSwap(slotOpen, slotGone) {
			continue
		}
		c := k.slots[slot].conn.Load()
		c.churned.Store(true)
		c.closedAt.Store(time.Now().UnixNano())
		// As a browser leaving the page does: a close frame, then the
		// socket goes.
		c.mu.Lock()
		c.conn.SetWriteDeadline(time.Now().Add(time.Second))
		c.conn.Write(closeFrame)
		c.mu.Unlock()
		c.conn.Close()
		k.churned.Add(1)
		return true
	}
	return false
}

// senderLoop sends sender s's share of the messages until ctx ends: global
// message g goes out at start + g/rate and sender s sends g = s, s+S, ...
// A connection that fails is replaced (with a new token), and the message
// whose write failed is sent again with the same sequence, so that the
// failure is not counted as loss at every viewer.
func (k *soak) senderLoop(ctx context.Context, s int, start time.Time) {
	node := &k.nodes[(s/len(k.rooms))%len(k.nodes)]
	room := k.rooms[s%len(k.rooms)]
	content := strings.Repeat("x", k.cfg.size)
	buf := make([]byte, 0, 256+len(content))
	g := int64(s)
	var pending uint32
	for first := true; ctx.Err() == nil; first = false {
		if !first {
			k.reconnects.Add(1)
			sleepCtx(ctx, time.Second)
		}
		tok, err := mintToken(ctx, node.client, room, "soak-sender-"+strconv.Itoa(s), k.session, true)
		if err != nil {
			k.tokenFailed(err)
			continue
		}
		conn, br, err := dialChat(ctx, node.wsURL, nil, tok)
		if err != nil {
			if ctx.Err() == nil {
				k.count(k.hsErrors, handshakeCause(err))
			}
			continue
		}
		var mu sync.Mutex
		ended := make(chan struct{})
		go func() {
			defer close(ended)
			st := readFrames(conn, br, &mu, func(p []byte) {
				if code, ok := errorFrameCode(p); ok {
					k.count(k.rejected, code)
					if rs, rseq, ok := errorRequestSeq(p); ok && rs == s {
						k.refused.add(s, rseq)
					}
				}
			})
			if ctx.Err() == nil && st.closed {
				k.count(k.closes, strings.TrimSpace(fmt.Sprintf("sender: %d %s", st.code, st.reason)))
			}
		}()
		for ctx.Err() == nil {
			at := start.Add(time.Duration(g * int64(time.Second) / int64(k.cfg.rate)))
			if late := time.Since(at); late > time.Second {
				// After a reconnect: skip what was missed rather than burst
				// past the per-connection rate limit.
				missed := int64(late) * int64(k.cfg.rate) / int64(time.Second)
				g += (missed/int64(k.senders) + 1) * int64(k.senders)
				continue
			}
			t := time.NewTimer(time.Until(at))
			select {
			case <-ctx.Done():
			case <-ended:
			case <-t.C:
			}
			t.Stop()
			if ctx.Err() != nil {
				break
			}
			seq := pending
			if seq == 0 {
				seq = k.started[s].Load() + 1
				k.started[s].Store(seq)
			}
			buf = appendSendFrame(buf[:0], s, seq, time.Now().UnixNano(), content)
			mu.Lock()
			conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
			_, err := conn.Write(buf)
			mu.Unlock()
			if err != nil {
				pending = seq
				k.sendFailures.Add(1)
				break
			}
			pending = 0
			k.written[s].Store(seq)
			k.sent.Add(1)
			g += int64(k.senders)
		}
		conn.Close()
		<-ended
		if ctx.Err() == nil {
			k.count(k.closes, "sender: connection lost")
		}
	}
}

func (k *soak) count(m map[string]int, key string) {
	k.mu.Lock()
	m[key]++
	k.mu.Unlock()
}

// tokenFailed counts a failed CreateChatToken by its AWS error code.
func (k *soak) tokenFailed(err error) {
	if errors.Is(err, context.Canceled) {
		return
	}
	var ae smithy.APIError
	cause := ""
	if errors.As(err, &ae) {
		cause = ae.ErrorCode()
	} else {
		cause = handshakeCause(err)
	}
	k.count(k.tokenErrs, cause)
}

// soakSamples are the sampled series, one entry per sample and node.
type soakSamples struct {
	mu      sync.Mutex
	seconds []float64
	node    []int
	rss     []float64
	gor     []float64
	fds     []float64
}

// sampleLoop samples every node each cfg.sample and prints a line per node.
func (k *soak) sampleLoop(ctx context.Context, ss *soakSamples, csvw *csv.Writer) {
	httpc := &http.Client{Timeout: 5 * time.Second}
	t := time.NewTicker(k.cfg.sample)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		secs := time.Since(k.start).Seconds()
		// lost is settled as connections end; received counts every frame.
		k.mu.Lock()
		lost := k.res.lost
		k.mu.Unlock()
		var received uint64
		for _, h := range k.lat {
			received += h.n.Load()
		}
		for i := range k.nodes {
			n := &k.nodes[i]
			rss, gor, fds, err := sampleNode(ctx, httpc, n.endpoint, n.pid)
			if ctx.Err() != nil {
				return // the run ended during the sample
			}
			if err != nil {
				fmt.Fprintf(k.out, "%6.0fs node %d: sample: %v\n", secs, i, err)
			}
			ss.mu.Lock()
			ss.seconds = append(ss.seconds, secs)
			ss.node = append(ss.node, i)
			ss.rss = append(ss.rss, rss)
			ss.gor = append(ss.gor, gor)
			ss.fds = append(ss.fds, fds)
			ss.mu.Unlock()
			fmt.Fprintf(k.out, "%6.0fs node %d: rss %.1f MiB, goroutines %.0f, fds %.0f | live %d, opened %d, churned %d, sent %d, received %d, lost %d\n",
				secs, i, rss/(1<<20), gor, fds, k.live.Load(), k.opened.Load(), k.churned.Load(), k.sent.Load(), received, lost)
			if csvw != nil {
				f := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
				csvw.Write([]string{f(math.Round(secs*10) / 10), strconv.Itoa(i), n.endpoint, f(rss), f(gor), f(fds),
					strconv.FormatInt(k.live.Load(), 10), strconv.FormatInt(k.opened.Load(), 10), strconv.FormatInt(k.churned.Load(), 10),
					strconv.FormatInt(k.sent.Load(), 10), strconv.FormatUint(received, 10), strconv.FormatUint(lost, 10)})
				csvw.Flush()
			}
		}
	}
}

// sampleNode reads a server's goroutines from its /metrics (unauthenticated
// on the control-plane listener), and its RSS and open files from
// /proc/PID when pid is set, else from the process collector's metrics in
// the same page. Values it cannot read are NaN.
func sampleNode(ctx context.Context, httpc *http.Client, endpoint string, pid int) (rss, goroutines, fds float64, err error) {
	rss, goroutines, fds = math.NaN(), math.NaN(), math.NaN()
	m, err := fetchMetrics(ctx, httpc, endpoint,
		"go_goroutines", "process_resident_memory_bytes", "process_open_fds")
	if err == nil {
		goroutines, rss, fds = m[0], m[1], m[2]
	}
	if pid > 0 {
		r, perr := readRSS(pid)
		if perr != nil {
			return math.NaN(), goroutines, math.NaN(), errors.Join(err, perr)
		}
		entries, perr := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
		if perr != nil {
			return float64(r), goroutines, math.NaN(), errors.Join(err, perr)
		}
		rss, fds = float64(r), float64(len(entries))
	}
	return rss, goroutines, fds, err
}

// fetchMetrics returns the values of the named unlabelled metrics (NaN for
// any missing) from a node's /metrics.
func fetchMetrics(ctx context.Context, httpc *http.Client, endpoint string, names ...string) ([]float64, error) {
	samples, err := metricsPage(ctx, httpc, endpoint)
	if err != nil {
		return nil, err
	}
	return unlabelledValues(samples, names...), nil
}

func parseMetrics(r io.Reader, names ...string) ([]float64, error) {
	samples, err := parsePromText(io.LimitReader(r, maxMetricsPage))
	if err != nil {
		return nil, err
	}
	return unlabelledValues(samples, names...), nil
}

// unlabelledValues picks the named metrics without labels out of samples,
// NaN for any missing.
func unlabelledValues(samples []promSample, names ...string) []float64 {
	vals := make([]float64, len(names))
	for i, n := range names {
		vals[i] = math.NaN()
		for _, s := range samples {
			if s.name == n && len(s.labels) == 0 {
				vals[i] = s.value
			}
		}
	}
	return vals
}

// soakReport is the summary; with -json it is printed as is.
type soakReport struct {
	Endpoints       []string       `json:"endpoints"`
	Connections     int            `json:"connections"`
	Rooms           int            `json:"rooms"`
	Senders         int            `json:"senders"`
	Rate            int            `json:"rate"`
	Churn           int            `json:"churn"`
	Seconds         float64        `json:"seconds"`
	Interrupted     bool           `json:"interrupted"`
	FillSeconds     float64        `json:"fillSeconds"`
	Opened          int64          `json:"opened"`
	ChurnedClosed   int64          `json:"churnClosed"`
	ChurnClosePerS  float64        `json:"churnClosesPerSecond"`
	ChurnOpenPerS   float64        `json:"churnOpensPerSecond"`
	HandshakeErrors map[string]int `json:"handshakeErrors"`
	TokenErrors     map[string]int `json:"tokenErrors"`
	ServerCloses    map[string]int `json:"serverCloses"`

	Sent              int64          `json:"sent"`
	SendFailures      int64          `json:"sendFailures"`
	SenderReconnects  int64          `json:"senderReconnects"`
	Rejected          map[string]int `json:"rejectedByErrorCode"`
	Received          uint64         `json:"received"`
	Expected          uint64         `json:"expected"`
	Delivered         uint64         `json:"delivered"`
	Lost              uint64         `json:"lost"`
	ConnsWithLoss     int            `json:"connectionsWithLoss"`
	LeftBeforeArrival uint64         `json:"leftBeforeArrival"`
	OutOfOrder        uint64         `json:"outOfOrderOrDuplicate"`
	OtherFrames       uint64         `json:"otherFrames"`
	Latency           latencyMs      `json:"latencyMs"`
	GraceSeconds      float64        `json:"graceSeconds"`

	Nodes     []nodeGrowth `json:"nodes"`
	MaxGrowth float64      `json:"maxGrowthPct"`
	Pass      bool         `json:"pass"`
	ClientRSS int64        `json:"clientRssBytes"`
}

type nodeGrowth struct {
	Endpoint   string       `json:"endpoint"`
	PID        int          `json:"pid,omitempty"`
	RSS        seriesGrowth `json:"rssBytes"`
	Goroutines seriesGrowth `json:"goroutines"`
	FDs        seriesGrowth `json:"openFds"`
}

func (k *soak) report(ss *soakSamples, fill time.Duration, churnSecs float64, openedAtFill int64, interrupted bool) *soakReport {
	cfg := k.cfg
	rep := &soakReport{
		Endpoints: cfg.endpoints, Connections: cfg.connections, Rooms: cfg.rooms, Senders: k.senders,
		Rate: cfg.rate, Churn: cfg.churn, Seconds: time.Since(k.start).Seconds(), Interrupted: interrupted,
		FillSeconds: fill.Seconds(), Opened: k.opened.Load(), ChurnedClosed: k.churned.Load(),
		HandshakeErrors: k.hsErrors, TokenErrors: k.tokenErrs, ServerCloses: k.closes,
		Sent: k.sent.Load(), SendFailures: k.sendFailures.Load(), SenderReconnects: k.reconnects.Load(),
		Rejected: k.rejected, Expected: k.res.expected, Delivered: k.res.received, Lost: k.res.lost,
		ConnsWithLoss: k.withLoss, LeftBeforeArrival: k.res.left, OutOfOrder: k.res.reorder, OtherFrames: k.other,
		MaxGrowth: cfg.maxGrowth, GraceSeconds: cfg.grace.Seconds(),
	}
	if churnSecs > 0 {
		rep.ChurnClosePerS = float64(rep.ChurnedClosed) / churnSecs
		// Opens that replaced churned (or failed) connections; the last
		// churned slots may still be reopening when sending stops.
		rep.ChurnOpenPerS = float64(rep.Opened-openedAtFill) / churnSecs
	}
	l := summarize(k.lat)
	rep.Received = l.Count
	rep.Latency = latencyMs{P50: ms(l.P50), P90: ms(l.P90), P99: ms(l.P99), Max: ms(l.Max)}
	rep.Pass = rep.Lost == 0
	warm := cfg.warmup.Seconds()
	for i, n := range k.nodes {
		var t, rss, gor, fds []float64
		for j := range ss.seconds {
			if ss.node[j] == i {
				t = append(t, ss.seconds[j])
				rss, gor, fds = append(rss, ss.rss[j]), append(gor, ss.gor[j]), append(fds, ss.fds[j])
			}
		}
		ng := nodeGrowth{Endpoint: n.endpoint, PID: n.pid,
			RSS:        growthOf(t, rss, warm, cfg.maxGrowth),
			Goroutines: growthOf(t, gor, warm, cfg.maxGrowth),
			FDs:        growthOf(t, fds, warm, cfg.maxGrowth),
		}
		rep.Pass = rep.Pass && ng.RSS.Pass && ng.Goroutines.Pass && ng.FDs.Pass
		rep.Nodes = append(rep.Nodes, ng)
	}
	rep.ClientRSS, _ = readRSS(os.Getpid())
	return rep
}

func (r *soakReport) print(w io.Writer) {
	fmt.Fprintf(w, "\nsoak of %s: %.0fs%s; %d connections in %d room(s), filled in %.1fs\n",
		strings.Join(r.Endpoints, ","), r.Seconds, map[bool]string{true: " (interrupted)"}[r.Interrupted], r.Connections, r.Rooms, r.FillSeconds)
	fmt.Fprintf(w, "churn: %d closed (%.1f/s of %d/s asked), %d opened in all (%.1f/s after the fill)\n",
		r.ChurnedClosed, r.ChurnClosePerS, r.Churn, r.Opened, r.ChurnOpenPerS)
	fmt.Fprintf(w, "handshake errors%s\ntoken errors%s\nserver closes and drops%s\n",
		fmtCounts(r.HandshakeErrors), fmtCounts(r.TokenErrors), fmtCounts(r.ServerCloses))
	fmt.Fprintf(w, "messages: %d sent by %d senders (%d/s asked); send failures %d (resent); sender reconnects %d; rejected%s\n",
		r.Sent, r.Senders, r.Rate, r.SendFailures, r.SenderReconnects, fmtCounts(r.Rejected))
	fmt.Fprintf(w, "delivery: %d frames received; %d expected at viewers connected before the send and still there %v later: %d delivered, %d LOST (at %d connections)\n",
		r.Received, r.Expected, time.Duration(r.GraceSeconds*float64(time.Second)), r.Delivered, r.Lost, r.ConnsWithLoss)
	fmt.Fprintf(w, "  not loss: %d sent while the viewer was leaving (churned away before arrival); out of order or duplicate %d; other frames %d\n",
		r.LeftBeforeArrival, r.OutOfOrder, r.OtherFrames)
	fmt.Fprintf(w, "latency: p50 %.3fms p90 %.3fms p99 %.3fms max %.3fms\n", r.Latency.P50, r.Latency.P90, r.Latency.P99, r.Latency.Max)
	for i, n := range r.Nodes {
		fmt.Fprintf(w, "node %d %s: growth after warm-up (limit %.1f%%):\n", i, n.Endpoint, r.MaxGrowth)
		for _, s := range []struct {
			name string
			g    seriesGrowth
			unit float64
			u    string
		}{{"rss", n.RSS, 1 << 20, " MiB"}, {"goroutines", n.Goroutines, 1, ""}, {"open fds", n.FDs, 1, ""}} {
			verdict := "PASS"
			if !s.g.Pass {
				verdict = "FAIL"
			}
			if s.g.Samples < 2 {
				fmt.Fprintf(w, "  %-10s FAIL: %d samples after warm-up\n", s.name, s.g.Samples)
				continue
			}
			fmt.Fprintf(w, "  %-10s %s: fitted growth %+.2f%%; slope %+.3f%s/min; samples %.1f -> %.1f%s (%+.1f%s, %+.2f%%) over %d samples\n",
				s.name, verdict, s.g.FitPct, s.g.SlopePerMin/s.unit, s.u, s.g.First/s.unit, s.g.Last/s.unit, s.u, s.g.Abs/s.unit, s.u, s.g.Pct, s.g.Samples)
		}
	}
	verdict := "PASS"
	if !r.Pass {
		verdict = "FAIL"
	}
	fmt.Fprintf(w, "client RSS: %.1f MiB\nsoak: %s\n", mib(r.ClientRSS), verdict)
}
