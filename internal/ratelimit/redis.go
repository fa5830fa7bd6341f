package ratelimit

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is a Limiter shared by every node that uses the same Redis and
// prefix: one token bucket per key, in a hash at <prefix>:rate:<key>, updated
// by one Lua script per call, so Redis serialises the read-refill-take of
// concurrent callers on any number of nodes.
//
// Clock. The bucket's time comes from Redis (TIME inside the script), and
// the now passed to Allow is ignored. A bucket shared by nodes must be
// refilled by one clock: with the callers' clocks, a node whose clock runs
// ahead would refill the bucket by its skew each time it follows a node
// whose clock is behind, handing out extra tokens on every switch. Redis's
// clock is the one all callers share, and TIME costs nothing inside a
// script. (Redis 5 and later replicate a script's effects, not the script,
// so a non-deterministic TIME before a write is allowed.)
type Redis struct {
	client    redis.UniversalClient
	keyPrefix string
}

// bucketScript is the token bucket of Memory's bucket, in microseconds of
// Redis time. Fields: t = tokens (a float), ts = time of the last refill.
// It always writes the refilled state back, even when refusing, so a rate
// change between calls applies from the moment of the change as it does in
// Memory. PEXPIRE 1000: a bucket untouched for a second is full, exactly
// like a missing key, so expiring it then loses nothing and idle rooms cost
// no memory.
//
// ts is written with %d: tostring would round a 16-digit microsecond time
// to 14 significant digits.
var bucketScript = redis.NewScript(`
local rate = tonumber(ARGV[1])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local s = redis.call('HMGET', KEYS[1], 't', 'ts')
local tokens, ts = tonumber(s[1]), tonumber(s[2])
if tokens == nil or ts == nil then
  tokens, ts = rate, now
elseif now > ts then
  tokens = tokens + (now - ts) * rate / 1000000
  ts = now
end
if tokens > rate then tokens = rate end
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
redis.call('HSET', KEYS[1], 't', tostring(tokens), 'ts', string.format('%d', ts))
redis.call('PEXPIRE', KEYS[1], 1000)
return allowed
`)

// NewRedis returns a limiter that uses client and keys under prefix.
func NewRedis(client redis.UniversalClient, prefix string) *Redis {
	return &Redis{client: client, keyPrefix: prefix + ":rate:"}
}

// Allow implements Limiter; now is ignored (see Redis). The script is sent
// by SHA and loaded on NOSCRIPT (after a Redis restart or failover), so a
// call is one round trip.
func (l *Redis) Allow(ctx context.Context, key string, perSecond int, _ time.Time) (bool, error) {
	if perSecond <= 0 {
		return false, nil
	}
	n, err := bucketScript.Run(ctx, l.client, []string{l.keyPrefix + key}, perSecond).Int()
	if err != nil {
		return false, fmt.Errorf("ratelimit: %s: %w", key, err)
	}
	return n == 1, nil
}
