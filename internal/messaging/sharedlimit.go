package messaging

import (
	"context"
	"time"
)

const (
	// limiterTimeout bounds one RoomLimiter call. The sender's reader
	// goroutine waits for it; a limiter slower than this is treated as
	// failed rather than stalling the connection.
	limiterTimeout = time.Second
	// limiterLogEvery is how often a failing limiter is logged: every
	// message of an outage would otherwise log a line.
	limiterLogEvery = 10 * time.Second
)

// allowShared asks Options.RoomLimiter (the caller checked it is set) for
// one token of key at rate. When it returns an error the caller decides
// with its own per-node bucket.
//
// Failure policy: fall back to the node's bucket, i.e. fail open to the
// single-node limit. Failing closed (ERROR 500) would stop every room's chat
// on every node for as long as the limiter is down, though the broker may
// still work; failing open to "allow" would leave rooms unlimited. The
// node's own bucket still applies the room's rate, so during an outage the
// cluster accepts at most N times it, which is what it did before the
// limiter existed. (When Redis is wholly down, publishing fails anyway and
// the sender gets ERROR 500 from that.) The bucket is consulted only while
// the limiter fails, so it starts full: one burst, then the room's rate.
func (g *Gateway) allowShared(key string, rate int, now time.Time) (bool, error) {
	ctx, cancel := context.WithTimeout(g.ctx, limiterTimeout)
	defer cancel()
	ok, err := g.opts.RoomLimiter.Allow(ctx, key, rate, now)
	if err != nil {
		g.limiterFailed(key, err)
		return false, err
	}
	return ok, nil
}

// limiterFailed logs a limiter failure, at most once per limiterLogEvery,
// with the count of failures so far. Nothing is logged once the gateway is
// shutting down (its context, and so every call, is canceled).
func (g *Gateway) limiterFailed(key string, err error) {
	n := g.limiterFailures.Add(1)
	if g.ctx.Err() != nil {
		return
	}
	if !g.limiterLog.Allow(time.Now(), limiterLogEvery) {
		return
	}
	g.log.Warn("messaging: shared rate limiter failed; this node's own buckets apply until it answers",
		"key", key, "err", err, "failures", n)
}
