package messaging

import (
	"context"
	"errors"
	"io"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/ivschatd/ivschatd/internal/chat"
)

// fakeLease answers Acquire as told and records the calls.
type fakeLease struct {
	mu    sync.Mutex
	ok    bool
	wait  time.Duration
	err   error
	calls []time.Duration // ttl of each call
}

func (l *fakeLease) Acquire(_ context.Context, name string, ttl time.Duration) (bool, time.Duration, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, ttl)
	return l.ok, l.wait, l.err
}

func (l *fakeLease) callCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.calls)
}

// countingRecorder counts what the chat log is asked to record.
type countingRecorder struct {
	mu sync.Mutex
	n  int
}

func (r *countingRecorder) Record(context.Context, string, string, []byte, time.Time) error {
	r.mu.Lock()
	r.n++
	r.mu.Unlock()
	return nil
}

const vcUnit = 20 * time.Millisecond

// viewerCountEnv starts a gateway whose room1 has the tag "5" (100 ms with
// vcUnit) and a viewer in it.
func viewerCountEnv(t *testing.T, lease ViewerCountLease, count func(context.Context, string) (int, int, error)) (*env, *client, *countingRecorder) {
	rec := &countingRecorder{}
	e := newEnv(t, func(o *Options) { o.Recorder = rec })
	e.rooms.put(&chat.Room{ID: "room1", MaximumMessageLength: 500, MaximumMessageRatePerSecond: 10,
		Tags: map[string]string{chat.TagViewerCountInterval: "5"}})
	e.g.StartViewerCounts(ViewerCounts{Count: count, Lease: lease, Second: vcUnit})
	return e, e.connect(t, "room1", "alice"), rec
}

// frameWithin returns the next text frame within d, or "" if none came.
func (c *client) frameWithin(t *testing.T, d time.Duration) string {
	t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(d))
	defer c.conn.SetReadDeadline(time.Time{})
	for {
		h, err := ws.ReadHeader(c.r)
		if err != nil {
			return ""
		}
		p := make([]byte, h.Length)
		if _, err := io.ReadFull(c.r, p); err != nil {
			t.Fatal(err)
		}
		if h.OpCode == ws.OpText {
			return string(p)
		}
	}
}

var vcFrame = regexp.MustCompile(`^\{"Type":"EVENT","Id":"[A-Za-z0-9]{12}","RequestId":"","EventName":"ivschatd:VIEWER_COUNT","Attributes":\{"connections":"7","users":"3"\},"SendTime":"[0-9T:.Z-]+"\}$`)

// The winner of the lease publishes Count's figures (the cluster's, not
// this node's), in the shape of a control-plane event, unrecorded and
// uncounted as application traffic.
func TestViewerCountPublishes(t *testing.T) {
	lease := &fakeLease{ok: true}
	var asked sync.Map
	e, c, rec := viewerCountEnv(t, lease, func(_ context.Context, roomID string) (int, int, error) {
		asked.Store(roomID, true)
		return 7, 3, nil
	})
	for range 2 {
		if f := c.read(t); !vcFrame.MatchString(f) {
			t.Fatalf("frame %s, want a viewer-count event with Count's figures", f)
		}
	}
	if _, ok := asked.Load("room1"); !ok {
		t.Error("Count was not asked about room1")
	}
	lease.mu.Lock()
	if lease.calls[0] != 5*vcUnit {
		t.Errorf("lease taken for %v, want the interval %v", lease.calls[0], 5*vcUnit)
	}
	lease.mu.Unlock()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.n != 0 {
		t.Errorf("%d frames recorded in the chat log, want none", rec.n)
	}
	if st := e.g.Stats(); st.Published != 0 {
		t.Errorf("Stats.Published = %d, want 0", st.Published)
	}
	if f := e.g.RoomFigures("room1"); f.Events != 0 {
		t.Errorf("RoomFigures.Events = %d, want 0", f.Events)
	}
}

