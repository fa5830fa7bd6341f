// Package tokenledger keeps the single-use chat-token ledger where
// messaging.MemoryLedger alone would forget it: in Redis, so that a token
// that opened a connection on one node of a cluster is refused on every
// other node, or in a SQLite file of a single node's data dir, so that it is
// refused after a restart.
package tokenledger

import (
	"context"
	"errors"
	"fmt"
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
	now       func() time.Time
}

// New returns a ledger that uses client and keys under prefix.
func New(client redis.UniversalClient, prefix string) *Redis {
	return &Redis{client: client, keyPrefix: prefix + ":token:", now: time.Now}
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
