package server

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivschat"
	"github.com/aws/aws-sdk-go-v2/service/ivschat/types"
	"github.com/gobwas/ws"

	"github.com/ivschatd/ivschatd/internal/chat"
)

// shortViewerCountSecond makes one second of the viewer-count tag last d
// for the servers the test starts next.
func shortViewerCountSecond(t *testing.T, d time.Duration) {
	old := viewerCountSecond
	viewerCountSecond = d
	t.Cleanup(func() { viewerCountSecond = old })
}

// viewerCountFrame is the exact shape of the event: a control-plane
// SendEvent's, with the two figures as string attributes.
var viewerCountFrame = regexp.MustCompile(`^\{"Type":"EVENT","Id":"[A-Za-z0-9]{12}","RequestId":"","EventName":"ivschatd:VIEWER_COUNT","Attributes":\{"connections":"(\d+)","users":"(\d+)"\},"SendTime":"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z"\}$`)

type viewerCountEvent struct {
	ID                 string
	Connections, Users string
	SendTime           time.Time
	Raw                string
}

// nextFrame returns the next text frame within d, or ok false when none
// came (pings are skipped; a close frame fails the test).
func nextFrame(t *testing.T, conn net.Conn, d time.Duration) (payload []byte, ok bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	conn.SetReadDeadline(deadline)
	defer conn.SetReadDeadline(time.Time{})
	for {
		h, err := ws.ReadHeader(conn)
		if err != nil {
			if ne, isNet := err.(net.Error); isNet && ne.Timeout() {
				return nil, false
			}
			t.Fatalf("reading a frame: %v", err)
		}
		p := make([]byte, h.Length)
		if _, err := io.ReadFull(conn, p); err != nil {
			t.Fatalf("reading a frame: %v", err)
		}
		switch h.OpCode {
		case ws.OpText:
			return p, true
		case ws.OpClose:
			t.Fatalf("connection closed: %q", p)
		}
	}
}

// viewerCounts collects the VIEWER_COUNT events conn receives during d; any
// other frame fails the test.
func viewerCounts(t *testing.T, conn net.Conn, d time.Duration) []viewerCountEvent {
	t.Helper()
	var out []viewerCountEvent
	end := time.Now().Add(d)
	for {
		left := time.Until(end)
		if left <= 0 {
			return out
		}
		p, ok := nextFrame(t, conn, left)
		if !ok {
			return out
		}
		out = append(out, parseViewerCount(t, p))
	}
}

func parseViewerCount(t *testing.T, p []byte) viewerCountEvent {
	t.Helper()
	m := viewerCountFrame.FindSubmatch(p)
	if m == nil {
		t.Fatalf("frame %s is not a viewer-count event", p)
	}
	var f struct{ Id, SendTime string }
	if err := json.Unmarshal(p, &f); err != nil {
		t.Fatal(err)
	}
	at, err := time.Parse(time.RFC3339Nano, f.SendTime)
	if err != nil {
		t.Fatal(err)
	}
	return viewerCountEvent{ID: f.Id, Connections: string(m[1]), Users: string(m[2]), SendTime: at, Raw: string(p)}
}

