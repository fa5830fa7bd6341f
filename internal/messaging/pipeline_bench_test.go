package messaging

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/ivschatd/ivschatd/internal/chat"
	"github.com/ivschatd/ivschatd/internal/chatlog"
	"github.com/ivschatd/ivschatd/internal/review"
)

// BenchmarkRoomThroughput measures how many messages per second one room
// accepts and delivers, plain, with a message review handler (a webhook on
// loopback that allows everything), with an S3 logging configuration (the
// local-files default: records are fsynced to the spool before delivery), and
// with both. Several senders each send a message and wait for its echo, the
// way the JS client's sendMessage resolves. The room's rate limits are lifted
// for the measurement (the model caps maximumMessageRatePerSecond at 100, which
// would measure the limiter, not the pipeline), and write coalescing is off.
func BenchmarkRoomThroughput(b *testing.B) {
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in struct{ Content string }
		json.NewDecoder(r.Body).Decode(&in)
		json.NewEncoder(w).Encode(map[string]string{"ReviewResult": "ALLOW", "Content": in.Content})
	}))
	defer hook.Close()
	for _, tc := range []struct {
		name           string
		review, logged bool
	}{{"plain", false, false}, {"review", true, false}, {"s3log", false, true}, {"review+s3log", true, true}} {
		b.Run(tc.name, func(b *testing.B) {
			var recorder Recorder
			rooms := &benchRooms{memRooms: memRooms{rooms: map[string]*chat.Room{}}}
			room := &chat.Room{ID: "bench", MaximumMessageLength: 500, MaximumMessageRatePerSecond: 1 << 30}
			if tc.review {
				room.MessageReviewHandler = &chat.MessageReviewHandler{URI: hook.URL, FallbackResult: chat.FallbackDeny}
			}
			if tc.logged {
				room.LoggingConfigurationIDs = []string{"LOGS"}
				p, err := chatlog.Open(context.Background(), chatlog.Options{
					Dir: b.TempDir(), LocalDir: b.TempDir(), Store: rooms, Region: "us-west-2", AccountID: testAccount,
					S3BatchInterval: time.Second,
				})
				if err != nil {
					b.Fatal(err)
				}
				defer p.Close(context.Background())
				recorder = p
			}
			var reviewer interface {
				Review(context.Context, chat.MessageReviewHandler, review.Request) review.Result
			}
			if tc.review {
				r, err := review.New(review.Options{Timeout: time.Second})
				if err != nil {
					b.Fatal(err)
				}
				reviewer = r
			}
			e := newEnv(b, func(o *Options) {
				o.Rooms = rooms
				o.RequestRatePerSecond = 1 << 30
				// Closed-loop senders would otherwise measure the coalescing
				// window (8 senders / 20 ms = 400 msgs/s in every variant).
				o.WriteCoalesce = -1
				o.Recorder = recorder
				if reviewer != nil {
					o.Reviewer = reviewer
				}
			})
			rooms.put(room)

			const senders = 8
			conns := make([]net.Conn, senders)
			for i := range conns {
				conns[i] = rawDial(b, e, e.token(b, "bench", fmt.Sprintf("s%d", i)), 0)
			}
			b.ResetTimer()
			var wg sync.WaitGroup
			for i, nc := range conns {
				share := b.N / senders
				if i < b.N%senders {
					share++
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := sendAndAwaitEchoes(nc, i, share); err != nil {
						b.Error(err)
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}

// sendAndAwaitEchoes sends n messages from sender i, each after the echo of
// the previous one arrived; other senders' messages are skipped.
func sendAndAwaitEchoes(nc net.Conn, i, n int) error {
	// Buffered reads, unbuffered writes (ReadServerData answers pings).
	rw := struct {
		io.Reader
		io.Writer
	}{bufio.NewReader(nc), nc}
	for k := range n {
		reqID := fmt.Sprintf("s%d-%d", i, k)
		msg := fmt.Sprintf(`{"Action":"SEND_MESSAGE","RequestId":%q,"Content":"benchmark message %d"}`, reqID, k)
		if err := wsutil.WriteClientText(nc, []byte(msg)); err != nil {
			return err
		}
		want := []byte(`"RequestId":"` + reqID + `"`)
		for {
			nc.SetReadDeadline(time.Now().Add(10 * time.Second))
			data, op, err := wsutil.ReadServerData(rw)
			if err != nil {
				return err
			}
			if op == ws.OpText && bytes.Contains(data, want) {
				if !bytes.HasPrefix(data, []byte(`{"Type":"MESSAGE"`)) {
					return fmt.Errorf("answer to %s: %s", reqID, data)
				}
				break
			}
		}
	}
	return nil
}

// benchRooms adds the logging configuration the chat-log pipeline looks up.
type benchRooms struct{ memRooms }

func (r *benchRooms) GetLoggingConfiguration(_ context.Context, id string) (*chat.LoggingConfiguration, error) {
	return &chat.LoggingConfiguration{ID: id, State: chat.StateActive, Destination: chat.Destination{S3BucketName: "bench-logs"}}, nil
}
