package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivschat"
	"github.com/aws/aws-sdk-go-v2/service/ivschat/types"
	"github.com/aws/smithy-go"
	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/ivschatd/ivschatd/internal/config"
	"github.com/ivschatd/ivschatd/internal/token"
)

// TestClusterTwoNodes runs two nodes on one PostgreSQL schema and one Redis
// prefix, and checks that everything a client can observe of a room is the
// same whichever node it is connected to.
func TestClusterTwoNodes(t *testing.T) {
	a, b := startCluster(t, "")
	room := createRoom(t, a.client(), "cluster")
	chatToken := func(user string, caps ...string) string {
		t.Helper()
		out, err := a.client().CreateChatToken(ctxT(t), &ivschat.CreateChatTokenInput{
			RoomIdentifier: room.Arn, UserId: aws.String(user), Capabilities: toCaps(caps),
		})
		if err != nil {
			t.Fatal(err)
		}
		return *out.Token
	}

	viewer := dialChat(t, b.URL, chatToken("viewer"))
	defer viewer.Close()
	victim := dialChat(t, b.URL, chatToken("victim"))
	defer victim.Close()
	sender := dialChat(t, a.URL, chatToken("sender", "SEND_MESSAGE"))
	defer sender.Close()

	// A message sent on A reaches B's viewer as the very frame A's clients
	// get: encoded once, carried by Redis.
	send(t, sender, `{"Action":"SEND_MESSAGE","RequestId":"r1","Content":"across nodes"}`)
	mine := readText(t, sender)
	theirs := readText(t, viewer)
	if !bytes.Equal(mine, theirs) {
		t.Fatalf("frames differ:\nnode A: %s\nnode B: %s", mine, theirs)
	}
	var msg struct{ Type, Id, Content string }
	if err := json.Unmarshal(theirs, &msg); err != nil || msg.Type != "MESSAGE" || msg.Content != "across nodes" || msg.Id == "" {
		t.Fatalf("viewer got %s (%v)", theirs, err)
	}
	readText(t, victim)

	// A control-plane event made through A.
	ev, err := a.client().SendEvent(ctxT(t), &ivschat.SendEventInput{RoomIdentifier: room.Arn, EventName: aws.String("app:poll")})
	if err != nil {
		t.Fatal(err)
	}
	var event struct{ Type, Id, EventName string }
	if err := json.Unmarshal(readText(t, viewer), &event); err != nil || event.Type != "EVENT" || event.EventName != "app:poll" || event.Id != aws.ToString(ev.Id) {
		t.Fatalf("viewer got event %+v (%v), want Id %s", event, err, aws.ToString(ev.Id))
	}
	readText(t, victim)

	// DisconnectUser through A closes the user's connection on B, after the
	// aws:DISCONNECT_USER event.
	if _, err := a.client().DisconnectUser(ctxT(t), &ivschat.DisconnectUserInput{RoomIdentifier: room.Arn, UserId: aws.String("victim"), Reason: aws.String("bye")}); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(readText(t, victim), &event); err != nil || event.EventName != "aws:DISCONNECT_USER" {
		t.Fatalf("victim got %+v (%v)", event, err)
	}
	if code, reason := readClose(t, victim); code != ws.StatusNormalClosure || reason != "bye" {
		t.Fatalf("victim closed with %d %q, want 1000 \"bye\"", code, reason)
	}
	if err := json.Unmarshal(readText(t, viewer), &event); err != nil || event.EventName != "aws:DISCONNECT_USER" {
		t.Fatalf("viewer got %+v (%v)", event, err)
	}

	// A token used on A is refused on B: the ledger is shared.
	tok := chatToken("once")
	first := dialChat(t, a.URL, tok)
	defer first.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, _, _, err = ws.Dialer{Protocols: []string{tok}}.Dial(ctx, strings.Replace(b.URL, "http://", "ws://", 1)+"/")
	var status ws.StatusError
	if !errors.As(err, &status) || int(status) != 401 {
		t.Fatalf("reused token on node B: %v, want HTTP 401", err)
	}

	// DeleteRoom through A ends B's connections: ERROR 404, then 1000.
	if _, err := a.client().DeleteRoom(ctxT(t), &ivschat.DeleteRoomInput{Identifier: room.Arn}); err != nil {
		t.Fatal(err)
	}
	var errFrame struct {
		Type      string
		ErrorCode int
	}
	if err := json.Unmarshal(readText(t, viewer), &errFrame); err != nil || errFrame.Type != "ERROR" || errFrame.ErrorCode != 404 {
		t.Fatalf("viewer got %+v (%v) after DeleteRoom", errFrame, err)
	}
	if code, _ := readClose(t, viewer); code != ws.StatusNormalClosure {
		t.Fatalf("viewer closed with %d after DeleteRoom, want 1000", code)
	}
}

