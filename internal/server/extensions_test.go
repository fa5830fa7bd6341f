package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/ivschat"

	"github.com/ivschatd/ivschatd/internal/config"
	"github.com/ivschatd/ivschatd/internal/sigv4"
)

// extResponse is one answer of an extension operation.
type extResponse struct {
	status  int
	errType string // x-amzn-ErrorType
	body    []byte
}

func (r extResponse) decode(t *testing.T, v any) {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("status %d %s: %s", r.status, r.errType, r.body)
	}
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("%v: %s", err, r.body)
	}
}

// callExtension signs POST /ivschatd/<op> with SigV4 (aws-sdk-go-v2's
// signer, as the SDKs sign) with the test's key pair, or key and secret.
func callExtension(t *testing.T, ts *testServer, op, body string, keyAndSecret ...string) extResponse {
	t.Helper()
	key, secret := testAccessKey, testSecretKey
	if len(keyAndSecret) == 2 {
		key, secret = keyAndSecret[0], keyAndSecret[1]
	}
	req, err := http.NewRequest(http.MethodPost, ts.URL+"/ivschatd/"+op, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	sum := sha256.Sum256([]byte(body))
	err = v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: key, SecretAccessKey: secret},
		req, hex.EncodeToString(sum[:]), "ivschat", testRegion, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return extResponse{status: resp.StatusCode, errType: resp.Header.Get("x-amzn-ErrorType"), body: b}
}

type roomStatsBody struct {
	ARN                 string            `json:"arn"`
	ID                  string            `json:"id"`
	Connections         int               `json:"connections"`
	Users               int               `json:"users"`
	MessagesPerSecond   float64           `json:"messagesPerSecond"`
	EventsPerSecond     float64           `json:"eventsPerSecond"`
	RateWindowSeconds   int               `json:"rateWindowSeconds"`
	ErrorsByCode        map[string]uint64 `json:"errorsByCode"`
	ErrorsWindowSeconds int               `json:"errorsWindowSeconds"`
	Nodes               int               `json:"nodes"`
	NodesMissing        int               `json:"nodesMissing"`
	SampledAt           string            `json:"sampledAt"`
}

type connectionsBody struct {
	Connections []struct {
		UserID       string            `json:"userId"`
		ConnectedAt  time.Time         `json:"connectedAt"`
		Node         string            `json:"node"`
		Capabilities []string          `json:"capabilities"`
		Attributes   map[string]string `json:"attributes"`
	} `json:"connections"`
	NextToken string `json:"nextToken"`
}

type serverStatusBody struct {
	Version       string `json:"version"`
	Commit        string `json:"commit"`
	Node          string `json:"node"`
	StartTime     string `json:"startTime"`
	UptimeSeconds int64  `json:"uptimeSeconds"`
	Mode          string `json:"mode"`
	Ready         bool   `json:"ready"`
	Checks        []struct {
		Name string `json:"name"`
		OK   bool   `json:"ok"`
	} `json:"checks"`
	Totals struct {
		Connections          int64   `json:"connections"`
		RoomsWithConnections int     `json:"roomsWithConnections"`
		DeliveriesPerSecond  float64 `json:"deliveriesPerSecond"`
		MessagesPerSecond    float64 `json:"messagesPerSecond"`
	} `json:"totals"`
	Nodes []struct {
		Node        string `json:"node"`
		Connections int64  `json:"connections"`
	} `json:"nodes"`
	NodesMissing int `json:"nodesMissing"`
	ChatLog      []struct {
		Destination    string `json:"destination"`
		Type           string `json:"type"`
		Node           string `json:"node"`
		SpooledRecords uint64 `json:"spooledRecords"`
	} `json:"chatLog"`
}

