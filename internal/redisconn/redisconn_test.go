package redisconn

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"
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
