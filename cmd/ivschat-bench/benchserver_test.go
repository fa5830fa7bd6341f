package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/ivschatd/ivschatd/internal/config"
	"github.com/ivschatd/ivschatd/internal/server"
	"github.com/ivschatd/ivschatd/internal/token"
)

// The credentials of the servers the end-to-end tests start.
const testKey, testSecret = "AKIDBENCHTEST", "bench-test-secret-0123456789abcdefghij"

// startTestServer runs a real ivschatd in the test process on a free
// loopback port, with edit applied to its config, and returns its
// control-plane URL once it is healthy. It stops at the end of the test.
func startTestServer(t *testing.T, edit func(*config.Config)) string {
	t.Helper()
	cfg := config.Default()
	cfg.Listen = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	cfg.AccessKeys = []config.AccessKey{{AccessKeyID: testKey, SecretAccessKey: testSecret}}
	cfg.ShutdownTimeout = 5 * time.Second
	if edit != nil {
		edit(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.New(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("server: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Errorf("server did not stop")
		}
	})
	endpoint := "http://" + srv.Addr().String()
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := http.Get(endpoint + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return endpoint
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("server not healthy: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// startTestCluster runs n nodes in cluster mode as the README describes:
// one fresh PostgreSQL schema, one Redis key prefix and one token key ring
// for all of them. Skipped unless IVSCHATD_TEST_POSTGRES_URL and
// IVSCHATD_TEST_REDIS_URL are set; the schema and the prefix's keys are
// removed at the end.
func startTestCluster(t *testing.T, n int) []string {
	t.Helper()
	pgURL, redisURL := os.Getenv("IVSCHATD_TEST_POSTGRES_URL"), os.Getenv("IVSCHATD_TEST_REDIS_URL")
	if pgURL == "" || redisURL == "" {
		t.Skip("IVSCHATD_TEST_POSTGRES_URL and IVSCHATD_TEST_REDIS_URL must both be set; skipping the cluster test")
	}
	var rb [6]byte
	rand.Read(rb[:])
	suffix := hex.EncodeToString(rb[:])
	schema, prefix := "ivschat_bench_"+suffix, "ivschat-bench-test-"+suffix
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pgURL)
	if err != nil {
		t.Fatalf("PostgreSQL: %v", err)
	}
	_, err = conn.Exec(ctx, "CREATE SCHEMA "+schema)
	conn.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}
	opt, err := redis.ParseURL(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	// Registered first, so that it runs after the nodes have stopped.
	t.Cleanup(func() {
		if conn, err := pgx.Connect(ctx, pgURL); err == nil {
			conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE")
			conn.Close(ctx)
		}
		rc := redis.NewClient(opt)
		defer rc.Close()
		iter := rc.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			rc.Del(ctx, iter.Val())
		}
	})
	key, err := token.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(pgURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	endpoints := make([]string, n)
	for i := range endpoints {
		endpoints[i] = startTestServer(t, func(c *config.Config) {
			c.PostgresURL = u.String()
			c.TokenKeys = []string{key.SecretString()}
			c.RedisURL = redisURL
			c.RedisPrefix = prefix
		})
	}
	return endpoints
}