// waitRoomStats polls GetRoomStats until ok accepts it (the rates count
// complete seconds, so a message shows a second after it was sent).
func waitRoomStats(t *testing.T, ts *testServer, roomARN string, ok func(roomStatsBody) bool) roomStatsBody {
	t.Helper()
	var st roomStatsBody
	checkFor(t, 5*time.Second, 100*time.Millisecond, func() error {
		callExtension(t, ts, "GetRoomStats", `{"identifier":"`+roomARN+`"}`).decode(t, &st)
		if !ok(st) {
			return fmt.Errorf("room stats %+v", st)
		}
		return nil
	})
	return st
}

// TestExtensionsSingleNode calls the three operations of one node with
// real chat connections and traffic in the room.
func TestExtensionsSingleNode(t *testing.T) {
	ts := startServer(t, "", func(c *config.Config) {
		c.AccessKeys = append(c.AccessKeys, config.AccessKey{AccessKeyID: "AKIDEXTREADER0000001", SecretAccessKey: "reader-secret-0123456789abcdefghijklmnop",
			Policy: sigv4.Policy{Statements: []sigv4.Statement{{Actions: []string{"ivschatd:GetRoomStats", "ivschatd:ListRoomConnections"}, Resources: []string{"arn:aws:ivschat:*:*:room/*"}}}}})
	})
	room := createRoom(t, ts.client(), "ext")
	arn := *room.Arn

	alice := dialChat(t, ts.URL, chatToken(t, ts.client(), arn, "alice", "SEND_MESSAGE"))
	defer alice.Close()
	alice2 := dialChat(t, ts.URL, chatToken(t, ts.client(), arn, "alice"))
	defer alice2.Close()
	bob := dialChat(t, ts.URL, chatToken(t, ts.client(), arn, "bob", "SEND_MESSAGE", "DELETE_MESSAGE"))
	defer bob.Close()

	send(t, alice, `{"Action":"SEND_MESSAGE","RequestId":"1","Content":"one"}`)
	readText(t, alice)
	send(t, bob, `{"Action":"SEND_MESSAGE","RequestId":"2","Content":"two"}`)
	readText(t, bob)
	if _, err := ts.client().SendEvent(ctxT(t), &ivschat.SendEventInput{RoomIdentifier: room.Arn, EventName: aws.String("app:poll")}); err != nil {
		t.Fatal(err)
	}
	send(t, alice2, `{"Action":"SEND_MESSAGE","RequestId":"3","Content":"refused: no capability"}`)

	st := waitRoomStats(t, ts, arn, func(st roomStatsBody) bool {
		return st.MessagesPerSecond == 0.2 && st.EventsPerSecond == 0.1 && st.ErrorsByCode["403"] == 1
	})
	if st.Connections != 3 || st.Users != 2 || st.ARN != arn || st.ID != *room.Id || st.Nodes != 1 || st.NodesMissing != 0 ||
		st.RateWindowSeconds != 10 || st.ErrorsWindowSeconds != 60 || len(st.ErrorsByCode) != 1 || st.SampledAt == "" {
		t.Errorf("GetRoomStats = %+v", st)
	}
	// By bare ID too, as GetRoom accepts.
	var byID roomStatsBody
	callExtension(t, ts, "GetRoomStats", `{"identifier":"`+*room.Id+`"}`).decode(t, &byID)
	if byID.Connections != 3 {
		t.Errorf("by ID: %+v", byID)
	}

	// Pages of two, in connection order.
	var p1, p2 connectionsBody
	callExtension(t, ts, "ListRoomConnections", `{"identifier":"`+arn+`","maxResults":2}`).decode(t, &p1)
	if len(p1.Connections) != 2 || p1.NextToken == "" || p1.Connections[0].UserID != "alice" || p1.Connections[1].UserID != "alice" {
		t.Fatalf("first page %+v", p1)
	}
	if c := p1.Connections[0]; strings.Join(c.Capabilities, ",") != "SEND_MESSAGE" || c.Node == "" || c.Attributes == nil || time.Since(c.ConnectedAt) > time.Minute {
		t.Errorf("first connection %+v", c)
	}
	callExtension(t, ts, "ListRoomConnections", `{"identifier":"`+arn+`","maxResults":2,"nextToken":"`+p1.NextToken+`"}`).decode(t, &p2)
	if len(p2.Connections) != 1 || p2.NextToken != "" || p2.Connections[0].UserID != "bob" || p2.Connections[0].ConnectedAt.Before(p1.Connections[1].ConnectedAt) {
		t.Fatalf("second page %+v", p2)
	}
	if len(p2.Connections[0].Capabilities) != 2 {
		t.Errorf("bob's capabilities %v", p2.Connections[0].Capabilities)
	}

	var ss serverStatusBody
	callExtension(t, ts, "GetServerStatus", `{}`).decode(t, &ss)
	if ss.Mode != "single" || !ss.Ready || ss.Version == "" || ss.Commit == "" || ss.Node != p1.Connections[0].Node || ss.StartTime == "" ||
		ss.Totals.Connections != 3 || ss.Totals.RoomsWithConnections != 1 || len(ss.Nodes) != 1 || ss.Nodes[0].Connections != 3 || ss.NodesMissing != 0 {
		t.Errorf("GetServerStatus = %+v", ss)
	}
	if len(ss.Checks) != 1 || ss.Checks[0].Name != "store" || !ss.Checks[0].OK {
		t.Errorf("checks %+v", ss.Checks)
	}
	// Frames were delivered (3 connections got 2 messages and an event);
	// the rate shows once the per-second sampler has seen them.
	checkFor(t, 5*time.Second, 100*time.Millisecond, func() error {
		callExtension(t, ts, "GetServerStatus", ``).decode(t, &ss)
		if ss.Totals.DeliveriesPerSecond <= 0 || ss.Totals.MessagesPerSecond != 0.2 {
			return fmt.Errorf("totals %+v", ss.Totals)
		}
		return nil
	})

	// A key allowed only the two room extensions: allowed there, denied
	// GetServerStatus (resource *).
	reader := []string{"AKIDEXTREADER0000001", "reader-secret-0123456789abcdefghijklmnop"}
	if r := callExtension(t, ts, "GetRoomStats", `{"identifier":"`+arn+`"}`, reader...); r.status != http.StatusOK {
		t.Errorf("reader GetRoomStats: %d %s", r.status, r.body)
	}
	r := callExtension(t, ts, "GetServerStatus", `{}`, reader...)
	if r.status != http.StatusForbidden || r.errType != "AccessDeniedException" || !bytes.Contains(r.body, []byte("ivschatd:GetServerStatus on resource: *")) {
		t.Errorf("reader GetServerStatus: %d %s %s", r.status, r.errType, r.body)
	}
}

