// Package tokenledger keeps the single-use chat-token ledger in Redis, so
// that a token that opened a connection on one node of a cluster is refused
// on every other node (messaging.MemoryLedger serves a single node).
package tokenledger

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/redis/go-redis/v9"
)

// SkewMargin is how long an entry outlives its token. Nodes check a token's
// expiry with their own clocks while Redis expires the entry with its own;
// the margin keeps a token refused on a node whose clock is behind Redis's
// by less than this. It also keeps a token that expires right now (or is
// used with an expiry already past) single-use for a while.
const SkewMargin = time.Minute

// Redis implements messaging.Ledger with one key per used token,
// <prefix>:token:<id>, written with SET NX PXAT: Redis makes the first
// writer win atomically, across any number of nodes.
type Redis struct {
	client    redis.UniversalClient
	keyPrefix string
	closer    func() error
	now       func() time.Time
}

// New returns a ledger that uses client and keys under prefix.
func New(client redis.UniversalClient, prefix string) *Redis {
	return &Redis{client: client, keyPrefix: prefix + ":token:", closer: func() error { return nil }, now: time.Now}
}

// Open connects to the Redis at rawURL, checks that it answers and returns a
// ledger keyed under prefix that owns (and Close closes) the connection.
func Open(ctx context.Context, rawURL, prefix string) (*Redis, error) {
	opt, err := redis.ParseURL(rawURL)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // url.Error quotes the URL, password and all
		}
		return nil, fmt.Errorf("tokenledger: redis URL %s: %w", redact(rawURL), err)
	}
	c := redis.NewClient(opt)
	if err := c.Ping(ctx).Err(); err != nil {
		c.Close()
		return nil, fmt.Errorf("tokenledger: redis at %s is unreachable: %w", redact(rawURL), err)
	}
	l := New(c, prefix)
	l.closer = c.Close
	return l, nil
}

func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// Use implements messaging.Ledger.
func (l *Redis) Use(ctx context.Context, tokenID string, expires time.Time) (bool, error) {
	// A zero or past expiry would make PXAT invalid or drop the key at once;
	// the entry lives at least SkewMargin from now either way.
	at := max(expires.UnixMilli(), l.now().UnixMilli()) + SkewMargin.Milliseconds()
	err := l.client.Do(ctx, "SET", l.keyPrefix+tokenID, "1", "NX", "PXAT", at).Err()
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, redis.Nil):
		return false, nil // NX: the key was there, the token was used
	default:
		return false, fmt.Errorf("tokenledger: use token: %w", err)
	}
}

// Close closes the connection Open made; it does nothing for New's ledgers.
func (l *Redis) Close() error { return l.closer() }
