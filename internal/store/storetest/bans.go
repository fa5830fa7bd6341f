package storetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/ivschatd/ivschatd/internal/chat"
	"github.com/ivschatd/ivschatd/internal/store"
)

// ---- bans ----

func mustBan(t *testing.T, st store.Store, b chat.Ban) *chat.Ban {
	t.Helper()
	got, err := st.BanUser(ctx(t), &b)
	if err != nil {
		t.Fatalf("BanUser(%s, %s): %v", b.RoomID, b.UserID, err)
	}
	return got
}

func checkBan(t *testing.T, got *chat.Ban, want chat.Ban) {
	t.Helper()
	if got == nil {
		t.Fatalf("ban of %q = nil, want %+v", want.UserID, want)
	}
	if got.RoomID != want.RoomID || got.UserID != want.UserID || got.Reason != want.Reason {
		t.Errorf("ban = %+v, want %+v", *got, want)
	}
	checkTime(t, "CreatedAt", got.CreatedAt, want.CreatedAt)
	if want.ExpiresAt.IsZero() {
		if !got.ExpiresAt.IsZero() {
			t.Errorf("ExpiresAt = %v, want none", got.ExpiresAt)
		}
	} else {
		checkTime(t, "ExpiresAt", got.ExpiresAt, want.ExpiresAt)
	}
}

// roomBan reads the room with the user's ban at now, checking the room.
func roomBan(t *testing.T, st store.Store, r *chat.Room, userID string, now time.Time) *chat.Ban {
	t.Helper()
	got, ban, err := st.GetRoomBan(ctx(t), r.ID, userID, now)
	if err != nil {
		t.Fatalf("GetRoomBan(%s, %s): %v", r.ID, userID, err)
	}
	checkRoom(t, got, r)
	return ban
}

