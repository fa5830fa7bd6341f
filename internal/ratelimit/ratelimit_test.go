package ratelimit_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ivschatd/ivschatd/internal/ratelimit"
	"github.com/ivschatd/ivschatd/internal/ratelimit/ratelimittest"
	"github.com/ivschatd/ivschatd/internal/redisconn"
)

func TestMemory(t *testing.T) {
	ratelimittest.Run(t, func(*testing.T) ratelimit.Limiter { return ratelimit.NewMemory() })
}

// TestMemoryForgetsIdleKeys: a key idle for a second is dropped at the next
// sweep, and dropping it changes nothing (its bucket was full).
func TestMemoryForgetsIdleKeys(t *testing.T) {
	m := ratelimit.NewMemory()
	ctx := context.Background()
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 1000 {
		m.Allow(ctx, fmt.Sprintf("room:%d", i), 5, t0)
	}
	if n := m.Len(); n != 1000 {
		t.Fatalf("%d keys after 1000 rooms, want 1000", n)
	}
	// Still busy at sweep time: kept, with its state.
	late := t0.Add(11 * time.Second)
	for range 5 {
		m.Allow(ctx, "busy", 5, late.Add(-500*time.Millisecond))
	}
	if ok, _ := m.Allow(ctx, "room:1", 5, late); !ok {
		t.Fatal("an idle key was not refilled")
	}
	if n := m.Len(); n != 2 {
		t.Fatalf("%d keys after the sweep, want 2 (busy and room:1)", n)
	}
	// busy took 5 at late-500ms and got 2.5 back: 2 more, not 5.
	got := 0
	for range 5 {
		if ok, _ := m.Allow(ctx, "busy", 5, late); ok {
			got++
		}
	}
	if got != 2 {
		t.Fatalf("busy key lost its state in the sweep: %d allowed, want 2", got)
	}
}

func redisURL(t testing.TB) string {
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

func openRedis(t testing.TB, url, prefix string) *ratelimit.Redis {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	client, err := redisconn.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() }) // the keys expire within a second
	return ratelimit.NewRedis(client, prefix)
}

func TestRedis(t *testing.T) {
	url := redisURL(t)
	ratelimittest.Run(t, func(t *testing.T) ratelimit.Limiter { return openRedis(t, url, randomPrefix()) },
		ratelimittest.ServerClock())
}

// TestRedisShared: two limiters (two nodes) on one prefix share the bucket.
func TestRedisShared(t *testing.T) {
	url := redisURL(t)
	prefix := randomPrefix()
	a, b := openRedis(t, url, prefix), openRedis(t, url, prefix)
	ctx := context.Background()
	got := 0
	for i := range 10 {
		l := a
		if i%2 == 1 {
			l = b
		}
		ok, err := l.Allow(ctx, "room:x", 5, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			got++
		}
	}
	if got != 5 {
		t.Fatalf("two nodes at 5/s: %d allowed of 10, want 5", got)
	}
}

// TestRedisKey pins the key layout and expiry: <prefix>:rate:<key>, gone
// within a second of the last call.
func TestRedisKey(t *testing.T) {
	url := redisURL(t)
	prefix := randomPrefix()
	l := openRedis(t, url, prefix)
	ctx := context.Background()
	if ok, err := l.Allow(ctx, "room:abc", 5, time.Now()); !ok || err != nil {
		t.Fatalf("Allow: %v %v", ok, err)
	}
	opt, _ := redis.ParseURL(url)
	c := redis.NewClient(opt)
	defer c.Close()
	key := prefix + ":rate:room:abc"
	ttl, err := c.PTTL(ctx, key).Result()
	if err != nil || ttl <= 0 || ttl > time.Second {
		t.Fatalf("PTTL %s = %v (%v), want at most 1s", key, ttl, err)
	}
	if tokens, err := c.HGet(ctx, key, "t").Float64(); err != nil || tokens < 3.99 || tokens > 4.01 {
		t.Fatalf("tokens = %v (%v), want 4", tokens, err)
	}
}

// TestRedisScriptFlushed: the script is reloaded after SCRIPT FLUSH (a
// restarted or failed-over Redis), through EvalSha's NOSCRIPT fallback.
func TestRedisScriptFlushed(t *testing.T) {
	url := redisURL(t)
	l := openRedis(t, url, randomPrefix())
	ctx := context.Background()
	if _, err := l.Allow(ctx, "a", 5, time.Now()); err != nil {
		t.Fatal(err)
	}
	opt, _ := redis.ParseURL(url)
	c := redis.NewClient(opt)
	defer c.Close()
	if err := c.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if ok, err := l.Allow(ctx, "a", 5, time.Now()); !ok || err != nil {
		t.Fatalf("after SCRIPT FLUSH: %v %v", ok, err)
	}
}

func TestRedisErrors(t *testing.T) {
	url := redisURL(t)
	l := openRedis(t, url, randomPrefix())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if ok, err := l.Allow(ctx, "a", 5, time.Now()); ok || err == nil {
		t.Fatalf("canceled context: %v %v, want false and an error", ok, err)
	}
}

// BenchmarkRedis measures Allow calls per second against a real Redis, with
// as many concurrent callers as GOMAXPROCS × 8 (a node's reader goroutines)
// over 100 rooms.
func BenchmarkRedis(b *testing.B) {
	url := redisURL(b)
	l := openRedis(b, url, randomPrefix())
	ctx := context.Background()
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := l.Allow(ctx, fmt.Sprintf("room:%d", i%100), 100, time.Time{}); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
}

func BenchmarkMemory(b *testing.B) {
	m := ratelimit.NewMemory()
	ctx := context.Background()
	now := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			m.Allow(ctx, "room:1", 100, now.Add(time.Duration(i)))
			i++
		}
	})
}
