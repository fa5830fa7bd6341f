// Package redisconn opens the Redis connections of cluster mode: it parses a
// redis:// URL, checks that the server answers, bounds how long a command can
// wait for a Redis that stopped answering, and keeps the password out of
// every error (they end up in logs).
package redisconn

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/redis/go-redis/v9"
)

// The time bounds of every Redis client of a node (broker, token ledger,
// rate limiter). Redis answers the commands a chat server sends (PUBLISH,
// one small script, SET NX) in well under a millisecond on a LAN, so a
// command that waits seconds is talking to a black hole (a dead route, a
// frozen or failed-over server that sent no FIN): better to tell the sender
// ERROR 500 soon than to hold its connection's reader. go-redis's defaults
// (5 s socket timeouts, 5 dial attempts, 3 retries, caller deadlines
// ignored) let one command wait for tens of seconds.
const (
	// DialTimeout bounds one TCP connect and the connection's handshake
	// (HELLO, AUTH, SELECT are read under ReadTimeout). Loopback and LAN
	// connects take microseconds; 2 s also covers a cross-zone or TLS
	// connect.
	DialTimeout = 2 * time.Second
	// dialAttempts is how many connects one connection gets: one, because
	// a command that fails to get a connection is itself retried
	// (MaxRetries), and a second connect to a black hole only doubles the
	// wait.
	dialAttempts = 1
	// ReadTimeout and WriteTimeout bound one socket read or write of a
	// command, so a command sent to a silent server fails after 2 s even
	// when its caller set no deadline. A pub/sub connection's long wait for
	// messages is not bound by it: its receive loop passes its own timeout
	// (broker.Redis's liveness timings).
	ReadTimeout  = 2 * time.Second
	WriteTimeout = 2 * time.Second
	// maxRetries: a command is tried again, on another connection, at most
	// twice: after a Redis restart the pool's idle connections are dead and
	// fail at once (EOF, reset), and a retry on a fresh connection succeeds.
	// A command that timed out is retried too, so without a caller deadline
	// the worst case is (maxRetries+1) × (ReadTimeout + backoff) ≈ 6.5 s;
	// the callers on a chat connection's path set tighter deadlines.
	maxRetries = 2
	// minRetryBackoff and maxRetryBackoff space the retries: enough for a
	// restarting server to accept connections, short next to ReadTimeout.
	minRetryBackoff = 10 * time.Millisecond
	maxRetryBackoff = 250 * time.Millisecond
	// poolTimeout bounds the wait for a free pooled connection when all are
	// busy (as when Redis is black-holed and each holds a command for up to
	// ReadTimeout).
	poolTimeout = ReadTimeout
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
	bound(opt)
	c := redis.NewClient(opt)
	if err := c.Ping(ctx).Err(); err != nil {
		c.Close()
		return nil, fmt.Errorf("redis at %s is unreachable: %w", Redact(rawURL), err)
	}
	return c, nil
}

// bound applies the time bounds above, except those the URL sets itself
// (dial_timeout, read_timeout, write_timeout, max_retries,
// min_retry_backoff, max_retry_backoff and pool_timeout query parameters:
// the way out for a Redis far away). ContextTimeoutEnabled makes go-redis
// honour the caller's context deadline for socket I/O, retries and the pool
// wait: without it a caller's deadline is silently ignored and only the
// socket timeouts apply.
func bound(opt *redis.Options) {
	opt.ContextTimeoutEnabled = true
	opt.DialerRetries = dialAttempts
	for _, d := range []struct {
		field *time.Duration
		def   time.Duration
	}{
		{&opt.DialTimeout, DialTimeout},
		{&opt.ReadTimeout, ReadTimeout},
		{&opt.WriteTimeout, WriteTimeout},
		{&opt.MinRetryBackoff, minRetryBackoff},
		{&opt.MaxRetryBackoff, maxRetryBackoff},
		{&opt.PoolTimeout, poolTimeout},
	} {
		if *d.field == 0 {
			*d.field = d.def
		}
	}
	if opt.MaxRetries == 0 {
		opt.MaxRetries = maxRetries
	}
}

// Redact hides a password in a URL that is about to be logged.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
