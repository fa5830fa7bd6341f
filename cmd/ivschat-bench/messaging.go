package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"math"
	"net"
	"os"
	"os/signal"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivschat"
	"github.com/gobwas/ws"
)

const (
	// maxRoomRate is the real service's ceiling for a room's
	// maximumMessageRatePerSecond; the room is created with it so that the
	// requested rate plus scheduling jitter never meets the room limit.
	maxRoomRate = 100
	// perConnRate is the server's default per-connection request rate
	// (messaging.Options.RequestRatePerSecond): one sender cannot send more.
	perConnRate = 10
	// connsPerSource is how many connections share one 127.0.0.x source
	// address. Linux hands out about 28,000 ephemeral ports per source
	// address (ip_local_port_range 32768-60999) to sockets bound before
	// connect; 20,000 leaves room for everything else on the machine.
	connsPerSource = 20000
	// readBufSize is each connection's bufio.Reader. One server flush
	// brings every frame queued for a viewer (~250 bytes each) in one read;
	// under load the server's flushes are 50-100 ms apart, so 5-10 frames.
	// Measured (5,000 viewers, 100 messages/s, --write-coalesce 100ms):
	// with 2 KiB the generator needed 1.9 reads per server write, with
	// 4 KiB one. Frames larger than this are read through a separate
	// buffer.
	readBufSize = 4096
)

// messagingConfig is the parsed command line of the messaging mode.
type messagingConfig struct {
	endpoints    []string // one per node; viewer v and sender s are on node v%len and s%len
	creds        credFlags
	viewers      int
	senders      int
	rate         int
	duration     time.Duration
	ramp         int
	inflight     int
	size         int
	settle       time.Duration
	serverPIDs   []int // one per endpoint, or none
	idleOnly     bool
	jsonOut      bool
	tokenWorkers int
	cpuProfile   string
	readers      string // "epoll" or "goroutines": how viewers read
}

func parseMessagingFlags(args []string) (*messagingConfig, error) {
	c := &messagingConfig{}
	fs := flag.NewFlagSet("messaging", flag.ContinueOnError)
	endpoints := fs.String("endpoint", "http://127.0.0.1:8080", "comma-separated control-plane URLs, one per node of a cluster; viewers and senders are split evenly and connect to ws://HOST:PORT/ of their node (loopback only)")
	c.creds.register(fs)
	fs.IntVar(&c.viewers, "viewers", 1000, "WebSocket viewers in the room")
	fs.IntVar(&c.senders, "senders", 0, "sending connections (default: rate/10 rounded up, the server's per-connection request rate, and at least one per endpoint)")
	fs.IntVar(&c.rate, "rate", 100, "messages per second across all senders (at most 100, the room maximum)")
	fs.DurationVar(&c.duration, "duration", 10*time.Second, "how long to send (at most 5m)")
	fs.IntVar(&c.ramp, "ramp", 1000, "connections opened per second")
	fs.IntVar(&c.inflight, "inflight", 128, "handshakes in progress at once at most")
	fs.IntVar(&c.size, "size", 32, "message Content length in bytes (at most 500)")
	fs.DurationVar(&c.settle, "settle", 2*time.Second, "idle time after all viewers connected, before memory is read and sending starts")
	pids := fs.String("server-pid", "", "comma-separated PIDs of the server processes, one per endpoint, to report their RSS per idle connection (/proc/PID/status)")
	fs.BoolVar(&c.idleOnly, "idle-only", false, "only connect the viewers and measure memory; send nothing")
	fs.BoolVar(&c.jsonOut, "json", false, "print the summary as one JSON object")
	fs.IntVar(&c.tokenWorkers, "token-workers", 16, "concurrent CreateChatToken requests")
	fs.StringVar(&c.cpuProfile, "cpuprofile", "", "write the generator's own CPU profile of the sending phase to this file (go tool pprof)")
	fs.StringVar(&c.readers, "readers", defaultReaders, "how viewers read: epoll (a few epoll loops, the cheapest; Linux only) or goroutines (one per viewer)")
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
	if *pids != "0" { // 0 was "none" when the flag took one PID
		var err error
		if c.serverPIDs, err = parsePIDs(*pids, len(c.endpoints)); err != nil {
			return nil, err
		}
	}
	switch {
	case c.creds.missing():
		return nil, errMissingCreds
	case c.viewers < 1 || c.viewers > 200000:
		return nil, errors.New("viewers must be between 1 and 200000")
	case c.ramp < 1 || c.inflight < 1 || c.tokenWorkers < 1:
		return nil, errors.New("ramp, inflight and token-workers must be positive")
	case c.settle < 0 || c.settle > time.Minute:
		return nil, errors.New("settle must be between 0 and 1m")
	case c.readers != "epoll" && c.readers != "goroutines":
		return nil, fmt.Errorf("readers: %q is neither epoll nor goroutines", c.readers)
	}
	if c.idleOnly {
		c.senders = 0
		return c, nil
	}
	switch {
	case c.rate < 1 || c.rate > maxRoomRate:
		return nil, fmt.Errorf("rate must be between 1 and %d (the room's maximumMessageRatePerSecond cap)", maxRoomRate)
	case c.duration <= 0 || c.duration > 5*time.Minute:
		return nil, errors.New("duration must be between 0 and 5m")
	case c.size < 1 || c.size > 500:
		return nil, errors.New("size must be between 1 and 500")
	case c.senders < 0 || c.senders > 1000:
		return nil, errors.New("senders must be between 0 (automatic) and 1000")
	case c.senders > 0 && c.senders < len(c.endpoints):
		return nil, fmt.Errorf("senders: %d for %d endpoints; every node needs a sender", c.senders, len(c.endpoints))
	}
	if c.senders == 0 {
		c.senders = max((c.rate+perConnRate-1)/perConnRate, len(c.endpoints))
	}
	return c, nil
}

