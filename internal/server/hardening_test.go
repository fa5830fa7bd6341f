package server

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivschat"
	"github.com/aws/aws-sdk-go-v2/service/ivschat/types"
	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/ivschatd/ivschatd/internal/config"
	"github.com/ivschatd/ivschatd/internal/testlog"
)

// reviewHook is a webhook review handler that records the RoomArn of every
// review request, by message content, and allows everything.
type reviewHook struct {
	*httptest.Server
	mu       sync.Mutex
	roomARNs map[string]string
}

func startReviewHook(t *testing.T) *reviewHook {
	t.Helper()
	h := &reviewHook{roomARNs: map[string]string{}}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in struct{ Content, RoomArn string }
		json.NewDecoder(r.Body).Decode(&in)
		h.mu.Lock()
		h.roomARNs[in.Content] = in.RoomArn
		h.mu.Unlock()
		io.WriteString(w, `{"ReviewResult":"ALLOW"}`)
	}))
	t.Cleanup(h.Close)
	return h
}

// roomARN returns the RoomArn the handler got with content, and whether it
// was called for it.
func (h *reviewHook) roomARN(content string) (string, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	arn, ok := h.roomARNs[content]
	return arn, ok
}

// chatToken mints a token for user in room through the control plane.
func chatToken(t *testing.T, c *ivschat.Client, roomARN, user string, caps ...string) string {
	t.Helper()
	out, err := c.CreateChatToken(ctxT(t), &ivschat.CreateChatTokenInput{
		RoomIdentifier: aws.String(roomARN), UserId: aws.String(user), Capabilities: toCaps(caps),
	})
	if err != nil {
		t.Fatalf("CreateChatToken: %v", err)
	}
	return *out.Token
}

// Item 1: review handlers get the room's ARN, for a room that had its handler
// when the connection opened and for one that got it from UpdateRoom while
// the connection was open.
func TestReviewRequestCarriesRoomArn(t *testing.T) {
	ts := startServer(t, "", nil)
	checkReviewRoomArn(t, ts, ts)
}

// checkReviewRoomArn makes the rooms and their changes through control and
// chats through via (another node in cluster mode).
func checkReviewRoomArn(t *testing.T, control, via *testServer) {
	c := control.client()
	hook := startReviewHook(t)
	// reviewedARN sends messages on conn until the handler has reviewed one
	// (a change made through another node arrives asynchronously) and
	// returns the RoomArn it got.
	reviewedARN := func(conn net.Conn) string {
		t.Helper()
		var arn string
		checkFor(t, 10*time.Second, 0, func() error {
			content := fmt.Sprint("message ", time.Now().UnixNano())
			send(t, conn, `{"Action":"SEND_MESSAGE","Content":"`+content+`"}`)
			if m := readFrame(t, conn); m["Type"] != "MESSAGE" {
				t.Fatalf("got %v", m)
			}
			var ok bool
			if arn, ok = hook.roomARN(content); !ok {
				return errors.New("not reviewed yet")
			}
			return nil
		})
		return arn
	}

	withHandler, err := c.CreateRoom(ctxT(t), &ivschat.CreateRoomInput{MessageReviewHandler: &types.MessageReviewHandler{Uri: aws.String(hook.URL)}})
	if err != nil {
		t.Fatal(err)
	}
	conn := dialChat(t, via.URL, chatToken(t, c, *withHandler.Arn, "u", "SEND_MESSAGE"))
	defer conn.Close()
	if got := reviewedARN(conn); got != *withHandler.Arn {
		t.Fatalf("handler set at connect: RoomArn = %q, want %q", got, *withHandler.Arn)
	}

	later := createRoom(t, c, "later")
	conn2 := dialChat(t, via.URL, chatToken(t, c, *later.Arn, "u", "SEND_MESSAGE"))
	defer conn2.Close()
	if _, err := c.UpdateRoom(ctxT(t), &ivschat.UpdateRoomInput{Identifier: later.Arn, MessageReviewHandler: &types.MessageReviewHandler{Uri: aws.String(hook.URL)}}); err != nil {
		t.Fatal(err)
	}
	if got := reviewedARN(conn2); got != *later.Arn {
		t.Fatalf("handler set by UpdateRoom: RoomArn = %q, want %q", got, *later.Arn)
	}
}

