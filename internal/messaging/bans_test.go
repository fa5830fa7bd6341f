package messaging

import (
	"bytes"
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/ivschatd/ivschatd/internal/chat"
)

// memBans is a BanSource over memRooms with bans kept in a map, honouring
// the store's contract (the room and the user's ban in force at now). A
// test may hold the next lookup between its read and its answer, which is
// how a handshake whose read happened just before a ban looks.
type memBans struct {
	*memRooms
	mu   sync.Mutex
	bans map[[2]string]chat.Ban
	// hold, when set, is closed by the next lookup once it has read, and
	// the lookup then waits for release before answering.
	hold, release chan struct{}
}

func (m *memBans) ban(roomID, userID string, until time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.bans[[2]string{roomID, userID}] = chat.Ban{RoomID: roomID, UserID: userID, CreatedAt: time.Now(), ExpiresAt: until}
}

func (m *memBans) GetRoomBan(ctx context.Context, roomID, userID string, now time.Time) (*chat.Room, *chat.Ban, error) {
	rm, err := m.GetRoom(ctx, roomID)
	if err != nil {
		return nil, nil, err
	}
	m.mu.Lock()
	b, ok := m.bans[[2]string{roomID, userID}]
	hold, release := m.hold, m.release
	m.hold = nil
	m.mu.Unlock()
	if hold != nil {
		close(hold)
		<-release
	}
	if !ok || !b.InForce(now) {
		return rm, nil, nil
	}
	return rm, &b, nil
}

func newBanEnv(t *testing.T) (*env, *memBans) {
	var bans *memBans
	e := newEnv(t, func(o *Options) {
		bans = &memBans{memRooms: o.Rooms.(*memRooms), bans: map[[2]string]chat.Ban{}}
		o.Bans = bans
	})
	return e, bans
}

func TestBannedHandshakeRefused(t *testing.T) {
	e, bans := newBanEnv(t)
	bans.ban("room1", "mallory", time.Time{})
	bans.ban("room2", "eve", time.Now().Add(-time.Second)) // expired
	tok := e.token(t, "room1", "mallory")
	for range 2 {
		if _, status, _ := e.tryDial(tok); status != http.StatusForbidden {
			t.Fatalf("banned user's handshake: status %d, want 403", status)
		}
	}
	if got := e.g.Stats().RejectedByReason["banned"]; got != 2 {
		t.Errorf("rejections banned = %d, want 2", got)
	}
	// Banned from room1 only, and an expired ban keeps nobody out.
	e.connect(t, "room2", "mallory").close()
	e.connect(t, "room2", "eve").close()
	// The refused token was not used up: it opens once the ban is lifted.
	bans.mu.Lock()
	delete(bans.bans, [2]string{"room1", "mallory"})
	bans.mu.Unlock()
	e.dial(t, tok).close()
}

// TestBanRacingHandshake: the handshake's lookup answers "not banned" as
// of before the ban; the ban is stored and its disconnection handled before
// the handshake joins the room. The handshake must notice and look again.
func TestBanRacingHandshake(t *testing.T) {
	for _, subscribed := range []bool{true, false} {
		name := "room not subscribed on the node"
		if subscribed {
			name = "room subscribed on the node"
		}
		t.Run(name, func(t *testing.T) {
			e, bans := newBanEnv(t)
			if subscribed {
				other := e.connect(t, "room1", "alice")
				defer other.close()
			}
			tok := e.token(t, "room1", "mallory")
			bans.mu.Lock()
			bans.hold, bans.release = make(chan struct{}), make(chan struct{})
			hold, release := bans.hold, bans.release
			bans.mu.Unlock()
			result := make(chan int, 1)
			go func() {
				c, status, _ := e.tryDial(tok)
				if c != nil {
					c.close()
				}
				result <- status
			}()
			<-hold
			// BanUser's order: store the ban, then disconnect the user.
			bans.ban("room1", "mallory", time.Time{})
			if err := e.g.DisconnectUser(context.Background(), "room1", "mallory", "banned"); err != nil {
				t.Fatal(err)
			}
			close(release)
			if status := <-result; status != http.StatusForbidden {
				t.Errorf("handshake racing the ban: status %d, want 403", status)
			}
			// Only alice, not banned, stays connected.
			if got, want := e.g.Stats().Connections, map[bool]int64{true: 1, false: 0}[subscribed]; got != want {
				t.Errorf("open connections = %d, want %d", got, want)
			}
		})
	}
}

// TestBanDisconnectsAfterJoin: a connection that joined before the
// disconnection arrived is closed by it (the usual DisconnectUser path).
func TestBanDisconnectsAfterJoin(t *testing.T) {
	e, bans := newBanEnv(t)
	c := e.connect(t, "room1", "mallory")
	defer c.close()
	bans.ban("room1", "mallory", time.Time{})
	if err := e.g.DisconnectUser(context.Background(), "room1", "mallory", "spam"); err != nil {
		t.Fatal(err)
	}
	op, p := c.next(t)
	if op != ws.OpText || !bytes.Contains(p, []byte(`"EventName":"aws:DISCONNECT_USER"`)) {
		t.Fatalf("first frame = %v %s, want the aws:DISCONNECT_USER event", op, p)
	}
	if op, _ := c.next(t); op != ws.OpClose {
		t.Fatalf("then %v, want close", op)
	}
	if _, status, _ := e.tryDial(e.token(t, "room1", "mallory")); status != http.StatusForbidden {
		t.Fatalf("reconnect: status %d, want 403", status)
	}
}
