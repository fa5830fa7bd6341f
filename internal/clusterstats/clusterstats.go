// Package clusterstats gathers the live figures of the ivschatd extension
// API (rooms' connections and rates, the nodes' load) from every node of a
// cluster, on demand: Local answers for a single node, Redis asks every node
// that shares the Redis key prefix and merges their answers.
package clusterstats

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"time"
)

// Source is what one node tells about itself.
type Source interface {
	// Room is the node's figures of one room.
	Room(roomID string) RoomNode
	// Connections lists the room's connections on the node, in any order.
	Connections(roomID string) []Connection
	// Status is the node's load and chat-log state.
	Status() NodeStatus
}

// Gatherer answers for the whole cluster (or the one node).
type Gatherer interface {
	RoomStats(ctx context.Context, roomID string) (RoomStats, error)
	// RoomConnections returns up to limit connections of the room that sort
	// after the cursor (nil: from the first), ordered by ConnectedAt, Node,
	// ID.
	RoomConnections(ctx context.Context, roomID string, after *Cursor, limit int) (ConnectionsPage, error)
	Status(ctx context.Context) (Status, error)
}

// RoomNode is one node's figures of a room.
type RoomNode struct {
	Node        string   `json:"node"`
	Connections int      `json:"connections"`
	Users       []string `json:"users"` // distinct, sorted
	// Messages and Events published by the node over the rate window.
	Messages uint64 `json:"messages"`
	Events   uint64 `json:"events"`
	// Errors sent to the room's clients on the node over the error
	// window, by ERROR code.
	Errors map[int]uint64 `json:"errors,omitempty"`
}

// Connection is one open chat connection.
type Connection struct {
	Node         string            `json:"node"`
	ID           uint64            `json:"id"` // unique on its node
	UserID       string            `json:"userId"`
	ConnectedAt  time.Time         `json:"connectedAt"`
	Capabilities []string          `json:"capabilities"`
	Attributes   map[string]string `json:"attributes,omitempty"`
}

// Cursor is the position of a connection in the listing order.
type Cursor struct {
	ConnectedAt time.Time
	Node        string
	ID          uint64
}

// CursorOf is the cursor of c.
func CursorOf(c Connection) Cursor { return Cursor{ConnectedAt: c.ConnectedAt, Node: c.Node, ID: c.ID} }

func compareCursor(a, b Cursor) int {
	if c := a.ConnectedAt.Compare(b.ConnectedAt); c != 0 {
		return c
	}
	if c := strings.Compare(a.Node, b.Node); c != 0 {
		return c
	}
	return cmp.Compare(a.ID, b.ID)
}

func compareConnections(a, b Connection) int { return compareCursor(CursorOf(a), CursorOf(b)) }

// NodeStatus is one node's load.
type NodeStatus struct {
	Node                string        `json:"node"`
	Version             string        `json:"version"`
	StartTime           time.Time     `json:"startTime"`
	Connections         int64         `json:"connections"`
	Rooms               int           `json:"rooms"`
	DeliveriesPerSecond float64       `json:"deliveriesPerSecond"`
	MessagesPerSecond   float64       `json:"messagesPerSecond"`
	EventsPerSecond     float64       `json:"eventsPerSecond"`
	ChatLog             []Destination `json:"chatLog,omitempty"`
}

// Destination is the state of one chat-log destination's spool on a node.
type Destination struct {
	Destination    string `json:"destination"` // "s3:<bucket>", "cloudWatchLogs:<group>", "firehose:<stream>"
	Type           string `json:"type"`        // s3, cloudWatchLogs, firehose
	SpoolBytes     int64  `json:"spoolBytes"`
	Spooled        uint64 `json:"spooled"`
	Delivered      uint64 `json:"delivered"`
	Dropped        uint64 `json:"dropped"`
	FailedToSpool  uint64 `json:"failedToSpool"`
	FailedAttempts uint64 `json:"failedAttempts"`
}

// RoomStats is a room's figures over the nodes that answered.
type RoomStats struct {
	Connections int
	Users       int // distinct user IDs across the nodes
	Messages    uint64
	Events      uint64
	Errors      map[int]uint64
	// Nodes answered; NodesMissing were asked and did not answer in time.
	Nodes, NodesMissing int
}

// ConnectionsPage is one page of a room's connections.
type ConnectionsPage struct {
	Connections []Connection
	// More is true when connections beyond this page exist.
	More                bool
	Nodes, NodesMissing int
}

// Status is every answering node's status, sorted by node.
type Status struct {
	Nodes        []NodeStatus
	NodesMissing int
}

// mergeRooms adds up room figures; users are a union.
func mergeRooms(parts []RoomNode) RoomStats {
	var out RoomStats
	users := make(map[string]struct{})
	for _, p := range parts {
		out.Connections += p.Connections
		out.Messages += p.Messages
		out.Events += p.Events
		for _, u := range p.Users {
			users[u] = struct{}{}
		}
		for code, n := range p.Errors {
			if out.Errors == nil {
				out.Errors = make(map[int]uint64)
			}
			out.Errors[code] += n
		}
	}
	out.Users = len(users)
	out.Nodes = len(parts)
	return out
}

// pageOf keeps the connections after the cursor, sorted, at most limit+1
// of them (the one past the page says there are more).
func pageOf(conns []Connection, after *Cursor, limit int) []Connection {
	if after != nil {
		conns = slices.DeleteFunc(conns, func(c Connection) bool { return compareCursor(CursorOf(c), *after) <= 0 })
	}
	slices.SortFunc(conns, compareConnections)
	if len(conns) > limit+1 {
		conns = conns[:limit+1]
	}
	return conns
}

// localConnections is the node's connections tagged with its node ID.
func localConnections(src Source, node, roomID string) []Connection {
	conns := src.Connections(roomID)
	for i := range conns {
		conns[i].Node = node
	}
	return conns
}

func finishPage(conns []Connection, limit int) ConnectionsPage {
	slices.SortFunc(conns, compareConnections)
	page := ConnectionsPage{Connections: conns}
	if len(conns) > limit {
		page.Connections, page.More = conns[:limit], true
	}
	return page
}

// Local answers for this node alone.
type Local struct {
	Node   string
	Source Source
}

// RoomStats implements Gatherer.
func (l *Local) RoomStats(_ context.Context, roomID string) (RoomStats, error) {
	return mergeRooms([]RoomNode{l.Source.Room(roomID)}), nil
}

// RoomConnections implements Gatherer.
func (l *Local) RoomConnections(_ context.Context, roomID string, after *Cursor, limit int) (ConnectionsPage, error) {
	page := finishPage(pageOf(localConnections(l.Source, l.Node, roomID), after, limit), limit)
	page.Nodes = 1
	return page, nil
}

// Status implements Gatherer.
func (l *Local) Status(context.Context) (Status, error) {
	st := l.Source.Status()
	st.Node = l.Node
	return Status{Nodes: []NodeStatus{st}}, nil
}
