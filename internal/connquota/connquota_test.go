package connquota

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ivschatd/ivschatd/internal/faultproxy"
	"github.com/ivschatd/ivschatd/internal/testlog"
)

func TestLocal(t *testing.T) {
	q := NewLocal(3)
	var granted atomic.Int32
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			if q.Acquire(t.Context()) {
				granted.Add(1)
			}
		})
	}
	wg.Wait()
	if granted.Load() != 3 || q.Held() != 3 {
		t.Fatalf("10 concurrent acquires of a quota of 3: %d granted, %d held", granted.Load(), q.Held())
	}
	q.Release()
	if !q.Acquire(t.Context()) {
		t.Fatal("a released slot is not granted again")
	}
	if q.Acquire(t.Context()) {
		t.Fatal("a fourth slot was granted")
	}
}

// redisAddr is the shared test Redis (host:port); the test is skipped
// without it.
func redisAddr(t *testing.T) string {
	t.Helper()
	url := os.Getenv("IVSCHATD_TEST_REDIS_URL")
	if url == "" {
		t.Skip("IVSCHATD_TEST_REDIS_URL not set; skipping Redis tests")
	}
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	return opt.Addr
}

func newPrefix() string {
	b := make([]byte, 6)
	rand.Read(b)
	return "ivschatd-test-" + hex.EncodeToString(b)
}

func quietLog() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// node joins the quota at prefix through addr with a short heartbeat and
// TTL, so that tests of expiry take a second or two.
func node(t *testing.T, addr, prefix string, limit int) *Redis {
	t.Helper()
	// No retries: a cut Redis must fail the call at once, as in production
	// the call timeout bounds it anyway.
	client := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	q, err := NewRedis(t.Context(), client, Options{
		Prefix: prefix, Limit: limit, Logger: quietLog(),
		Heartbeat: 100 * time.Millisecond, TTL: 600 * time.Millisecond, Timeout: 300 * time.Millisecond,
	})
	if err != nil {
		client.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		q.Close()
		client.Del(context.Background(), q.keys...)
		client.Close()
	})
	return q
}

// acquireN makes n concurrent acquires on q and returns how many were granted.
func acquireN(t *testing.T, q *Redis, n int) int {
	var granted atomic.Int32
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			if q.Acquire(t.Context()) {
				granted.Add(1)
			}
		})
	}
	wg.Wait()
	return int(granted.Load())
}

// Two nodes, limit 10, 6 + 6 concurrent acquires: exactly 10 granted, and a
// release on one node frees a slot for the other.
func TestRedisClusterLimit(t *testing.T) {
	addr, prefix := redisAddr(t), newPrefix()
	a, b := node(t, addr, prefix, 10), node(t, addr, prefix, 10)
	var ga, gb int
	var wg sync.WaitGroup
	wg.Go(func() { ga = acquireN(t, a, 6) })
	wg.Go(func() { gb = acquireN(t, b, 6) })
	wg.Wait()
	if ga+gb != 10 {
		t.Fatalf("6 + 6 concurrent acquires under a limit of 10: %d + %d granted", ga, gb)
	}
	for range 3 {
		a.Release()
	}
	if got := acquireN(t, b, 4); got != 3 {
		t.Fatalf("after 3 releases on A, B was granted %d of 4", got)
	}
	// Concurrent calls store what they saw in any order; the next
	// heartbeat stores the settled total.
	time.Sleep(250 * time.Millisecond)
	if s := b.Stats(); s.ClusterTotal != 10 || s.LiveNodes != 2 || s.Failures != 0 || s.Held != int64(gb+3) {
		t.Fatalf("stats %+v, want a cluster total of 10 over 2 nodes, %d held on B, no failures", s, gb+3)
	}
}

// die stops q's heartbeat without leaving, as a killed process does.
func (q *Redis) die() {
	q.closeOnce.Do(func() {
		close(q.stop)
		<-q.done
	})
}

