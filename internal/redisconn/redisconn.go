// Package redisconn opens the Redis connections of cluster mode: it parses a
// redis:// URL, checks that the server answers, and keeps the password out of
// every error (they end up in logs).
package redisconn

import (
	"context"
	"errors"
	"fmt"
	"net/url"

	"github.com/redis/go-redis/v9"
)

// Open returns a client for rawURL once Redis has answered a PING. The
// caller owns the client and closes it.
func Open(ctx context.Context, rawURL string) (*redis.Client, error) {
	opt, err := redis.ParseURL(rawURL)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // url.Error quotes the URL, password and all
		}
		return nil, fmt.Errorf("redis URL %s: %w", Redact(rawURL), err)
	}
	c := redis.NewClient(opt)
	if err := c.Ping(ctx).Err(); err != nil {
		c.Close()
		return nil, fmt.Errorf("redis at %s is unreachable: %w", Redact(rawURL), err)
	}
	return c, nil
}

// Redact hides a password in a URL that is about to be logged.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