// TestExtensionsDenied: ivschat:* (every standard action) does not grant
// the extensions, and a refusal is the API's usual AccessDeniedException.
func TestExtensionsDenied(t *testing.T) {
	const key, secret = "AKIDEXTSTANDARD00001", "standard-secret-0123456789abcdefghijklm"
	ts := startServer(t, "", func(c *config.Config) {
		c.AccessKeys = append(c.AccessKeys, config.AccessKey{AccessKeyID: key, SecretAccessKey: secret,
			Policy: sigv4.Policy{Statements: []sigv4.Statement{{Actions: []string{"ivschat:*"}, Resources: []string{"*"}}}}})
	})
	room := createRoom(t, ts.client(), "denied")
	// The standard API is all allowed to this key...
	if _, err := ts.client(key, secret).GetRoom(ctxT(t), &ivschat.GetRoomInput{Identifier: room.Arn}); err != nil {
		t.Fatalf("GetRoom with ivschat:*: %v", err)
	}
	// ...the extensions are not.
	for _, c := range []struct{ op, body, resource string }{
		{"GetRoomStats", `{"identifier":"` + *room.Arn + `"}`, *room.Arn},
		{"ListRoomConnections", `{"identifier":"` + *room.Arn + `"}`, *room.Arn},
		{"GetServerStatus", `{}`, "*"},
	} {
		r := callExtension(t, ts, c.op, c.body, key, secret)
		var body struct{ Message string }
		json.Unmarshal(r.body, &body)
		want := "User: " + key + " is not authorized to perform: ivschatd:" + c.op + " on resource: " + c.resource
		if r.status != http.StatusForbidden || r.errType != "AccessDeniedException" || body.Message != want {
			t.Errorf("%s: %d %s %q, want 403 AccessDeniedException %q", c.op, r.status, r.errType, body.Message, want)
		}
	}
	// Unsigned: refused before anything else, as for the standard API.
	resp, err := http.Post(ts.URL+"/ivschatd/GetServerStatus", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("unsigned call: %d, want 403", resp.StatusCode)
	}
}

