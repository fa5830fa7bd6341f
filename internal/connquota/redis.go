package connquota

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ivschatd/ivschatd/internal/throttle"
)

// Defaults of Options.
const (
	// DefaultHeartbeat is how often a node writes its exact count to Redis
	// and renews its lease. Each heartbeat briefly holds back this node's
	// handshakes for one round trip (see Redis), so it is not much more
	// frequent than needed to keep the lease alive several times over.
	DefaultHeartbeat = time.Second
	// DefaultTTL is how long a node's lease lives without a heartbeat: after
	// it, the other nodes drop the node's count, so a node that died frees
	// its share within DefaultTTL. Five heartbeats: a node whose Redis calls
	// stall for a few seconds (a GC pause, a Redis failover) keeps its
	// share; if its lease does lapse, its next heartbeat puts its count back.
	DefaultTTL = 5 * time.Second
	// DefaultTimeout bounds one Redis call. A handshake waits for at most
	// one such call (plus a rare re-sync) before the node falls back to its
	// share.
	DefaultTimeout = 500 * time.Millisecond
	// failureLogEvery bounds the log lines of an ongoing Redis failure.
	failureLogEvery = 10 * time.Second
)

// Options configures a Redis quota.
type Options struct {
	// Prefix is the cluster's Redis key prefix (--redis-prefix).
	Prefix string
	// Limit is the cluster's concurrent-connection quota.
	Limit int
	// Heartbeat, TTL and Timeout: zero takes DefaultHeartbeat, DefaultTTL
	// and DefaultTimeout.
	Heartbeat time.Duration
	TTL       time.Duration
	Timeout   time.Duration
	Logger    *slog.Logger
}

// Redis is the quota of a cluster: every node that shares the Redis and the
// prefix counts against one limit.
//
// Layout. Two keys, <prefix>:connquota:count, a hash from node ID to the
// node's count of held slots, and <prefix>:connquota:lease, a sorted set
// from node ID to the Redis time (ms) at which the node's lease ends. Every
// script first drops the nodes whose lease ended (both entries), so a node
// that died without releasing stops counting within the TTL.
//
// Admission is one EVALSHA (acquireScript): sum the live nodes' counts and
// increment this node's only if the sum is below the limit, atomically, so
// concurrent handshakes on any number of nodes never admit more than the
// limit. Release is one EVALSHA decrementing the count.
//
// Exactness. The hash is maintained with deltas, which cannot be exact
// forever: a release whose call failed, a Redis that restarted empty, a
// lease that lapsed while the node was cut off. So every heartbeat writes
// the node's own count (held) as an absolute value. That write must not
// interleave with deltas in flight (a delta counted in held but applied
// after the write would count twice), so deltas hold mu for reading from
// the moment they change held until Redis answered, and the heartbeat holds
// it for writing: a handshake arriving during a heartbeat waits one round
// trip. An acquire that finds its node's entry gone (the lease lapsed, or
// Redis lost its data) re-syncs at once rather than counting from zero.
//
// Redis failures. A failed call switches the node to its share: it admits
// while it holds fewer than Limit / live nodes (live as last seen in Redis,
// at least one slot), without calling Redis, so handshakes do not wait for
// a dead Redis. The heartbeat PINGs Redis meanwhile, and once it answers
// writes the node's count and leaves the fallback. Every failure is counted
// (Stats.Failures) and logged at most once per 10 s.
type Redis struct {
	client    redis.UniversalClient
	keys      []string // count hash, lease set
	node      string
	limit     int64
	heartbeat time.Duration
	ttlMs     int64
	timeout   time.Duration
	log       *slog.Logger

	// mu orders deltas (read side) against the heartbeat's absolute write
	// (write side); see the type's comment.
	mu   sync.RWMutex
	held atomic.Int64 // slots this node holds, whatever Redis knows

	degraded atomic.Bool  // Redis failed: admit up to the share, without Redis
	live     atomic.Int64 // live nodes last seen in Redis (this one included)
	total    atomic.Int64 // cluster count last seen in Redis

	failures atomic.Uint64
	failLog  throttle.Every

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

// purge is the prologue of every script that reads the counts: it drops the
// nodes whose lease ended before Redis's clock (TIME, so no node's clock
// matters). It leaves now (ms) in a local.
const purge = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local dead = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)
for _, n in ipairs(dead) do
  redis.call('HDEL', KEYS[1], n)
  redis.call('ZREM', KEYS[2], n)