// A room tagged with an interval receives its figures every interval while
// it has connections; the events are not in the chat log; removing the tag
// stops them.
func TestViewerCountSingleNode(t *testing.T) {
	const unit = 100 * time.Millisecond // one "second" of the tag
	shortViewerCountSecond(t, unit)
	dir := t.TempDir()
	ts := startServer(t, dir, nil)
	c := ts.client()
	cwl, err := c.CreateLoggingConfiguration(ctxT(t), &ivschat.CreateLoggingConfigurationInput{DestinationConfiguration: &types.DestinationConfigurationMemberCloudWatchLogs{
		Value: types.CloudWatchLogsDestinationConfiguration{LogGroupName: aws.String("viewers")}}})
	if err != nil {
		t.Fatal(err)
	}
	room, err := c.CreateRoom(ctxT(t), &ivschat.CreateRoomInput{
		Tags:                            map[string]string{chat.TagViewerCountInterval: "5"},
		LoggingConfigurationIdentifiers: []string{*cwl.Arn},
	})
	if err != nil {
		t.Fatal(err)
	}
	viewer := dialChat(t, ts.URL, chatToken(t, c, *room.Arn, "alice"))
	defer viewer.Close()
	second := dialChat(t, ts.URL, chatToken(t, c, *room.Arn, "alice"))
	defer second.Close()
	third := dialChat(t, ts.URL, chatToken(t, c, *room.Arn, "bob"))
	defer third.Close()

	interval := 5 * unit
	// Wait for the figures of all three connections (the first event may
	// have counted fewer), then watch three intervals.
	checkFor(t, 5*time.Second, 0, func() error {
		p, ok := nextFrame(t, viewer, 2*time.Second)
		if !ok {
			return fmt.Errorf("no event")
		}
		if e := parseViewerCount(t, p); e.Connections != "3" || e.Users != "2" {
			return fmt.Errorf("figures %s/%s", e.Connections, e.Users)
		}
		return nil
	})
	events := viewerCounts(t, viewer, 3*interval+interval/2)
	if len(events) < 2 || len(events) > 4 {
		t.Fatalf("%d events in 3.5 intervals, want 3 (one per interval)", len(events))
	}
	for i, e := range events {
		if e.Connections != "3" || e.Users != "2" {
			t.Errorf("event %s: connections %s users %s, want 3 and 2", e.Raw, e.Connections, e.Users)
		}
		if i > 0 {
			if gap := e.SendTime.Sub(events[i-1].SendTime); gap < interval*8/10 {
				t.Errorf("events %v apart, want one per interval (%v)", gap, interval)
			}
		}
	}
	// Not in the chat log: the room's log holds the marker event sent
	// after them, and nothing else.
	ev, err := c.SendEvent(ctxT(t), &ivschat.SendEventInput{RoomIdentifier: room.Arn, EventName: aws.String("app:marker")})
	if err != nil {
		t.Fatal(err)
	}
	cwlFile := filepath.Join(dir, "chatlogs", "cloudwatchlogs", "viewers", "aws", "IVSChatLogs", "1.0", "room_"+*room.Id+".log")
	checkFor(t, 10*time.Second, 50*time.Millisecond, func() error {
		lines, err := readLines(cwlFile)
		if err != nil {
			return err
		}
		return sameIDs(lines, map[string]string{*ev.Id: "EVENT"})
	})

	// Removing the tag stops them at once: UntagResource announces the
	// room's update, and the tags are read again on the next tick (a
	// quarter of a tag second; a turn already running may still publish).
	if _, err := c.UntagResource(ctxT(t), &ivschat.UntagResourceInput{ResourceArn: room.Arn, TagKeys: []string{chat.TagViewerCountInterval}}); err != nil {
		t.Fatal(err)
	}
	settle := time.Now().Add(2 * unit)
	for {
		p, ok := nextFrame(t, viewer, time.Until(settle))
		if !ok {
			break
		}
		parseViewerCountOrMarker(t, p)
	}
	if got := viewerCounts(t, viewer, 3*interval); len(got) != 0 {
		t.Fatalf("%d viewer-count events after the tag was removed: %s", len(got), got[0].Raw)
	}
}

// parseViewerCountOrMarker skips the app:marker event the test sent.
func parseViewerCountOrMarker(t *testing.T, p []byte) {
	t.Helper()
	var f struct{ EventName string }
	if json.Unmarshal(p, &f) == nil && f.EventName == "app:marker" {
		return
	}
	parseViewerCount(t, p)
}

// A room without the tag never receives one.
func TestViewerCountOffWithoutTag(t *testing.T) {
	shortViewerCountSecond(t, 50*time.Millisecond)
	ts := startServer(t, "", nil)
	c := ts.client()
	room, err := c.CreateRoom(ctxT(t), &ivschat.CreateRoomInput{Tags: map[string]string{"ivschatd:other": "5"}})
	if err != nil {
		t.Fatal(err)
	}
	a := dialChat(t, ts.URL, chatToken(t, c, *room.Arn, "alice"))
	defer a.Close()
	b := dialChat(t, ts.URL, chatToken(t, c, *room.Arn, "bob"))
	defer b.Close()
	// Two re-reads of the tags and several of the shortest intervals.
	if p, ok := nextFrame(t, a, 20*50*time.Millisecond); ok {
		t.Fatalf("untagged room received %s", p)
	}
}