// TestExtensionsValidation: bad input gets the standard typed errors.
func TestExtensionsValidation(t *testing.T) {
	ts := startServer(t, "", nil)
	room := createRoom(t, ts.client(), "v")
	other := createRoom(t, ts.client(), "other")
	a := dialChat(t, ts.URL, chatToken(t, ts.client(), *room.Arn, "a"))
	defer a.Close()
	b := dialChat(t, ts.URL, chatToken(t, ts.client(), *room.Arn, "b"))
	defer b.Close()
	var page connectionsBody
	callExtension(t, ts, "ListRoomConnections", `{"identifier":"`+*room.Arn+`","maxResults":1}`).decode(t, &page)
	if page.NextToken == "" {
		t.Fatal("no nextToken with two connections and maxResults 1")
	}
	forged := []byte(page.NextToken)
	forged[len(forged)/2] ^= 1
	missing := "arn:aws:ivschat:us-west-2:123456789012:room/AbCdEfGhIjKl"
	for _, c := range []struct {
		op, body, errType, field string
		status                   int
	}{
		{"GetRoomStats", `{}`, "ValidationException", "identifier", 400},
		{"GetRoomStats", `{"identifier":"not an arn"}`, "ValidationException", "identifier", 400},
		{"GetRoomStats", `{"identifier":"` + missing + `"}`, "ResourceNotFoundException", "", 404},
		{"ListRoomConnections", `{}`, "ValidationException", "identifier", 400},
		{"ListRoomConnections", `{"identifier":"` + missing + `"}`, "ResourceNotFoundException", "", 404},
		{"ListRoomConnections", `{"identifier":"` + *room.Arn + `","maxResults":0}`, "ValidationException", "maxResults", 400},
		{"ListRoomConnections", `{"identifier":"` + *room.Arn + `","maxResults":1001}`, "ValidationException", "maxResults", 400},
		{"ListRoomConnections", `{"identifier":"` + *room.Arn + `","maxResults":"10"}`, "ValidationException", "maxResults", 400},
		{"ListRoomConnections", `{"identifier":"` + *room.Arn + `","nextToken":"` + string(forged) + `"}`, "ValidationException", "nextToken", 400},
		// A token is bound to its room.
		{"ListRoomConnections", `{"identifier":"` + *other.Arn + `","nextToken":"` + page.NextToken + `"}`, "ValidationException", "nextToken", 400},
		{"GetServerStatus", `[]`, "ValidationException", "", 400},
	} {
		r := callExtension(t, ts, c.op, c.body)
		var body struct {
			Message   string
			FieldList []struct{ Name string }
		}
		json.Unmarshal(r.body, &body)
		if r.status != c.status || r.errType != c.errType || (c.field != "" && (len(body.FieldList) != 1 || body.FieldList[0].Name != c.field)) {
			t.Errorf("%s %s: %d %s %s, want %d %s on %q", c.op, c.body, r.status, r.errType, r.body, c.status, c.errType, c.field)
		}
	}
	// The ListRooms of the standard API does not take the connections'
	// token either.
	if _, err := ts.client().ListRooms(ctxT(t), &ivschat.ListRoomsInput{NextToken: aws.String(page.NextToken)}); err == nil {
		t.Error("ListRooms accepted a ListRoomConnections token")
	}
	// An unknown extension name and a GET are unknown operations.
	if r := callExtension(t, ts, "GetNothing", `{}`); r.status != http.StatusBadRequest {
		t.Errorf("unknown extension: %d %s", r.status, r.body)
	}
}

