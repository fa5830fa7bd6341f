package broker_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ivschatd/ivschatd/internal/broker"
	"github.com/ivschatd/ivschatd/internal/broker/brokertest"
	"github.com/ivschatd/ivschatd/internal/faultproxy"
)

// TestRedisLivenessProbe black-holes a node's connections to Redis without
// a FIN or RST, as a dead route does. go-redis never notices (reading a
// silent socket only times out), so before the liveness probe the node
// stayed deaf for good. Now the probe goes unanswered, Live reports it, and
// the broker replaces the connection and subscribes the room again: new
// messages arrive within probe interval + timeout.
func TestRedisLivenessProbe(t *testing.T) {
	rawURL := redisURL(t)
	proxy, proxiedURL := faultproxy.InFront(t, rawURL)

	const every, timeout = 200 * time.Millisecond, 600 * time.Millisecond
	prefix := randomPrefix()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	node, err := broker.NewRedis(ctx, proxiedURL, broker.WithPrefix(prefix), broker.WithLiveness(every, timeout))
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close()
	publisher := newRedis(t, rawURL, prefix) // not behind the proxy

	// waitLive returns nil once Live() says want, else why not.
	waitLive := func(want bool, within time.Duration) error {
		deadline := time.Now().Add(within)
		for {
			err := node.Live()
			if (err == nil) == want {
				return nil
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("Live() = %v after %v, want live=%v", err, within, want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	if err := waitLive(true, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	var rec brokertest.Recorder
	if _, err := node.Subscribe("r", rec.Handle); err != nil {
		t.Fatal(err)
	}
	if err := publisher.Publish(context.Background(), "r", brokertest.Frame("before")); err != nil {
		t.Fatal(err)
	}
	rec.WaitLen(t, 1)
	// Idle for several probe intervals: an answered probe keeps it live.
	time.Sleep(3 * every)
	if err := node.Live(); err != nil {
		t.Fatalf("an idle healthy connection is not live: %v", err)
	}

	proxy.FreezeExisting()
	frozen := time.Now()
	if err := waitLive(false, every+timeout+time.Second); err != nil {
		t.Fatalf("black-holed connection: %v", err)
	}
	t.Logf("not live after %v: %v", time.Since(frozen).Round(time.Millisecond), node.Live())

	// Publish until one arrives: those published before the new
	// subscription are lost, as documented.
	deadline := frozen.Add(every + timeout + 5*time.Second)
	for i := 0; len(rec.Got()) < 2; i++ {
		if time.Now().After(deadline) {
			t.Fatalf("no delivery %v after the connection was black-holed (Live: %v)", time.Since(frozen), node.Live())
		}
		if err := publisher.Publish(context.Background(), "r", brokertest.Frame(fmt.Sprint("after-", i))); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("delivery resumed %v after the freeze", time.Since(frozen).Round(time.Millisecond))
	if err := waitLive(true, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	if got := node.Stats().Reconnects["probe_timeout"]; got != 1 {
		t.Errorf("probe_timeout reconnects = %d, want 1", got)
	}
}
