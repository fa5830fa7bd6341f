// Package broker carries a room's traffic to every node that has connections
// in that room. The messaging gateway publishes already-encoded WebSocket
// frames and a few control commands; each node's gateway subscribes to the
// rooms it has connections in and delivers locally.
//
// The in-process implementation (Memory) serves a single node; Redis serves a
// cluster, with one pub/sub channel per room (Message is plain data, encoded
// by codec.go, and the ordering guarantee below is what Redis pub/sub gives
// per channel). brokertest is the behaviour suite both pass.
package broker

import (
	"context"
	"errors"
	"time"
)

// Kind says what a Message asks subscribers to do.
type Kind uint8

const (
	// KindFrame delivers Frame to every connection of the room.
	KindFrame Kind = iota + 1
	// KindDisconnectUser closes the connections of UserID in the room with
	// status 1000 and Reason, after every frame published before it.
	KindDisconnectUser
	// KindCloseRoom ends every connection of the room (the room was deleted).
	KindCloseRoom
	// KindRoomUpdated tells subscribers that the room changed; they apply
	// its limits and review handler, as of UpdateTime, to connected clients
	// at once (a message older than what they know is ignored).
	KindRoomUpdated
)

// Message is one unit of room traffic.
type Message struct {
	Kind Kind
	// Frame is a complete WebSocket frame (header and JSON payload), encoded
	// once by the publisher. Subscribers must treat it as read-only: the same
	// bytes are shared by every connection that receives it.
	Frame []byte
	// UserID and Reason belong to KindDisconnectUser.
	UserID string
	Reason string
	// The rest belongs to KindRoomUpdated: the room's limits and review
	// handler (ReviewURI "" = none) as of its UpdateTime. A message from a
	// node that predates versioned updates has a zero UpdateTime and no
	// handler.
	MaxMessageLength int
	MaxMessageRate   int
	UpdateTime       time.Time
	ReviewURI        string
	ReviewFallback   string
	// History belongs to KindRoomUpdated too: how many recent messages the
	// room's joiners receive (its ivschatd:history tag, or the server's
	// default), 0 = off. -1: not said (from a node that predates recent
	// messages); the receiver keeps what it has.
	History int
}

// Handler receives a room's messages. It is called for one room by one
// goroutine at a time, in publish order, and must not block: a broker may
// hold a per-room lock while calling it.
type Handler func(roomID string, m Message)

// Broker fans room traffic out to subscribers.
//
// Ordering: for one room, every subscriber on every node sees messages in the
// same order (the order the broker accepted them). Nothing is replayed: a
// subscriber sees only what is published after Subscribe returns.
type Broker interface {
	// Publish sends m to every subscriber of roomID. It returns once the
	// broker has accepted the message (for Memory: after local delivery;
	// for Redis: once Redis has it, with delivery, this node's included,
	// following asynchronously).
	Publish(ctx context.Context, roomID string, m Message) error
	// Subscribe registers h for roomID. The returned function removes the
	// subscription; it is idempotent and may be called from any goroutine,
	// but not from inside a Handler.
	Subscribe(roomID string, h Handler) (unsubscribe func(), err error)
	// Close releases the broker's resources; Publish and Subscribe fail
	// with ErrClosed afterwards.
	Close() error
}

// ErrClosed is returned by a Broker after Close.
var ErrClosed = errors.New("broker: closed")