// TestExtensionsCluster: two nodes on PostgreSQL and Redis, connections
// and messages on both; each node answers with the cluster's figures.
func TestExtensionsCluster(t *testing.T) {
	a, b := startCluster(t, "")
	room := createRoom(t, a.client(), "ext-cluster")
	arn := *room.Arn
	dial := func(ts *testServer, user string, caps ...string) net.Conn {
		c := dialChat(t, ts.URL, chatToken(t, a.client(), arn, user, caps...))
		t.Cleanup(func() { c.Close() })
		return c
	}
	aliceA := dial(a, "alice", "SEND_MESSAGE")
	aliceB := dial(b, "alice")
	bobB := dial(b, "bob", "SEND_MESSAGE")
	carolB := dial(b, "carol")

	send(t, aliceA, `{"Action":"SEND_MESSAGE","RequestId":"1","Content":"from A"}`)
	readText(t, aliceA)
	send(t, bobB, `{"Action":"SEND_MESSAGE","RequestId":"2","Content":"from B"}`)
	readText(t, bobB)
	send(t, bobB, `{"Action":"SEND_MESSAGE","RequestId":"3","Content":"from B again"}`)
	readText(t, bobB)
	if _, err := b.client().SendEvent(ctxT(t), &ivschat.SendEventInput{RoomIdentifier: room.Arn, EventName: aws.String("app:b")}); err != nil {
		t.Fatal(err)
	}
	send(t, aliceB, `{"Action":"SEND_MESSAGE","RequestId":"4","Content":"refused"}`)
	_ = carolB

	for _, ts := range []*testServer{a, b} {
		st := waitRoomStats(t, ts, arn, func(st roomStatsBody) bool {
			return st.MessagesPerSecond == 0.3 && st.EventsPerSecond == 0.1 && st.ErrorsByCode["403"] == 1
		})
		// alice on both nodes counts once.
		if st.Connections != 4 || st.Users != 3 || st.Nodes != 2 || st.NodesMissing != 0 {
			t.Errorf("GetRoomStats via %s = %+v", ts.URL, st)
		}
	}

	// All four connections, over pages, from both nodes, in order.
	var all []string
	nodes := map[string]int{}
	token := ""
	for range 5 {
		body := `{"identifier":"` + arn + `","maxResults":3`
		if token != "" {
			body += `,"nextToken":"` + token + `"`
		}
		var p connectionsBody
		callExtension(t, b, "ListRoomConnections", body+"}").decode(t, &p)
		for i, c := range p.Connections {
			all = append(all, c.UserID)
			nodes[c.Node]++
			if i > 0 && c.ConnectedAt.Before(p.Connections[i-1].ConnectedAt) {
				t.Errorf("out of order: %+v", p.Connections)
			}
		}
		if token = p.NextToken; token == "" {
			break
		}
	}
	if strings.Join(all, ",") != "alice,alice,bob,carol" || len(nodes) != 2 || nodes[""] != 0 {
		t.Errorf("connections %v on nodes %v", all, nodes)
	}

	var ss serverStatusBody
	callExtension(t, a, "GetServerStatus", `{}`).decode(t, &ss)
	if ss.Mode != "cluster" || !ss.Ready || len(ss.Nodes) != 2 || ss.NodesMissing != 0 || ss.Totals.Connections != 4 || ss.Totals.RoomsWithConnections != 2 {
		t.Errorf("GetServerStatus = %+v", ss)
	}
	names := map[string]bool{}
	for _, c := range ss.Checks {
		names[c.Name] = c.OK
	}
	if !names["store"] || !names["redis"] || !names["redis_pubsub"] {
		t.Errorf("checks %+v", ss.Checks)
	}
	if ss.Nodes[0].Node == ss.Nodes[1].Node || (ss.Node != ss.Nodes[0].Node && ss.Node != ss.Nodes[1].Node) {
		t.Errorf("nodes %+v, asking node %s", ss.Nodes, ss.Node)
	}
}
