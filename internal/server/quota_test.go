package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/redis/go-redis/v9"

	"github.com/ivschatd/ivschatd/internal/config"
	"github.com/ivschatd/ivschatd/internal/connquota"
	"github.com/ivschatd/ivschatd/internal/faultproxy"
)

// maxConnections sets --max-connections on every node.
func maxConnections(n int) func(int, *config.Config) {
	return func(_ int, c *config.Config) { c.MaxConnections = n }
}

// tryChat attempts a chat handshake and returns the connection, or the HTTP
// status of the refusal (any other failure fails the test, with status -1).
func tryChat(t *testing.T, serverURL, tok string) (net.Conn, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, _, _, err := ws.Dialer{Protocols: []string{tok}}.Dial(ctx, strings.Replace(serverURL, "http://", "ws://", 1)+"/")
	var status ws.StatusError
	switch {
	case err == nil:
		return conn, 0
	case errors.As(err, &status):
		return nil, int(status)
	}
	t.Errorf("WebSocket handshake: %v", err) // called from other goroutines too
	return nil, -1
}

// closeAll closes conns at the end of the test.
func closeAll(t *testing.T, conns *[]net.Conn) {
	t.Cleanup(func() {
		for _, c := range *conns {
			c.Close()
		}
	})
}

// Item 6, acceptance (f): --max-connections is the cluster's. 6 + 6
// concurrent handshakes on two nodes with a quota of 10 open exactly 10;
// the other two are refused with 429 and counted as quota_exceeded. Three
// connections closed on node A are three more for node B within seconds.
func TestClusterConnectionQuota(t *testing.T) {
	a, b := startCluster(t, "", maxConnections(10))
	room := createRoom(t, a.client(), "quota")
	type result struct {
		node   *testServer
		conn   net.Conn
		status int
	}
	toks := make([]string, 12)
	for i := range toks {
		toks[i] = chatToken(t, a.client(), *room.Arn, fmt.Sprintf("u%d", i))
	}
	results := make([]result, 12)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range results {
		node := a
		if i%2 == 1 {
			node = b
		}
		wg.Go(func() {
			<-start
			conn, status := tryChat(t, node.URL, toks[i])
			results[i] = result{node, conn, status}
		})
	}
	close(start)
	wg.Wait()
	var onA, onB, all []net.Conn
	closeAll(t, &all)
	refused := 0
	for _, r := range results {
		switch {
		case r.conn != nil && r.node == a:
			onA = append(onA, r.conn)
		case r.conn != nil:
			onB = append(onB, r.conn)
		case r.status == 429:
			refused++
		default:
			t.Errorf("handshake refused with %d, want 101 or 429", r.status)
		}
		if r.conn != nil {
			all = append(all, r.conn)
		}
	}
	if len(onA)+len(onB) != 10 || refused != 2 {
		t.Fatalf("6 + 6 concurrent handshakes under a cluster quota of 10: %d open on A + %d on B, %d refused with 429; want 10 open, 2 refused", len(onA), len(onB), refused)
	}
	rejected := metricValue(t, a, `ivschatd_messaging_handshakes_rejected_total{reason="quota_exceeded"}`) +
		metricValue(t, b, `ivschatd_messaging_handshakes_rejected_total{reason="quota_exceeded"}`)
	if rejected != 2 {
		t.Errorf("quota_exceeded refusals counted: %v, want 2", rejected)
	}
	if conn, status := tryChat(t, b.URL, chatToken(t, a.client(), *room.Arn, "late")); conn != nil || status != 429 {
		t.Fatalf("an 11th connection on B: status %d", status)
	}

	// A has at least 4 (no node took more than its 6 attempts).
	for _, c := range onA[:3] {
		c.Close()
	}
	began := time.Now()
	for i := range 3 {
		tok := chatToken(t, a.client(), *room.Arn, fmt.Sprintf("after-%d", i))
		// A token refused for the quota stays unused: retry with it.
		checkFor(t, 5*time.Second, 20*time.Millisecond, func() error {
			conn, status := tryChat(t, b.URL, tok)
			if conn == nil {
				return fmt.Errorf("HTTP %d", status)
			}
			all = append(all, conn)
			return nil
		})
	}
	t.Logf("3 slots freed on A were taken on B within %v", time.Since(began))
	if conn, status := tryChat(t, b.URL, chatToken(t, a.client(), *room.Arn, "one-too-many")); conn != nil || status != 429 {
		t.Fatalf("a fourth connection on B after 3 closed on A: status %d, want 429", status)
	}
	if got := metricValue(t, b, "ivschatd_connquota_cluster_connections"); got != 10 {
		t.Errorf("ivschatd_connquota_cluster_connections = %v, want 10", got)
	}
}

// Item 6: a node that dies without giving its slots back (its Redis traffic
// cut, its clients gone: a SIGKILL as Redis sees it) stops counting once its
// lease expires, so the other node can use the whole quota again.
func TestClusterConnectionQuotaDeadNode(t *testing.T) {
	redisURL := os.Getenv("IVSCHATD_TEST_REDIS_URL")
	if redisURL == "" {
		t.Skip("IVSCHATD_TEST_REDIS_URL not set")
	}
	opt, err := redis.ParseURL(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := faultproxy.Start(t, opt.Addr)
	a, b := startCluster(t, "", maxConnections(10), func(node int, c *config.Config) {
		if node == 0 {
			c.RedisURL = fmt.Sprintf("redis://%s/%d", proxy.Addr(), opt.DB)
		}
	})
	room := createRoom(t, b.client(), "quota-dead")
	var onA, all []net.Conn
	closeAll(t, &all)
	open := func(ts *testServer, n int) int {
		t.Helper()
		opened := 0
		for i := range n {
			conn, status := tryChat(t, ts.URL, chatToken(t, b.client(), *room.Arn, fmt.Sprintf("u%d", i)))
			if conn == nil {
				if status != 429 {
					t.Fatalf("handshake refused with %d, want 429", status)
				}
				continue
			}
			opened++
			all = append(all, conn)
			if ts == a {
				onA = append(onA, conn)
			}
		}
		return opened
	}
	if got := open(a, 6); got != 6 {
		t.Fatalf("A opened %d of 6", got)
	}
	if got := open(b, 5); got != 4 {
		t.Fatalf("B opened %d of 5 with 6 open on A, want 4", got)
	}

	// A "dies": Redis never hears from it again, and its clients are gone.
	proxy.Cut()
	for _, c := range onA {
		c.Close()
	}
	died := time.Now()
	checkFor(t, connquota.DefaultTTL+5*time.Second, 100*time.Millisecond, func() error {
		if open(b, 1) != 1 {
			return errors.New("B still refuses")
		}
		return nil
	})
	t.Logf("the dead node's slots were free after %v (lease TTL %v)", time.Since(died), connquota.DefaultTTL)
	if got := open(b, 6); got != 5 {
		t.Fatalf("B opened %d more of 6, want 5 (10 in all)", got)
	}
}
