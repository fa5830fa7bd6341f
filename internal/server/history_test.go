package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivschat"
	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/ivschatd/ivschatd/internal/config"
)

// The history race tests send numbered messages continuously through one
// node while viewers join (on that node, or on another one of a cluster):
// every viewer's stream, replay and live together, must be consecutive
// (no gap, no duplicate) and must start N messages before its join.

func TestHistoryJoinRaceSingleNode(t *testing.T) {
	ts := startServer(t, "", func(c *config.Config) { c.RequestRatePerSecond = 1000 })
	historyJoinRace(t, ts, []*testServer{ts})
}

func TestHistoryJoinRaceCluster(t *testing.T) {
	a, b := startCluster(t, "", func(_ int, c *config.Config) { c.RequestRatePerSecond = 1000 })
	historyJoinRace(t, a, []*testServer{b, a})
}

func historyJoinRace(t *testing.T, sendVia *testServer, joinVia []*testServer) {
	const n = 30
	room, err := sendVia.client().CreateRoom(ctxT(t), &ivschat.CreateRoomInput{
		Name:                        aws.String("history-race"),
		MaximumMessageRatePerSecond: aws.Int32(100),
		Tags:                        map[string]string{"ivschatd:history": strconv.Itoa(n)},
	})
	if err != nil {
		t.Fatal(err)
	}
	chatToken := func(user string) string {
		t.Helper()
		out, err := sendVia.client().CreateChatToken(ctxT(t), &ivschat.CreateChatTokenInput{
			RoomIdentifier: room.Arn, UserId: aws.String(user), Capabilities: toCaps([]string{"SEND_MESSAGE"}),
		})
		if err != nil {
			t.Fatal(err)
		}
		return *out.Token
	}
	sender := dialChat(t, sendVia.URL, chatToken("sender"))
	defer sender.Close()

	// written counts messages handed to the socket (at least as many as
	// published), echoed the highest number whose echo came back (every
	// message up to it is published, and in the cluster's list).
	var written, echoed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 1; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(15 * time.Millisecond): // under the room's 100/s
			}
			written.Store(int64(i))
			if wsutil.WriteClientText(sender, []byte(`{"Action":"SEND_MESSAGE","Content":"`+strconv.Itoa(i)+`"}`)) != nil {
				return
			}
		}
	})
	wg.Go(func() {
		for {
			p, err := wsutil.ReadServerText(sender)
			if err != nil {
				return
			}
			var m struct{ Type, Content string }
			json.Unmarshal(p, &m)
			if m.Type == "MESSAGE" {
				v, _ := strconv.Atoi(m.Content)
				echoed.Store(int64(v))
			}
		}
	})
	defer func() {
		close(stop)
		sender.Close()
		wg.Wait()
	}()
	checkFor(t, 10*time.Second, 5*time.Millisecond, func() error {
		if echoed.Load() < n {
			return fmt.Errorf("%d messages echoed", echoed.Load())
		}
		return nil
	})
	for j := range 12 {
		via := joinVia[j%len(joinVia)]
		tok := chatToken("viewer" + strconv.Itoa(j))
		lo := int(echoed.Load())
		viewer := dialChatBuffered(t, via.URL, tok)
		hi := int(written.Load())
		prev := 0
		for k := range n + 10 {
			var m struct{ Type, Content string }
			if err := json.Unmarshal(readText(t, viewer), &m); err != nil || m.Type != "MESSAGE" {
				t.Fatalf("viewer %d: %+v (%v)", j, m, err)
			}
			v, _ := strconv.Atoi(m.Content)
			if k == 0 && (v < lo-n+1 || v > hi-n+1) {
				t.Fatalf("viewer %d on %s: first message %d, want one from %d to %d (a replay of %d)", j, via.URL, v, lo-n+1, hi-n+1, n)
			}
			if prev != 0 && v != prev+1 {
				t.Fatalf("viewer %d on %s: message %d after %d (gap or duplicate)", j, via.URL, v, prev)
			}
			prev = v
		}
		viewer.Close()
	}
}

// bufferedConn reads the bytes the dialer read past the 101 response first:
// a replay can arrive in the same segment as the handshake's answer.
type bufferedConn struct {
	net.Conn
	r io.Reader
}

func (c bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// dialChatBuffered is dialChat that keeps the bytes read with the 101.
func dialChatBuffered(t testing.TB, serverURL, tok string) net.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, br, _, err := ws.Dialer{Protocols: []string{tok}}.Dial(ctx, strings.Replace(serverURL, "http://", "ws://", 1)+"/")
	if err != nil {
		t.Fatalf("WebSocket handshake: %v", err)
	}
	if br == nil {
		return conn
	}
	return bufferedConn{Conn: conn, r: io.MultiReader(br, conn)}
}
