package server

import (
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivschat"
	"github.com/aws/aws-sdk-go-v2/service/ivschat/types"

	"github.com/ivschatd/ivschatd/internal/config"
)

// apiOnlyRouteTTL is the chat-log route TTL of the node that only serves the
// API in TestChatLogRoutingAcrossNodes: nothing tells it of a change made
// through another node, so this is its bound.
const apiOnlyRouteTTL = 2 * time.Second

// A logging change made through node A reaches node B's chat log at once when
// B has connections in the room, although B has already logged (or not) the
// room's traffic and its route TTL is an hour: the broker carries it. A node
// with no connections in the room (an API-only node) notices within its TTL.
func TestChatLogRoutingAcrossNodes(t *testing.T) {
	nodes := startNodes(t, "",
		nil, // A: the control plane
		func(c *config.Config) { c.ChatLogRouteTTL = time.Hour },       // B: only the broker can tell it
		func(c *config.Config) { c.ChatLogRouteTTL = apiOnlyRouteTTL }, // C: API only
	)
	a, b, c := nodes[0], nodes[1], nodes[2]
	ctl := a.client()
	lc, err := ctl.CreateLoggingConfiguration(ctxT(t), &ivschat.CreateLoggingConfigurationInput{
		DestinationConfiguration: cwlDestination("route-one")})
	if err != nil {
		t.Fatal(err)
	}
	room := createRoom(t, ctl, "routed")
	tok, err := ctl.CreateChatToken(ctxT(t), &ivschat.CreateChatTokenInput{RoomIdentifier: room.Arn, UserId: aws.String("alice"),
		Capabilities: []types.ChatTokenCapability{types.ChatTokenCapabilitySendMessage}})
	if err != nil {
		t.Fatal(err)
	}
	conn := dialChat(t, b.URL, *tok.Token)
	defer conn.Close()
	p := &routeProbe{t: t, node: b, conn: conn, logged: map[string]map[string]string{}}

	// Traffic through B first: B now holds the room's routing, "no logging".
	p.expect("before attaching", "")
	attach := func(ids ...string) {
		t.Helper()
		if ids == nil {
			ids = []string{} // sent as [], which detaches every configuration
		}
		if _, err := ctl.UpdateRoom(ctxT(t), &ivschat.UpdateRoomInput{Identifier: room.Arn, LoggingConfigurationIdentifiers: ids}); err != nil {
			t.Fatal(err)
		}
	}
	attach(*lc.Arn)
	p.expect("attach through A", "route-one")
	attach()
	p.expect("detach through A", "")
	attach(*lc.Arn)
	p.expect("attach again through A", "route-one")
	if _, err := ctl.UpdateLoggingConfiguration(ctxT(t), &ivschat.UpdateLoggingConfigurationInput{
		Identifier: lc.Arn, DestinationConfiguration: cwlDestination("route-two")}); err != nil {
		t.Fatal(err)
	}
	p.expect("destination changed through A", "route-two")

	// What B counted as logged is what its destinations hold, exactly.
	for group, want := range p.logged {
		file := filepath.Join(b.cfg.DataDir, "chatlogs", "cloudwatchlogs", group, "aws", "IVSChatLogs", "1.0", "room_"+*room.Id+".log")
		checkFor(t, 10*time.Second, 50*time.Millisecond, func() error {
			recs, err := readLines(file)
			if err != nil {
				return err
			}
			return sameIDs(recs, want)
		})
	}

	// C has no connections in the room: the record of a SendEvent through
	// C's API follows the change within C's route TTL.
	quiet := createRoom(t, ctl, "api-only")
	event := func() bool {
		t.Helper()
		before := spooledTo(t, c, "route-two")
		if _, err := c.client().SendEvent(ctxT(t), &ivschat.SendEventInput{RoomIdentifier: quiet.Arn, EventName: aws.String("app:probe")}); err != nil {
			t.Fatal(err)
		}
		return spooledTo(t, c, "route-two") > before
	}
	if event() {
		t.Fatal("an event of a room without logging was logged")
	}
	if _, err := ctl.UpdateRoom(ctxT(t), &ivschat.UpdateRoomInput{Identifier: quiet.Arn, LoggingConfigurationIdentifiers: []string{*lc.Arn}}); err != nil {
		t.Fatal(err)
	}
	changed := time.Now()
	for !event() {
		if time.Since(changed) > apiOnlyRouteTTL+time.Second {
			t.Fatalf("SendEvent through the API-only node not logged %v after the room was attached (route TTL %v)", time.Since(changed), apiOnlyRouteTTL)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("API-only node (no connections in the room): attach took effect after %v (route TTL %v)", time.Since(changed).Round(time.Millisecond), apiOnlyRouteTTL)
}

// brokerBound is how soon a change must reach a node with connections in the
// room: far below that node's route TTL (an hour), so only the broker can
// have told it.
const brokerBound = 3 * time.Second

// routeProbe sends messages on one node and tells, from that node's spool
// counters, which local-file CloudWatch Logs group each was logged to: a
// frame is spooled before it is broadcast, so the counters are final once the
// sender has its echo.
type routeProbe struct {
	t      *testing.T
	node   *testServer
	conn   net.Conn
	n      int
	logged map[string]map[string]string // group → message ID → "MESSAGE"
}

var probeGroups = []string{"route-one", "route-two"}

// send sends one message and returns its ID and the group it was logged to
// ("" for none).
func (p *routeProbe) send() (id, group string) {
	t := p.t
	t.Helper()
	before := map[string]float64{}
	for _, g := range probeGroups {
		before[g] = spooledTo(t, p.node, g)
	}
	p.n++
	send(t, p.conn, `{"Action":"SEND_MESSAGE","RequestId":"probe-`+strconv.Itoa(p.n)+`","Content":"probe"}`)
	f := readFrame(t, p.conn)
	if f["Type"] != "MESSAGE" {
		t.Fatalf("probe %d: got %v, want its MESSAGE", p.n, f)
	}
	id = f["Id"].(string)
	for _, g := range probeGroups {
		switch d := spooledTo(t, p.node, g) - before[g]; {
		case d == 1 && group == "":
			group = g
		case d != 0:
			t.Fatalf("probe %d: %v more records in %s", p.n, d, g)
		}
	}
	if group != "" {
		if p.logged[group] == nil {
			p.logged[group] = map[string]string{}
		}
		p.logged[group][id] = "MESSAGE"
	}
	return id, group
}

// expect sends messages until one is logged to group ("" for none), failing
// after brokerBound, and logs how long the change took to take effect.
func (p *routeProbe) expect(what, group string) {
	t := p.t
	t.Helper()
	start := time.Now()
	for n := 1; ; n++ {
		if _, got := p.send(); got == group {
			t.Logf("%s: took effect on B with message %d, echoed %v after the call returned", what, n, time.Since(start).Round(time.Millisecond))
			return
		} else if time.Since(start) > brokerBound {
			t.Fatalf("%s: B still logs to %q after %v, want %q", what, got, time.Since(start), group)
		}
		// The room's default rate is 10 messages a second.
		time.Sleep(120 * time.Millisecond)
	}
}

// spooledTo is how many records node has spooled for the local-file
// CloudWatch Logs group.
func spooledTo(t *testing.T, node *testServer, group string) float64 {
	return metricValue(t, node, fmt.Sprintf(`ivschatd_chatlog_records_spooled_total{destination="cloudWatchLogs:%s"}`, group))
}

func cwlDestination(group string) types.DestinationConfiguration {
	return &types.DestinationConfigurationMemberCloudWatchLogs{Value: types.CloudWatchLogsDestinationConfiguration{LogGroupName: aws.String(group)}}
}
