package server

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/ivschatd/ivschatd/internal/faultproxy"
)

// Fault-injection tests of cluster mode (issue 8): two real nodes on
// PostgreSQL and a Redis of the test's own, with the fault injected between
// a node and Redis or into a node itself. Each measures its time to recover
// and logs it (go test -v -run 'TestFault').

// TestFaultPubSubBlackHole: node B's connections to Redis go silent without
// a FIN (a dead route). B's /readyz turns 503 naming redis_pubsub, and the
// liveness probe replaces B's pub/sub connection by itself: B's viewers get
// new messages again within 45 s (the default probe timings: silent 5 s,
// then 10 s without a probe reply).
func TestFaultPubSubBlackHole(t *testing.T) {
	settings := newClusterSettings(t)
	redisURL, _ := startRedis(t)
	proxy, viaProxy := faultproxy.InFront(t, redisURL)

	a := startServer(t, "", settings.node(redisURL))
	b := startServer(t, "", settings.node(viaProxy))
	room := createRoom(t, a.client(), "black-hole")
	sender := watch(t, dialChat(t, a.URL, chatToken(t, a.client(), *room.Arn, "sender", "SEND_MESSAGE")))
	viewer := watch(t, dialChat(t, b.URL, chatToken(t, b.client(), *room.Arn, "viewer")))
	if _, err := deliver(sender, 5*time.Second, viewer); err != nil {
		t.Fatalf("before the fault: %v", err)
	}
	waitReady(t, b, http.StatusOK, 5*time.Second)

	proxy.FreezeExisting()
	frozen := time.Now()
	// Meanwhile B says it cannot serve, and why.
	body := waitReady(t, b, http.StatusServiceUnavailable, 30*time.Second, "redis_pubsub")
	t.Logf("/readyz 503 naming redis_pubsub %v after the freeze: %v", time.Since(frozen).Round(time.Millisecond), body.Failing)

	if _, err := deliver(sender, 45*time.Second-time.Since(frozen), viewer); err != nil {
		t.Fatalf("after the freeze: %v", err)
	}
	t.Logf("RECOVERY black-holed pub/sub: new messages reach node B's viewer %v after the freeze", time.Since(frozen).Round(time.Millisecond))
	waitReady(t, b, http.StatusOK, 10*time.Second)
	t.Logf("/readyz 200 again %v after the freeze", time.Since(frozen).Round(time.Millisecond))
	if n := metricValue(t, b, `ivschatd_broker_pubsub_reconnects_total{reason="probe_timeout"}`); n < 1 {
		t.Errorf("probe_timeout reconnects = %v, want ≥ 1", n)
	}
	if viewer.isClosed() {
		t.Error("the viewer's connection was closed")
	}
}

