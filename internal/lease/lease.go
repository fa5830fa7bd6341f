// Package lease elects one node of a cluster to do a periodic duty (a
// room's viewer-count event) for one period: whoever takes a key's lease in
// Redis (SET NX PX, on Redis's clock) does it; the others learn how long the
// lease still runs and try again then. No node ever releases a lease early,
// so the duty is done at most once per period however many nodes compete,
// and a node that dies simply lets its lease lapse.
package lease

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis takes leases under <prefix>:lease:<name>.
type Redis struct {
	client redis.UniversalClient
	prefix string
	node   string
}

// NewRedis returns leases kept in client's Redis under prefix (the
// cluster's --redis-prefix), held in the name of node.
func NewRedis(client redis.UniversalClient, prefix, node string) *Redis {
	return &Redis{client: client, prefix: prefix, node: node}
}

// acquire sets the key if it is free and otherwise answers its remaining
// time to live in milliseconds; -1 means "taken by this call". One round
// trip either way.
var acquire = redis.NewScript(`
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return -1 end
return redis.call('PTTL', KEYS[1])
`)

// Acquire takes the lease called name for ttl (rounded up to a
// millisecond). ok is true when this call took it; otherwise wait is how
// long the current holder keeps it.
func (r *Redis) Acquire(ctx context.Context, name string, ttl time.Duration) (ok bool, wait time.Duration, err error) {
	ms := max(int64((ttl+time.Millisecond-1)/time.Millisecond), 1)
	n, err := acquire.Run(ctx, r.client, []string{r.prefix + ":lease:" + name}, r.node, ms).Int64()
	if err != nil {
		return false, 0, err
	}
	if n == -1 {
		return true, 0, nil
	}
	// PTTL answers -2 when the key expired between SET and PTTL: free
	// again, try at once.
	return false, time.Duration(max(n, 0)) * time.Millisecond, nil
}
