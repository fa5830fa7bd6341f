package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ivschat"
	"github.com/aws/aws-sdk-go-v2/service/ivschat/types"
	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

// firehoseEndpoint is a Firehose-compatible HTTP endpoint that decodes the
// SDK's real PutRecordBatch requests. While down it answers 500.
type firehoseEndpoint struct {
	down atomic.Bool
	mu   sync.Mutex
	ids  map[string]int // frame Id -> times received
}

func (f *firehoseEndpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if f.down.Load() {
		http.Error(w, `{"__type":"ServiceUnavailableException","message":"down"}`, http.StatusServiceUnavailable)
		return
	}
	if r.Header.Get("X-Amz-Target") == "Firehose_20150804.DescribeDeliveryStream" {
		// The destination check of CreateLoggingConfiguration.
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		fmt.Fprint(w, `{"DeliveryStreamDescription":{"DeliveryStreamName":"chat-stream","DeliveryStreamStatus":"ACTIVE"}}`)
		return
	}
	if r.Header.Get("X-Amz-Target") != "Firehose_20150804.PutRecordBatch" {
		http.Error(w, "unexpected target "+r.Header.Get("X-Amz-Target"), http.StatusBadRequest)
		return
	}
	var in struct {
		DeliveryStreamName string
		Records            []struct{ Data string }
	}
	body, _ := io.ReadAll(r.Body)
	if err := json.Unmarshal(body, &in); err != nil || in.DeliveryStreamName != "chat-stream" {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	resp := struct {
		FailedPutCount   int
		RequestResponses []map[string]string
	}{}
	f.mu.Lock()
	for i, rec := range in.Records {
		data, _ := base64.StdEncoding.DecodeString(rec.Data)
		var lr struct{ Payload struct{ Id string } }
		json.Unmarshal(data, &lr)
		f.ids[lr.Payload.Id]++
		resp.RequestResponses = append(resp.RequestResponses, map[string]string{"RecordId": fmt.Sprint(i)})
	}
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	json.NewEncoder(w).Encode(resp)
}

func (f *firehoseEndpoint) missing(ids []string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, id := range ids {
		if f.ids[id] == 0 {
			out = append(out, id)
		}
	}
	return out
}

// TestChatLogSurvivesSIGKILL: the Firehose destination is up when the logging
// configuration is created, then goes down; clients
// exchange messages (each one received by a client), the server is killed with
// SIGKILL, the destination comes back, the server restarts on the same data
// dir, and every record any client received arrives, counted by record ID.
func TestChatLogSurvivesSIGKILL(t *testing.T) {
	fh := &firehoseEndpoint{ids: map[string]int{}}
	endpoint := httptest.NewServer(fh)
	defer endpoint.Close()

	dir := t.TempDir()
	args := "--listen 127.0.0.1:0 --data-dir " + dir + " --firehose-endpoint " + endpoint.URL +
		" --destinations-access-key-id AKIDFH --destinations-secret-access-key fh-secret"
	env := []string{"IVSCHATD_ACCESS_KEY_ID=AKIDCLI", "IVSCHATD_SECRET_ACCESS_KEY=cli-secret"}
	cmd, base, logs := startChild(t, args, env...)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := ivschat.New(ivschat.Options{Region: "us-west-2", BaseEndpoint: aws.String(base),
		Credentials: credentials.NewStaticCredentialsProvider("AKIDCLI", "cli-secret", "")})
	lc, err := c.CreateLoggingConfiguration(ctx, &ivschat.CreateLoggingConfigurationInput{DestinationConfiguration: &types.DestinationConfigurationMemberFirehose{
		Value: types.FirehoseDestinationConfiguration{DeliveryStreamName: aws.String("chat-stream")}}})
	if err != nil {
		t.Fatal(err)
	}
	room, err := c.CreateRoom(ctx, &ivschat.CreateRoomInput{LoggingConfigurationIdentifiers: []string{*lc.Arn}, MaximumMessageRatePerSecond: aws.Int32(100)})
	if err != nil {
		t.Fatal(err)
	}
	if lc.State != types.CreateLoggingConfigurationStateActive {
		t.Fatalf("logging configuration %s with the destination up", lc.State)
	}
	fh.down.Store(true) // the outage starts
	tok, err := c.CreateChatToken(ctx, &ivschat.CreateChatTokenInput{RoomIdentifier: room.Arn, UserId: aws.String("u"),
		Capabilities: []types.ChatTokenCapability{types.ChatTokenCapabilitySendMessage}})
	if err != nil {
		t.Fatal(err)
	}
	conn, _, _, err := ws.Dialer{Protocols: []string{*tok.Token}}.Dial(ctx, strings.Replace(base, "http", "ws", 1)+"/")
	if err != nil {
		t.Fatal(err)
	}
	var received []string
	for i := range 30 {
		if i%10 == 0 {
			ev, err := c.SendEvent(ctx, &ivschat.SendEventInput{RoomIdentifier: room.Arn, EventName: aws.String("tick")})
			if err != nil {
				t.Fatal(err)
			}
			received = append(received, *ev.Id) // the API answered: acknowledged
		}
		if err := wsutil.WriteClientText(conn, []byte(fmt.Sprintf(`{"Action":"SEND_MESSAGE","Content":"m%d"}`, i))); err != nil {
			t.Fatal(err)
		}
		// Read until this message's echo; events arrive on the same socket.
		for {
			conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			data, err := wsutil.ReadServerText(conn)
			if err != nil {
				t.Fatalf("reading: %v\n%s", err, logs())
			}
			var f struct{ Type, Id, Content string }
			json.Unmarshal(data, &f)
			if f.Type == "MESSAGE" && f.Content == fmt.Sprintf("m%d", i) {
				received = append(received, f.Id)
				break
			}
			if f.Type == "ERROR" {
				t.Fatalf("ERROR frame: %s", data)
			}
		}
		// Pace the sends under the per-connection limit of 10/s.
		time.Sleep(110 * time.Millisecond)
	}
	conn.Close()
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	if got := fh.missing(received); len(got) != len(received) {
		t.Fatalf("the destination was down but received %d records", len(received)-len(got))
	}

	fh.down.Store(false)
	_, _, logs = startChild(t, args, env...)
	deadline := time.Now().Add(30 * time.Second)
	for {
		missing := fh.missing(received)
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d acknowledged records never arrived after the restart: %v\n%s", len(missing), len(received), missing, logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
	fh.mu.Lock()
	dups := 0
	for _, n := range fh.ids {
		dups += n - 1
	}
	fh.mu.Unlock()
	t.Logf("%d acknowledged records all delivered after SIGKILL and restart (%d duplicates)", len(received), dups)
}