// TestFaultRedisRestartEmpty kills the cluster's Redis and starts it again
// empty on the same address. While it is down: senders get ERROR 500, open
// connections stay open, no node exits, /readyz is 503 on both nodes. After
// it is back: both nodes deliver again within 30 s, with the rate-limit
// buckets, the token ledger and the subscriptions re-created in the empty
// Redis.
func TestFaultRedisRestartEmpty(t *testing.T) {
	settings := newClusterSettings(t)
	rs := startRestartableRedis(t)
	a := startServer(t, "", settings.node(rs.url()))
	b := startServer(t, "", settings.node(rs.url()))
	room := createRoom(t, a.client(), "restart")
	senderA := watch(t, dialChat(t, a.URL, chatToken(t, a.client(), *room.Arn, "sender-a", "SEND_MESSAGE")))
	senderB := watch(t, dialChat(t, b.URL, chatToken(t, b.client(), *room.Arn, "sender-b", "SEND_MESSAGE")))
	viewerA := watch(t, dialChat(t, a.URL, chatToken(t, a.client(), *room.Arn, "viewer-a")))
	viewerB := watch(t, dialChat(t, b.URL, chatToken(t, b.client(), *room.Arn, "viewer-b")))
	for _, s := range []*frameStream{senderA, senderB} {
		if _, err := deliver(s, 5*time.Second, viewerA, viewerB); err != nil {
			t.Fatalf("before the fault: %v", err)
		}
	}

	rs.kill()
	down := time.Now()
	// The sender is told: ERROR 500, no silent loss.
	if code := sendAndAwaitError(t, senderA, 5*time.Second); code != 500 {
		t.Errorf("SEND_MESSAGE with Redis down: ERROR %d, want 500", code)
	}
	for _, ts := range []*testServer{a, b} {
		body := waitReady(t, ts, http.StatusServiceUnavailable, 20*time.Second, "redis", "redis_pubsub")
		t.Logf("/readyz with Redis down: %v", body.Failing)
		if code := httpStatus(t, ts.URL+"/healthz"); code != http.StatusOK {
			t.Errorf("/healthz with Redis down: %d, want 200 (the process is fine)", code)
		}
		select {
		case err := <-ts.done:
			t.Fatalf("a node exited while Redis was down: %v", err)
		default:
		}
	}
	for name, s := range map[string]*frameStream{"sender-a": senderA, "sender-b": senderB, "viewer-a": viewerA, "viewer-b": viewerB} {
		if s.isClosed() {
			t.Errorf("%s's connection was closed while Redis was down", name)
		}
	}
	t.Logf("Redis down for %v", time.Since(down).Round(time.Millisecond))

	rs.start() // empty: no persistence
	back := time.Now()
	for _, s := range []*frameStream{senderA, senderB} {
		if _, err := deliver(s, 30*time.Second-time.Since(back), viewerA, viewerB); err != nil {
			t.Fatalf("after Redis came back: %v", err)
		}
	}
	t.Logf("RECOVERY Redis restarted empty: both nodes deliver %v after Redis came back", time.Since(back).Round(time.Millisecond))
	for _, ts := range []*testServer{a, b} {
		waitReady(t, ts, http.StatusOK, 30*time.Second-time.Since(back))
	}
	t.Logf("/readyz 200 on both nodes %v after Redis came back", time.Since(back).Round(time.Millisecond))

	// The shared rate limiter works on the empty Redis (its buckets and
	// script are created again): no call falls back to a node's own bucket.
	before := metricValue(t, a, "ivschatd_messaging_shared_limiter_failures_total")
	if _, err := deliver(senderA, 5*time.Second, viewerA, viewerB); err != nil {
		t.Fatal(err)
	}
	if after := metricValue(t, a, "ivschatd_messaging_shared_limiter_failures_total"); after != before {
		t.Errorf("shared rate limiter failed %v times after Redis came back", after-before)
	}
	// The token ledger too: a token used on A is refused on B.
	tok := chatToken(t, a.client(), *room.Arn, "once")
	first := dialChat(t, a.URL, tok)
	defer first.Close()
	if code := dialStatus(t, b.URL, tok); code != http.StatusUnauthorized {
		t.Errorf("a token used on node A after the restart: node B answers %d, want 401", code)
	}
}