// startCluster runs two nodes on one fresh PostgreSQL schema and one Redis
// key prefix, sharing a token key ring, as the README's cluster mode says.
// redisURL "" takes IVSCHATD_TEST_REDIS_URL (a test may pass its own Redis).
// The test is skipped unless PostgreSQL and Redis are configured. edit, if
// given, adjusts each node's config last (node 0 is a, 1 is b).
func startCluster(t testing.TB, redisURL string, edit ...func(node int, c *config.Config)) (a, b *testServer) {
	t.Helper()
	perNode := func(i int) func(*config.Config) {
		return func(c *config.Config) {
			for _, e := range edit {
				e(i, c)
			}
		}
	}
	nodes := startNodes(t, redisURL, perNode(0), perNode(1))
	return nodes[0], nodes[1]
}

// startNodes is startCluster with one node per edit (nil: no change), each
// edit applied to its node's config after the cluster settings.
func startNodes(t testing.TB, redisURL string, edits ...func(*config.Config)) []*testServer {
	t.Helper()
	if redisURL == "" {
		redisURL = os.Getenv("IVSCHATD_TEST_REDIS_URL")
	}
	if os.Getenv("IVSCHATD_TEST_POSTGRES_URL") == "" || redisURL == "" {
		t.Skip("IVSCHATD_TEST_POSTGRES_URL and IVSCHATD_TEST_REDIS_URL must both be set; skipping the cluster test")
	}
	settings := newClusterSettings(t)
	nodes := make([]*testServer, len(edits))
	for i, edit := range edits {
		nodes[i] = startServer(t, "", func(c *config.Config) {
			settings.node(redisURL)(c)
			if edit != nil {
				edit(c)
			}
		})
	}
	return nodes
}

// clusterSettings is what the nodes of one test cluster share: a fresh
// PostgreSQL schema, a Redis key prefix and a token key ring.
type clusterSettings struct {
	pgURL, schema, prefix, tokenKey string
}

// newClusterSettings creates them; the test is skipped without PostgreSQL.
func newClusterSettings(t testing.TB) clusterSettings {
	t.Helper()
	pgURL := os.Getenv("IVSCHATD_TEST_POSTGRES_URL")
	if pgURL == "" {
		t.Skip("IVSCHATD_TEST_POSTGRES_URL not set; skipping the cluster test")
	}
	key, err := token.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	var rb [6]byte
	rand.Read(rb[:])
	return clusterSettings{
		pgURL:    pgURL,
		schema:   freshSchema(t, pgURL),
		prefix:   "ivschatd-test-" + hex.EncodeToString(rb[:]),
		tokenKey: key.SecretString(),
	}
}

// node is the config edit of one node that reaches Redis at redisURL.
func (cs clusterSettings) node(redisURL string) func(*config.Config) {
	return cs.nodeVia(cs.pgURL, redisURL)
}

// nodeVia is node for a node that reaches PostgreSQL at pgURL (a proxy in
// front of the settings' server; the schema is the settings').
func (cs clusterSettings) nodeVia(pgURL, redisURL string) func(*config.Config) {
	return func(c *config.Config) {
		c.PostgresURL = withSearchPath(pgURL, cs.schema)
		c.TokenKeys = []string{cs.tokenKey}
		c.RedisURL = redisURL
		c.RedisPrefix = cs.prefix
	}
}