// A node that does not get the lease, or cannot reach it, or cannot count,
// publishes nothing, and tries again.
func TestViewerCountNoTurnNoEvent(t *testing.T) {
	for name, tc := range map[string]struct {
		lease  *fakeLease
		count  error
		failed bool // a failure, counted in Stats.ViewerCountFailures
	}{
		"lease held elsewhere": {lease: &fakeLease{wait: 3 * vcUnit}},
		"lease fails":          {lease: &fakeLease{err: errors.New("redis down")}, failed: true},
		"count fails":          {lease: &fakeLease{ok: true}, count: errors.New("no figures"), failed: true},
	} {
		t.Run(name, func(t *testing.T) {
			e, c, _ := viewerCountEnv(t, tc.lease, func(context.Context, string) (int, int, error) { return 7, 3, tc.count })
			if f := c.frameWithin(t, 20*vcUnit); f != "" {
				t.Fatalf("got %s, want no event", f)
			}
			if n := tc.lease.callCount(); n < 2 {
				t.Fatalf("lease asked %d times in 20 tag seconds, want it retried", n)
			}
			if got := e.g.Stats().ViewerCountFailures; (got > 0) != tc.failed {
				t.Fatalf("ViewerCountFailures = %d; want counted: %v", got, tc.failed)
			}
		})
	}
}

// Removing the tag stops the events at once when the room's update is
// announced (as TagResource and UntagResource do).
func TestViewerCountTagRemoved(t *testing.T) {
	e, c, _ := viewerCountEnv(t, nil, func(context.Context, string) (int, int, error) { return 7, 3, nil })
	if f := c.read(t); !vcFrame.MatchString(f) {
		t.Fatalf("frame %s", f)
	}
	untagged := &chat.Room{ID: "room1", MaximumMessageLength: 500, MaximumMessageRatePerSecond: 10}
	e.rooms.put(untagged)
	if err := e.g.RoomUpdated(context.Background(), untagged); err != nil {
		t.Fatal(err)
	}
	// A tick to notice, a read, and a turn that may be in flight.
	deadline := time.Now().Add(3 * vcUnit)
	for time.Now().Before(deadline) {
		c.frameWithin(t, time.Until(deadline))
	}
	if f := c.frameWithin(t, 20*vcUnit); f != "" {
		t.Fatalf("event %s after the tag was removed", f)
	}
}

// Without announcements the tags are not read again until the backstop:
// no store read per room every few seconds. A change whose announcement
// was lost applies at the backstop.
func TestViewerCountReadsTagsWhenTold(t *testing.T) {
	e, c, _ := viewerCountEnv(t, nil, func(context.Context, string) (int, int, error) { return 7, 3, nil })
	if f := c.read(t); !vcFrame.MatchString(f) {
		t.Fatalf("frame %s", f)
	}
	before := e.rooms.getCount()
	for range 4 { // four intervals of events, 20 tag seconds
		if f := c.frameWithin(t, 10*vcUnit); !vcFrame.MatchString(f) {
			t.Fatalf("frame %q, want the next viewer-count event", f)
		}
	}
	if n := e.rooms.getCount() - before; n != 0 {
		t.Fatalf("the room was read %d times in 20 tag seconds without an announcement, want 0", n)
	}

	// A change nobody announced: events go on (the last known tag) ...
	start := time.Now()
	e.rooms.put(&chat.Room{ID: "room1", MaximumMessageLength: 500, MaximumMessageRatePerSecond: 10})
	if f := c.frameWithin(t, 10*vcUnit); !vcFrame.MatchString(f) {
		t.Fatalf("frame %q, want events to go on until the tags are read again", f)
	}
	// ... until the backstop's read, after which they stop.
	var last time.Time
	for {
		f := c.frameWithin(t, 10*vcUnit)
		if f == "" {
			break
		}
		last = time.Now()
		if time.Since(start) > (viewerCountBackstop+20)*vcUnit {
			t.Fatalf("events still coming %v after an unannounced change; the backstop is %v", time.Since(start), viewerCountBackstop*vcUnit)
		}
	}
	if n := e.rooms.getCount() - before; n < 1 {
		t.Fatalf("events stopped (last at %v) but the tags were not read again", last.Sub(start))
	}
}
