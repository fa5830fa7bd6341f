package server

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivschat"
	"github.com/aws/aws-sdk-go-v2/service/ivschat/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/ivschatd/ivschatd/internal/config"
)

// logRecord is one chat-log record (spec §8).
type logRecord struct {
	EventTimestamp string          `json:"event_timestamp"`
	Type           string          `json:"type"`
	Version        string          `json:"version"`
	Payload        json.RawMessage `json:"payload"`
}

// With the embedded default, a room's messages and events land as files in
// the data dir: gzip NDJSON objects in the S3 key layout, and the CloudWatch
// Logs stream of the room, each record holding the exact frame clients got.
func TestChatLoggingLocalFiles(t *testing.T) {
	dir := t.TempDir()
	ts := startServer(t, dir, func(c *config.Config) { c.ChatLogS3BatchInterval = 100 * time.Millisecond })
	c := ts.client()
	ctx := ctxT(t)
	s3lc, err := c.CreateLoggingConfiguration(ctx, &ivschat.CreateLoggingConfigurationInput{DestinationConfiguration: s3Destination("chat-archive")})
	if err != nil {
		t.Fatal(err)
	}
	cwl, err := c.CreateLoggingConfiguration(ctx, &ivschat.CreateLoggingConfigurationInput{DestinationConfiguration: &types.DestinationConfigurationMemberCloudWatchLogs{
		Value: types.CloudWatchLogsDestinationConfiguration{LogGroupName: aws.String("ivs-chat")}}})
	if err != nil {
		t.Fatal(err)
	}
	room, err := c.CreateRoom(ctx, &ivschat.CreateRoomInput{LoggingConfigurationIdentifiers: []string{*s3lc.Arn, *cwl.Arn}})
	if err != nil {
		t.Fatal(err)
	}
	quiet := createRoom(t, c, "unlogged")

	tok, _ := c.CreateChatToken(ctx, &ivschat.CreateChatTokenInput{RoomIdentifier: room.Arn, UserId: aws.String("alice"),
		Capabilities: []types.ChatTokenCapability{types.ChatTokenCapabilitySendMessage}})
	conn := dialChat(t, ts.URL, *tok.Token)
	defer conn.Close()
	send(t, conn, `{"Action":"SEND_MESSAGE","RequestId":"r1","Content":"logged hello"}`)
	msg := readFrame(t, conn)
	ev, err := c.SendEvent(ctx, &ivschat.SendEventInput{RoomIdentifier: room.Arn, EventName: aws.String("app:poll")})
	if err != nil {
		t.Fatal(err)
	}
	del, err := c.DeleteMessage(ctx, &ivschat.DeleteMessageInput{RoomIdentifier: room.Arn, Id: aws.String(msg["Id"].(string))})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.SendEvent(ctx, &ivschat.SendEventInput{RoomIdentifier: quiet.Arn, EventName: aws.String("not-logged")}); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{msg["Id"].(string): "MESSAGE", *ev.Id: "EVENT", *del.Id: "EVENT"}

	roomID := *room.Id
	s3Key := regexp.MustCompile(`^AWSLogs/123456789012/IVSChatLogs/1\.0/us-west-2/room_` + roomID +
		`/\d{4}/\d{2}/\d{2}/\d{2}/123456789012_IVSChatLogs_1\.0_us-west-2_room_` + roomID + `_\d{8}T\d{4}Z_[0-9a-zA-Z]+\.log\.gz$`)
	s3Root := filepath.Join(dir, "chatlogs", "s3", "chat-archive")
	cwlFile := filepath.Join(dir, "chatlogs", "cloudwatchlogs", "ivs-chat", "aws", "IVSChatLogs", "1.0", "room_"+roomID+".log")
	checkFor(t, 10*time.Second, 50*time.Millisecond, func() error {
		s3, err := readS3Objects(s3Root, s3Key)
		if err != nil {
			return err
		}
		if err := sameIDs(s3, want); err != nil {
			return fmt.Errorf("s3: %w", err)
		}
		lines, err := readLines(cwlFile)
		if err != nil {
			return err
		}
		return sameIDs(lines, want)
	})
	// The payload is byte for byte the frame the client received.
	recs, _ := readS3Objects(s3Root, s3Key)
	for _, r := range recs {
		if r.Version != "1.0" || !strings.HasSuffix(r.EventTimestamp, "Z") {
			t.Errorf("record = %+v", r)
		}
	}
}

// readS3Objects reads every gzip object under root whose key matches.
func readS3Objects(root string, key *regexp.Regexp) ([]logRecord, error) {
	var recs []logRecord
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if !key.MatchString(filepath.ToSlash(rel)) {
			return fmt.Errorf("object key %q does not follow the IVS layout", rel)
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		zr, err := gzip.NewReader(f)
		if err != nil {
			return err
		}
		sc := bufio.NewScanner(zr)
		for sc.Scan() {
			var r logRecord
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				return err
			}
			recs = append(recs, r)
		}
		return sc.Err()
	})
	return recs, err
}