// In a cluster the figures are the cluster's, every node's viewers get the
// same events, and only one node publishes per interval.
func TestViewerCountCluster(t *testing.T) {
	const unit = 100 * time.Millisecond
	shortViewerCountSecond(t, unit)
	if os.Getenv("IVSCHATD_TEST_POSTGRES_URL") == "" {
		t.Skip("IVSCHATD_TEST_POSTGRES_URL not set")
	}
	a, b := startCluster(t, "")
	c := a.client()
	room, err := c.CreateRoom(ctxT(t), &ivschat.CreateRoomInput{Tags: map[string]string{chat.TagViewerCountInterval: "5"}})
	if err != nil {
		t.Fatal(err)
	}
	onA := dialChat(t, a.URL, chatToken(t, c, *room.Arn, "alice"))
	defer onA.Close()
	bobA := dialChat(t, a.URL, chatToken(t, c, *room.Arn, "bob"))
	defer bobA.Close()
	onB := dialChat(t, b.URL, chatToken(t, c, *room.Arn, "alice"))
	defer onB.Close()
	carolB := dialChat(t, b.URL, chatToken(t, c, *room.Arn, "carol"))
	defer carolB.Close()

	interval := 5 * unit
	// Until an event counts all four connections of three users on two
	// nodes.
	var first viewerCountEvent
	checkFor(t, 5*time.Second, 0, func() error {
		p, ok := nextFrame(t, onB, 2*time.Second)
		if !ok {
			return fmt.Errorf("no event")
		}
		first = parseViewerCount(t, p)
		if first.Connections != "4" || first.Users != "3" {
			return fmt.Errorf("figures %s/%s", first.Connections, first.Users)
		}
		return nil
	})
	// Node A's viewer got the same frame, byte for byte.
	for {
		p, ok := nextFrame(t, onA, 2*time.Second)
		if !ok {
			t.Fatalf("node A's viewer never got event %s", first.ID)
		}
		if parseViewerCount(t, p).ID == first.ID {
			if string(p) != first.Raw {
				t.Fatalf("frames differ:\nnode A: %s\nnode B: %s", p, first.Raw)
			}
			break
		}
	}
	eventsB := viewerCounts(t, onB, 4*interval+interval/2)
	eventsA := viewerCounts(t, onA, interval/2)
	if len(eventsB) < 3 || len(eventsB) > 5 {
		t.Fatalf("%d events in 4.5 intervals, want 4: one per interval, not one per node", len(eventsB))
	}
	prev := first.SendTime
	for i, e := range eventsB {
		if e.Connections != "4" || e.Users != "3" {
			t.Errorf("event %s: want connections 4, users 3", e.Raw)
		}
		if gap := e.SendTime.Sub(prev); gap < interval*8/10 {
			t.Errorf("events %d and %d are %v apart, want one per interval (%v)", i, i+1, gap, interval)
		}
		prev = e.SendTime
		if i < len(eventsA) && eventsA[i].Raw != e.Raw {
			t.Errorf("node A got %s, node B %s", eventsA[i].Raw, e.Raw)
		}
	}
	if len(eventsA) != len(eventsB) {
		t.Errorf("node A got %d events, node B %d", len(eventsA), len(eventsB))
	}

	// Removing the tag through node B stops the events at once on both
	// nodes, whichever of them publishes: the room's update is announced
	// through Redis.
	if _, err := b.client().UntagResource(ctxT(t), &ivschat.UntagResourceInput{ResourceArn: room.Arn, TagKeys: []string{chat.TagViewerCountInterval}}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * unit) // a tick, the read, and a turn that may be running
	for _, viewer := range []net.Conn{onA, onB} {
		for { // what was sent before
			if _, ok := nextFrame(t, viewer, unit/2); !ok {
				break
			}
		}
	}
	for node, viewer := range map[string]net.Conn{"A": onA, "B": onB} {
		if got := viewerCounts(t, viewer, 3*interval); len(got) != 0 {
			t.Fatalf("node %s's viewer got %d viewer-count events after the tag was removed through node B: %s", node, len(got), got[0].Raw)
		}
	}
}
