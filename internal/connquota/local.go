// Package connquota holds the concurrent-connection quota of the messaging
// gateway (--max-connections): Local counts the connections of one process,
// Redis counts those of every node of a cluster, so that the quota is the
// cluster's, as IVS's is the account's in a region.
package connquota

import (
	"context"
	"sync/atomic"
)

// Local is the quota of a single node: an atomic counter.
type Local struct {
	limit int64
	held  atomic.Int64
}

// NewLocal returns a quota of limit concurrent connections.
func NewLocal(limit int) *Local { return &Local{limit: int64(limit)} }

// Acquire takes a slot unless limit slots are held.
func (l *Local) Acquire(context.Context) bool {
	if l.held.Add(1) > l.limit {
		l.held.Add(-1)
		return false
	}
	return true
}

// Release gives back a slot Acquire granted.
func (l *Local) Release() { l.held.Add(-1) }

// Held is the number of slots granted and not released.
func (l *Local) Held() int64 { return l.held.Load() }