// Item 2: a burst of 1,000 SendEvents fired at once reaches a viewer that
// reads, without disconnecting it; a viewer in the same room that never reads
// is disconnected as a slow consumer once it holds more than the server lets
// it (--max-pending-bytes of what was offered to it a grace ago, past what
// the kernel buffers), and the memory the room holds for it stays bounded.
//
// A small socket send buffer keeps the test short: with the kernel's
// autotuning a client on loopback that never reads absorbs ~2.5 MB before
// the budget (the default 1 MiB) even starts.
func TestBurstOfSendEventsReachesReadingViewer(t *testing.T) {
	ts := startServer(t, "", func(c *config.Config) { c.SocketSendBuffer = 16 << 10 })
	c := ts.client()
	room := createRoom(t, c, "burst")

	viewer := dialChat(t, ts.URL, chatToken(t, c, *room.Arn, "viewer"))
	defer viewer.Close()
	stuck := dialChat(t, ts.URL, chatToken(t, c, *room.Arn, "stuck")) // never read
	defer stuck.Close()

	events := readEvents(viewer)
	heapBefore := liveHeap()

	const n = 1000
	events.expect(t, sendEvents(t, c, room.Arn, n, "burst"))

	// More traffic until the stuck viewer has been dropped: the kernel
	// buffers some of it, and the server judges it only on what it was
	// offered a grace ago. The reading viewer gets all of it too.
	sentTotal := n
	for slowConsumerDisconnects(t, ts) == 0 {
		if sentTotal >= 20000 {
			t.Fatalf("the viewer that never reads was still connected after %d events (%d MB)", sentTotal, sentTotal*1100>>20)
		}
		events.expect(t, sendEvents(t, c, room.Arn, 250, "more"))
		sentTotal += 250
	}
	if grew := int64(liveHeap()) - int64(heapBefore); grew > 32<<20 {
		t.Errorf("live heap grew by %d MB while a viewer did not read", grew>>20)
	}
	t.Logf("the stuck viewer was dropped after %d events of ~1.1 KB; live heap before %d KB, after %d KB", sentTotal, heapBefore>>10, liveHeap()>>10)
	select {
	case err := <-events.ended:
		t.Fatalf("the reading viewer was disconnected: %v", err)
	default:
	}
}

// slowConsumerGrace is how long the server lets a chat connection stay
// behind before it counts what it has not taken against
// --max-pending-bytes: a tenth of the messaging write timeout (10 s).
const slowConsumerGrace = time.Second

// A viewer that stops reading for a moment while a burst larger than
// --max-pending-bytes is delivered to it — its goroutine starved of CPU on a
// busy machine, a mobile link retransmitting — and then reads on is not a
// slow consumer: it gets every event and stays connected. Only a client
// that stays behind for slowConsumerGrace is judged slow (next test).
//
// The budget is small and so are the socket buffers, so that the burst
// (100 events of ~1.1 KB) is far more than the kernel holds for the viewer
// plus the budget; one more event after the burst makes sure a flush looks
// at the viewer after the whole burst was offered to it.
func TestViewerPausingDuringBurstStaysConnected(t *testing.T) {
	ts := startServer(t, "", func(c *config.Config) {
		c.SocketSendBuffer = 4096
		c.MaxPendingBytes = 16 << 10
	})
	c := ts.client()
	// The pause is as long as sending the burst takes. Should a loaded
	// machine (the race detector, other packages' tests) stretch it close
	// to the grace, the attempt proves nothing either way: it is made
	// again with a new room and viewer, and only the attempt whose pause
	// stayed well under the grace is judged.
	const attempts = 3
	for attempt := 1; ; attempt++ {
		room := createRoom(t, c, fmt.Sprintf("pause-%d", attempt))
		viewer := dialChat(t, ts.URL, chatToken(t, c, *room.Arn, "viewer"))
		dropsBefore := slowConsumerDisconnects(t, ts)

		paused := time.Now()
		want := sendEvents(t, c, room.Arn, 100, "burst")
		time.Sleep(50 * time.Millisecond) // the burst's flushes are over
		maps.Copy(want, sendEvents(t, c, room.Arn, 1, "after"))
		pause := time.Since(paused)
		if pause > slowConsumerGrace*7/10 {
			viewer.Close()
			if attempt == attempts {
				t.Fatalf("sending the burst took %v in each of %d attempts: the pause must stay well under the %v grace for the test to mean anything", pause, attempts, slowConsumerGrace)
			}
			t.Logf("attempt %d: sending the burst took %v, too near the %v grace; again", attempt, pause, slowConsumerGrace)
			continue
		}
		events := readEvents(viewer)
		events.expect(t, want)
		if n := slowConsumerDisconnects(t, ts) - dropsBefore; n != 0 {
			t.Fatalf("%d slow-consumer disconnects, want 0", n)
		}
		viewer.Close()
		t.Logf("the viewer paused for %v during the burst", pause)
		return
	}
}

