package chatlog

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ivschatd/ivschatd/internal/chat"
	"github.com/ivschatd/ivschatd/internal/testlog"
)

// memStore is an in-memory RoomSource.
type memStore struct {
	mu    sync.Mutex
	rooms map[string]*chat.Room
	lcs   map[string]*chat.LoggingConfiguration
	gets  atomic.Int64
	// fault, when set, decides every read first, like a database that is
	// down (an error) or stopped answering (blocks until ctx ends).
	fault func(ctx context.Context) error
}

func newMemStore() *memStore {
	return &memStore{rooms: map[string]*chat.Room{}, lcs: map[string]*chat.LoggingConfiguration{}}
}

// failWith makes every read fail with err; nil heals the store.
func (m *memStore) failWith(err error) {
	m.setFault(func(context.Context) error { return err })
}

// hang makes every read wait until its context ends.
func (m *memStore) hang() {
	m.setFault(func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() })
}

func (m *memStore) setFault(f func(context.Context) error) {
	m.mu.Lock()
	m.fault = f
	m.mu.Unlock()
}

func (m *memStore) checkFault(ctx context.Context) error {
	m.mu.Lock()
	f := m.fault
	m.mu.Unlock()
	if f == nil {
		return nil
	}
	return f(ctx)
}

func (m *memStore) GetRoom(ctx context.Context, id string) (*chat.Room, error) {
	m.gets.Add(1)
	if err := m.checkFault(ctx); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.rooms[id]
	if !ok {
		return nil, chat.NotFound(chat.KindRoom, id)
	}
	c := *r
	return &c, nil
}

func (m *memStore) GetLoggingConfiguration(ctx context.Context, id string) (*chat.LoggingConfiguration, error) {
	if err := m.checkFault(ctx); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	lc, ok := m.lcs[id]
	if !ok {
		return nil, chat.NotFound(chat.KindLoggingConfiguration, id)
	}
	c := *lc
	return &c, nil
}

// addRoom adds a room referencing new ACTIVE configurations with dests.
func (m *memStore) addRoom(roomID string, dests ...chat.Destination) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := &chat.Room{ID: roomID}
	for i, d := range dests {
		id := fmt.Sprintf("%s-lc%d", roomID, i)
		m.lcs[id] = &chat.LoggingConfiguration{ID: id, Destination: d, State: chat.StateActive}
		r.LoggingConfigurationIDs = append(r.LoggingConfigurationIDs, id)
	}
	m.rooms[roomID] = r
}

// capturingLogger logs at Info and above to the test log and to the capture.
func capturingLogger(t testing.TB) (*slog.Logger, *testlog.Buffer) {
	c := &testlog.Buffer{}
	return c.Logger(slog.LevelInfo, testWriter{t}), c
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

// frame is a MESSAGE frame as clients receive it; id is the record ID.
func frame(id string) []byte {
	return fmt.Appendf(nil, `{"Type":"MESSAGE","Id":%q,"RequestId":"r-%s","Attributes":{"k":"v"},"Content":"hello %s","SendTime":"2024-05-01T10:00:00.123456789Z","Sender":{"UserId":"u1","Attributes":{}}}`, id, id, id)
}

func eventFrame(id string) []byte {
	return fmt.Appendf(nil, `{"Type":"EVENT","Id":%q,"RequestId":"","EventName":"custom","Attributes":{},"SendTime":"2024-05-01T10:00:00.123456789Z","Sender":{"UserId":"u1","Attributes":{}}}`, id)
}

// logRecord is the spec §8 record.
type logRecord struct {
	EventTimestamp string          `json:"event_timestamp"`
	Type           string          `json:"type"`
	Version        string          `json:"version"`
	Payload        json.RawMessage `json:"payload"`
}

// checkRecord parses one NDJSON line, checks the format and returns the
// record ID (payload Id).
func checkRecord(t testing.TB, line []byte) (logRecord, string) {
	t.Helper()
	var r logRecord
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("record %q: %v", line, err)
	}
	if _, err := time.Parse("2006-01-02T15:04:05.000Z", r.EventTimestamp); err != nil || len(r.EventTimestamp) != 24 {
		t.Fatalf("event_timestamp %q not RFC 3339 ms Z: %v", r.EventTimestamp, err)
	}
	if r.Version != "1.0" || (r.Type != "MESSAGE" && r.Type != "EVENT") {
		t.Fatalf("record %s: bad type/version", line)
	}
	var p struct{ Id, Type string }
	if err := json.Unmarshal(r.Payload, &p); err != nil || p.Id == "" || p.Type != r.Type {
		t.Fatalf("record payload %s: %v", r.Payload, err)
	}
	want := frame(p.Id)
	if r.Type == "EVENT" {
		want = eventFrame(p.Id)
	}
	if !bytes.Equal(r.Payload, want) {
		t.Fatalf("payload not the exact frame:\n got %s\nwant %s", r.Payload, want)
	}
	return r, p.Id
}

