// Package brokertest is the behaviour suite that every broker.Broker
// implementation must pass. Deliveries may be asynchronous (Redis delivers
// through the server), so every check polls with a bounded wait.
package brokertest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/ivschatd/ivschatd/internal/broker"
)

// Wait bounds how long the suite waits for a delivery.
const Wait = 5 * time.Second

// Run runs the suite; newBroker returns a fresh, empty broker and registers
// its cleanup (the suite closes it too; Close must be idempotent).
func Run(t *testing.T, newBroker func(t *testing.T) broker.Broker) {
	t.Run("OrderAcrossSubscribersAndPublishers", func(t *testing.T) { testOrder(t, newBroker(t)) })
	t.Run("NoReplay", func(t *testing.T) { testNoReplay(t, newBroker(t)) })
	t.Run("UnsubscribeIdempotent", func(t *testing.T) { testUnsubscribe(t, newBroker(t)) })
	t.Run("RoomIsolation", func(t *testing.T) { testIsolation(t, newBroker(t)) })
	t.Run("KindsRoundTrip", func(t *testing.T) { testKinds(t, newBroker(t)) })
	t.Run("ResubscribeAfterLeaving", func(t *testing.T) { testResubscribe(t, newBroker(t)) })
	t.Run("HandlerNeverConcurrentPerRoom", func(t *testing.T) { testNoConcurrency(t, newBroker(t)) })
	t.Run("Close", func(t *testing.T) { testClose(t, newBroker(t)) })
}

// Recorder is a Handler that remembers what it received.
type Recorder struct {
	mu  sync.Mutex
	got []Delivery
}

// Delivery is one handler call.
type Delivery struct {
	Room string
	Msg  broker.Message
}

// Handle is the broker.Handler.
func (r *Recorder) Handle(room string, m broker.Message) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, Delivery{room, m})
}

// Got returns a copy of the deliveries so far.
func (r *Recorder) Got() []Delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Delivery(nil), r.got...)
}

// Frames returns the frames received so far, as strings.
func (r *Recorder) Frames() []string {
	var s []string
	for _, d := range r.Got() {
		s = append(s, string(d.Msg.Frame))
	}
	return s
}

