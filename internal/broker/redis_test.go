package broker_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ivschatd/ivschatd/internal/broker"
	"github.com/ivschatd/ivschatd/internal/broker/brokertest"
)

// redisURL returns the test Redis or skips the test.
func redisURL(t *testing.T) string {
	t.Helper()
	url := os.Getenv("IVSCHATD_TEST_REDIS_URL")
	if url == "" {
		t.Skip("IVSCHATD_TEST_REDIS_URL not set; skipping Redis tests")
	}
	return url
}

// randomPrefix keeps parallel test runs sharing one Redis apart.
func randomPrefix() string {
	b := make([]byte, 6)
	rand.Read(b)
	return "ivschatd-test-" + hex.EncodeToString(b)
}

func newRedis(t *testing.T, url, prefix string) *broker.Redis {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	b, err := broker.NewRedis(ctx, url, broker.WithPrefix(prefix))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func TestRedis(t *testing.T) {
	url := redisURL(t)
	brokertest.Run(t, func(t *testing.T) broker.Broker { return newRedis(t, url, randomPrefix()) })
}

// TestRedisTwoNodes: two brokers on one Redis are two nodes; what either
// publishes reaches both, in one order.
func TestRedisTwoNodes(t *testing.T) {
	url := redisURL(t)
	prefix := randomPrefix()
	nodeA, nodeB := newRedis(t, url, prefix), newRedis(t, url, prefix)
	var onA, onB brokertest.Recorder
	if _, err := nodeA.Subscribe("r", onA.Handle); err != nil {
		t.Fatal(err)
	}
	if _, err := nodeB.Subscribe("r", onB.Handle); err != nil {
		t.Fatal(err)
	}
	const each = 100
	var wg sync.WaitGroup
	for i, b := range []*broker.Redis{nodeA, nodeB} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range each {
				if err := b.Publish(context.Background(), "r", brokertest.Frame(fmt.Sprintf("%d-%d", i, j))); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	a, b := onA.WaitLen(t, 2*each), onB.WaitLen(t, 2*each)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("the two nodes saw different orders")
	}
	// Another prefix is another deployment: it hears nothing.
	other := newRedis(t, url, randomPrefix())
	var stranger brokertest.Recorder
	if _, err := other.Subscribe("r", stranger.Handle); err != nil {
		t.Fatal(err)
	}
	if err := nodeA.Publish(context.Background(), "r", brokertest.Frame("last")); err != nil {
		t.Fatal(err)
	}
	onB.WaitLen(t, 2*each+1)
	if got := stranger.Got(); len(got) != 0 {
		t.Fatalf("a broker with another prefix got %d messages", len(got))
	}
}

// TestRedisGarbageDropped: a payload that is not ours (another program on
// the prefix, a newer encoding) is dropped and the room carries on.
func TestRedisGarbageDropped(t *testing.T) {
	url := redisURL(t)
	prefix := randomPrefix()
	b := newRedis(t, url, prefix)
	var rec brokertest.Recorder
	if _, err := b.Subscribe("r", rec.Handle); err != nil {
		t.Fatal(err)
	}
	c := plainClient(t, url)
	for _, p := range []string{"", "hello", "\x01\x01\xff\xff\xff", "\x09\x01\x00"} {
		if err := c.Publish(context.Background(), prefix+":room:r", p).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Publish(context.Background(), "r", brokertest.Frame("good")); err != nil {
		t.Fatal(err)
	}
	if got := rec.WaitLen(t, 1); len(got) != 1 || string(got[0].Msg.Frame) != "good" {
		t.Fatalf("got %+v", got)
	}
}

// TestRedisReconnect kills the broker's pub/sub connection on the server:
// go-redis re-dials and re-subscribes, and the room works again.
func TestRedisReconnect(t *testing.T) {
	url := redisURL(t)
	name := randomPrefix()
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	b := newRedis(t, url+sep+"client_name="+name, name)
	var rec brokertest.Recorder
	if _, err := b.Subscribe("r", rec.Handle); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(context.Background(), "r", brokertest.Frame("before")); err != nil {
		t.Fatal(err)
	}
	rec.WaitLen(t, 1)
	c := plainClient(t, url)
	list, err := c.ClientList(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	killed := 0
	for _, line := range strings.Split(list, "\n") {
		// Only our own pub/sub connection (flag P; it carries the room and
		// the liveness probe channel): other tests share this Redis.
		if strings.Contains(line, " name="+name+" ") && strings.Contains(line, " flags=P ") {
			id := strings.TrimPrefix(strings.Fields(line)[0], "id=")
			if err := c.Do(context.Background(), "client", "kill", "id", id).Err(); err != nil {
				t.Fatal(err)
			}
			killed++
		}
	}
	if killed != 1 {
		t.Fatalf("killed %d pub/sub connections, want 1:\n%s", killed, list)
	}
	// Publish until one gets through: those sent before the re-subscribe
	// are lost, as documented.
	deadline := time.Now().Add(brokertest.Wait)
	for i := 0; ; i++ {
		if err := b.Publish(context.Background(), "r", brokertest.Frame(fmt.Sprint("after-", i))); err != nil {
			t.Fatal(err)
		}
		if got := rec.Got(); len(got) > 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no delivery after the pub/sub connection was killed")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func plainClient(t *testing.T, url string) *redis.Client {
	t.Helper()
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opt)
	t.Cleanup(func() { c.Close() })
	return c
}

// TestRedisUnreachable: a wrong address fails NewRedis at once, with the
// address (password redacted) in the error.
func TestRedisUnreachable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := broker.NewRedis(ctx, "redis://:secret@127.0.0.1:1/0")
	if err == nil {
		t.Fatal("NewRedis to a closed port succeeded")
	}
	if !strings.Contains(err.Error(), "unreachable") || strings.Contains(err.Error(), "secret") {
		t.Fatalf("error: %v", err)
	}
	if _, err := broker.NewRedis(ctx, "http://nope"); err == nil {
		t.Fatal("NewRedis with a non-Redis URL succeeded")
	}
}

// TestRedisBadURLHidesPassword: a URL that does not parse is reported
// without the password it carries.
func TestRedisBadURLHidesPassword(t *testing.T) {
	_, err := broker.NewRedis(context.Background(), "redis://:hunter2@127.0.0.1:6379/\x00")
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("error: %v", err)
	}
}
