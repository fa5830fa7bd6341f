package server

import (
	"context"
	"time"

	"github.com/ivschatd/ivschatd/internal/clusterstats"
	"github.com/ivschatd/ivschatd/internal/lease"
	"github.com/ivschatd/ivschatd/internal/messaging"
)

// viewerCountSecond is one second of the ivschatd:viewer-count-interval
// tag. Only tests change it (before starting servers), to see events every
// few hundred milliseconds while the tag keeps its validated range.
var viewerCountSecond = time.Second

// startViewerCounts starts the rooms' viewer-count events: counted by the
// extension API's gatherer (the cluster's figures in cluster mode), and in
// cluster mode published by the one node that takes the room's lease for
// the interval.
func (s *Server) startViewerCounts(gatherer clusterstats.Gatherer) {
	opts := messaging.ViewerCounts{
		Count: func(ctx context.Context, roomID string) (int, int, error) {
			st, err := gatherer.RoomStats(ctx, roomID)
			return st.Connections, st.Users, err
		},
		Second: viewerCountSecond,
	}
	if s.redis != nil {
		opts.Lease = lease.NewRedis(s.redis, s.cfg.RedisPrefix, s.node)
	}
	s.gateway.StartViewerCounts(opts)
}
