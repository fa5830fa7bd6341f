package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/ivschatd/ivschatd/internal/api"
	"github.com/ivschatd/ivschatd/internal/clusterstats"
)

// The ivschatd extension API's view of this server: the node's own
// figures (statsSource, which clusterstats asks on every node) and what
// GetServerStatus says of the server itself (extensions).

// buildInfo is the version and commit GetServerStatus reports: main sets
// the ones `ivschatd version` prints (SetBuild); the defaults come from the
// toolchain's build info.
type buildInfo struct{ version, commit string }

func defaultBuild() buildInfo {
	b := buildInfo{version: "(devel)", commit: "unknown"}
	if info, ok := debug.ReadBuildInfo(); ok {
		if info.Main.Version != "" {
			b.version = info.Main.Version
		}
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" {
				b.commit = s.Value
			}
		}
	}
	return b
}

// SetBuild sets the version and commit reported by GetServerStatus (those
// of `ivschatd version`). Call it before Run.
func (s *Server) SetBuild(version, commit string) {
	s.build = buildInfo{version: version, commit: commit}
}

// newNodeID names a single node (a cluster node uses its connection-quota
// lease's ID, which the other nodes see in Redis too).
func newNodeID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// statsSource is this node's clusterstats.Source.
type statsSource struct{ s *Server }

func (src statsSource) Room(roomID string) clusterstats.RoomNode {
	f := src.s.gateway.RoomFigures(roomID)
	return clusterstats.RoomNode{Connections: f.Connections, Users: f.Users, Messages: f.Messages, Events: f.Events, Errors: f.Errors}
}

func (src statsSource) Connections(roomID string) []clusterstats.Connection {
	conns := src.s.gateway.RoomConnections(roomID)
	out := make([]clusterstats.Connection, len(conns))
	for i, c := range conns {
		out[i] = clusterstats.Connection{ID: c.ID, UserID: c.UserID, ConnectedAt: c.ConnectedAt, Capabilities: c.Capabilities, Attributes: c.Attributes}
	}
	return out
}

func (src statsSource) Status() clusterstats.NodeStatus {
	s := src.s
	f := s.gateway.NodeFigures()
	st := clusterstats.NodeStatus{
		Version:             s.build.version,
		StartTime:           s.started,
		Connections:         f.Connections,
		Rooms:               f.Rooms,
		DeliveriesPerSecond: f.DeliveriesPerSecond,
		MessagesPerSecond:   f.MessagesPerSecond,
		EventsPerSecond:     f.EventsPerSecond,
	}
	for name, d := range s.chatlog.Stats().Destinations {
		typ, _, _ := strings.Cut(name, ":")
		st.ChatLog = append(st.ChatLog, clusterstats.Destination{
			Destination: name, Type: typ, SpoolBytes: d.SpoolBytes, Spooled: d.Spooled, Delivered: d.Delivered,
			Dropped: d.Dropped, FailedToSpool: d.FailedToSpool, FailedAttempts: d.FailedAttempts,
		})
	}
	slices.SortFunc(st.ChatLog, func(a, b clusterstats.Destination) int { return strings.Compare(a.Destination, b.Destination) })
	return st
}

// extensions is the control plane's api.Extensions.
type extensions struct {
	clusterstats.Gatherer
	s *Server
}

func (e extensions) ServerInfo(context.Context) api.ServerInfo {
	s := e.s
	info := api.ServerInfo{
		Version:   s.build.version,
		Commit:    s.build.commit,
		Node:      s.node,
		StartTime: s.started,
		Mode:      "single",
		Ready:     s.ready.Load(),
	}
	if s.redis != nil {
		info.Mode = "cluster"
	}
	// The readiness checks' cached result: a console polling every few
	// seconds costs the dependencies nothing more than /readyz probes.
	failing := s.readiness.status()
	for _, c := range s.readiness.checks {
		why, failed := failing[c.name]
		info.Checks = append(info.Checks, api.Check{Name: c.name, OK: !failed, Error: why})
		if failed {
			info.Ready = false
		}
	}
	return info
}

// statsTimeout bounds how long a node waits for the others' figures.
const statsTimeout = time.Second