// Connection states, one word per viewer.
const (
	stateFailed  uint32 = iota // handshake failed (or never attempted)
	stateOpen                  // connected; still open when the run ended
	stateClosed                // the server sent a close frame
	stateDropped               // the connection broke without a close frame
)

// msgBench is one run of the messaging mode.
type msgBench struct {
	cfg   *messagingConfig
	nodes []msgNode

	track    *tracker
	state    []atomic.Uint32 // per viewer; read while readers run (drain)
	conns    []net.Conn      // per connection (viewers, then senders), to stop the readers
	other    []uint64        // per viewer: frames that were not bench messages
	stopping atomic.Bool
	readers  sync.WaitGroup
	poller   *viewerPoller // with -readers epoll

	mu           sync.Mutex
	hsErrors     map[string]int // handshake failures by cause
	closeReasons map[string]int // close frames received, by "code reason"
	slow         int            // close frames with 1008 (slow consumer)
	rejected     map[string]int // ERROR frames the senders received, by code

	sent         atomic.Int64
	sendFailures atomic.Int64
	senderErrors atomic.Int64

	perWrite []*framesPerWrite // per node, over the sending phase; nil entries if unreadable
}

// msgNode is one server of the run (the only one unless -endpoint lists
// a cluster's nodes).
type msgNode struct {
	endpoint string
	wsURL    string
	srcIPv4  bool // the target is IPv4 loopback: rotate 127.0.0.x sources
	pid      int
	client   *ivschat.Client
}

// runMessaging is the WebSocket load generator: one room, many viewers, a
// fixed message rate, and what the viewers saw.
func runMessaging(args []string) error {
	cfg, err := parseMessagingFlags(args)
	if err != nil {
		return err
	}
	raiseFileLimit()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := runMessagingWith(ctx, cfg)
	if err != nil {
		return err
	}
	if cfg.jsonOut {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	rep.print(os.Stdout)
	return ctx.Err()
}

// runMessagingWith runs the messaging mode and returns its summary; only
// setup errors end it early.
func runMessagingWith(ctx context.Context, cfg *messagingConfig) (*msgReport, error) {
	b := &msgBench{
		cfg:          cfg,
		track:        newTracker(cfg.viewers, cfg.senders, len(cfg.endpoints)),
		state:        make([]atomic.Uint32, cfg.viewers),
		conns:        make([]net.Conn, cfg.viewers+cfg.senders),
		other:        make([]uint64, cfg.viewers),
		hsErrors:     map[string]int{},
		closeReasons: map[string]int{},
		rejected:     map[string]int{},
	}
	for i, e := range cfg.endpoints {
		n := msgNode{endpoint: e, client: cfg.creds.client(e, cfg.tokenWorkers)}
		n.wsURL, n.srcIPv4 = chatURL(e)
		if len(cfg.serverPIDs) > 0 {
			n.pid = cfg.serverPIDs[i]
		}
		b.nodes = append(b.nodes, n)
	}

	room, err := createBenchRoom(ctx, b.nodes[0].client, "ivschat-bench")
	if err != nil {
		return nil, err
	}
	defer deleteBenchRoom(b.nodes[0].client, room.Arn)

	rep := &msgReport{
		Endpoint: strings.Join(cfg.endpoints, ","), Room: aws.ToString(room.Arn), Viewers: cfg.viewers,
		Senders: cfg.senders, IdleOnly: cfg.idleOnly, Readers: cfg.readers,
	}
	switch len(cfg.serverPIDs) {
	case 0:
	case 1:
		rep.ServerPID = cfg.serverPIDs[0]
	default:
		rep.ServerPIDs = cfg.serverPIDs
	}
	b.logf("creating %d viewer and %d sender tokens through %d endpoint(s)", cfg.viewers, cfg.senders, len(b.nodes))
	tokens, err := b.createTokens(ctx, aws.ToString(room.Arn))
	if err != nil {
		return nil, err
	}

	rssBefore := make([]int64, len(b.nodes))
	if len(cfg.serverPIDs) > 0 {
		// Let the servers finish with the token requests (connections,
		// garbage) so that the baseline is as quiet as the idle measurement.
		sleepCtx(ctx, time.Second)
		for i, n := range b.nodes {
			if rssBefore[i], err = readRSS(n.pid); err != nil {
				return nil, err
			}
			rep.ServerRSSBefore += rssBefore[i]
		}
	}

	readViewer := b.viewerLoop
	if cfg.readers == "epoll" {
		if b.poller, err = newViewerPoller(b); err != nil {
			return nil, err
		}
		readViewer = b.poller.add
	}
	b.logf("opening %d viewers at %d/s", cfg.viewers, cfg.ramp)
	start := time.Now()
	b.openAll(ctx, 0, tokens[:cfg.viewers], readViewer)
	rep.ConnectSeconds = time.Since(start).Seconds()
	for v := range b.state {
		if b.state[v].Load() != stateFailed {
			rep.Connected++
		}
	}
	b.logf("%d viewers connected in %.1fs; idle for %v", rep.Connected, rep.ConnectSeconds, cfg.settle)
	sleepCtx(ctx, cfg.settle)
	rssAfter := make([]int64, len(b.nodes))
	if len(cfg.serverPIDs) > 0 {
		for i, n := range b.nodes {
			if rssAfter[i], err = readRSS(n.pid); err != nil {
				return nil, err
			}
			rep.ServerRSSAfter += rssAfter[i]
		}
		if rep.Connected > 0 {
			rep.ServerRSSPerConn = float64(rep.ServerRSSAfter-rep.ServerRSSBefore) / float64(rep.Connected)
		}
	}

	if !cfg.idleOnly && ctx.Err() == nil {
		b.send(ctx, tokens[cfg.viewers:], rep)
	}

	// Stop every reader and wait for them, so that the per-viewer arrays can
	// be read without synchronization.
	b.stopping.Store(true)
	for _, c := range b.conns {
		if c != nil {
			c.Close()
		}
	}
	if b.poller != nil {
		b.poller.close()
	}
	b.readers.Wait()
	b.finish(rep, rssBefore, rssAfter)
	rep.ClientRSS, _ = readRSS(os.Getpid())
	return rep, nil
}

func (b *msgBench) logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "ivschat-bench: "+format+"\n", args...)
}