func lines(b []byte) [][]byte {
	var out [][]byte
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 4<<20)
	for sc.Scan() {
		out = append(out, append([]byte(nil), sc.Bytes()...))
	}
	return out
}

func gunzip(t testing.TB, b []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func waitFor(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// idSet counts record IDs seen, to tell losses from duplicates.
type idSet struct {
	mu   sync.Mutex
	seen map[string]int
}

func (s *idSet) add(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seen == nil {
		s.seen = map[string]int{}
	}
	s.seen[id]++
}

func (s *idSet) count(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seen[id]
}

func (s *idSet) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.seen)
}

func (s *idSet) dups() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.seen {
		n += c - 1
	}
	return n
}

// awsJSONServer is an httptest server speaking the AWS JSON 1.1 protocol:
// it dispatches on X-Amz-Target and can be switched down (HTTP 500).
type awsJSONServer struct {
	*httptest.Server
	down     atomic.Bool
	handlers map[string]func(body []byte) (int, any)
	calls    sync.Map // target → *atomic.Int64
}

func newAWSJSONServer(t testing.TB, handlers map[string]func(body []byte) (int, any)) *awsJSONServer {
	s := &awsJSONServer{handlers: handlers}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		target := r.Header.Get("X-Amz-Target")
		body, _ := io.ReadAll(r.Body)
		c, _ := s.calls.LoadOrStore(target, new(atomic.Int64))
		c.(*atomic.Int64).Add(1)
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		if s.down.Load() {
			w.WriteHeader(http.StatusInternalServerError)
			io.WriteString(w, `{"__type":"InternalFailure","message":"down"}`)
			return
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/x-amz-json-1.1" {
			t.Errorf("%s: Content-Type %q", target, ct)
		}
		if !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 ") {
			t.Errorf("%s: request not SigV4-signed", target)
		}
		h, ok := s.handlers[target]
		if !ok {
			t.Errorf("unexpected target %q", target)
			w.WriteHeader(400)
			io.WriteString(w, `{"__type":"UnknownOperationException"}`)
			return
		}
		status, resp := h(body)
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(resp)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *awsJSONServer) callCount(target string) int64 {
	c, ok := s.calls.Load(target)
	if !ok {
		return 0
	}
	return c.(*atomic.Int64).Load()
}

func awsErr(typ, msg string) map[string]string {
	return map[string]string{"__type": typ, "message": msg}
}

// firehoseServer decodes PutRecordBatch; failFirst makes every second record
// of the first call fail, to exercise retrying only the failed entries.
type firehoseServer struct {
	*awsJSONServer
	ids       idSet
	records   atomic.Int64
	failFirst atomic.Bool
}

func newFirehoseServer(t testing.TB, stream string) *firehoseServer {
	f := &firehoseServer{}
	f.awsJSONServer = newAWSJSONServer(t, map[string]func([]byte) (int, any){
		"Firehose_20150804.PutRecordBatch": func(body []byte) (int, any) {
			var in struct {
				DeliveryStreamName string
				Records            []struct{ Data []byte } // base64 in JSON
			}
			if err := json.Unmarshal(body, &in); err != nil {
				t.Errorf("PutRecordBatch body: %v", err)
				return 400, awsErr("InvalidArgumentException", err.Error())
			}
			if in.DeliveryStreamName != stream {
				return 400, awsErr("ResourceNotFoundException", "no stream "+in.DeliveryStreamName)
			}
			if len(in.Records) == 0 || len(in.Records) > 500 {
				t.Errorf("PutRecordBatch with %d records", len(in.Records))
			}
			fail := f.failFirst.Swap(false)
			type resp struct {
				RecordId     string `json:",omitempty"`
				ErrorCode    string `json:",omitempty"`
				ErrorMessage string `json:",omitempty"`
			}
			var out []resp
			failed := 0
			for i, r := range in.Records {
				if fail && i%2 == 1 {
					failed++
					out = append(out, resp{ErrorCode: "ServiceUnavailableException", ErrorMessage: "slow down"})
					continue
				}
				if !bytes.HasSuffix(r.Data, []byte("\n")) {
					t.Errorf("firehose record not newline-terminated: %q", r.Data)
				}
				_, id := checkRecord(t, bytes.TrimSuffix(r.Data, []byte("\n")))
				f.ids.add(id)
				f.records.Add(1)
				out = append(out, resp{RecordId: fmt.Sprint("rec-", i)})
			}
			return 200, map[string]any{"FailedPutCount": failed, "Encrypted": false, "RequestResponses": out}
		},
	})
	return f
}

