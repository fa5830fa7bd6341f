package messaging

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws/wsutil"

	"github.com/ivschatd/ivschatd/internal/broker"
	"github.com/ivschatd/ivschatd/internal/chat"
	"github.com/ivschatd/ivschatd/internal/review"
)

var webhookSecret = []byte("test-secret")

// reviewCall is what a test webhook received.
type reviewCall struct {
	Content    string
	MessageID  string `json:"MessageId"`
	RoomARN    string `json:"RoomArn"`
	Attributes map[string]string
	Sender     struct {
		UserID     string `json:"UserId"`
		Attributes map[string]string
		IP         string `json:"Ip"`
	}
}

// hook is a real webhook server; decide answers each verified request.
type hook struct {
	url   string
	mu    sync.Mutex
	calls []reviewCall
}

func (h *hook) byContent(content string) (reviewCall, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, c := range h.calls {
		if c.Content == content {
			return c, true
		}
	}
	return reviewCall{}, false
}

func startHook(t *testing.T, decide func(w http.ResponseWriter, c reviewCall)) *hook {
	t.Helper()
	h := &hook{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := review.VerifySignature(webhookSecret, r.Header.Get(review.SignatureHeader), body, time.Now(), time.Minute); err != nil {
			t.Errorf("webhook signature: %v", err)
		}
		var c reviewCall
		if err := json.Unmarshal(body, &c); err != nil {
			t.Errorf("webhook body %q: %v", body, err)
		}
		h.mu.Lock()
		h.calls = append(h.calls, c)
		h.mu.Unlock()
		decide(w, c)
	}))
	t.Cleanup(srv.Close)
	h.url = srv.URL
	return h
}