// nodeOf is the node of connection idx (viewers first, then senders):
// viewer v is on node v%E and sender s on node s%E, so that both are split
// evenly and every node publishes.
func (b *msgBench) nodeOf(idx int) int {
	if idx >= b.cfg.viewers {
		idx -= b.cfg.viewers
	}
	return idx % len(b.nodes)
}

// createTokens fetches every token before the first connection opens, so that
// the server's memory baseline is taken after the control-plane work and the
// RSS difference is the connections alone. Viewers get no capability; senders
// get SEND_MESSAGE. Token i is minted through the node connection i will use
// (any node's token is good on every node of a cluster; this spreads the
// work).
func (b *msgBench) createTokens(ctx context.Context, roomArn string) ([]string, error) {
	n := b.cfg.viewers + b.cfg.senders
	tokens := make([]string, n)
	var next atomic.Int64
	var firstErr error
	var errOnce sync.Once
	var wg sync.WaitGroup
	// Session long enough for any run: at most 5m of sending plus the ramp.
	session := int32(min(180, 10+n/b.cfg.ramp/60+int(b.cfg.duration/time.Minute)))
	for range b.cfg.tokenWorkers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				user, send := "viewer-"+strconv.Itoa(i), false
				if i >= b.cfg.viewers {
					user, send = "sender-"+strconv.Itoa(i-b.cfg.viewers), true
				}
				tok, err := mintToken(ctx, b.nodes[b.nodeOf(i)].client, roomArn, user, session, send)
				if err != nil {
					errOnce.Do(func() { firstErr = err })
					next.Store(int64(n)) // stop the other workers
					return
				}
				tokens[i] = tok
			}
		})
	}
	wg.Wait()
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	return tokens, firstErr
}

// openAll opens one connection per token at the configured ramp rate, with at
// most cfg.inflight handshakes in progress, and returns when every handshake
// has finished. Connection first+i gets tokens[i]; each successful one runs
// loop on its own goroutine until the run stops.
func (b *msgBench) openAll(ctx context.Context, first int, tokens []string, loop func(i int, conn net.Conn, br *bufio.Reader)) {
	sem := make(chan struct{}, b.cfg.inflight)
	var handshakes sync.WaitGroup
	interval := time.Second / time.Duration(b.cfg.ramp)
	start := time.Now()
	for i, tok := range tokens {
		if ctx.Err() != nil {
			b.hsFailed(errors.New("interrupted"))
			continue
		}
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d)
		}
		sem <- struct{}{}
		handshakes.Add(1)
		go func() {
			idx := first + i
			conn, br, err := b.dial(ctx, idx, tok)
			if err != nil {
				b.hsFailed(err)
				<-sem
				handshakes.Done()
				return
			}
			b.mu.Lock()
			b.conns[idx] = conn
			b.mu.Unlock()
			if idx < b.cfg.viewers {
				b.state[idx].Store(stateOpen)
			}
			b.readers.Add(1)
			<-sem
			handshakes.Done()
			defer b.readers.Done()
			loop(idx, conn, br)
		}()
	}
	handshakes.Wait()
}

// dial opens connection idx from a rotating 127.0.0.x source address: one
// source address runs out of ephemeral ports near 28,000 connections to one
// server port.
func (b *msgBench) dial(ctx context.Context, idx int, token string) (net.Conn, *bufio.Reader, error) {
	n := &b.nodes[b.nodeOf(idx)]
	var src net.IP
	if n.srcIPv4 {
		src = sourceAddr(idx)
	}
	return dialChat(ctx, n.wsURL, src, token)
}

// sourceAddr is the local address of connection idx: 127.0.0.2 for the first
// connsPerSource connections, then 127.0.0.3, and so on (all of 127.0.0.0/8
// is local on Linux without configuration).
func sourceAddr(idx int) net.IP {
	n := 2 + idx/connsPerSource
	return net.IPv4(127, byte(n>>16), byte(n>>8), byte(n))
}

func (b *msgBench) hsFailed(err error) {
	msg := handshakeCause(err)
	b.mu.Lock()
	b.hsErrors[msg]++
	b.mu.Unlock()
}

// viewerLoop reads viewer v's frames on a goroutine of its own until the
// run stops (-readers goroutines).
func (b *msgBench) viewerLoop(v int, conn net.Conn, br *bufio.Reader) {
	sc := conn.(*stampConn)
	st := readFrames(conn, br, nil, func(p []byte) {
		// Receipt is when the read that completed the frame returned, not
		// when this goroutine got to parse it: a read brings several frames,
		// and timing each after parsing the ones before it would add the
		// generator's own work to the later frames' latency.
		b.viewerText(v, sc.lastRead, p)
	})
	b.recordEnd(v, st)
}

// viewerText records a text frame viewer v received with the read that
// returned at now (UnixNano).
func (b *msgBench) viewerText(v int, now int64, p []byte) {
	sender, seq, sent, ok := parseBenchAttr(p)
	if !ok {
		b.other[v]++
		return
	}
	b.track.observe(v, sender, seq, time.Duration(now-sent))
}

// stampConn notes when each read returned data. Only the connection's
// reader goroutine reads, so lastRead needs no synchronization.
//
// Measured (5,000 viewers, 100 messages/s): one clock read per read call
// instead of one per frame took time.Now from 6.6% of the generator's CPU
// to 1.9%, CPU the server needs on the same two cores.
type stampConn struct {
	net.Conn
	lastRead int64 // UnixNano
	// raw is set where readWaitFirst works (see stampconn_linux.go);
	// drained says the last read left the socket empty.
	raw     syscall.RawConn
	drained bool
}

func (c *stampConn) Read(p []byte) (n int, err error) {
	if c.raw != nil && c.drained {
		n, err = c.readWaitFirst(p)
	} else {
		n, err = c.Conn.Read(p)
	}
	c.drained = n < len(p)
	if n > 0 {
		c.lastRead = time.Now().UnixNano()
	}
	return n, err
}