// WaitLen waits until r has at least n deliveries and returns them.
func (r *Recorder) WaitLen(t testing.TB, n int) []Delivery {
	t.Helper()
	deadline := time.Now().Add(Wait)
	for {
		got := r.Got()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("got %d deliveries within %v, want %d", len(got), Wait, n)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// Frame is a KindFrame message carrying s.
func Frame(s string) broker.Message {
	return broker.Message{Kind: broker.KindFrame, Frame: []byte(s)}
}

func subscribe(t *testing.T, b broker.Broker, room string, h broker.Handler) func() {
	t.Helper()
	unsub, err := b.Subscribe(room, h)
	if err != nil {
		t.Fatalf("Subscribe(%s): %v", room, err)
	}
	return unsub
}

func publish(t *testing.T, b broker.Broker, room string, m broker.Message) {
	t.Helper()
	if err := b.Publish(context.Background(), room, m); err != nil {
		t.Fatalf("Publish(%s): %v", room, err)
	}
}

// marker publishes a frame to room and waits until rec has it: everything
// published to the room before it has then been delivered to rec too.
func marker(t *testing.T, b broker.Broker, room string, rec *Recorder, name string) {
	t.Helper()
	publish(t, b, room, Frame(name))
	deadline := time.Now().Add(Wait)
	for {
		for _, f := range rec.Frames() {
			if f == name {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("marker %q not delivered within %v", name, Wait)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func testOrder(t *testing.T, b broker.Broker) {
	defer b.Close()
	var a, c Recorder
	subscribe(t, b, "r1", a.Handle)
	subscribe(t, b, "r1", c.Handle)
	const publishers, each = 4, 50
	var wg sync.WaitGroup
	for p := range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if err := b.Publish(context.Background(), "r1", Frame(fmt.Sprintf("%d-%d", p, i))); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	ga, gc := a.WaitLen(t, publishers*each), c.WaitLen(t, publishers*each)
	if !reflect.DeepEqual(ga, gc) {
		t.Fatal("two subscribers of one room saw different orders")
	}
	// Each publisher's own messages stay in its order.
	next := make([]int, publishers)
	for _, d := range ga {
		var p, i int
		fmt.Sscanf(string(d.Msg.Frame), "%d-%d", &p, &i)
		if i != next[p] {
			t.Fatalf("publisher %d: got message %d, want %d", p, i, next[p])
		}
		next[p]++
	}
}

func testNoReplay(t *testing.T, b broker.Broker) {
	defer b.Close()
	var early, late Recorder
	publish(t, b, "r", Frame("before anyone")) // nobody listens: dropped
	subscribe(t, b, "r", early.Handle)
	marker(t, b, "r", &early, "m1")
	subscribe(t, b, "r", late.Handle)
	marker(t, b, "r", &late, "m2")
	if got := early.Frames(); !reflect.DeepEqual(got, []string{"m1", "m2"}) {
		t.Errorf("early subscriber got %q", got)
	}
	if got := late.Frames(); !reflect.DeepEqual(got, []string{"m2"}) {
		t.Errorf("late subscriber got %q, want only what followed its Subscribe", got)
	}
}

func testUnsubscribe(t *testing.T, b broker.Broker) {
	defer b.Close()
	var gone, stays Recorder
	unsub := subscribe(t, b, "r", gone.Handle)
	subscribe(t, b, "r", stays.Handle)
	marker(t, b, "r", &gone, "m1")
	unsub()
	unsub() // idempotent
	marker(t, b, "r", &stays, "m2")
	// The marker reached stays, so a delivery to gone would have happened.
	if got := gone.Frames(); !reflect.DeepEqual(got, []string{"m1"}) {
		t.Errorf("unsubscribed handler got %q", got)
	}
	// Unsubscribing concurrently from many goroutines is fine too.
	unsub2 := subscribe(t, b, "r", func(string, broker.Message) {})
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() { defer wg.Done(); unsub2() }()
	}
	wg.Wait()
}

func testIsolation(t *testing.T, b broker.Broker) {
	defer b.Close()
	var r1, r2 Recorder
	subscribe(t, b, "room-1", r1.Handle)
	subscribe(t, b, "room-2", r2.Handle)
	publish(t, b, "room-1", Frame("for-1"))
	publish(t, b, "room-3", Frame("for-3"))
	marker(t, b, "room-2", &r2, "for-2")
	marker(t, b, "room-1", &r1, "end-1")
	if got := r1.Got(); len(got) != 2 || got[0].Room != "room-1" || string(got[0].Msg.Frame) != "for-1" {
		t.Errorf("room-1 subscriber got %+v", got)
	}
	if got := r2.Got(); len(got) != 1 || got[0].Room != "room-2" {
		t.Errorf("room-2 subscriber got %+v", got)
	}
}

func testKinds(t *testing.T, b broker.Broker) {
	defer b.Close()
	var rec Recorder
	subscribe(t, b, "r", rec.Handle)
	// Every field set on every kind (a broker must not drop fields a kind
	// does not use today), plus each kind with only its own fields, binary
	// and non-ASCII bytes included.
	frame := []byte{0x81, 0x7e, 0x00, 0x00, 0xff, '{', '"', 0xe2, 0x82, 0xac}
	want := []broker.Message{
		{Kind: broker.KindFrame, Frame: frame},
		{Kind: broker.KindDisconnectUser, UserID: "user-ü", Reason: "bye\x00now"},
		{Kind: broker.KindCloseRoom},
		{Kind: broker.KindRoomUpdated, MaxMessageLength: 500, MaxMessageRate: 100},
	}
	for _, k := range []broker.Kind{broker.KindFrame, broker.KindDisconnectUser, broker.KindCloseRoom, broker.KindRoomUpdated} {
		want = append(want, broker.Message{Kind: k, Frame: frame, UserID: "u", Reason: "r", MaxMessageLength: 1<<30 + 7, MaxMessageRate: -1})
	}
	for _, m := range want {
		publish(t, b, "r", m)
	}
	got := rec.WaitLen(t, len(want))
	for i, d := range got {
		if !reflect.DeepEqual(d.Msg, want[i]) {
			t.Errorf("message %d: got %+v, want %+v", i, d.Msg, want[i])
		}
	}
}

func testResubscribe(t *testing.T, b broker.Broker) {
	defer b.Close()
	// A room left by its last subscriber and joined again at once (a node's
	// only viewer reconnecting) must end up subscribed.
	for i := range 20 {
		var rec Recorder
		unsub := subscribe(t, b, "r", rec.Handle)
		marker(t, b, "r", &rec, fmt.Sprint("m", i))
		unsub()
	}
}

func testNoConcurrency(t *testing.T, b broker.Broker) {
	defer b.Close()
	var (
		mu      sync.Mutex
		running = map[string]bool{}
		bad     error
		count   int
	)
	h := func(room string, m broker.Message) {
		mu.Lock()
		if running[room] && bad == nil {
			bad = fmt.Errorf("handler for %s called concurrently", room)
		}
		running[room] = true
		mu.Unlock()
		time.Sleep(50 * time.Microsecond)
		mu.Lock()
		running[room] = false
		count++
		mu.Unlock()
	}
	subscribe(t, b, "a", h)
	subscribe(t, b, "a", h)
	subscribe(t, b, "b", h)
	var wg sync.WaitGroup
	for p := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			room := []string{"a", "b"}[p%2]
			for range 25 {
				if err := b.Publish(context.Background(), room, Frame("x")); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	deadline := time.Now().Add(Wait)
	for {
		mu.Lock()
		n, err := count, bad
		mu.Unlock()
		if err != nil {
			t.Fatal(err)
		}
		if n == 150 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of 150 deliveries", n)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func testClose(t *testing.T, b broker.Broker) {
	var rec Recorder
	unsub := subscribe(t, b, "r", rec.Handle)
	marker(t, b, "r", &rec, "m1")
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := b.Publish(context.Background(), "r", Frame("late")); !errors.Is(err, broker.ErrClosed) {
		t.Errorf("Publish after Close: %v, want ErrClosed", err)
	}
	if _, err := b.Subscribe("r", rec.Handle); !errors.Is(err, broker.ErrClosed) {
		t.Errorf("Subscribe after Close: %v, want ErrClosed", err)
	}
	unsub() // after Close: no effect, no panic
	if got := rec.Frames(); !reflect.DeepEqual(got, []string{"m1"}) {
		t.Errorf("got %q", got)
	}
}
