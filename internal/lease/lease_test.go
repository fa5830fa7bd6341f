package lease

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func testClient(t *testing.T) (*redis.Client, string) {
	t.Helper()
	url := os.Getenv("IVSCHATD_TEST_REDIS_URL")
	if url == "" {
		t.Skip("IVSCHATD_TEST_REDIS_URL not set")
	}
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opts)
	t.Cleanup(func() { c.Close() })
	var b [6]byte
	rand.Read(b[:])
	prefix := "ivschatd-test-lease-" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		keys, _ := c.Keys(context.Background(), prefix+":*").Result()
		if len(keys) > 0 {
			c.Del(context.Background(), keys...)
		}
	})
	return c, prefix
}

// Of nodes competing for one lease exactly one takes it; the others are
// told how long it runs, and it is free again once that has passed.
func TestRedisOneHolder(t *testing.T) {
	c, prefix := testClient(t)
	ctx := context.Background()
	nodes := []*Redis{NewRedis(c, prefix, "a"), NewRedis(c, prefix, "b"), NewRedis(c, prefix, "c")}
	var wg sync.WaitGroup
	var mu sync.Mutex
	won, waits := 0, []time.Duration{}
	for _, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, wait, err := n.Acquire(ctx, "room:X", 300*time.Millisecond)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if ok {
				won++
			} else {
				waits = append(waits, wait)
			}
		}()
	}
	wg.Wait()
	if won != 1 || len(waits) != 2 {
		t.Fatalf("%d nodes took the lease (%v waits), want exactly 1", won, waits)
	}
	for _, w := range waits {
		if w <= 0 || w > 300*time.Millisecond {
			t.Errorf("wait %v, want within the lease's 300ms", w)
		}
	}
	// Another name is another lease.
	if ok, _, err := nodes[1].Acquire(ctx, "room:Y", time.Second); err != nil || !ok {
		t.Fatalf("another lease: %v, %v", ok, err)
	}
	time.Sleep(waits[0] + 50*time.Millisecond)
	if ok, _, err := nodes[2].Acquire(ctx, "room:X", time.Second); err != nil || !ok {
		t.Fatalf("after the lease ran out: %v, %v; want it taken", ok, err)
	}
}

func TestRedisError(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 100 * time.Millisecond})
	defer c.Close()
	if ok, _, err := NewRedis(c, "p", "a").Acquire(context.Background(), "x", time.Second); err == nil || ok {
		t.Fatalf("unreachable Redis: %v, %v; want an error", ok, err)
	}
}
