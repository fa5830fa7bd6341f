package messaging

import (
	"context"
	"time"

	"github.com/ivschatd/ivschatd/internal/broker"
	"github.com/ivschatd/ivschatd/internal/chat"
)

// Bans (the ivschatd BanUser extension) are checked on the handshake path
// with the store read the handshake makes anyway (Options.Bans joins the
// user's ban into the room's row), so there is no cache to invalidate: every
// node sees a ban or an unban as soon as the store has it.
//
// One race remains, and banWatch closes it. BanUser stores the ban, then
// publishes the user's disconnection to the nodes with connections in the
// room. A handshake that read the store just before the ban was stored,
// and joins its room just after its node handled that disconnection, would
// be neither refused nor disconnected. So a handshake notes, before its
// read, whether its node was subscribed to the room and how many
// disconnections the node had received; if either changed by the time it
// has joined, it reads the ban again before answering. A disconnection
// handled after the join closes the new connection like any other.

// lookupRoom is the handshake's room read: with the user's ban when bans
// are checked.
func (g *Gateway) lookupRoom(ctx context.Context, roomID, userID string, now time.Time) (*chat.Room, *chat.Ban, error) {
	if g.opts.Bans == nil {
		rm, err := g.opts.Rooms.GetRoom(ctx, roomID)
		return rm, nil, err
	}
	return g.opts.Bans.GetRoomBan(ctx, roomID, userID, now)
}

// banWatch is what a handshake knew before its ban lookup.
type banWatch struct {
	room  *room // the node's room, when subscribed; else nil
	kicks uint64
}

// watchBans is taken before the handshake's ban lookup.
func (g *Gateway) watchBans(roomID string) banWatch {
	w := banWatch{kicks: g.kicks.Load()}
	g.mu.Lock()
	r := g.rooms[roomID]
	g.mu.Unlock()
	if r != nil {
		select {
		case <-r.subscribed:
			if r.subErr == nil {
				w.room = r
			}
		default: // still subscribing: a disconnection may be missed
		}
	}
	return w
}

// recheck reports whether a ban may have been stored, and its disconnection
// missed, between the lookup and the join of c: the room was not
// subscribed on this node all along, or a disconnection arrived.
func (w banWatch) recheck(g *Gateway, c *conn) bool {
	return g.opts.Bans != nil && (w.room == nil || w.room != c.room || g.kicks.Load() != w.kicks)
}

// roomHandler is the broker handler of room r: it counts disconnections
// for banWatch before the room handles them.
func (g *Gateway) roomHandler(r *room) broker.Handler {
	if g.opts.Bans == nil {
		return r.handle
	}
	return func(roomID string, m broker.Message) {
		if m.Kind == broker.KindDisconnectUser {
			g.kicks.Add(1)
		}
		r.handle(roomID, m)
	}
}