// recordEnd notes how a connection ended. Errors after the stop are the
// generator closing its own sockets.
func (b *msgBench) recordEnd(idx int, st endState) {
	if st.closed {
		b.mu.Lock()
		b.closeReasons[strings.TrimSpace(fmt.Sprintf("%d %s", st.code, st.reason))]++
		if st.code == ws.StatusPolicyViolation {
			b.slow++
		}
		b.mu.Unlock()
		if idx < b.cfg.viewers {
			b.state[idx].Store(stateClosed)
		}
		return
	}
	if b.stopping.Load() {
		return
	}
	if idx < b.cfg.viewers {
		b.state[idx].Store(stateDropped)
	} else {
		b.senderErrors.Add(1)
	}
	b.mu.Lock()
	b.closeReasons["dropped without close frame"]++
	b.mu.Unlock()
}

// endState is how readFrames ended: a close frame from the server, or an
// error (including the generator closing the socket).
type endState struct {
	closed bool
	code   ws.StatusCode
	reason string
	err    error
}

// readFrames reads server frames until the connection ends, passing each text
// frame's payload to onText (valid only during the call) and answering pings
// and the close handshake. Complete frames that fit the reader's buffer are
// parsed in place, so a viewer allocates nothing per frame. wmu, if not nil,
// serializes writes with another goroutine (a sender's send loop).
func readFrames(conn net.Conn, br *bufio.Reader, wmu *sync.Mutex, onText func([]byte)) endState {
	hdr := make([]byte, ws.MaxHeaderSize-2)
	var big []byte
	w := frameWriter{w: conn, mu: wmu}
	for {
		h, err := ws.ReadHeaderBuffer(br, hdr)
		if err != nil {
			return endState{err: err}
		}
		if h.Length > maxFrameSize {
			return endState{err: fmt.Errorf("frame of %d bytes", h.Length)}
		}
		n := int(h.Length)
		var p []byte
		inPlace := n <= br.Size()
		if inPlace {
			p, err = br.Peek(n)
		} else {
			if cap(big) < n {
				big = make([]byte, n)
			}
			p = big[:n]
			_, err = io.ReadFull(br, p)
		}
		if err != nil {
			return endState{err: err}
		}
		if st, done := handleFrame(h, p, w, onText); done {
			return st
		}
		if inPlace {
			br.Discard(n)
		}
	}
}

// maxFrameSize bounds a server frame the generator accepts; the server's
// largest (an event with every attribute at its limit) is far below it.
const maxFrameSize = 1 << 20

// frameWriter writes the generator's few frames (pongs, the close echo),
// masked as a client must, serialized by mu when another goroutine writes
// to the same connection.
type frameWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (fw frameWriter) write(f ws.Frame) {
	if fw.mu != nil {
		fw.mu.Lock()
		defer fw.mu.Unlock()
	}
	ws.WriteFrame(fw.w, ws.MaskFrameInPlace(f))
}

// handleFrame acts on one server frame whose payload p was read whole:
// text goes to onText, a ping is answered and a close echoed, which ends the
// connection (done).
func handleFrame(h ws.Header, p []byte, w frameWriter, onText func([]byte)) (st endState, done bool) {
	if h.Masked {
		ws.Cipher(p, h.Mask, 0)
	}
	switch h.OpCode {
	case ws.OpText:
		// The server never fragments (one JSON object per frame).
		onText(p)
	case ws.OpPing:
		w.write(ws.NewPongFrame(bytes.Clone(p)))
	case ws.OpClose:
		code, reason := ws.ParseCloseFrameData(p)
		if code == 0 {
			code = ws.StatusNoStatusRcvd
		}
		echo := code
		if echo == ws.StatusNoStatusRcvd {
			echo = ws.StatusNormalClosure
		}
		w.write(ws.NewCloseFrame(ws.NewCloseFrameBody(echo, "")))
		return endState{closed: true, code: code, reason: reason}, true
	}
	return endState{}, false
}

// send opens the senders, sends cfg.rate messages a second for cfg.duration
// and waits for the viewers to receive what was accepted.
func (b *msgBench) send(ctx context.Context, tokens []string, rep *msgReport) {
	cfg := b.cfg
	locks := make([]sync.Mutex, cfg.senders)
	ready := make([]bool, cfg.senders)
	b.openAll(ctx, cfg.viewers, tokens, func(idx int, conn net.Conn, br *bufio.Reader) {
		s := idx - cfg.viewers
		st := readFrames(conn, br, &locks[s], func(p []byte) {
			// A rejected message is not expected at the viewers.
			code, ok := errorFrameCode(p)
			if !ok {
				return
			}
			b.mu.Lock()
			b.rejected[code]++
			b.mu.Unlock()
		})
		b.recordEnd(idx, st)
	})
	b.mu.Lock()
	for s := range ready {
		ready[s] = b.conns[cfg.viewers+s] != nil
	}
	b.mu.Unlock()

	total := int64(cfg.rate) * int64(cfg.duration/time.Millisecond) / 1000
	content := strings.Repeat("x", cfg.size)
	b.logf("sending %d messages at %d/s from %d senders through %d endpoint(s) for %v", total, cfg.rate, cfg.senders, len(b.nodes), cfg.duration)
	if cfg.rate > perConnRate*cfg.senders {
		b.logf("warning: %d/s per sender is over the server's default per-connection limit of %d/s", cfg.rate/cfg.senders, perConnRate)
	}

	if cfg.cpuProfile != "" {
		stopProfile, err := startCPUProfile(cfg.cpuProfile)
		if err != nil {
			b.logf("cpuprofile: %v", err)
		} else {
			defer stopProfile()
		}
	}
	before := b.scrapeAll(ctx)
	cpuBefore := b.readCPUs()
	deliveredBefore := b.track.delivered()
	start := time.Now()
	sendCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for s := range cfg.senders {
		if !ready[s] {
			continue
		}
		wg.Go(func() {
			b.senderLoop(sendCtx, s, b.conns[cfg.viewers+s], &locks[s], start, total, content)
		})
	}
	progress := time.NewTicker(time.Second)
	defer progress.Stop()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	last := b.track.delivered()
wait:
	for {
		select {
		case <-done:
			break wait
		case <-progress.C:
			d := b.track.delivered()
			b.logf("%3.0fs: %d sent, %d frames/s delivered", time.Since(start).Seconds(), b.sent.Load(), d-last)
			last = d
		}
	}
	rep.SendSeconds = time.Since(start).Seconds()
	b.drain(ctx)
	if cpuAfter := b.readCPUs(); cpuBefore != nil && cpuAfter != nil {
		if n := b.track.delivered() - deliveredBefore; n > 0 {
			perDelivery := func(d time.Duration) float64 {
				return math.Round(float64(d)/float64(n)) / 1e3 // ns to µs, 3 decimals
			}
			rep.ClientCPUPerDelivery = perDelivery(cpuAfter[0] - cpuBefore[0])
			var server time.Duration
			for i := 1; i < len(cpuAfter); i++ {
				server += cpuAfter[i] - cpuBefore[i]
			}
			if len(cpuAfter) > 1 {
				rep.ServerCPUPerDelivery = perDelivery(server)
			}
		}
	}
	after := b.scrapeAll(ctx)
	b.perWrite = make([]*framesPerWrite, len(b.nodes))
	for i := range b.nodes {
		b.perWrite[i] = framesPerWriteOver(before[i], after[i])
	}
}