func toCaps(caps []string) []types.ChatTokenCapability {
	out := make([]types.ChatTokenCapability, len(caps))
	for i, c := range caps {
		out[i] = types.ChatTokenCapability(c)
	}
	return out
}

// readText returns the payload of the next text frame, skipping pings.
func readText(t *testing.T, conn net.Conn) []byte {
	t.Helper()
	op, payload := readServerFrame(t, conn)
	if op != ws.OpText {
		t.Fatalf("got opcode %v (%q), want a text frame", op, payload)
	}
	return payload
}

// readClose reads the next frame, which must be a close frame.
func readClose(t *testing.T, conn net.Conn) (ws.StatusCode, string) {
	t.Helper()
	op, payload := readServerFrame(t, conn)
	if op != ws.OpClose {
		t.Fatalf("got opcode %v (%q), want a close frame", op, payload)
	}
	code, reason := ws.ParseCloseFrameData(payload)
	return code, reason
}

func readServerFrame(t *testing.T, conn net.Conn) (ws.OpCode, []byte) {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	defer conn.SetReadDeadline(time.Time{})
	for {
		h, err := ws.ReadHeader(conn)
		if err != nil {
			t.Fatalf("reading a frame: %v", err)
		}
		if h.Length > 1<<20 {
			t.Fatalf("frame of %d bytes", h.Length)
		}
		payload := make([]byte, h.Length)
		if _, err := io.ReadFull(conn, payload); err != nil {
			t.Fatalf("reading a frame: %v", err)
		}
		if h.OpCode == ws.OpPing || h.OpCode == ws.OpPong {
			continue
		}
		return h.OpCode, payload
	}
}

// TestClusterRedisUnreachable: a node that cannot reach Redis does not start.
func TestClusterRedisUnreachable(t *testing.T) {
	cfg := config.Default()
	cfg.Listen = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	cfg.RedisURL = "redis://127.0.0.1:1/0"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv, err := New(ctx, cfg, discardLogger())
	if err == nil {
		srv.close()
		t.Fatal("server.New succeeded without Redis")
	}
	if !strings.Contains(err.Error(), "--redis-url") || !strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("error does not say what is wrong: %v", err)
	}
}

// TestClusterRoomRateLimit: a room's maximumMessageRatePerSecond holds for
// the cluster, not per node. Two senders on two nodes each send the room's
// whole budget at once; together they get exactly the budget, and a second
// later the budget is back.
func TestClusterRoomRateLimit(t *testing.T) {
	a, b := startCluster(t, "")
	const rate = 5
	room, err := a.client().CreateRoom(ctxT(t), &ivschat.CreateRoomInput{
		Name: aws.String("rate"), MaximumMessageRatePerSecond: aws.Int32(rate),
	})
	if err != nil {
		t.Fatal(err)
	}
	chatToken := func(user string) string {
		t.Helper()
		out, err := a.client().CreateChatToken(ctxT(t), &ivschat.CreateChatTokenInput{
			RoomIdentifier: room.Arn, UserId: aws.String(user), Capabilities: toCaps([]string{"SEND_MESSAGE"}),
		})
		if err != nil {
			t.Fatal(err)
		}
		return *out.Token
	}
	onA := dialChat(t, a.URL, chatToken("on-a"))
	defer onA.Close()
	onB := dialChat(t, b.URL, chatToken("on-b"))
	defer onB.Close()

	// burst sends n messages from each sender at the same moment and
	// returns how many of each sender's were accepted; every other one
	// must have been refused with ERROR 429.
	round := 0
	burst := func(n int) (acceptedA, acceptedB int) {
		t.Helper()
		round++
		ids := func(who string) []string {
			out := make([]string, n)
			for i := range out {
				out[i] = fmt.Sprintf("%s-%d-%d", who, round, i)
			}
			return out
		}
		idsA, idsB := ids("a"), ids("b")
		start := make(chan struct{})
		var wg sync.WaitGroup
		errs := make(chan error, 2)
		for conn, ids := range map[net.Conn][]string{onA: idsA, onB: idsB} {
			wg.Go(func() {
				<-start
				for _, id := range ids {
					if err := wsutil.WriteClientText(conn, []byte(`{"Action":"SEND_MESSAGE","RequestId":"`+id+`","Content":"x"}`)); err != nil {
						errs <- err
						return
					}
				}
			})
		}
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		return outcomes(t, onA, idsA), outcomes(t, onB, idsB)
	}

	if gotA, gotB := burst(rate); gotA+gotB != rate {
		t.Fatalf("%d messages from each node at once into a room of %d/s: %d accepted on A + %d on B, want %d in all", rate, rate, gotA, gotB, rate)
	}
	// A second refills the room's bucket completely (and no more).
	time.Sleep(1100 * time.Millisecond)
	if gotA, gotB := burst(rate); gotA+gotB != rate {
		t.Fatalf("a second later: %d accepted on A + %d on B, want %d in all", gotA, gotB, rate)
	}
}