// newReviewEnv is newEnv with a real review.Reviewer and a fast room
// "review" (100 messages/s) whose handler is handler.
func newReviewEnv(t *testing.T, handler *chat.MessageReviewHandler) *env {
	t.Helper()
	rv, err := review.New(review.Options{Timeout: 2 * time.Second, WebhookSecret: webhookSecret, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(o *Options) {
		o.Reviewer = rv
		o.RequestRatePerSecond = 1000
	})
	e.rooms.put(&chat.Room{ID: "review", MaximumMessageLength: 50, MaximumMessageRatePerSecond: 100,
		MessageReviewHandler: handler, UpdateTime: time.Now()})
	return e
}

func TestReviewAllowDeliversHandlersContent(t *testing.T) {
	h := startHook(t, func(w http.ResponseWriter, c reviewCall) {
		fmt.Fprintf(w, `{"ReviewResult":"ALLOW","Content":%q,"Attributes":{"reviewed":"yes","was":%q}}`, strings.ToUpper(c.Content), c.Attributes["k"])
	})
	e := newReviewEnv(t, &chat.MessageReviewHandler{URI: h.url, FallbackResult: chat.FallbackDeny})
	sender := e.connect(t, "review", "alice", withAttrs(map[string]string{"name": "Alice"}))
	viewer := e.connect(t, "review", "bob", withCaps())
	defer sender.close()
	defer viewer.close()

	sender.send(t, `{"Action":"SEND_MESSAGE","RequestId":"r-1","Content":"hello","Attributes":{"k":"v"}}`)
	want := `{"Type":"MESSAGE","Id":"ID","RequestId":"r-1","Attributes":{"reviewed":"yes","was":"v"},"Content":"HELLO","SendTime":"T","Sender":{"UserId":"alice","Attributes":{"name":"Alice"}}}`
	echo := expectFrame(t, sender, want)
	got := expectFrame(t, viewer, want)
	if echo != got {
		t.Fatalf("sender and viewer got different frames:\n%s\n%s", echo, got)
	}
	c, ok := h.byContent("hello")
	if !ok {
		t.Fatal("the handler was not called")
	}
	if c.MessageID != frameID(t, got) {
		t.Fatalf("handler saw MessageId %q, clients got Id %q", c.MessageID, frameID(t, got))
	}
	if c.RoomARN != roomARN("review") || c.Sender.UserID != "alice" || c.Sender.Attributes["name"] != "Alice" ||
		c.Sender.IP != "127.0.0.1" || c.Attributes["k"] != "v" {
		t.Fatalf("handler got %+v", c)
	}
}

func TestReviewDenyOnlySenderGets406(t *testing.T) {
	h := startHook(t, func(w http.ResponseWriter, c reviewCall) {
		if strings.Contains(c.Content, "bad") {
			io.WriteString(w, `{"ReviewResult":"DENY"}`)
			return
		}
		io.WriteString(w, `{"ReviewResult":"ALLOW"}`)
	})
	e := newReviewEnv(t, &chat.MessageReviewHandler{URI: h.url})
	sender := e.connect(t, "review", "alice")
	viewer := e.connect(t, "review", "bob", withCaps())
	defer sender.close()
	defer viewer.close()

	sender.send(t, `{"Action":"SEND_MESSAGE","RequestId":"r-bad","Content":"bad word"}`)
	errFrame := expectFrame(t, sender, `{"Type":"ERROR","Id":"ID","RequestId":"r-bad","ErrorCode":406,"ErrorMessage":"Message rejected by the room's message review handler"}`)
	c, ok := h.byContent("bad word")
	if !ok || c.MessageID != frameID(t, errFrame) {
		t.Fatalf("ERROR Id %q is not the reviewed MessageId %+v", frameID(t, errFrame), c)
	}
	// The viewer's next frame is the later, allowed message: the denied one
	// never reached it.
	sender.send(t, `{"Action":"SEND_MESSAGE","RequestId":"r-good","Content":"good"}`)
	want := `{"Type":"MESSAGE","Id":"ID","RequestId":"r-good","Attributes":{},"Content":"good","SendTime":"T","Sender":{"UserId":"alice","Attributes":{}}}`
	expectFrame(t, viewer, want)
	expectFrame(t, sender, want)
}

func TestReviewFallbackOnCrashingHandler(t *testing.T) {
	h := startHook(t, func(w http.ResponseWriter, _ reviewCall) {
		http.Error(w, "boom", http.StatusInternalServerError)
	})
	e := newReviewEnv(t, &chat.MessageReviewHandler{URI: h.url, FallbackResult: chat.FallbackDeny})
	c := e.connect(t, "review", "alice")
	defer c.close()
	c.send(t, `{"Action":"SEND_MESSAGE","RequestId":"r-1","Content":"hi"}`)
	expectFrame(t, c, `{"Type":"ERROR","Id":"ID","RequestId":"r-1","ErrorCode":406,"ErrorMessage":"Message rejected by the room's message review handler"}`)

	// The same crash with an ALLOW fallback delivers the original.
	e.rooms.put(&chat.Room{ID: "review2", MaximumMessageLength: 50, MaximumMessageRatePerSecond: 100,
		MessageReviewHandler: &chat.MessageReviewHandler{URI: h.url, FallbackResult: chat.FallbackAllow}})
	c2 := e.connect(t, "review2", "alice")
	defer c2.close()
	c2.send(t, `{"Action":"SEND_MESSAGE","RequestId":"r-2","Content":"hi","Attributes":{"a":"b"}}`)
	expectFrame(t, c2, `{"Type":"MESSAGE","Id":"ID","RequestId":"r-2","Attributes":{"a":"b"},"Content":"hi","SendTime":"T","Sender":{"UserId":"alice","Attributes":{}}}`)
}

func TestReviewRoomUpdatedAppliesAtOnce(t *testing.T) {
	deny := startHook(t, func(w http.ResponseWriter, _ reviewCall) { io.WriteString(w, `{"ReviewResult":"DENY"}`) })
	tag := startHook(t, func(w http.ResponseWriter, c reviewCall) {
		fmt.Fprintf(w, `{"ReviewResult":"ALLOW","Content":%q}`, "tagged:"+c.Content)
	})
	e := newReviewEnv(t, nil)
	c := e.connect(t, "review", "alice")
	defer c.close()
	msg := func(content string) string {
		return `{"Type":"MESSAGE","Id":"ID","RequestId":"","Attributes":{},"Content":"` + content + `","SendTime":"T","Sender":{"UserId":"alice","Attributes":{}}}`
	}
	const denied = `{"Type":"ERROR","Id":"ID","RequestId":"","ErrorCode":406,"ErrorMessage":"Message rejected by the room's message review handler"}`
	update := func(h *chat.MessageReviewHandler) {
		// As UpdateRoom does: store, then tell the gateway.
		r := &chat.Room{ID: "review", MaximumMessageLength: 50, MaximumMessageRatePerSecond: 100,
			MessageReviewHandler: h, UpdateTime: time.Now()}
		e.rooms.put(r)
		if err := e.g.RoomUpdated(t.Context(), r); err != nil {
			t.Fatal(err)
		}
	}

	c.send(t, `{"Action":"SEND_MESSAGE","Content":"one"}`)
	expectFrame(t, c, msg("one"))

	update(&chat.MessageReviewHandler{URI: deny.url})
	c.send(t, `{"Action":"SEND_MESSAGE","Content":"two"}`)
	expectFrame(t, c, denied)

	update(&chat.MessageReviewHandler{URI: tag.url})
	c.send(t, `{"Action":"SEND_MESSAGE","Content":"three"}`)
	expectFrame(t, c, msg("tagged:three"))

	// An empty URI, then no handler at all: no review.
	update(&chat.MessageReviewHandler{URI: "", FallbackResult: chat.FallbackDeny})
	c.send(t, `{"Action":"SEND_MESSAGE","Content":"four"}`)
	expectFrame(t, c, msg("four"))
	update(&chat.MessageReviewHandler{URI: deny.url})
	update(nil)
	c.send(t, `{"Action":"SEND_MESSAGE","Content":"five"}`)
	expectFrame(t, c, msg("five"))

	if _, ok := deny.byContent("five"); ok {
		t.Fatal("a removed handler was called")
	}
}

func TestReviewKeepsEachSendersOrder(t *testing.T) {
	h := startHook(t, func(w http.ResponseWriter, _ reviewCall) {
		// A handler whose latency varies per call: without per-sender
		// serialisation, later messages would overtake earlier ones.
		time.Sleep(time.Duration(rand.IntN(4000)) * time.Microsecond)
		io.WriteString(w, `{"ReviewResult":"ALLOW"}`)
	})
	e := newReviewEnv(t, &chat.MessageReviewHandler{URI: h.url})
	viewer := e.connect(t, "review", "viewer", withCaps())
	defer viewer.close()
	const perSender = 20
	senders := []string{"s1", "s2", "s3"}
	var wg sync.WaitGroup
	for _, name := range senders {
		c := e.connect(t, "review", name)
		defer c.close()
		wg.Go(func() {
			for i := range perSender {
				if err := wsutil.WriteClientText(c.conn, fmt.Appendf(nil, `{"Action":"SEND_MESSAGE","Content":"%s-%d"}`, name, i)); err != nil {
					t.Errorf("send: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	next := map[string]int{}
	parse := func(frame string) (string, int) {
		var m struct{ Content string }
		if err := json.Unmarshal([]byte(frame), &m); err != nil {
			t.Fatalf("frame %s: %v", frame, err)
		}
		name, n, _ := strings.Cut(m.Content, "-")
		var i int
		fmt.Sscan(n, &i)
		return name, i
	}
	for range perSender * len(senders) {
		name, i := parse(viewer.read(t))
		if i != next[name] {
			t.Fatalf("%s: got message %d, want %d", name, i, next[name])
		}
		next[name]++
	}
}

// An update made by a node that predates versioned updates reaches this one
// as a broker message with the limits only; the room re-reads its handler
// from the store.
func TestReviewHandlerUpdateFromOlderNode(t *testing.T) {
	deny := startHook(t, func(w http.ResponseWriter, _ reviewCall) { io.WriteString(w, `{"ReviewResult":"DENY"}`) })
	e := newReviewEnv(t, nil)
	c := e.connect(t, "review", "alice")
	defer c.close()
	e.rooms.put(&chat.Room{ID: "review", MaximumMessageLength: 50, MaximumMessageRatePerSecond: 100,
		MessageReviewHandler: &chat.MessageReviewHandler{URI: deny.url}, UpdateTime: time.Now().Add(time.Second)})
	if err := e.g.broker.Publish(t.Context(), "review", broker.Message{Kind: broker.KindRoomUpdated, MaxMessageLength: 50, MaxMessageRate: 100}); err != nil {
		t.Fatal(err)
	}
	checkFor(t, 5*time.Second, 5*time.Millisecond, func() error {
		e.g.mu.Lock()
		r := e.g.rooms["review"]
		e.g.mu.Unlock()
		if r == nil || r.config().handler == nil {
			return errorf("handler not applied yet")
		}
		return nil
	})
	c.send(t, `{"Action":"SEND_MESSAGE","RequestId":"r","Content":"x"}`)
	expectFrame(t, c, `{"Type":"ERROR","Id":"ID","RequestId":"r","ErrorCode":406,"ErrorMessage":"Message rejected by the room's message review handler"}`)
}