func readLines(path string) ([]logRecord, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var recs []logRecord
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var r logRecord
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			return nil, err
		}
		recs = append(recs, r)
	}
	return recs, nil
}

// sameIDs checks that recs hold exactly the wanted frames (by frame Id, the
// record ID) with the right types.
func sameIDs(recs []logRecord, want map[string]string) error {
	got := map[string]string{}
	for _, r := range recs {
		var p struct{ Id, Type string }
		if err := json.Unmarshal(r.Payload, &p); err != nil {
			return err
		}
		if p.Type != r.Type {
			return fmt.Errorf("record type %s, payload type %s", r.Type, p.Type)
		}
		got[p.Id] = p.Type
	}
	if len(got) != len(want) {
		return fmt.Errorf("%d records %v, want %d", len(got), got, len(want))
	}
	for id, typ := range want {
		if got[id] != typ {
			return fmt.Errorf("record %s: %q, want %q", id, got[id], typ)
		}
	}
	return nil
}

// Creating or updating a logging configuration checks its destination: an
// existing Firehose stream makes it ACTIVE, a missing one CREATE_FAILED or
// UPDATE_FAILED, as Get then reports.
func TestLoggingConfigurationStates(t *testing.T) {
	streams := map[string]bool{"exists": true}
	fh := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in struct{ DeliveryStreamName string }
		json.NewDecoder(r.Body).Decode(&in)
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		if r.Header.Get("X-Amz-Target") != "Firehose_20150804.DescribeDeliveryStream" || !streams[in.DeliveryStreamName] {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `{"__type":"ResourceNotFoundException","message":"stream %s not found"}`, in.DeliveryStreamName)
			return
		}
		fmt.Fprintf(w, `{"DeliveryStreamDescription":{"DeliveryStreamName":%q,"DeliveryStreamStatus":"ACTIVE"}}`, in.DeliveryStreamName)
	}))
	defer fh.Close()
	ts := startServer(t, "", func(c *config.Config) {
		c.FirehoseEndpoint = fh.URL
		c.DestinationsAccessKeyID, c.DestinationsSecretKey = "AKIDFH", "fh-secret"
	})
	c := ts.client()
	ctx := ctxT(t)
	firehose := func(name string) types.DestinationConfiguration {
		return &types.DestinationConfigurationMemberFirehose{Value: types.FirehoseDestinationConfiguration{DeliveryStreamName: aws.String(name)}}
	}
	ok, err := c.CreateLoggingConfiguration(ctx, &ivschat.CreateLoggingConfigurationInput{DestinationConfiguration: firehose("exists")})
	if err != nil || ok.State != types.CreateLoggingConfigurationStateActive {
		t.Fatalf("existing stream: %v %+v", err, ok)
	}
	bad, err := c.CreateLoggingConfiguration(ctx, &ivschat.CreateLoggingConfigurationInput{DestinationConfiguration: firehose("missing")})
	if err != nil || string(bad.State) != "CREATE_FAILED" {
		t.Fatalf("missing stream: %v %+v", err, bad)
	}
	got, _ := c.GetLoggingConfiguration(ctx, &ivschat.GetLoggingConfigurationInput{Identifier: bad.Arn})
	if got.State != types.LoggingConfigurationStateCreateFailed {
		t.Errorf("Get after a failed create: %q", got.State)
	}
	// Fixing the destination makes it ACTIVE; breaking it, UPDATE_FAILED.
	upd, err := c.UpdateLoggingConfiguration(ctx, &ivschat.UpdateLoggingConfigurationInput{Identifier: bad.Arn, DestinationConfiguration: firehose("exists")})
	if err != nil || upd.State != types.UpdateLoggingConfigurationStateActive {
		t.Fatalf("repaired: %v %+v", err, upd)
	}
	upd, err = c.UpdateLoggingConfiguration(ctx, &ivschat.UpdateLoggingConfigurationInput{Identifier: ok.Arn, DestinationConfiguration: firehose("gone")})
	if err != nil || string(upd.State) != "UPDATE_FAILED" {
		t.Fatalf("broken: %v %+v", err, upd)
	}
	got, _ = c.GetLoggingConfiguration(ctx, &ivschat.GetLoggingConfigurationInput{Identifier: ok.Arn})
	if got.State != types.LoggingConfigurationStateUpdateFailed {
		t.Errorf("Get after a failed update: %q", got.State)
	}
	// A rename alone does not touch the destination or the state.
	upd, err = c.UpdateLoggingConfiguration(ctx, &ivschat.UpdateLoggingConfigurationInput{Identifier: ok.Arn, Name: aws.String("renamed")})
	if err != nil || string(upd.State) != "UPDATE_FAILED" || aws.ToString(upd.Name) != "renamed" {
		t.Errorf("rename: %v %+v", err, upd)
	}
}