// outcomes reads conn's frames until each of its requests ids was answered
// (a MESSAGE carrying the RequestId, or an ERROR, which must be 429) and
// returns how many were accepted. MESSAGEs sent by other connections are
// skipped.
func outcomes(t *testing.T, conn net.Conn, ids []string) (accepted int) {
	t.Helper()
	pending := make(map[string]bool, len(ids))
	for _, id := range ids {
		pending[id] = true
	}
	for len(pending) > 0 {
		raw := readText(t, conn)
		var f struct {
			Type, RequestId string
			ErrorCode       int
		}
		if err := json.Unmarshal(raw, &f); err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		if !pending[f.RequestId] {
			continue
		}
		delete(pending, f.RequestId)
		switch {
		case f.Type == "MESSAGE":
			accepted++
		case f.Type == "ERROR" && f.ErrorCode == 429:
		default:
			t.Fatalf("request %s: got %s, want a MESSAGE or ERROR 429", f.RequestId, raw)
		}
	}
	return accepted
}

// Item 1 in cluster mode: review handlers get the room's ARN on a node that
// learnt of the room's handler at connect time and on one that learnt of it
// from another node's UpdateRoom (through Redis).
func TestClusterReviewRequestCarriesRoomArn(t *testing.T) {
	a, b := startCluster(t, "")
	checkReviewRoomArn(t, a, b)
}

// Item 6 in cluster mode: handshakes on node B race a DeleteRoom made
// through node A.
func TestClusterDeleteRoomRacingHandshakes(t *testing.T) {
	a, b := startCluster(t, "")
	checkDeleteRacingHandshakes(t, a, b)
}

// Item 6: when the other nodes cannot be told of a DeleteRoom (Redis is
// down), the call fails with a 5xx the SDKs retry instead of answering 204
// while their connections chat on, and it fails within seconds.
func TestClusterDeleteRoomNotPropagatedFails(t *testing.T) {
	redisURL, killRedis := startRedis(t)
	a, _ := startCluster(t, redisURL)
	c := a.client()
	room := createRoom(t, c, "doomed")
	killRedis()
	start := time.Now()
	_, err := c.DeleteRoom(ctxT(t), &ivschat.DeleteRoomInput{Identifier: room.Arn})
	took := time.Since(start)
	t.Logf("DeleteRoom failed after %v: %v", took, err)
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "InternalServerException" {
		t.Fatalf("DeleteRoom with Redis down: %v, want InternalServerException (500)", err)
	}
	if !strings.Contains(apiErr.ErrorMessage(), "could not be told") {
		t.Errorf("message %q does not say what failed", apiErr.ErrorMessage())
	}
	if took > 5*time.Second {
		t.Errorf("DeleteRoom took %v to fail", took)
	}
}
