package tokenledger_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ivschatd/ivschatd/internal/messaging"
	"github.com/ivschatd/ivschatd/internal/redisconn"
	"github.com/ivschatd/ivschatd/internal/tokenledger"
	"github.com/ivschatd/ivschatd/internal/tokenledger/ledgertest"
)

func TestMemoryLedger(t *testing.T) {
	ledgertest.Run(t, func(*testing.T) messaging.Ledger { return messaging.NewMemoryLedger() })
}

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

func open(t *testing.T, url, prefix string) *tokenledger.Redis {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	client, err := redisconn.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	l := tokenledger.New(client, prefix)
	t.Cleanup(func() {
		defer client.Close()
		// The entries would expire within the hour anyway; don't leave
		// them in a Redis that other runs share.
		ctx := context.Background()
		iter := client.Scan(ctx, 0, prefix+":*", 100).Iterator()
		for iter.Next(ctx) {
			client.Del(ctx, iter.Val())
		}
	})
	return l
}

func TestRedisLedger(t *testing.T) {
	url := redisURL(t)
	ledgertest.Run(t, func(t *testing.T) messaging.Ledger { return open(t, url, randomPrefix()) })
}

// TestRedisLedgerKey pins the key layout and expiry: other tools (and a
// rolling upgrade) rely on <prefix>:token:<id> living until expiry plus the
// skew margin.
func TestRedisLedgerKey(t *testing.T) {
	url := redisURL(t)
	prefix := randomPrefix()
	l := open(t, url, prefix)
	// Two "nodes" share the ledger through Redis.
	other := open(t, url, prefix)
	exp := time.Now().Add(10 * time.Minute)
	ctx := context.Background()
	if first, err := l.Use(ctx, "abc", exp); !first || err != nil {
		t.Fatalf("first use: %v %v", first, err)
	}
	if first, err := other.Use(ctx, "abc", exp); first || err != nil {
		t.Fatalf("use on another node: %v %v", first, err)
	}
	opt, _ := redis.ParseURL(url)
	c := redis.NewClient(opt)
	defer c.Close()
	at, err := c.PExpireTime(ctx, prefix+":token:abc").Result()
	if err != nil {
		t.Fatal(err)
	}
	want := exp.Add(tokenledger.SkewMargin)
	if d := time.UnixMilli(int64(at / time.Millisecond)).Sub(want); d < -time.Second || d > time.Second {
		t.Fatalf("entry expires at %v, want %v", time.UnixMilli(int64(at/time.Millisecond)), want)
	}
}