// senderLoop sends sender s's share: global message g goes out at
// start + g/rate, and sender s sends g = s, s+senders, s+2*senders, ..., so
// the senders interleave evenly and the room sees a steady rate.
func (b *msgBench) senderLoop(ctx context.Context, s int, conn net.Conn, mu *sync.Mutex, start time.Time, total int64, content string) {
	cfg := b.cfg
	buf := make([]byte, 0, 256+len(content))
	var seq uint32
	for g := int64(s); g < total; g += int64(cfg.senders) {
		at := start.Add(time.Duration(g * int64(time.Second) / int64(cfg.rate)))
		if d := time.Until(at); d > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(d):
			}
		}
		seq++
		buf = appendSendFrame(buf[:0], s, seq, time.Now().UnixNano(), content)
		mu.Lock()
		conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
		_, err := conn.Write(buf)
		mu.Unlock()
		if err != nil {
			b.sendFailures.Add(1)
			return
		}
		b.sent.Add(1)
	}
}

// appendSendFrame appends a complete masked client text frame carrying a
// SEND_MESSAGE whose bench attribute is "sender.seq.sendUnixNano". The
// timestamp is taken just before the write, so the latency includes the
// server's read, validation and fan-out, and the viewer's read.
func appendSendFrame(dst []byte, sender int, seq uint32, now int64, content string) []byte {
	var body [640]byte
	p := append(body[:0], `{"Action":"SEND_MESSAGE","RequestId":"`...)
	p = strconv.AppendInt(p, int64(sender), 10)
	p = append(p, '-')
	p = strconv.AppendUint(p, uint64(seq), 10)
	p = append(p, `","Content":"`...)
	p = append(p, content...)
	p = append(p, `","Attributes":{"`+benchAttr+`":"`...)
	p = strconv.AppendInt(p, int64(sender), 10)
	p = append(p, '.')
	p = strconv.AppendUint(p, uint64(seq), 10)
	p = append(p, '.')
	p = strconv.AppendInt(p, now, 10)
	p = append(p, `"}}`...)

	h := ws.Header{Fin: true, OpCode: ws.OpText, Masked: true, Mask: ws.NewMask(), Length: int64(len(p))}
	var hb bytes.Buffer
	ws.WriteHeader(&hb, h)
	dst = append(dst, hb.Bytes()...)
	off := len(dst)
	dst = append(dst, p...)
	ws.Cipher(dst[off:], h.Mask, 0)
	return dst
}

// drain waits for the viewers to receive every accepted message: until the
// expected total arrives, or nothing has arrived for two seconds, or 15
// seconds have passed.
func (b *msgBench) drain(ctx context.Context) {
	deadline := time.Now().Add(15 * time.Second)
	lastN, lastChange := b.track.delivered(), time.Now()
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if b.track.delivered() >= b.expectedTotal() {
			return
		}
		time.Sleep(20 * time.Millisecond)
		if n := b.track.delivered(); n != lastN {
			lastN, lastChange = n, time.Now()
		} else if time.Since(lastChange) > 2*time.Second {
			return
		}
	}
}

// accepted is how many messages the server took: sent minus those answered
// with an ERROR frame.
func (b *msgBench) accepted() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := b.sent.Load()
	for _, c := range b.rejected {
		n -= int64(c)
	}
	return n
}

// expectedTotal is the number of frames the viewers still open should get
// in total; viewers closed meanwhile lower it.
func (b *msgBench) expectedTotal() uint64 {
	open := 0
	for v := range b.state {
		if b.state[v].Load() == stateOpen {
			open++
		}
	}
	return uint64(max(b.accepted(), 0)) * uint64(open)
}