end
`

// sum leaves the count of the cluster in total.
const sum = `
local total = 0
for _, v in ipairs(redis.call('HVALS', KEYS[1])) do total = total + tonumber(v) end
`

// acquireScript: ARGV node, limit. Returns {status, total, live nodes} with
// status 1 granted, 0 refused (the limit is reached), -1 this node has no
// live entry (nothing was changed; the caller re-syncs).
var acquireScript = redis.NewScript(purge + `
local live = redis.call('ZCARD', KEYS[2])
if not redis.call('ZSCORE', KEYS[2], ARGV[1]) then return {-1, 0, live} end
` + sum + `
if total >= tonumber(ARGV[2]) then return {0, total, live} end
redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
return {1, total + 1, live}
`)

// releaseScript: ARGV node. Decrements the node's count if it has a live
// entry (else the next heartbeat writes the count anyway).
var releaseScript = redis.NewScript(`
if not redis.call('ZSCORE', KEYS[2], ARGV[1]) then return 0 end
redis.call('HINCRBY', KEYS[1], ARGV[1], -1)
return 1
`)

// syncScript: ARGV node, held, TTL (ms). Writes the node's count, renews its
// lease, and returns {total, live nodes}. Both keys expire two TTLs after the
// last heartbeat of any node, so a cluster that is gone leaves nothing.
var syncScript = redis.NewScript(purge + `
local ttl = tonumber(ARGV[3])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], now + ttl, ARGV[1])
redis.call('PEXPIRE', KEYS[1], 2 * ttl)
redis.call('PEXPIRE', KEYS[2], 2 * ttl)
` + sum + `
return {total, redis.call('ZCARD', KEYS[2])}
`)

// leaveScript: ARGV node. A node that shuts down gives its slots back at once.
var leaveScript = redis.NewScript(`
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
`)

// NewRedis joins the cluster's quota: it writes this node's entry (count 0)
// and starts the heartbeat. It fails when Redis does not answer. Close
// leaves the quota.
func NewRedis(ctx context.Context, client redis.UniversalClient, opts Options) (*Redis, error) {
	if opts.Limit <= 0 {
		return nil, errors.New("connquota: the limit must be positive")
	}
	if opts.Heartbeat <= 0 {
		opts.Heartbeat = DefaultHeartbeat
	}
	if opts.TTL <= 0 {
		opts.TTL = DefaultTTL
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	var id [8]byte
	rand.Read(id[:])
	q := &Redis{
		client:    client,
		keys:      []string{opts.Prefix + ":connquota:count", opts.Prefix + ":connquota:lease"},
		node:      hex.EncodeToString(id[:]),
		limit:     int64(opts.Limit),
		heartbeat: opts.Heartbeat,
		ttlMs:     opts.TTL.Milliseconds(),
		timeout:   opts.Timeout,
		log:       opts.Logger,
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
	}
	q.live.Store(1)
	if err := q.sync(ctx); err != nil {
		return nil, fmt.Errorf("connquota: join: %w", err)
	}
	go q.heartbeatLoop()
	return q, nil
}

// Node is this node's ID in the Redis keys.
func (q *Redis) Node() string { return q.node }

// Acquire takes a slot of the cluster's quota: one Redis round trip, or none
// while Redis fails (the node's share decides then).
func (q *Redis) Acquire(ctx context.Context) bool {
	for range 2 {
		if q.degraded.Load() {
			return q.acquireShare()
		}
		q.mu.RLock()
		q.held.Add(1)
		res, err := q.run(ctx, acquireScript, q.node, q.limit)
		if err != nil {
			// Whether Redis counted it is unknown; the heartbeat that ends
			// the fallback writes the exact count.
			q.held.Add(-1)
			q.mu.RUnlock()
			q.failed("acquire", err)
			return q.acquireShare()
		}
		status, total, live := res[0], res[1], res[2]
		if status != 1 {
			q.held.Add(-1)
		}
		q.mu.RUnlock()
		q.live.Store(max(live, 1))
		switch status {
		case 1:
			q.total.Store(total)
			return true
		case 0:
			q.total.Store(total)
			return false
		}
		// No live entry for this node: write it (with the count this node
		// really holds) and try again.
		if err := q.sync(ctx); err != nil {
			q.failed("re-sync", err)
			return q.acquireShare()
		}
	}
	// The entry vanished again at once (a Redis losing its data in a
	// loop): decide locally this time.
	return q.acquireShare()
}

// acquireShare admits while this node holds fewer than its share of the
// limit. It takes mu like a delta so a heartbeat's write never misses it.
func (q *Redis) acquireShare() bool {
	share := max(q.limit/max(q.live.Load(), 1), 1)
	q.mu.RLock()
	defer q.mu.RUnlock()
	if q.held.Add(1) > share {
		q.held.Add(-1)
		return false
	}
	return true
}

// Release gives back a slot Acquire granted.
func (q *Redis) Release() {
	q.mu.RLock()
	defer q.mu.RUnlock()
	q.held.Add(-1)
	if q.degraded.Load() {
		return // the heartbeat that ends the fallback writes the count
	}
	ctx, cancel := context.WithTimeout(context.Background(), q.timeout)
	defer cancel()
	if err := releaseScript.Run(ctx, q.client, q.keys, q.node).Err(); err != nil {
		q.failed("release", err)
	}
}

// run runs one of the list-returning scripts within the call timeout. A
// client that hangs up during its handshake cancels ctx; that must not pass
// for a Redis failure (and switch the node to its share), so only ctx's
// values are kept.
func (q *Redis) run(ctx context.Context, s *redis.Script, args ...any) ([]int64, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), q.timeout)
	defer cancel()
	return s.Run(ctx, q.client, q.keys, args...).Int64Slice()
}

// sync writes this node's exact count and renews its lease, and leaves the
// fallback if it was in it.
func (q *Redis) sync(ctx context.Context) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	res, err := q.run(ctx, syncScript, q.node, q.held.Load(), q.ttlMs)
	if err != nil {
		return err
	}
	q.total.Store(res[0])
	q.live.Store(max(res[1], 1))
	if q.degraded.Swap(false) {
		q.log.Info("connection quota: Redis answers again; the quota is the cluster's again",
			"held", q.held.Load(), "clusterTotal", res[0], "liveNodes", res[1])
	}
	return nil
}

func (q *Redis) heartbeatLoop() {
	defer close(q.done)
	t := time.NewTicker(q.heartbeat)
	defer t.Stop()
	for {
		select {
		case <-q.stop:
			return
		case <-t.C:
		}
		q.beat()
	}
}

func (q *Redis) beat() {
	ctx, cancel := context.WithTimeout(context.Background(), q.timeout)
	defer cancel()
	if q.degraded.Load() {
		// Probe without mu first: while Redis is down, a sync would hold
		// every handshake for the timeout on each heartbeat.
		if err := q.client.Ping(ctx).Err(); err != nil {
			q.failed("heartbeat", err)
			return
		}
	}
	if err := q.sync(ctx); err != nil {
		q.failed("heartbeat", err)
	}
}

// failed counts a Redis failure, switches to the share and logs (at most
// once per failureLogEvery).
func (q *Redis) failed(op string, err error) {
	n := q.failures.Add(1)
	q.degraded.Store(true)
	if q.failLog.Allow(time.Now(), failureLogEvery) {
		q.log.Warn("connection quota: Redis failed; this node admits up to its share of the limit until Redis answers",
			"op", op, "err", err, "share", max(q.limit/max(q.live.Load(), 1), 1), "held", q.held.Load(), "failures", n)
	}
}

// Close stops the heartbeat and removes this node's entry, so its slots are
// free for the other nodes at once. Call it after the last Release; it is
// idempotent.
func (q *Redis) Close() error {
	var err error
	q.closeOnce.Do(func() {
		close(q.stop)
		<-q.done
		ctx, cancel := context.WithTimeout(context.Background(), q.timeout)
		defer cancel()
		err = leaveScript.Run(ctx, q.client, q.keys, q.node).Err()
	})
	if err != nil {
		return fmt.Errorf("connquota: leave: %w", err)
	}
	return nil
}

// Stats is a snapshot of a Redis quota.
type Stats struct {
	Held         int64  // slots this node holds
	ClusterTotal int64  // the cluster's count as last seen in Redis
	LiveNodes    int64  // nodes with a live lease, as last seen
	Failures     uint64 // failed Redis calls
	Degraded     bool   // Redis failed: this node admits up to its share
}

// Stats returns the quota's counters.
func (q *Redis) Stats() Stats {
	return Stats{
		Held:         q.held.Load(),
		ClusterTotal: q.total.Load(),
		LiveNodes:    q.live.Load(),
		Failures:     q.failures.Load(),
		Degraded:     q.degraded.Load(),
	}
}
