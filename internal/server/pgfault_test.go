package server

import (
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/ivschat"
	"github.com/aws/smithy-go"

	"github.com/ivschatd/ivschatd/internal/config"
	"github.com/ivschatd/ivschatd/internal/faultproxy"
)

// TestClusterPostgresOutage puts a fault proxy between two nodes and
// PostgreSQL, and for each way PostgreSQL can vanish (a black hole, refused
// connections) checks what clients see: control-plane calls answer a
// retryable 503 within 5 s, open chat connections keep talking across nodes,
// new handshakes get 503; and once PostgreSQL is back, both work again
// without restarting anything. While PostgreSQL is black-holed, the chat
// log's routes expire (a short route TTL): open connections must go on
// talking without waiting for the store.
func TestClusterPostgresOutage(t *testing.T) {
	// pgOutageRouteTTL is the nodes' chat-log route TTL: short, so that the
	// routes expire during the frozen outage without a long wait.
	const pgOutageRouteTTL = 2 * time.Second
	pgURL := os.Getenv("IVSCHATD_TEST_POSTGRES_URL")
	redisURL := os.Getenv("IVSCHATD_TEST_REDIS_URL")
	if pgURL == "" || redisURL == "" {
		t.Skip("IVSCHATD_TEST_POSTGRES_URL and IVSCHATD_TEST_REDIS_URL must both be set; skipping the PostgreSQL fault test")
	}
	settings := newClusterSettings(t) // the schema is created directly, not through the proxy
	proxy, viaProxy := faultproxy.InFront(t, pgURL)
	node := func() *testServer {
		return startServer(t, "", func(c *config.Config) {
			settings.nodeVia(viaProxy, redisURL)(c)
			c.ChatLogRouteTTL = pgOutageRouteTTL
		})
	}
	a, b := node(), node()
	defer a.Stop()
	defer b.Stop()

	room := createRoom(t, a.client(), "pg-outage")
	alice := dialChat(t, a.URL, chatToken(t, a.client(), *room.Arn, "alice", "SEND_MESSAGE"))
	defer alice.Close()
	bob := dialChat(t, b.URL, chatToken(t, a.client(), *room.Arn, "bob", "SEND_MESSAGE"))
	defer bob.Close()
	exchange(t, alice, bob, "before")

	for _, fault := range []struct {
		name  string
		apply func()
	}{
		{"frozen", proxy.Freeze},
		{"cut", proxy.Cut},
	} {
		t.Run(fault.name, func(t *testing.T) {
			late := chatToken(t, a.client(), *room.Arn, "late-"+fault.name)
			fault.apply()
			healed := false
			defer func() {
				if !healed {
					proxy.Heal()
				}
			}()

			start := time.Now()
			_, err := a.client().GetRoom(ctxT(t), &ivschat.GetRoomInput{Identifier: room.Arn})
			took := time.Since(start)
			checkUnavailable(t, err)
			if took > 5*time.Second {
				t.Errorf("GetRoom answered after %v, want within 5s", took)
			}
			t.Logf("%s: GetRoom answered after %v", fault.name, took.Round(time.Millisecond))

			start = time.Now()
			_, err = b.client().CreateRoom(ctxT(t), &ivschat.CreateRoomInput{Name: aws.String("during-outage")})
			took = time.Since(start)
			checkUnavailable(t, err)
			if took > 5*time.Second {
				t.Errorf("CreateRoom answered after %v, want within 5s", took)
			}
			t.Logf("%s: CreateRoom answered after %v", fault.name, took.Round(time.Millisecond))

			start = time.Now()
			exchange(t, alice, bob, fault.name)
			t.Logf("%s: open connections exchanged two messages across nodes in %v", fault.name, time.Since(start).Round(time.Millisecond))

			start = time.Now()
			if status := dialStatus(t, a.URL, late); status != http.StatusServiceUnavailable {
				t.Errorf("handshake during the outage: HTTP %d, want 503", status)
			}
			t.Logf("%s: a new handshake was answered after %v", fault.name, time.Since(start).Round(time.Millisecond))
			if n := metricValue(t, a, `ivschatd_messaging_handshakes_rejected_total{reason="room_lookup_failed"}`); n < 1 {
				t.Errorf("refused handshakes counted: %v, want at least 1", n)
			}
			if fault.name == "frozen" {
				// The routes the chat log read before the outage are past
				// their TTL by now, and a record has already found the
				// store frozen; wait out one more TTL, so that the next
				// records find expired routes again, with the store due
				// for another try. They must not wait for it: two messages
				// across nodes take milliseconds when nothing waits, at
				// least the 2 s route lookup timeout when a record does.
				time.Sleep(pgOutageRouteTTL + 500*time.Millisecond)
				start = time.Now()
				exchange(t, alice, bob, "stale-routes")
				took := time.Since(start)
				t.Logf("%s: with the chat log's routes past their TTL, two messages across nodes took %v", fault.name, took.Round(time.Millisecond))
				if took > time.Second {
					t.Errorf("two messages across nodes took %v with the routes past their TTL and the store frozen, want < 1s: a record waited for the store", took)
				}
				if n := metricValue(t, a, "ivschatd_chatlog_route_refresh_failures_total"); n < 1 {
					t.Errorf("route refresh failures counted: %v, want at least 1", n)
				}
			}

			proxy.Heal()
			healed = true
			start = time.Now()
			checkFor(t, 20*time.Second, 100*time.Millisecond, func() error {
				_, err := a.client().GetRoom(ctxT(t), &ivschat.GetRoomInput{Identifier: room.Arn})
				return err
			})
			t.Logf("%s: control plane served again %v after the heal", fault.name, time.Since(start).Round(time.Millisecond))
			// The token refused with 503 was not used up: the same client
			// retries with it.
			conn := dialChat(t, a.URL, late)
			conn.Close()
			if _, err := b.client().CreateRoom(ctxT(t), &ivschat.CreateRoomInput{Name: aws.String("after-" + fault.name)}); err != nil {
				t.Errorf("CreateRoom through the other node after the heal: %v", err)
			}
			t.Logf("%s: handshakes and writes on both nodes work %v after the heal", fault.name, time.Since(start).Round(time.Millisecond))
			exchange(t, bob, alice, "after-"+fault.name)
		})
	}
}

