package server

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivschat"
	"github.com/gobwas/ws/wsutil"
)

// The frames-per-write histogram is on /metrics from the start and counts
// every write the room's traffic causes: its count is the number of socket
// writes and its sum the number of frames written, the same figures as
// messaging_writes_total and messaging_frames_delivered_total.
func TestFramesPerWriteMetric(t *testing.T) {
	ts := startServer(t, "", nil)
	c := ts.client()
	room := createRoom(t, c, "fpw")
	const (
		count = "ivschatd_messaging_frames_per_write_count"
		sum   = "ivschatd_messaging_frames_per_write_sum"
		inf   = `ivschatd_messaging_frames_per_write_bucket{le="+Inf"}`
		one   = `ivschatd_messaging_frames_per_write_bucket{le="1"}`
	)
	if !strings.Contains(metricsText(t, ts), `ivschatd_messaging_frames_per_write_bucket{le="256"} 0`) {
		t.Fatal("the histogram (with its le=256 bucket) is not on /metrics before any traffic")
	}
	before := metricValue(t, ts, count)

	var viewers [2]net.Conn
	const events = 20
	got := make(chan error, len(viewers))
	for i := range viewers {
		conn := dialChat(t, ts.URL, chatToken(t, c, *room.Arn, fmt.Sprint("viewer", i)))
		viewers[i] = conn
		go func() {
			for n := range events {
				conn.SetReadDeadline(time.Now().Add(10 * time.Second))
				p, err := wsutil.ReadServerText(conn)
				if err == nil && !strings.Contains(string(p), `"EventName":"app:n"`) {
					err = fmt.Errorf("frame %d: %.100s", n, p)
				}
				if err != nil {
					got <- err
					return
				}
			}
			got <- nil
		}()
	}
	defer func() {
		for _, v := range viewers {
			v.Close()
		}
	}()
	for range events {
		if _, err := c.SendEvent(ctxT(t), &ivschat.SendEventInput{RoomIdentifier: room.Arn, EventName: aws.String("app:n")}); err != nil {
			t.Fatal(err)
		}
	}
	for range viewers {
		if err := <-got; err != nil {
			t.Fatal(err)
		}
	}

	// A flush worker adds its counts once it has walked its share of the
	// room, a moment after the viewers may have read the frames.
	checkFor(t, 5*time.Second, 20*time.Millisecond, func() error {
		writes, frames := metricValue(t, ts, "ivschatd_messaging_writes_total"), metricValue(t, ts, "ivschatd_messaging_frames_delivered_total")
		n, s := metricValue(t, ts, count), metricValue(t, ts, sum)
		if n != writes || s != frames || metricValue(t, ts, inf) != n {
			return fmt.Errorf("histogram count %v sum %v +Inf %v; writes %v, frames %v", n, s, metricValue(t, ts, inf), writes, frames)
		}
		if s < 2*events {
			return fmt.Errorf("histogram sum %v, want at least %d frames (%d events to 2 viewers)", s, 2*events, events)
		}
		if n <= before || n > s {
			return fmt.Errorf("histogram count %v (before %v), sum %v", n, before, s)
		}
		if b1 := metricValue(t, ts, one); b1 > n {
			return fmt.Errorf("bucket le=1 holds %v of %v writes", b1, n)
		}
		return nil
	})
}

// metricsText is the server's /metrics page.
func metricsText(t *testing.T, ts *testServer) string {
	t.Helper()
	resp, err := http.Get(ts.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