// finish fills in the report from the stopped readers' state, the totals
// and each node's share (viewer v is on node v%E).
func (b *msgBench) finish(rep *msgReport, rssBefore, rssAfter []int64) {
	rep.HandshakeErrors = b.hsErrors
	for _, n := range b.hsErrors {
		rep.HandshakeFailures += n
	}
	rep.CloseReasons = b.closeReasons
	rep.SlowConsumerDisconnects = b.slow
	E := len(b.nodes)
	rep.Nodes = make([]msgNodeReport, E)
	for i, n := range b.nodes {
		nr := &rep.Nodes[i]
		nr.Endpoint, nr.PID = n.endpoint, n.pid
		if n.pid > 0 {
			nr.ServerRSSBefore, nr.ServerRSSAfter = rssBefore[i], rssAfter[i]
		}
	}
	for v := range b.state {
		nr := &rep.Nodes[v%E]
		nr.Viewers++
		if b.state[v].Load() != stateFailed {
			nr.Connected++
		}
	}
	for i := range rep.Nodes {
		nr := &rep.Nodes[i]
		if nr.PID > 0 && nr.Connected > 0 {
			nr.ServerRSSPerConn = float64(nr.ServerRSSAfter-nr.ServerRSSBefore) / float64(nr.Connected)
		}
	}
	if b.cfg.idleOnly {
		return
	}
	rep.Rate = b.cfg.rate
	rep.Sent = b.sent.Load()
	rep.Rejected = b.rejected
	rep.SendFailures = b.sendFailures.Load()
	rep.SenderDisconnects = b.senderErrors.Load()
	accepted := uint64(max(b.accepted(), 0))
	rep.Accepted = int64(accepted)
	for s := range b.cfg.senders {
		if b.conns[b.cfg.viewers+s] != nil {
			rep.Nodes[s%E].Senders++
		}
	}
	for v := range b.state {
		nr := &rep.Nodes[v%E]
		st := b.state[v].Load()
		got := b.track.received[v]
		nr.Delivered += got
		rep.OtherFrames += b.other[v]
		rep.OrderingViolations += uint64(b.track.reordered[v])
		rep.Duplicates += uint64(b.track.duplicates[v])
		if b.track.reordered[v] > 0 {
			rep.ViewersOutOfOrder++
		}
		switch st {
		case stateOpen:
			nr.Expected += accepted
			if got < accepted {
				nr.Lost += accepted - got
				nr.ViewersWithLoss++
			}
		case stateClosed, stateDropped:
			nr.Disconnected++
			if got < accepted {
				rep.DisconnectedMissed += accepted - got
			}
		}
	}
	var total framesPerWrite
	totalOK := true
	for i := range rep.Nodes {
		nr := &rep.Nodes[i]
		rep.Delivered += nr.Delivered
		rep.Expected += nr.Expected
		rep.Lost += nr.Lost
		rep.ViewersWithLoss += nr.ViewersWithLoss
		rep.Disconnected += nr.Disconnected
		if rep.SendSeconds > 0 {
			nr.DeliveredPerSec = float64(nr.Delivered) / rep.SendSeconds
		}
		l := summarize(b.track.nodeShards(i))
		nr.Latency = msOf(l)
		nr.PerViewerLatency = b.track.perViewer(func(v int) bool { return v%E == i }, l.Max)
		if E > 1 {
			for from := range E {
				nr.LatencyFromNode = append(nr.LatencyFromNode, latencyOf(b.track.pathShards(i, from)))
			}
		}
		if b.perWrite != nil && b.perWrite[i] != nil {
			nr.FramesPerWrite = b.perWrite[i]
			total.FramesDelivered += nr.FramesPerWrite.FramesDelivered
			total.Writes += nr.FramesPerWrite.Writes
		} else {
			totalOK = false
		}
	}
	if rep.SendSeconds > 0 {
		rep.DeliveredPerSec = float64(rep.Delivered) / rep.SendSeconds
		rep.ExpectedPerSec = float64(rep.Expected) / rep.SendSeconds
	}
	l := summarize(b.track.shards)
	rep.Latency = msOf(l)
	rep.PerViewerLatency = b.track.perViewer(func(int) bool { return true }, l.Max)
	switch {
	case E == 1:
		rep.FramesPerWrite = rep.Nodes[0].FramesPerWrite
	case totalOK:
		// Across nodes only the counters add up; each node's histogram is
		// in its own entry.
		if total.Writes > 0 {
			total.Mean = round3(float64(total.FramesDelivered) / float64(total.Writes))
		}
		rep.FramesPerWrite = &total
	}
}

// latencyOf is the pooled percentiles of shards, in milliseconds.
func latencyOf(shards []*histogram) *latencyMs { return msOf(summarize(shards)) }

func msOf(l latencySummary) *latencyMs {
	return &latencyMs{P50: ms(l.P50), P90: ms(l.P90), P99: ms(l.P99), Max: ms(l.Max)}
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }

// msgReport is the summary; with -json it is printed as is. The totals are
// over every node; Nodes has each node's share.
type msgReport struct {
	Endpoint          string         `json:"endpoint"` // comma-separated with several nodes
	Room              string         `json:"room"`
	Viewers           int            `json:"viewers"`
	Senders           int            `json:"senders"`
	Connected         int            `json:"connected"`
	ConnectSeconds    float64        `json:"connectSeconds"`
	HandshakeFailures int            `json:"handshakeFailures"`
	HandshakeErrors   map[string]int `json:"handshakeErrors"`
	IdleOnly          bool           `json:"idleOnly"`
	Readers           string         `json:"readers"` // how the viewers read: epoll or goroutines

	ServerPID        int     `json:"serverPid,omitempty"`
	ServerPIDs       []int   `json:"serverPids,omitempty"` // with several nodes; the RSS figures are their sums
	ServerRSSBefore  int64   `json:"serverRssBeforeBytes,omitempty"`
	ServerRSSAfter   int64   `json:"serverRssAfterBytes,omitempty"`
	ServerRSSPerConn float64 `json:"serverRssPerIdleConnBytes,omitempty"`
	ClientRSS        int64   `json:"clientRssBytes"`

	Rate              int            `json:"rate,omitempty"`
	SendSeconds       float64        `json:"sendSeconds,omitempty"`
	Sent              int64          `json:"sent"`
	Accepted          int64          `json:"accepted"`
	Rejected          map[string]int `json:"rejectedByErrorCode,omitempty"`
	SendFailures      int64          `json:"sendFailures"`
	SenderDisconnects int64          `json:"senderDisconnects"`

	Delivered       uint64     `json:"delivered"`
	Expected        uint64     `json:"expected"`
	DeliveredPerSec float64    `json:"deliveredPerSec"`
	ExpectedPerSec  float64    `json:"expectedPerSec"`
	Latency         *latencyMs `json:"latencyMs,omitempty"`
	OtherFrames     uint64     `json:"otherFrames"`
	// PerViewerLatency is the distribution over viewers of each one's own
	// p50 and p99.
	PerViewerLatency *perViewerLatency `json:"perViewerLatencyMs,omitempty"`
	// FramesPerWrite is the servers' coalescing over the sending phase, from
	// their /metrics (absent if not readable).
	FramesPerWrite *framesPerWrite `json:"framesPerWrite,omitempty"`
	// CPU per delivery, in µs, over the sending phase and the drain: the
	// servers' (with -server-pid) and the generator's own. They share the
	// machine, so what the generator spends the server cannot.
	ServerCPUPerDelivery float64 `json:"serverCpuPerDeliveryMicros,omitempty"`
	ClientCPUPerDelivery float64 `json:"clientCpuPerDeliveryMicros,omitempty"`

	Lost                    uint64         `json:"lost"`
	ViewersWithLoss         int            `json:"viewersWithLoss"`
	Disconnected            int            `json:"disconnectedViewers"`
	DisconnectedMissed      uint64         `json:"disconnectedViewersMissed"`
	OrderingViolations      uint64         `json:"orderingViolations"`
	ViewersOutOfOrder       int            `json:"viewersOutOfOrder"`
	Duplicates              uint64         `json:"duplicates"`
	SlowConsumerDisconnects int            `json:"slowConsumerDisconnects"`
	CloseReasons            map[string]int `json:"closeReasons"`

	Nodes []msgNodeReport `json:"nodes"`
}