// A node that dies without releasing stops counting once its lease ends;
// one that closes frees its slots at once.
func TestRedisDeadNodeReleasesItsShare(t *testing.T) {
	addr, prefix := redisAddr(t), newPrefix()
	a, b, c := node(t, addr, prefix, 6), node(t, addr, prefix, 6), node(t, addr, prefix, 6)
	if acquireN(t, a, 4) != 4 || acquireN(t, c, 2) != 2 {
		t.Fatal("setup")
	}
	if b.Acquire(t.Context()) {
		t.Fatal("granted beyond the limit")
	}
	a.die()
	start := time.Now()
	for !b.Acquire(t.Context()) {
		if time.Since(start) > 3*time.Second {
			t.Fatal("the dead node's slots were not freed within 3 s (TTL 600 ms)")
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("dead node's slots free after %v", time.Since(start))
	if got := acquireN(t, b, 4); got != 3 {
		t.Fatalf("B got %d more, want 3 (4 of the dead node's, one taken)", got)
	}
	c.Close()
	if got := acquireN(t, b, 3); got != 2 {
		t.Fatalf("after C closed, B got %d of 3, want C's 2", got)
	}
}

// Redis loses its data (restart without persistence): the nodes put their
// counts back at once and the limit still holds.
func TestRedisLostDataIsRebuilt(t *testing.T) {
	addr, prefix := redisAddr(t), newPrefix()
	a, b := node(t, addr, prefix, 5), node(t, addr, prefix, 5)
	if acquireN(t, a, 3) != 3 {
		t.Fatal("setup")
	}
	if err := a.client.Del(t.Context(), a.keys...).Err(); err != nil {
		t.Fatal(err)
	}
	// B's acquire finds its own entry gone and re-syncs; A's count comes
	// back with A's next heartbeat at the latest.
	time.Sleep(250 * time.Millisecond)
	if got := acquireN(t, b, 5); got != 2 {
		t.Fatalf("after Redis lost its data, B got %d of 5, want 2 (A holds 3)", got)
	}
}

// While Redis is unreachable a node admits up to its share (limit / live
// nodes), counts the failures, and once Redis is back writes its count so
// the cluster's total is exact again.
func TestRedisOutageFallsBackToShare(t *testing.T) {
	addr, prefix := redisAddr(t), newPrefix()
	proxy := faultproxy.Start(t, addr)
	var logs testlog.Buffer
	client := redis.NewClient(&redis.Options{Addr: proxy.Addr(), MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer client.Close()
	a, err := NewRedis(t.Context(), client, Options{
		Prefix: prefix, Limit: 10, Logger: logs.Logger(slog.LevelInfo),
		Heartbeat: 100 * time.Millisecond, TTL: 600 * time.Millisecond, Timeout: 300 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b := node(t, addr, prefix, 10)
	time.Sleep(150 * time.Millisecond) // A's heartbeat sees B
	if acquireN(t, a, 2) != 2 || acquireN(t, b, 3) != 3 {
		t.Fatal("setup")
	}

	proxy.Cut()
	start := time.Now()
	// Share: 10 / 2 nodes = 5; A holds 2, so 3 more.
	if got := acquireN(t, a, 6); got != 3 {
		t.Fatalf("during the outage A granted %d of 6, want 3 (share 5, 2 held)", got)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("acquires during the outage took %v", took)
	}
	s := a.Stats()
	if s.Failures == 0 || !s.Degraded {
		t.Fatalf("outage not counted: %+v", s)
	}
	if !strings.Contains(logs.String(), "connection quota: Redis failed") {
		t.Errorf("outage not logged: %s", logs.String())
	}
	a.Release() // A: 4, while Redis still has A at 2

	proxy.Heal()
	deadline := time.Now().Add(3 * time.Second)
	for a.Stats().Degraded {
		if time.Now().After(deadline) {
			t.Fatal("A did not leave the fallback within 3 s of Redis coming back")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A's 4 and B's 3: B can have 3 more.
	if got := acquireN(t, b, 5); got != 3 {
		t.Fatalf("after the outage B got %d of 5, want 3 (A holds 4, B 3)", got)
	}
}

// BenchmarkRedisAcquireRelease is the quota's cost per connection: one
// acquire (on the handshake's path) and one release (at its end).
func BenchmarkRedisAcquireRelease(b *testing.B) {
	url := os.Getenv("IVSCHATD_TEST_REDIS_URL")
	if url == "" {
		b.Skip("IVSCHATD_TEST_REDIS_URL not set")
	}
	opt, _ := redis.ParseURL(url)
	client := redis.NewClient(opt)
	defer client.Close()
	q, err := NewRedis(context.Background(), client, Options{Prefix: newPrefix(), Limit: 1 << 30, Logger: quietLog()})
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		q.Close()
		client.Del(context.Background(), q.keys...)
	}()
	b.Run("acquire", func(b *testing.B) {
		for b.Loop() {
			if !q.Acquire(context.Background()) {
				b.Fatal("refused")
			}
		}
	})
	b.Run("release", func(b *testing.B) {
		for b.Loop() {
			q.Release()
		}
	})
}
