package redisconn

import (
	"context"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestOpenErrorsHideThePassword(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, raw := range []string{
		"redis://:secret@127.0.0.1:1/0",       // unreachable
		"redis://:secret@127.0.0.1:6379/\x00", // unparsable
		"http://:secret@127.0.0.1:6379/0",     // wrong scheme
	} {
		c, err := Open(ctx, raw)
		if err == nil {
			c.Close()
			t.Errorf("Open(%q) succeeded", raw)
			continue
		}
		if strings.Contains(err.Error(), "secret") {
			t.Errorf("error shows the password: %v", err)
		}
	}
}

func TestOpen(t *testing.T) {
	url := os.Getenv("IVSCHATD_TEST_REDIS_URL")
	if url == "" {
		t.Skip("IVSCHATD_TEST_REDIS_URL not set; skipping Redis tests")
	}
	c, err := Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Ping(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
}

// Every client gets the deliberate bounds and honours its callers'
// deadlines; a bound the URL sets itself wins.
func TestBounds(t *testing.T) {
	opt, err := redis.ParseURL("redis://127.0.0.1:6379/0")
	if err != nil {
		t.Fatal(err)
	}
	bound(opt)
	if !opt.ContextTimeoutEnabled || opt.DialTimeout != DialTimeout || opt.DialerRetries != dialAttempts ||
		opt.ReadTimeout != ReadTimeout || opt.WriteTimeout != WriteTimeout || opt.MaxRetries != maxRetries ||
		opt.MinRetryBackoff != minRetryBackoff || opt.MaxRetryBackoff != maxRetryBackoff || opt.PoolTimeout != poolTimeout {
		t.Errorf("bounds not applied: %+v", opt)
	}
	opt, err = redis.ParseURL("redis://127.0.0.1:6379/0?read_timeout=10s&max_retries=5")
	if err != nil {
		t.Fatal(err)
	}
	bound(opt)
	if opt.ReadTimeout != 10*time.Second || opt.MaxRetries != 5 || opt.WriteTimeout != WriteTimeout {
		t.Errorf("the URL's own bounds not kept: read %v, retries %d, write %v", opt.ReadTimeout, opt.MaxRetries, opt.WriteTimeout)
	}
}

// A command to a Redis that accepts the connection but never answers (a
// black hole) fails within the caller's deadline, which go-redis ignores
// unless told otherwise.
func TestCallerDeadlineBoundsASilentServer(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	var held []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c) // read nothing, answer nothing
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		for _, c := range held {
			c.Close()
		}
		mu.Unlock()
	}()
	opt, err := redis.ParseURL("redis://" + lis.Addr().String() + "/0")
	if err != nil {
		t.Fatal(err)
	}
	bound(opt)
	c := redis.NewClient(opt)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = c.Publish(ctx, "ch", "x").Err()
	if took := time.Since(start); err == nil || took > time.Second {
		t.Fatalf("PUBLISH to a silent server: %v after %v, want an error within the 300ms deadline", err, took)
	}
}