// TestFaultNodeKilled runs node B as a child process and SIGKILLs it: only
// B's own connections end; node A's viewers and senders go on as if nothing
// happened. B restarted on the same data dir serves the room again.
func TestFaultNodeKilled(t *testing.T) {
	settings := newClusterSettings(t)
	redisURL := os.Getenv("IVSCHATD_TEST_REDIS_URL")
	if redisURL == "" {
		t.Skip("IVSCHATD_TEST_REDIS_URL not set")
	}
	a := startServer(t, "", settings.node(redisURL))
	dataB := t.TempDir()
	b := startChildNode(t, settings, redisURL, dataB)
	room := createRoom(t, a.client(), "node-loss")
	senderA := watch(t, dialChat(t, a.URL, chatToken(t, a.client(), *room.Arn, "sender-a", "SEND_MESSAGE")))
	viewerA := watch(t, dialChat(t, a.URL, chatToken(t, a.client(), *room.Arn, "viewer-a")))
	viewerB := watch(t, dialChat(t, b.url, chatToken(t, a.client(), *room.Arn, "viewer-b")))
	if _, err := deliver(senderA, 5*time.Second, viewerA, viewerB); err != nil {
		t.Fatalf("before the fault: %v", err)
	}

	b.kill()
	killed := time.Now()
	select {
	case <-viewerB.closed:
	case <-time.After(5 * time.Second):
		t.Error("node B's viewer connection outlived the node")
	}
	took, err := deliver(senderA, 5*time.Second, viewerA)
	if err != nil {
		t.Fatalf("node A after B was killed: %v", err)
	}
	t.Logf("RECOVERY node killed: node A's viewer got a new message %v after the kill (round trip %v)", time.Since(killed).Round(time.Millisecond), took.Round(time.Millisecond))
	// A's control plane and handshakes are unaffected.
	lateViewer := watch(t, dialChat(t, a.URL, chatToken(t, a.client(), *room.Arn, "late-viewer-a")))
	if _, err := deliver(senderA, 5*time.Second, viewerA, lateViewer); err != nil {
		t.Fatal(err)
	}
	waitReady(t, a, http.StatusOK, 5*time.Second)

	restart := time.Now()
	b = startChildNode(t, settings, redisURL, dataB)
	checkFor(t, 20*time.Second, 50*time.Millisecond, func() error {
		if code := httpStatus(t, b.url+"/readyz"); code != http.StatusOK {
			return fmt.Errorf("restarted node B: /readyz %d", code)
		}
		return nil
	})
	t.Logf("restarted node B ready %v after its start", time.Since(restart).Round(time.Millisecond))
	viewerB = watch(t, dialChat(t, b.url, chatToken(t, a.client(), *room.Arn, "viewer-b-again")))
	if _, err := deliver(senderA, 5*time.Second, viewerA, viewerB, lateViewer); err != nil {
		t.Fatalf("after B's restart: %v", err)
	}
	t.Logf("restarted node B delivers %v after its start", time.Since(restart).Round(time.Millisecond))
}

// frameStream reads a chat connection in the background, so a test can wait
// for frames with a deadline without corrupting the stream, and learns when
// the server closed it.
type frameStream struct {
	conn   net.Conn
	frames chan []byte   // text payloads
	closed chan struct{} // closed when the connection ends
	mu     sync.Mutex
	seq    int
}

func watch(t *testing.T, conn net.Conn) *frameStream {
	f := &frameStream{conn: conn, frames: make(chan []byte, 1024), closed: make(chan struct{})}
	t.Cleanup(func() { conn.Close() })
	go func() {
		defer close(f.closed)
		for {
			h, err := ws.ReadHeader(conn)
			if err != nil || h.Length > 1<<20 {
				return
			}
			payload := make([]byte, h.Length)
			if _, err := io.ReadFull(conn, payload); err != nil {
				return
			}
			switch h.OpCode {
			case ws.OpText:
				select {
				case f.frames <- payload:
				default: // the test is not reading this one
				}
			case ws.OpClose:
				return
			}
		}
	}()
	return f
}

func (f *frameStream) isClosed() bool {
	select {
	case <-f.closed:
		return true
	default:
		return false
	}
}

// chatFrame is the part of a MESSAGE or ERROR frame the tests look at.
type chatFrame struct {
	Type, Content, RequestId string
	ErrorCode                int
}

// send writes a SEND_MESSAGE and returns its content, unique to this stream.
func (f *frameStream) send(round string) (string, error) {
	f.mu.Lock()
	f.seq++
	content := fmt.Sprintf("%s-%d", round, f.seq)
	f.mu.Unlock()
	err := wsutil.WriteClientText(f.conn, []byte(`{"Action":"SEND_MESSAGE","RequestId":"`+content+`","Content":"`+content+`"}`))
	return content, err
}

