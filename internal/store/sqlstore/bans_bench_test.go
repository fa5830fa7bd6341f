package sqlstore

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/ivschatd/ivschatd/internal/chat"
)

// The chat handshake reads its room with GetRoomBan instead of GetRoom;
// these measure what the joined ban costs next to BenchmarkGetRoom*: rooms
// with 100 bans each, every other lookup of a banned user.

func addBans(b *testing.B, s *Store, ids []string) {
	ctx := context.Background()
	now := chat.Now()
	for _, id := range ids {
		for u := range 100 {
			ban := &chat.Ban{RoomID: id, UserID: fmt.Sprint("banned-", u), Reason: "r", CreatedAt: now}
			if u%2 == 1 {
				ban.ExpiresAt = now.Add(time.Hour)
			}
			if _, err := s.BanUser(ctx, ban); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// benchGetRoomBan measures GetRoom and GetRoomBan on the same rooms.
func benchGetRoomBan(b *testing.B, s *Store, ids []string) {
	ctx := benchCtx(b)
	b.Run("GetRoom", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				if _, err := s.GetRoom(ctx, ids[i%len(ids)]); err != nil {
					b.Error(err)
					return
				}
				i++
			}
		})
	})
	b.Run("GetRoomBan", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				user := "viewer"
				if i%2 == 0 {
					user = fmt.Sprint("banned-", i%100)
				}
				if _, ban, err := s.GetRoomBan(ctx, ids[i%len(ids)], user, time.Now()); err != nil || (ban != nil) != (i%2 == 0) {
					b.Error(ban, err)
					return
				}
				i++
			}
		})
	})
}

func BenchmarkGetRoomBanSQLite(b *testing.B) {
	s, ids := benchStore(b)
	addBans(b, s, ids[:100])
	benchGetRoomBan(b, s, ids[:100])
}

func BenchmarkGetRoomBanPostgres(b *testing.B) {
	if os.Getenv(urlEnv) == "" {
		b.Skip(urlEnv + " not set")
	}
	s := openPostgres(b)
	defer s.Close()
	ids := seedPostgresRooms(b, s)
	addBans(b, s, ids)
	benchGetRoomBan(b, s, ids)
}