// cwlServer decodes CreateLogStream and PutLogEvents for one log group.
type cwlServer struct {
	*awsJSONServer
	mu      sync.Mutex
	streams map[string][]string // stream → messages
	ids     idSet
}

func newCWLServer(t testing.TB, group string) *cwlServer {
	c := &cwlServer{streams: map[string][]string{}}
	c.awsJSONServer = newAWSJSONServer(t, map[string]func([]byte) (int, any){
		"Logs_20140328.CreateLogStream": func(body []byte) (int, any) {
			var in struct{ LogGroupName, LogStreamName string }
			if err := json.Unmarshal(body, &in); err != nil {
				t.Errorf("CreateLogStream body: %v", err)
			}
			if in.LogGroupName != group {
				return 400, awsErr("ResourceNotFoundException", "The specified log group does not exist.")
			}
			c.mu.Lock()
			defer c.mu.Unlock()
			if _, ok := c.streams[in.LogStreamName]; ok {
				return 400, awsErr("ResourceAlreadyExistsException", "The specified log stream already exists")
			}
			c.streams[in.LogStreamName] = []string{}
			return 200, struct{}{}
		},
		"Logs_20140328.PutLogEvents": func(body []byte) (int, any) {
			var in struct {
				LogGroupName, LogStreamName string
				LogEvents                   []struct {
					Message   string
					Timestamp int64
				}
			}
			if err := json.Unmarshal(body, &in); err != nil {
				t.Errorf("PutLogEvents body: %v", err)
			}
			c.mu.Lock()
			defer c.mu.Unlock()
			if _, ok := c.streams[in.LogStreamName]; !ok || in.LogGroupName != group {
				return 400, awsErr("ResourceNotFoundException", "The specified log stream does not exist.")
			}
			size := 0
			for i, e := range in.LogEvents {
				if i > 0 && e.Timestamp < in.LogEvents[i-1].Timestamp {
					t.Errorf("PutLogEvents events not sorted by timestamp")
				}
				size += len(e.Message) + 26
				r, id := checkRecord(t, []byte(e.Message))
				ts, _ := time.Parse(time.RFC3339Nano, r.EventTimestamp)
				if ts.UnixMilli() != e.Timestamp {
					t.Errorf("event timestamp %d, record says %s", e.Timestamp, r.EventTimestamp)
				}
				c.ids.add(id)
				c.streams[in.LogStreamName] = append(c.streams[in.LogStreamName], e.Message)
			}
			if len(in.LogEvents) > 10000 || size > 1<<20 {
				t.Errorf("PutLogEvents batch of %d events / %d bytes exceeds limits", len(in.LogEvents), size)
			}
			return 200, map[string]string{"nextSequenceToken": "49"}
		},
	})
	return c
}

func (c *cwlServer) stream(name string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.streams[name]...)
}

// testOptions returns fast options for tests.
func testOptions(t testing.TB, store RoomSource) Options {
	dir := t.TempDir()
	return Options{
		Dir:                 dir + "/spool",
		LocalDir:            dir + "/chatlogs",
		Store:               store,
		Region:              "us-west-2",
		AccountID:           "123456789012",
		S3BatchBytes:        64 << 10,
		S3BatchInterval:     100 * time.Millisecond,
		StreamBatchInterval: 20 * time.Millisecond,
		RetryBase:           10 * time.Millisecond,
		RetryMax:            50 * time.Millisecond,
		Logger:              testLogger(t),
	}
}

func staticEndpoint(url string) Endpoint {
	return Endpoint{Endpoint: url, AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "secret", UsePathStyle: true}
}

func mustOpen(t testing.TB, opts Options) *Pipeline {
	t.Helper()
	p, err := Open(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// downFirehoseRoom opens a pipeline whose room "roomA" logs to the Firehose
// stream fh1 of a test server that is down, so records stay in the spool
// until the test sets fh.down to false. adjust may change the options first.
func downFirehoseRoom(t testing.TB, adjust func(*Options)) (*firehoseServer, *Pipeline, Options) {
	t.Helper()
	fh := newFirehoseServer(t, "fh1")
	fh.down.Store(true)
	store := newMemStore()
	store.addRoom("roomA", chat.Destination{FirehoseDeliveryStreamName: "fh1"})
	opts := testOptions(t, store)
	opts.Destinations.Firehose = staticEndpoint(fh.URL)
	if adjust != nil {
		adjust(&opts)
	}
	p := mustOpen(t, opts)
	t.Cleanup(func() { closeP(t, p, time.Second) })
	return fh, p, opts
}

func closeP(t testing.TB, p *Pipeline, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if err := p.Close(ctx); err != nil {
		t.Logf("close: %v", err)
	}
}

var _ = os.Getenv