// deliver sends a message from sender every 250 ms until every viewer has
// received one of them (those sent while the cluster is broken are lost or
// refused, as documented), and returns how long that took.
func deliver(sender *frameStream, within time.Duration, viewers ...*frameStream) (time.Duration, error) {
	start := time.Now()
	deadline := start.Add(within)
	var rb [4]byte
	rand.Read(rb[:])
	round := "probe-" + hex.EncodeToString(rb[:])
	pending := make(map[*frameStream]bool, len(viewers))
	for _, v := range viewers {
		pending[v] = true
	}
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	var refused []int
	for {
		if _, err := sender.send(round); err != nil {
			return 0, fmt.Errorf("sending: %w", err)
		}
	drain:
		for {
			select {
			case raw := <-sender.frames:
				var f chatFrame
				if json.Unmarshal(raw, &f) == nil && f.Type == "ERROR" {
					refused = append(refused, f.ErrorCode)
				}
			default:
				break drain
			}
		}
		for v := range pending {
		read:
			for {
				select {
				case raw := <-v.frames:
					var f chatFrame
					if json.Unmarshal(raw, &f) == nil && f.Type == "MESSAGE" && strings.HasPrefix(f.Content, round+"-") {
						delete(pending, v)
						break read
					}
				default:
					break read
				}
			}
		}
		if len(pending) == 0 {
			return time.Since(start), nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("%d of %d viewers got none of the messages sent for %v (sender's ERROR codes: %v)", len(pending), len(viewers), within, refused)
		}
		<-tick.C
	}
}

// sendAndAwaitError sends messages until one is answered with an ERROR and
// returns its code (0 when none came within wait).
func sendAndAwaitError(t *testing.T, sender *frameStream, wait time.Duration) int {
	t.Helper()
	deadline := time.After(wait)
	content, err := sender.send("while-down")
	if err != nil {
		t.Fatal(err)
	}
	for {
		select {
		case raw := <-sender.frames:
			var f chatFrame
			if json.Unmarshal(raw, &f) == nil && f.RequestId == content {
				if f.Type == "ERROR" {
					return f.ErrorCode
				}
				// Accepted: Redis may not have been noticed down yet.
				if content, err = sender.send("while-down"); err != nil {
					t.Fatal(err)
				}
			}
		case <-sender.closed:
			t.Fatal("the sender's connection was closed")
		case <-deadline:
			return 0
		}
	}
}

// waitReady polls /readyz until it answers code, naming every dependency
// in failing, and returns the body.
func waitReady(t *testing.T, ts *testServer, code int, within time.Duration, failing ...string) readyBody {
	t.Helper()
	var body readyBody
	checkFor(t, within, 100*time.Millisecond, func() error {
		resp, err := http.Get(ts.URL + "/readyz")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body = readyBody{}
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			return fmt.Errorf("/readyz body: %w", err)
		}
		if resp.StatusCode != code {
			return fmt.Errorf("/readyz %d %+v, want %d", resp.StatusCode, body, code)
		}
		for _, name := range failing {
			if _, ok := body.Failing[name]; !ok {
				return fmt.Errorf("/readyz %+v does not name %s", body, name)
			}
		}
		return nil
	})
	return body
}

