package messaging

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/ivschatd/ivschatd/internal/chat"
	"github.com/ivschatd/ivschatd/internal/store"
)

// failingRooms is a RoomSource whose reads fail with err.
type failingRooms struct{ err error }

func (f failingRooms) GetRoom(context.Context, string) (*chat.Room, error) { return nil, f.err }

// A handshake whose room cannot be read answers 503 when the store is
// unavailable (clients and load balancers retry) and 500 for other faults;
// either way the token is not used up and the refusal is counted.
func TestRoomLookupFailureStatus(t *testing.T) {
	for _, c := range []struct {
		err  error
		want int
	}{
		{fmt.Errorf("%w: postgres: get room: connection refused", store.ErrUnavailable), http.StatusServiceUnavailable},
		{errors.New("sqlite: get room: decode tags: bad JSON"), http.StatusInternalServerError},
	} {
		e := newEnv(t, func(o *Options) { o.Rooms = failingRooms{c.err} })
		if _, status, err := e.tryDial(e.token(t, "room1", "u")); err == nil || status != c.want {
			t.Errorf("store error %q: status %d (%v), want %d", c.err, status, err, c.want)
		}
		if n := e.g.Stats().RejectedByReason["room_lookup_failed"]; n != 1 {
			t.Errorf("room_lookup_failed refusals = %d, want 1", n)
		}
	}
}