// A viewer that stops reading for longer than the grace while the room stays
// busy is still a slow consumer: once more than --max-pending-bytes of what
// was offered to it a grace ago is not taken, it is dropped as one (1008,
// counted and logged), long before its blocked write would time out (10 s).
// The viewer that reads is not affected.
func TestViewerThatStopsReadingPastGraceIsDropped(t *testing.T) {
	var logs testlog.Buffer
	ts := startServerLogging(t, "", func(c *config.Config) {
		c.SocketSendBuffer = 4096
		c.MaxPendingBytes = 16 << 10
	}, logs.Logger(slog.LevelInfo))
	c := ts.client()
	room := createRoom(t, c, "stall")
	reader := dialChat(t, ts.URL, chatToken(t, c, *room.Arn, "reader"))
	defer reader.Close()
	stalled := dialChat(t, ts.URL, chatToken(t, c, *room.Arn, "stalled"))
	defer stalled.Close()
	events := readEvents(reader)

	// Both take the first events; then the stalled viewer stops reading.
	first := sendEvents(t, c, room.Arn, 10, "first")
	for range len(first) {
		stalled.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, _, err := wsutil.ReadServerData(stalled); err != nil {
			t.Fatalf("the stalled viewer before it stalls: %v", err)
		}
	}
	events.expect(t, first)
	stopped := time.Now()
	for slowConsumerDisconnects(t, ts) == 0 {
		if since := time.Since(stopped); since > 5*time.Second {
			t.Fatalf("the viewer that stopped reading was still connected %v later", since)
		}
		events.expect(t, sendEvents(t, c, room.Arn, 20, "more"))
	}
	dropped := time.Since(stopped)
	if dropped < slowConsumerGrace {
		t.Fatalf("the viewer was dropped %v after it stopped reading, within the %v grace", dropped, slowConsumerGrace)
	}
	if n := logs.Count(`msg="messaging: slow consumer disconnected"`, "user=stalled"); n != 1 {
		t.Fatalf("%d log lines for the stalled viewer's disconnection, want 1:\n%s", n, logs.String())
	}
	// Reading again, the stalled viewer finds what its socket held and then
	// the end of the connection. A close frame cannot reach a client whose
	// socket is full: the server cuts its blocked write short and closes the
	// socket, so the client reads the cut frame and the end of the stream
	// (unexpected EOF). Should the socket have room, the close frame is
	// 1008.
	end := readEvents(stalled)
	var err error
	for err == nil {
		select {
		case <-end.ids:
		case err = <-end.ended:
		case <-time.After(10 * time.Second):
			t.Fatal("the stalled viewer's connection is still open after its disconnection")
		}
	}
	if closed, ok := errors.AsType[wsutil.ClosedError](err); ok && closed.Code != ws.StatusPolicyViolation {
		t.Fatalf("the stalled viewer's connection was closed with %d, want 1008", closed.Code)
	}
	select {
	case err := <-events.ended:
		t.Fatalf("the reading viewer was disconnected: %v", err)
	default:
	}
	t.Logf("the stalled viewer was dropped %v after it stopped reading; its connection ended with %v", dropped, err)
}