func httpStatus(t *testing.T, u string) int {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// restartableRedis is a redis-server of the test's own that can be killed
// and started again, empty, on the same port.
type restartableRedis struct {
	t    *testing.T
	path string
	port int
	cmd  *exec.Cmd
}

func startRestartableRedis(t *testing.T) *restartableRedis {
	t.Helper()
	path, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server is not installed")
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &restartableRedis{t: t, path: path, port: lis.Addr().(*net.TCPAddr).Port}
	lis.Close()
	r.start()
	t.Cleanup(r.kill)
	return r
}

func (r *restartableRedis) addr() string { return "127.0.0.1:" + strconv.Itoa(r.port) }
func (r *restartableRedis) url() string  { return "redis://" + r.addr() + "/0" }

// start runs redis-server without persistence, so it always starts empty,
// and waits until it accepts connections.
func (r *restartableRedis) start() {
	r.t.Helper()
	r.cmd = exec.Command(r.path, "--port", strconv.Itoa(r.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", r.t.TempDir())
	if err := r.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	checkFor(r.t, 10*time.Second, 20*time.Millisecond, func() error {
		c, err := net.Dial("tcp", r.addr())
		if err != nil {
			return err
		}
		return c.Close()
	})
}

func (r *restartableRedis) kill() {
	if r.cmd == nil {
		return
	}
	r.cmd.Process.Kill()
	r.cmd.Wait()
	r.cmd = nil
}

// childNode is an ivschatd node running in a child process (this test
// binary running TestFaultChildNode), so that it can be SIGKILLed.
type childNode struct {
	url string
	cmd *exec.Cmd
}

// startChildNode starts a node of the cluster in a child process on dataDir
// and waits until it answers /healthz.
func startChildNode(t *testing.T, cs clusterSettings, redisURL, dataDir string) *childNode {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestFaultChildNode$")
	cmd.Env = append(os.Environ(),
		"IVSCHATD_TEST_FAULT_NODE=1",
		"IVSCHATD_TEST_FAULT_NODE_PG="+cs.pgURL,
		"IVSCHATD_TEST_FAULT_NODE_SCHEMA="+cs.schema,
		"IVSCHATD_TEST_FAULT_NODE_REDIS="+redisURL,
		"IVSCHATD_TEST_FAULT_NODE_PREFIX="+cs.prefix,
		"IVSCHATD_TEST_FAULT_NODE_TOKEN_KEY="+cs.tokenKey,
		"IVSCHATD_TEST_FAULT_NODE_DATA_DIR="+dataDir,
	)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if testing.Verbose() {
		cmd.Stderr = os.Stderr
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	n := &childNode{cmd: cmd}
	t.Cleanup(n.kill)
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "fault-node-url="); ok {
				addr <- u
			}
		}
	}()
	select {
	case n.url = <-addr:
	case <-time.After(20 * time.Second):
		t.Fatal("the child node did not start within 20s")
	}
	return n
}

// kill SIGKILLs the node: no graceful shutdown, as after a crash or an OOM
// kill.
func (n *childNode) kill() {
	if n.cmd.ProcessState != nil {
		return
	}
	n.cmd.Process.Kill()
	n.cmd.Wait()
}

// TestFaultChildNode is not a test: it is the child process of
// startChildNode, a cluster node that serves until it is killed.
func TestFaultChildNode(t *testing.T) {
	if os.Getenv("IVSCHATD_TEST_FAULT_NODE") != "1" {
		t.Skip("the child process of TestFaultNodeKilled")
	}
	cs := clusterSettings{
		pgURL:    os.Getenv("IVSCHATD_TEST_FAULT_NODE_PG"),
		schema:   os.Getenv("IVSCHATD_TEST_FAULT_NODE_SCHEMA"),
		prefix:   os.Getenv("IVSCHATD_TEST_FAULT_NODE_PREFIX"),
		tokenKey: os.Getenv("IVSCHATD_TEST_FAULT_NODE_TOKEN_KEY"),
	}
	ts := startServer(t, os.Getenv("IVSCHATD_TEST_FAULT_NODE_DATA_DIR"), cs.node(os.Getenv("IVSCHATD_TEST_FAULT_NODE_REDIS")))
	fmt.Printf("fault-node-url=%s\n", ts.URL)
	// Killed by the parent; the bound only stops an orphan.
	time.Sleep(2 * time.Minute)
}