// A room that references a logging configuration while it is still CREATING
// (its destination check is slow) records to it as soon as it is ACTIVE: the
// state change reaches chat logging's routing, which had cached the room
// while the configuration was not ACTIVE.
func TestLoggingConfigurationActivatedAfterRoomAttached(t *testing.T) {
	const bucket = "slow-check"
	backend := s3mem.New()
	if err := backend.CreateBucket(bucket); err != nil {
		t.Fatal(err)
	}
	fake := gofakes3.New(backend).Server()
	// The S3-compatible endpoint answers the destination check (HeadBucket)
	// only when the test says so.
	checked := make(chan struct{})
	var releaseOnce sync.Once
	release := func() { releaseOnce.Do(func() { close(checked) }) }
	s3srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodHead && strings.Trim(r.URL.Path, "/") == bucket {
			<-checked
		}
		fake.ServeHTTP(w, r)
	}))
	defer s3srv.Close()
	defer release()
	ts := startServer(t, "", func(c *config.Config) {
		c.S3Endpoint = s3srv.URL
		c.S3PathStyle = true
		c.DestinationsAccessKeyID, c.DestinationsSecretKey = "AKIDS3", "s3-secret"
		c.ChatLogS3BatchInterval = 100 * time.Millisecond
	})
	c := ts.client()
	ctx := ctxT(t)

	type created struct {
		out *ivschat.CreateLoggingConfigurationOutput
		err error
	}
	done := make(chan created, 1)
	go func() {
		out, err := c.CreateLoggingConfiguration(ctx, &ivschat.CreateLoggingConfigurationInput{DestinationConfiguration: s3Destination(bucket)})
		done <- created{out, err}
	}()
	// The configuration is found while CREATING (a shared PostgreSQL store
	// may hold other tests' configurations: only ours is CREATING with
	// this bucket).
	var lcARN string
	checkFor(t, 4*time.Second, 10*time.Millisecond, func() error {
		list, err := c.ListLoggingConfigurations(ctx, &ivschat.ListLoggingConfigurationsInput{})
		if err != nil {
			return err
		}
		for _, lc := range list.LoggingConfigurations {
			if d, ok := lc.DestinationConfiguration.(*types.DestinationConfigurationMemberS3); ok &&
				aws.ToString(d.Value.BucketName) == bucket && lc.State == types.LoggingConfigurationStateCreating {
				lcARN = aws.ToString(lc.Arn)
				return nil
			}
		}
		return fmt.Errorf("no CREATING configuration for bucket %s among %d", bucket, len(list.LoggingConfigurations))
	})
	room, err := c.CreateRoom(ctx, &ivschat.CreateRoomInput{LoggingConfigurationIdentifiers: []string{lcARN}})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := c.CreateChatToken(ctx, &ivschat.CreateChatTokenInput{RoomIdentifier: room.Arn, UserId: aws.String("alice"),
		Capabilities: []types.ChatTokenCapability{types.ChatTokenCapabilitySendMessage}})
	if err != nil {
		t.Fatal(err)
	}
	conn := dialChat(t, ts.URL, *tok.Token)
	defer conn.Close()
	send(t, conn, `{"Action":"SEND_MESSAGE","RequestId":"r1","Content":"while CREATING"}`)
	early := readFrame(t, conn)

	release()
	res := <-done
	if res.err != nil || res.out.State != types.CreateLoggingConfigurationStateActive {
		t.Fatalf("CreateLoggingConfiguration: %v %+v", res.err, res.out)
	}
	send(t, conn, `{"Action":"SEND_MESSAGE","RequestId":"r2","Content":"after ACTIVE"}`)
	late := readFrame(t, conn)
	if late["Type"] != "MESSAGE" {
		t.Fatalf("second message answered with %v", late)
	}

	client := s3.New(s3.Options{BaseEndpoint: aws.String(s3srv.URL), Region: testRegion, UsePathStyle: true, Credentials: aws.AnonymousCredentials{}})
	var ids map[string]bool
	checkFor(t, 10*time.Second, 50*time.Millisecond, func() error {
		ids, err = bucketRecordIDs(ctx, client, bucket)
		if err != nil {
			return err
		}
		if !ids[late["Id"].(string)] {
			return fmt.Errorf("message sent after ACTIVE not logged (records %v)", ids)
		}
		return nil
	})
	if ids[early["Id"].(string)] {
		t.Errorf("message sent while CREATING was logged")
	}
}

// bucketRecordIDs returns the payload IDs of every chat-log record in bucket.
func bucketRecordIDs(ctx context.Context, client *s3.Client, bucket string) (map[string]bool, error) {
	list, err := client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	if err != nil {
		return nil, err
	}
	ids := map[string]bool{}
	for _, o := range list.Contents {
		obj, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: o.Key})
		if err != nil {
			return nil, err
		}
		body, err := io.ReadAll(obj.Body)
		obj.Body.Close()
		if err != nil {
			return nil, err
		}
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(zr)
		for sc.Scan() {
			var r logRecord
			var p struct{ Id string }
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				return nil, err
			}
			if err := json.Unmarshal(r.Payload, &p); err != nil {
				return nil, err
			}
			ids[p.Id] = true
		}
		if err := sc.Err(); err != nil {
			return nil, err
		}
	}
	return ids, nil
}