// eventReader reads a chat connection's frames as fast as it can, in its
// own goroutine, and reports each EVENT's Id, or how the connection ended.
type eventReader struct {
	ids   chan string
	ended chan error
}

// readEvents starts reading conn; the test must not read it itself.
func readEvents(conn net.Conn) *eventReader {
	r := &eventReader{ids: make(chan string, 1<<16), ended: make(chan error, 1)}
	go func() {
		for {
			conn.SetReadDeadline(time.Now().Add(30 * time.Second))
			data, op, err := wsutil.ReadServerData(conn)
			if err != nil {
				r.ended <- err
				return
			}
			if op != ws.OpText {
				continue
			}
			var ev struct{ Type, Id string }
			json.Unmarshal(data, &ev)
			if ev.Type != "EVENT" {
				r.ended <- fmt.Errorf("unexpected frame %.200s", data)
				return
			}
			r.ids <- ev.Id
		}
	}()
	return r
}

// expect waits until every event in want (by Id) has arrived, each once,
// and fails the test if the connection ends first. It empties want.
func (r *eventReader) expect(t *testing.T, want map[string]bool) {
	t.Helper()
	total := len(want)
	for len(want) > 0 {
		select {
		case id := <-r.ids:
			if !want[id] {
				t.Fatalf("event %s was not sent (or arrived twice)", id)
			}
			delete(want, id)
		case err := <-r.ended:
			t.Fatalf("the reading viewer's connection ended with %d of %d events undelivered: %v", len(want), total, err)
		case <-time.After(30 * time.Second):
			t.Fatalf("%d of %d events not delivered to the reading viewer", len(want), total)
		}
	}
}

// sendEvents fires n SendEvents named name at once, each with ~1.1 KB of
// attributes, and returns their Ids once all have been accepted.
func sendEvents(t *testing.T, c *ivschat.Client, roomARN *string, n int, name string) map[string]bool {
	t.Helper()
	pad := strings.Repeat("p", 1000)
	var mu sync.Mutex
	sent := make(map[string]bool, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			out, err := c.SendEvent(ctxT(t), &ivschat.SendEventInput{RoomIdentifier: roomARN, EventName: aws.String(name),
				Attributes: map[string]string{"seq": strconv.Itoa(i), "pad": pad}})
			if err != nil {
				t.Errorf("SendEvent: %v", err)
				return
			}
			mu.Lock()
			sent[*out.Id] = true
			mu.Unlock()
		})
	}
	close(start)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return sent
}

// liveHeap is the heap in use after a collection: what the process (server
// and test clients together) still holds.
func liveHeap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// slowConsumerDisconnects reads the counter from /metrics.
func slowConsumerDisconnects(t *testing.T, ts *testServer) int {
	t.Helper()
	return int(metricValue(t, ts, "ivschatd_messaging_slow_consumer_disconnects_total"))
}

// metricValue returns the value of the sample whose name and labels are
// exactly series in the server's /metrics, or 0 when it is absent.
func metricValue(t *testing.T, ts *testServer, series string) float64 {
	t.Helper()
	resp, err := http.Get(ts.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if ok && name == series {
			v, err := strconv.ParseFloat(value, 64)
			if err != nil {
				t.Fatalf("metric %s: %v", series, err)
			}
			return v
		}
	}
	return 0
}