// msgNodeReport is one node's share: the viewers connected to it and what
// they received, wherever it was sent.
type msgNodeReport struct {
	Endpoint         string  `json:"endpoint"`
	PID              int     `json:"pid,omitempty"`
	ServerRSSBefore  int64   `json:"serverRssBeforeBytes,omitempty"`
	ServerRSSAfter   int64   `json:"serverRssAfterBytes,omitempty"`
	ServerRSSPerConn float64 `json:"serverRssPerIdleConnBytes,omitempty"`
	Viewers          int     `json:"viewers"`
	Connected        int     `json:"connected"`
	Senders          int     `json:"senders"` // connected senders that publish through this node

	Delivered        uint64            `json:"delivered"`
	Expected         uint64            `json:"expected"`
	DeliveredPerSec  float64           `json:"deliveredPerSec"`
	Lost             uint64            `json:"lost"`
	ViewersWithLoss  int               `json:"viewersWithLoss"`
	Disconnected     int               `json:"disconnectedViewers"`
	Latency          *latencyMs        `json:"latencyMs,omitempty"`
	PerViewerLatency *perViewerLatency `json:"perViewerLatencyMs,omitempty"`
	// LatencyFromNode[j] is the latency of the messages sent through node j
	// (with several nodes): j != this node crossed the broker.
	LatencyFromNode []*latencyMs    `json:"latencyFromNodeMs,omitempty"`
	FramesPerWrite  *framesPerWrite `json:"framesPerWrite,omitempty"`
}

type latencyMs struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

func (r *msgReport) print(w io.Writer) {
	fmt.Fprintf(w, "room %s at %s\n", r.Room, r.Endpoint)
	fmt.Fprintf(w, "viewers: %d of %d connected in %.1fs; handshake failures %d%s\n",
		r.Connected, r.Viewers, r.ConnectSeconds, r.HandshakeFailures, fmtCounts(r.HandshakeErrors))
	if r.ServerPID > 0 || len(r.ServerPIDs) > 0 {
		fmt.Fprintf(w, "server RSS: %.1f MiB before, %.1f MiB with %d idle viewers: %.0f bytes (%.1f KB) per connection\n",
			mib(r.ServerRSSBefore), mib(r.ServerRSSAfter), r.Connected, r.ServerRSSPerConn, r.ServerRSSPerConn/1000)
		if r.ServerRSSPerConn < 0 {
			// RSS rarely shrinks, but a server that already served connections
			// reuses freed pages; only a fresh server gives a usable figure.
			fmt.Fprintln(w, "  (negative: the server reused memory from earlier connections; measure against a freshly started server)")
		}
	}
	if !r.IdleOnly {
		fmt.Fprintf(w, "sent: %d messages in %.1fs from %d senders (%.1f/s); accepted %d; rejected%s; send failures %d; sender disconnects %d\n",
			r.Sent, r.SendSeconds, r.Senders, float64(r.Sent)/max(r.SendSeconds, 1e-9), r.Accepted, fmtCounts(r.Rejected), r.SendFailures, r.SenderDisconnects)
		fmt.Fprintf(w, "delivered: %d of %d frames, %.0f frames/s (expected %.0f/s); other frames %d\n",
			r.Delivered, r.Expected, r.DeliveredPerSec, r.ExpectedPerSec, r.OtherFrames)
		if r.Latency != nil {
			fmt.Fprintf(w, "latency: p50 %.3fms p90 %.3fms p99 %.3fms max %.3fms\n", r.Latency.P50, r.Latency.P90, r.Latency.P99, r.Latency.Max)
		}
		if pv := r.PerViewerLatency; pv != nil {
			fmt.Fprintf(w, "per-viewer latency over %d viewers: %s\n", pv.Viewers, pv)
		}
		fmt.Fprintf(w, "server frames per write: %s\n", r.FramesPerWrite)
		if r.ClientCPUPerDelivery > 0 {
			server := "not measured (-server-pid)"
			if r.ServerCPUPerDelivery > 0 {
				server = fmt.Sprintf("%.2fµs", r.ServerCPUPerDelivery)
			}
			fmt.Fprintf(w, "CPU per delivery (sending and drain): server %s, generator %.2fµs (viewers read with %s)\n", server, r.ClientCPUPerDelivery, r.Readers)
		}
		fmt.Fprintf(w, "loss: %d frames at %d viewers; disconnected viewers %d (missed %d frames)\n",
			r.Lost, r.ViewersWithLoss, r.Disconnected, r.DisconnectedMissed)
		fmt.Fprintf(w, "ordering: %d violations at %d viewers; %d duplicates\n", r.OrderingViolations, r.ViewersOutOfOrder, r.Duplicates)
	}
	fmt.Fprintf(w, "slow-consumer disconnects: %d; close frames and drops%s\n", r.SlowConsumerDisconnects, fmtCounts(r.CloseReasons))
	if len(r.Nodes) > 1 {
		for i, n := range r.Nodes {
			n.print(w, i, r.IdleOnly)
		}
	}
	fmt.Fprintf(w, "client RSS: %.1f MiB\n", mib(r.ClientRSS))
}