func (s *suite) banRoundTrip(t *testing.T, st store.Store) {
	lc := mustCreateLC(t, st, newLC("a"))
	r := newRoom("banned-from")
	r.LoggingConfigurationIDs = []string{lc.ID}
	r.Tags = map[string]string{"k": "v"}
	mustCreateRoom(t, st, r)
	now := chat.Now()
	forever := chat.Ban{RoomID: r.ID, UserID: "mallory", Reason: "spam", CreatedAt: now}
	checkBan(t, mustBan(t, st, forever), forever)
	timed := chat.Ban{RoomID: r.ID, UserID: "user-ü 2", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	checkBan(t, mustBan(t, st, timed), timed)

	checkBan(t, roomBan(t, st, r, "mallory", now.Add(24*365*time.Hour)), forever)
	checkBan(t, roomBan(t, st, r, "user-ü 2", now), timed)
	if b := roomBan(t, st, r, "alice", now); b != nil {
		t.Errorf("GetRoomBan of a user never banned = %+v, want nil", b)
	}
	if b := roomBan(t, st, r, "MALLORY", now); b != nil {
		t.Errorf("GetRoomBan is case-insensitive: %+v", b)
	}

	// Banning again replaces reason and expiry and keeps CreatedAt.
	later := now.Add(time.Minute)
	again := mustBan(t, st, chat.Ban{RoomID: r.ID, UserID: "mallory", Reason: "more spam", CreatedAt: later, ExpiresAt: later.Add(time.Minute)})
	want := chat.Ban{RoomID: r.ID, UserID: "mallory", Reason: "more spam", CreatedAt: now, ExpiresAt: later.Add(time.Minute)}
	checkBan(t, again, want)
	checkBan(t, roomBan(t, st, r, "mallory", later), want)

	// Unbanning lets the user in; unbanning again is not an error.
	for range 2 {
		if err := st.UnbanUser(ctx(t), r.ID, "mallory", later); err != nil {
			t.Fatalf("UnbanUser: %v", err)
		}
	}
	if b := roomBan(t, st, r, "mallory", later); b != nil {
		t.Errorf("GetRoomBan after UnbanUser = %+v, want nil", b)
	}
	checkBan(t, roomBan(t, st, r, "user-ü 2", later), timed)
	if err := st.UnbanUser(ctx(t), "nosuchroom01", "x", later); err != nil {
		t.Errorf("UnbanUser in a missing room: %v", err)
	}
}

func (s *suite) banExpiry(t *testing.T, st store.Store) {
	r := mustCreateRoom(t, st, newRoom("r"))
	now := chat.Now()
	end := now.Add(time.Minute)
	b := chat.Ban{RoomID: r.ID, UserID: "u", Reason: "r1", CreatedAt: now, ExpiresAt: end}
	mustBan(t, st, b)
	checkBan(t, roomBan(t, st, r, "u", end.Add(-time.Microsecond)), b)
	if got := roomBan(t, st, r, "u", end); got != nil {
		t.Errorf("ban at its ExpiresAt = %+v, want nil (expired)", got)
	}
	if got, err := st.ListBans(ctx(t), r.ID, end, "", 0); err != nil || len(got) != 0 {
		t.Errorf("ListBans after expiry = %v, %v; want none", got, err)
	}
	// A ban after the previous one expired starts afresh.
	later := end.Add(time.Second)
	fresh := chat.Ban{RoomID: r.ID, UserID: "u", Reason: "r2", CreatedAt: later}
	checkBan(t, mustBan(t, st, fresh), fresh)
	checkBan(t, roomBan(t, st, r, "u", later.Add(1000*time.Hour)), fresh)
}

func (s *suite) banMissingRoom(t *testing.T, st store.Store) {
	_, err := st.BanUser(ctx(t), &chat.Ban{RoomID: "nosuchroom01", UserID: "u", CreatedAt: chat.Now()})
	wantError(t, err, chat.CodeResourceNotFound, "nosuchroom01")
	_, _, err = st.GetRoomBan(ctx(t), "nosuchroom01", "u", chat.Now())
	wantError(t, err, chat.CodeResourceNotFound, "nosuchroom01")
	if got, err := st.ListBans(ctx(t), "nosuchroom01", chat.Now(), "", 10); err != nil || len(got) != 0 {
		t.Errorf("ListBans of a missing room = %v, %v; want none", got, err)
	}
}

func (s *suite) banGoesWithRoom(t *testing.T, st store.Store) {
	r := mustCreateRoom(t, st, newRoom("r"))
	other := mustCreateRoom(t, st, newRoom("other"))
	now := chat.Now()
	mustBan(t, st, chat.Ban{RoomID: r.ID, UserID: "u", CreatedAt: now})
	mustBan(t, st, chat.Ban{RoomID: other.ID, UserID: "u", CreatedAt: now})
	if err := st.DeleteRoom(ctx(t), r.ID); err != nil {
		t.Fatalf("DeleteRoom: %v", err)
	}
	// A room created again with the same ID starts without bans.
	again := newRoom("again")
	again.ID = r.ID
	mustCreateRoom(t, st, again)
	if b := roomBan(t, st, again, "u", now); b != nil {
		t.Errorf("ban survived its room's deletion: %+v", b)
	}
	if b := roomBan(t, st, other, "u", now); b == nil {
		t.Error("deleting a room removed another room's ban")
	}
}

func (s *suite) listBansOrderAndPages(t *testing.T, st store.Store) {
	r := mustCreateRoom(t, st, newRoom("r"))
	other := mustCreateRoom(t, st, newRoom("other"))
	now := chat.Now()
	var want []string
	for i := range 7 {
		// Mixed case: the order is bytewise ("B" < "a").
		id := fmt.Sprintf("%c-user-%d", "aBcDeFg"[6-i], i)
		mustBan(t, st, chat.Ban{RoomID: r.ID, UserID: id, Reason: "r", CreatedAt: now})
		want = append(want, id)
	}
	mustBan(t, st, chat.Ban{RoomID: r.ID, UserID: "expired", CreatedAt: now, ExpiresAt: now.Add(time.Second)})
	mustBan(t, st, chat.Ban{RoomID: other.ID, UserID: "elsewhere", CreatedAt: now})
	slices.Sort(want)
	at := now.Add(time.Second) // "expired" has just ended
	var got []string
	after := ""
	for pages := 0; ; pages++ {
		if pages > len(want) {
			t.Fatal("ListBans does not end")
		}
		page, err := st.ListBans(ctx(t), r.ID, at, after, 3)
		if err != nil {
			t.Fatalf("ListBans: %v", err)
		}
		if len(page) > 3 {
			t.Fatalf("ListBans returned %d bans, limit 3", len(page))
		}
		for _, b := range page {
			if b.RoomID != r.ID || b.Reason != "r" || !b.CreatedAt.Equal(now) || !b.ExpiresAt.IsZero() {
				t.Errorf("listed ban = %+v", *b)
			}
			got = append(got, b.UserID)
		}
		if len(page) < 3 {
			break
		}
		after = page[len(page)-1].UserID
	}
	if !slices.Equal(got, want) {
		t.Errorf("ListBans pages = %q, want %q", got, want)
	}
}