// Item 4: a kicked user whose bot ignores the close frame and keeps posting
// gets nothing more into the room: no message it sends after the server
// decided to close its connection is broadcast.
func TestKickedBotPostsNothing(t *testing.T) {
	ts := startServer(t, "", nil)
	c := ts.client()
	room, err := c.CreateRoom(ctxT(t), &ivschat.CreateRoomInput{MaximumMessageRatePerSecond: aws.Int32(100)})
	if err != nil {
		t.Fatal(err)
	}
	viewer := dialChat(t, ts.URL, chatToken(t, c, *room.Arn, "viewer"))
	defer viewer.Close()
	bot := dialChat(t, ts.URL, chatToken(t, c, *room.Arn, "bot", "SEND_MESSAGE"))
	defer bot.Close()

	// The bot notices the server's close frame but does not answer it.
	var closed atomic.Bool
	go func() {
		for {
			h, err := ws.ReadHeader(bot)
			if err != nil {
				return
			}
			if _, err := io.CopyN(io.Discard, bot, h.Length); err != nil {
				return
			}
			if h.OpCode == ws.OpClose {
				closed.Store(true)
			}
		}
	}()
	botDone := make(chan struct{})
	go func() {
		defer close(botDone)
		var closedAt time.Time
		for i := 0; ; i++ {
			label := "before"
			if closed.Load() {
				label = "after"
				if closedAt.IsZero() {
					closedAt = time.Now()
				}
				if time.Since(closedAt) > 1500*time.Millisecond {
					return
				}
			}
			if wsutil.WriteClientText(bot, fmt.Appendf(nil, `{"Action":"SEND_MESSAGE","Content":"%s-%d"}`, label, i)) != nil {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	time.Sleep(300 * time.Millisecond) // the bot posts for a while first
	if _, err := c.DisconnectUser(ctxT(t), &ivschat.DisconnectUserInput{RoomIdentifier: room.Arn, UserId: aws.String("bot")}); err != nil {
		t.Fatal(err)
	}
	<-botDone
	if !closed.Load() {
		t.Fatal("the bot never received its close frame")
	}
	ev, err := c.SendEvent(ctxT(t), &ivschat.SendEventInput{RoomIdentifier: room.Arn, EventName: aws.String("marker")})
	if err != nil {
		t.Fatal(err)
	}
	var before int
	for {
		m := readFrame(t, viewer)
		if m["Id"] == *ev.Id {
			break
		}
		if m["Type"] == "MESSAGE" {
			content, _ := m["Content"].(string)
			if strings.HasPrefix(content, "after-") {
				t.Fatalf("the room got %q, sent by the bot after the server closed its connection", content)
			}
			before++
		}
	}
	if before == 0 {
		t.Fatal("none of the bot's messages before the kick arrived: the test did not exercise the bot")
	}
}

// Item 6: handshakes racing a DeleteRoom. Once DeleteRoom has returned, no
// connection of the room may go on for more than a second: each handshake
// is refused with 404, or its connection gets ERROR 404 and is closed.
func TestDeleteRoomRacingHandshakes(t *testing.T) {
	ts := startServer(t, "", nil)
	checkDeleteRacingHandshakes(t, ts, ts)
}

// checkDeleteRacingHandshakes opens many connections through via while
// DeleteRoom goes through control.
func checkDeleteRacingHandshakes(t *testing.T, control, via *testServer) {
	c := control.client()
	room := createRoom(t, c, "doomed")
	const n = 150
	tokens := make([]string, n)
	for i := range tokens {
		tokens[i] = chatToken(t, c, *room.Arn, fmt.Sprint("u", i), "SEND_MESSAGE")
	}
	type outcome struct {
		refused int // HTTP status of a refused handshake
		err     error
		closed  time.Time // when an accepted connection saw its close frame
	}
	outcomes := make(chan outcome, n)
	start := make(chan struct{})
	for i, tok := range tokens {
		go func() {
			<-start
			// Spread over 60 ms, with DeleteRoom at 20 ms.
			time.Sleep(time.Duration(i) * 60 * time.Millisecond / n)
			var status int
			d := ws.Dialer{Protocols: []string{tok}, Timeout: 10 * time.Second, OnStatusError: func(s int, _ []byte, _ io.Reader) { status = s }}
			conn, br, _, err := d.Dial(context.Background(), strings.Replace(via.URL, "http://", "ws://", 1)+"/")
			if err != nil {
				outcomes <- outcome{refused: status, err: err}
				return
			}
			defer conn.Close()
			var r io.Reader = conn
			if br != nil { // frames that arrived with the 101
				r = io.MultiReader(br, conn)
			}
			conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			for {
				h, err := ws.ReadHeader(r)
				if err == nil {
					_, err = io.CopyN(io.Discard, r, h.Length)
				}
				if err != nil {
					outcomes <- outcome{err: fmt.Errorf("open connection never closed: %w", err)}
					return
				}
				if h.OpCode == ws.OpClose {
					outcomes <- outcome{closed: time.Now()}
					return
				}
			}
		}()
	}
	close(start)
	time.Sleep(20 * time.Millisecond)
	if _, err := c.DeleteRoom(ctxT(t), &ivschat.DeleteRoomInput{Identifier: room.Arn}); err != nil {
		t.Fatal(err)
	}
	deleted := time.Now()
	var accepted, refused int
	for range n {
		o := <-outcomes
		switch {
		case o.err != nil && o.refused == 0:
			t.Fatal(o.err)
		case o.refused != 0:
			if o.refused != http.StatusNotFound {
				t.Fatalf("handshake refused with %d, want 404", o.refused)
			}
			refused++
		default:
			accepted++
			if late := o.closed.Sub(deleted); late > time.Second {
				t.Fatalf("a connection was closed %v after DeleteRoom returned", late)
			}
		}
	}
	t.Logf("%d handshakes accepted then closed, %d refused", accepted, refused)
}

// Item 19: every refused handshake is counted by reason in /metrics and
// logged with its reason — at Info the first time in a minute, at Debug
// after that.
func TestRefusedHandshakesAreVisible(t *testing.T) {
	var logs testlog.Buffer
	ts := startServerLogging(t, "", nil, logs.Logger(slog.LevelDebug))
	c := ts.client()
	room := createRoom(t, c, "refusals")
	dial := func(protocols ...string) int {
		t.Helper()
		return dialStatus(t, ts.URL, protocols...)
	}
	used := chatToken(t, c, *room.Arn, "u")
	if got := dial(used); got != http.StatusSwitchingProtocols {
		t.Fatalf("first use: %d", got)
	}
	for _, tc := range []struct {
		protocols []string
		status    int
	}{
		{nil, 401},
		{[]string{"not-a-token"}, 401},
		{[]string{"not-a-token-either"}, 401},
		{[]string{used}, 401},
	} {
		if got := dial(tc.protocols...); got != tc.status {
			t.Fatalf("dial %v: status %d, want %d", tc.protocols, got, tc.status)
		}
	}
	gone := createRoom(t, c, "gone")
	goneTok := chatToken(t, c, *gone.Arn, "u")
	if _, err := c.DeleteRoom(ctxT(t), &ivschat.DeleteRoomInput{Identifier: gone.Arn}); err != nil {
		t.Fatal(err)
	}
	if got := dial(goneTok); got != 404 {
		t.Fatalf("deleted room: status %d", got)
	}
	for reason, want := range map[string]float64{"token_missing": 1, "token_invalid": 2, "token_used": 1, "room_not_found": 1} {
		if got := metricValue(t, ts, `ivschatd_messaging_handshakes_rejected_total{reason="`+reason+`"}`); got != want {
			t.Errorf("rejected{reason=%q} = %v, want %v", reason, got, want)
		}
	}
	log := logs.String()
	lines := func(level, reason string) int {
		re := regexp.MustCompile(`(?m)^time=\S+ level=` + level + ` msg="messaging: WebSocket handshake refused" .*reason=` + reason + ` `)
		return len(re.FindAllString(log, -1))
	}
	for _, reason := range []string{"token_missing", "token_invalid", "token_used", "room_not_found"} {
		if lines("INFO", reason) != 1 {
			t.Errorf("want one Info line for reason %s in the log:\n%s", reason, log)
		}
	}
	// The second invalid token within the minute: Debug, not Info.
	if n := lines("DEBUG", "token_invalid"); n != 1 {
		t.Errorf("%d Debug lines for token_invalid, want 1 (the second within a minute)", n)
	}
}