// checkUnavailable asserts the AWS-style answer to a call made while the
// database is unreachable: HTTP 503 ServiceUnavailableException, which the
// SDK's standard retryer retries (by status: 500, 502, 503 and 504 are
// retryable; the code is not in the ivschat model, so the SDK reports it as a
// generic API error with that code).
func checkUnavailable(t *testing.T, err error) {
	t.Helper()
	var re *awshttp.ResponseError
	var ae smithy.APIError
	if !errors.As(err, &re) || !errors.As(err, &ae) {
		t.Fatalf("got %v, want an API error with an HTTP response", err)
	}
	if re.HTTPStatusCode() != http.StatusServiceUnavailable || ae.ErrorCode() != "ServiceUnavailableException" {
		t.Errorf("got HTTP %d %s, want 503 ServiceUnavailableException", re.HTTPStatusCode(), ae.ErrorCode())
	}
	if !retry.NewStandard().IsErrorRetryable(err) {
		t.Errorf("the SDK's standard retryer would not retry %v", err)
	}
}

// exchange sends a message from one connection and one back from the other,
// and checks both arrive (readText bounds each wait to 5 s).
func exchange(t *testing.T, from, to net.Conn, tag string) {
	t.Helper()
	for i, pair := range [][2]net.Conn{{from, to}, {to, from}} {
		content := tag + "-" + string(rune('a'+i))
		send(t, pair[0], `{"Action":"SEND_MESSAGE","RequestId":"`+content+`","Content":"`+content+`"}`)
		for _, c := range pair {
			var msg struct{ Type, Content string }
			if err := json.Unmarshal(readText(t, c), &msg); err != nil || msg.Type != "MESSAGE" || msg.Content != content {
				t.Fatalf("got %+v (%v), want MESSAGE %q", msg, err, content)
			}
		}
	}
}