// print writes node i's lines of a cluster run.
func (n *msgNodeReport) print(w io.Writer, i int, idleOnly bool) {
	fmt.Fprintf(w, "node %d (%s): %d of %d viewers connected", i, n.Endpoint, n.Connected, n.Viewers)
	if n.PID > 0 {
		fmt.Fprintf(w, "; server RSS %.0f bytes per idle connection", n.ServerRSSPerConn)
	}
	fmt.Fprintln(w)
	if idleOnly {
		return
	}
	fmt.Fprintf(w, "  senders %d; delivered %d of %d frames (%.0f/s); lost %d at %d viewers; disconnected viewers %d\n",
		n.Senders, n.Delivered, n.Expected, n.DeliveredPerSec, n.Lost, n.ViewersWithLoss, n.Disconnected)
	if l := n.Latency; l != nil {
		fmt.Fprintf(w, "  latency: p50 %.3fms p90 %.3fms p99 %.3fms max %.3fms\n", l.P50, l.P90, l.P99, l.Max)
	}
	for j, l := range n.LatencyFromNode {
		fmt.Fprintf(w, "  sent through node %d: p50 %.3fms p90 %.3fms p99 %.3fms max %.3fms\n", j, l.P50, l.P90, l.P99, l.Max)
	}
	if pv := n.PerViewerLatency; pv != nil {
		fmt.Fprintf(w, "  per-viewer latency over %d viewers: %s\n", pv.Viewers, pv)
	}
	fmt.Fprintf(w, "  server frames per write: %s\n", n.FramesPerWrite)
}

// String is the text summary's form: each viewer's p50 and p99, spread.
func (pv *perViewerLatency) String() string {
	f := func(s spread) string {
		return fmt.Sprintf("median %.3fms, p99 %.3fms, worst %.3fms (best %.3fms)", s.Median, s.P99, s.Max, s.Min)
	}
	return "own p50 " + f(pv.P50) + "; own p99 " + f(pv.P99)
}

// String is the text summary's form; "not available" if the server's
// metrics could not be read.
func (f *framesPerWrite) String() string {
	if f == nil {
		return "not available"
	}
	s := fmt.Sprintf("%.3f (%d frames in %d writes)", f.Mean, f.FramesDelivered, f.Writes)
	if h := f.Histogram; h != nil {
		s += fmt.Sprintf("; histogram: p50 %s, p99 %s, mean %.3f over %d writes", fmtBound(h.P50, h.P50Above), fmtBound(h.P99, h.P99Above), h.Mean, h.Writes)
	}
	return s
}

func fmtBound(v float64, above bool) string {
	if above {
		return fmt.Sprintf("> %g", v)
	}
	return fmt.Sprintf("<= %g", v)
}

func fmtCounts(m map[string]int) string {
	if len(m) == 0 {
		return ": none"
	}
	var sb strings.Builder
	sb.WriteString(":")
	for _, k := range slices.Sorted(maps.Keys(m)) {
		fmt.Fprintf(&sb, " %q×%d", k, m[k])
	}
	return sb.String()
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

// readRSS returns VmRSS of a process in bytes.
func readRSS(pid int) (int64, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, fmt.Errorf("server memory: %w", err)
	}
	for line := range strings.Lines(string(data)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("VmRSS of %d: %w", pid, err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("no VmRSS for process %d", pid)
}

// readCPUs returns the CPU time used so far by the generator (first) and by
// each server given with -server-pid, or nil if one cannot be read.
func (b *msgBench) readCPUs() []time.Duration {
	pids := []int{os.Getpid()}
	for _, n := range b.nodes {
		if n.pid > 0 {
			pids = append(pids, n.pid)
		}
	}
	out := make([]time.Duration, len(pids))
	for i, pid := range pids {
		var err error
		if out[i], err = readCPU(pid); err != nil {
			b.logf("CPU time: %v", err)
			return nil
		}
	}
	return out
}

// clockTicks is Linux's USER_HZ, the unit of /proc/PID/stat's times: 100 on
// every architecture Go supports (sysconf(_SC_CLK_TCK) would need cgo).
const clockTicks = 100

// readCPU returns the user and system CPU time a process has used, from
// /proc/PID/stat (fields 14 and 15, counted after the command name, which
// may itself contain spaces and parentheses).
func readCPU(pid int) (time.Duration, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	return parseProcStatCPU(string(data))
}

func parseProcStatCPU(stat string) (time.Duration, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("/proc stat: no command name")
	}
	f := strings.Fields(stat[i+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, errors.New("/proc stat: too few fields")
	}
	utime, err1 := strconv.ParseUint(f[11], 10, 64)
	stime, err2 := strconv.ParseUint(f[12], 10, 64)
	// A process's CPU time in ticks fits in far fewer bits; the bound keeps
	// a corrupt figure from overflowing the Duration.
	const maxTicks = 1 << 40
	if err1 != nil || err2 != nil || utime > maxTicks || stime > maxTicks {
		return 0, fmt.Errorf("/proc stat: utime %q, stime %q", f[11], f[12])
	}
	return time.Duration(utime+stime) * time.Second / clockTicks, nil
}

// startCPUProfile profiles the generator itself, to tell its own cost apart
// from the server's when both share the machine.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
