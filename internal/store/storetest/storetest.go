// Package storetest is the behaviour suite every store.Store implementation
// must pass. It pins down the error contract documented on store.Store so that
// the API layer can rely on it whichever backend is configured.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ivschatd/ivschatd/internal/chat"
	"github.com/ivschatd/ivschatd/internal/store"
)

// Run runs the suite. open must return a new, empty store for every call; the
// suite calls it once per subtest so that quotas and lists start from zero, and
// closes the store itself.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	s := &suite{open: open}
	tests := []struct {
		name string
		fn   func(t *testing.T, st store.Store)
	}{
		{"RoomRoundTrip", s.roomRoundTrip},
		{"RoomIsCopied", s.roomIsCopied},
		{"RoomMissing", s.roomMissing},
		{"RoomUpdate", s.roomUpdate},
		{"RoomUpdateAbort", s.roomUpdateAbort},
		{"RoomDelete", s.roomDelete},
		{"RoomQuota", s.roomQuota},
		{"RoomQuotaConcurrent", s.roomQuotaConcurrent},
		{"RoomMissingLoggingConfiguration", s.roomMissingLoggingConfiguration},
		{"DeleteReferencedLoggingConfiguration", s.deleteReferencedLoggingConfiguration},
		{"ListRoomsOrderAndPages", s.listRoomsOrderAndPages},
		{"ListRoomsFilters", s.listRoomsFilters},
		{"LoggingConfigurationRoundTrip", s.lcRoundTrip},
		{"LoggingConfigurationMissing", s.lcMissing},
		{"LoggingConfigurationUpdate", s.lcUpdate},
		{"LoggingConfigurationUpdateAbort", s.lcUpdateAbort},
		{"LoggingConfigurationDelete", s.lcDelete},
		{"LoggingConfigurationQuota", s.lcQuota},
		{"LoggingConfigurationQuotaConcurrent", s.lcQuotaConcurrent},
		{"ListLoggingConfigurationsOrderAndPages", s.listLCsOrderAndPages},
		{"TagsRoom", func(t *testing.T, st store.Store) { s.tags(t, st, chat.KindRoom) }},
		{"TagsLoggingConfiguration", func(t *testing.T, st store.Store) { s.tags(t, st, chat.KindLoggingConfiguration) }},
		{"TagsMissingResource", s.tagsMissing},
		{"ConcurrentUpdates", s.concurrentUpdates},
		{"BanRoundTrip", s.banRoundTrip},
		{"BanExpiry", s.banExpiry},
		{"BanMissingRoom", s.banMissingRoom},
		{"BanGoesWithRoom", s.banGoesWithRoom},
		{"ListBansOrderAndPages", s.listBansOrderAndPages},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := open(t)
			t.Cleanup(func() {
				if err := st.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tc.fn(t, st)
		})
	}
}

type suite struct {
	open func(t *testing.T) store.Store
}

// bigQuota is a quota no test reaches, for tests that are not about quotas.
const bigQuota = 1000

var errAbort = errors.New("storetest: update aborted on purpose")

// ---- helpers ----

func ctx(t *testing.T) context.Context { return t.Context() }

// baseTime is a fixed, microsecond-precise instant so that tests can choose
// equal or ordered UpdateTimes deterministically.
var baseTime = time.Date(2024, 5, 6, 7, 8, 9, 123456000, time.UTC)

func newLC(name string) *chat.LoggingConfiguration {
	now := chat.Now()
	return &chat.LoggingConfiguration{
		ID:          chat.NewID(),
		Name:        name,
		CreateTime:  now,
		UpdateTime:  now,
		Destination: chat.Destination{S3BucketName: "bucket-" + strings.ToLower(name)},
		State:       chat.StateActive,
		Tags:        map[string]string{},
	}
}

func newRoom(name string) *chat.Room {
	now := chat.Now()
	return &chat.Room{
		ID:                          chat.NewID(),
		Name:                        name,
		CreateTime:                  now,
		UpdateTime:                  now,
		MaximumMessageRatePerSecond: chat.DefaultMaximumMessageRatePerSecond,
		MaximumMessageLength:        chat.DefaultMaximumMessageLength,
		Tags:                        map[string]string{},
	}
}

func mustCreateLC(t *testing.T, st store.Store, lc *chat.LoggingConfiguration) *chat.LoggingConfiguration {
	t.Helper()
	if err := st.CreateLoggingConfiguration(ctx(t), lc, bigQuota); err != nil {
		t.Fatalf("CreateLoggingConfiguration(%s): %v", lc.ID, err)
	}
	return lc
}

func mustCreateRoom(t *testing.T, st store.Store, r *chat.Room) *chat.Room {
	t.Helper()
	if err := st.CreateRoom(ctx(t), r, bigQuota); err != nil {
		t.Fatalf("CreateRoom(%s): %v", r.ID, err)
	}
	return r
}

// wantError checks that err is a *chat.Error with the code (and resource ID,
// when id is not empty) and returns it.
func wantError(t *testing.T, err error, code chat.Code, id string) *chat.Error {
	t.Helper()
	if err == nil {
		t.Fatalf("got nil error, want %s", code)
	}
	var ce *chat.Error
	if !errors.As(err, &ce) {
		t.Fatalf("got %T %v, want *chat.Error %s", err, err, code)
	}
	if ce.Code != code {
		t.Fatalf("got code %s (%v), want %s", ce.Code, err, code)
	}
	if id != "" && ce.ResourceID != id {
		t.Fatalf("got ResourceID %q, want %q (%v)", ce.ResourceID, id, err)
	}
	return ce
}

func checkTime(t *testing.T, field string, got, want time.Time) {
	t.Helper()
	if !got.Equal(want) {
		t.Errorf("%s = %v, want %v (exactly)", field, got, want)
	}
	if got.Location() != time.UTC {
		t.Errorf("%s location = %v, want UTC", field, got.Location())
	}
}

// checkRoom compares every field of got with want. Tags must never be nil;
// a nil and an empty LoggingConfigurationIDs are the same.
func checkRoom(t *testing.T, got, want *chat.Room) {
	t.Helper()
	if got == nil {
		t.Fatalf("room %s: got nil", want.ID)
	}
	if got.ID != want.ID {
		t.Errorf("ID = %q, want %q", got.ID, want.ID)
	}
	if got.Name != want.Name {
		t.Errorf("Name = %q, want %q", got.Name, want.Name)
	}
	checkTime(t, "CreateTime", got.CreateTime, want.CreateTime)
	checkTime(t, "UpdateTime", got.UpdateTime, want.UpdateTime)
	if got.MaximumMessageRatePerSecond != want.MaximumMessageRatePerSecond {
		t.Errorf("MaximumMessageRatePerSecond = %d, want %d", got.MaximumMessageRatePerSecond, want.MaximumMessageRatePerSecond)
	}
	if got.MaximumMessageLength != want.MaximumMessageLength {
		t.Errorf("MaximumMessageLength = %d, want %d", got.MaximumMessageLength, want.MaximumMessageLength)
	}
	switch {
	case want.MessageReviewHandler == nil && got.MessageReviewHandler != nil:
		t.Errorf("MessageReviewHandler = %+v, want nil", *got.MessageReviewHandler)
	case want.MessageReviewHandler != nil && got.MessageReviewHandler == nil:
		t.Errorf("MessageReviewHandler = nil, want %+v", *want.MessageReviewHandler)
	case want.MessageReviewHandler != nil && *got.MessageReviewHandler != *want.MessageReviewHandler:
		t.Errorf("MessageReviewHandler = %+v, want %+v", *got.MessageReviewHandler, *want.MessageReviewHandler)
	}
	checkTags(t, got.Tags, want.Tags)
	if len(got.LoggingConfigurationIDs) != 0 || len(want.LoggingConfigurationIDs) != 0 {
		if !slices.Equal(got.LoggingConfigurationIDs, want.LoggingConfigurationIDs) {
			t.Errorf("LoggingConfigurationIDs = %q, want %q", got.LoggingConfigurationIDs, want.LoggingConfigurationIDs)
		}
	}
}

func checkLC(t *testing.T, got, want *chat.LoggingConfiguration) {
	t.Helper()
	if got == nil {
		t.Fatalf("logging configuration %s: got nil", want.ID)
	}
	if got.ID != want.ID {
		t.Errorf("ID = %q, want %q", got.ID, want.ID)
	}
	if got.Name != want.Name {
		t.Errorf("Name = %q, want %q", got.Name, want.Name)
	}
	checkTime(t, "CreateTime", got.CreateTime, want.CreateTime)
	checkTime(t, "UpdateTime", got.UpdateTime, want.UpdateTime)
	if got.Destination != want.Destination {
		t.Errorf("Destination = %+v, want %+v", got.Destination, want.Destination)
	}
	if got.State != want.State {
		t.Errorf("State = %q, want %q", got.State, want.State)
	}
	checkTags(t, got.Tags, want.Tags)
}

func checkTags(t *testing.T, got, want map[string]string) {
	t.Helper()
	if got == nil {
		t.Errorf("Tags = nil, want non-nil")
	}
	if !maps.Equal(got, want) {
		t.Errorf("Tags = %v, want %v", got, want)
	}
}

func getRoom(t *testing.T, st store.Store, id string) *chat.Room {
	t.Helper()
	r, err := st.GetRoom(ctx(t), id)
	if err != nil {
		t.Fatalf("GetRoom(%s): %v", id, err)
	}
	return r
}

func getLC(t *testing.T, st store.Store, id string) *chat.LoggingConfiguration {
	t.Helper()
	lc, err := st.GetLoggingConfiguration(ctx(t), id)
	if err != nil {
		t.Fatalf("GetLoggingConfiguration(%s): %v", id, err)
	}
	return lc
}

func cloneRoom(r *chat.Room) *chat.Room {
	c := *r
	c.Tags = maps.Clone(r.Tags)
	if c.Tags == nil {
		c.Tags = map[string]string{}
	}
	c.LoggingConfigurationIDs = slices.Clone(r.LoggingConfigurationIDs)
	if r.MessageReviewHandler != nil {
		h := *r.MessageReviewHandler
		c.MessageReviewHandler = &h
	}
	return &c
}

func cloneLC(lc *chat.LoggingConfiguration) *chat.LoggingConfiguration {
	c := *lc
	c.Tags = maps.Clone(lc.Tags)
	if c.Tags == nil {
		c.Tags = map[string]string{}
	}
	return &c
}

// ---- rooms ----

func (s *suite) roomRoundTrip(t *testing.T, st store.Store) {
	lcA := mustCreateLC(t, st, newLC("a"))
	lcB := mustCreateLC(t, st, newLC("b"))
	lcC := mustCreateLC(t, st, newLC("c"))
	// An order that is neither sorted nor creation order, to catch stores
	// that return references sorted by ID or by insertion.
	ids := []string{lcB.ID, lcC.ID, lcA.ID}
	slices.SortFunc(ids, func(a, b string) int { return -strings.Compare(a, b) })
	ids[0], ids[1] = ids[1], ids[0]

	full := newRoom("full")
	full.UpdateTime = full.CreateTime.Add(1500 * time.Microsecond)
	full.MaximumMessageRatePerSecond = 77
	full.MaximumMessageLength = 1234
	full.MessageReviewHandler = &chat.MessageReviewHandler{URI: "arn:aws:lambda:us-east-1:123456789012:function:review", FallbackResult: chat.FallbackDeny}
	full.Tags = map[string]string{"team": "video", "env": "prod", "empty": ""}
	full.LoggingConfigurationIDs = ids
	want := cloneRoom(full)
	mustCreateRoom(t, st, full)
	checkRoom(t, getRoom(t, st, full.ID), want)

	bare := newRoom("")
	bare.Tags = nil
	bare.LoggingConfigurationIDs = nil
	mustCreateRoom(t, st, bare)
	got := getRoom(t, st, bare.ID)
	checkRoom(t, got, cloneRoom(bare))
	if got.MessageReviewHandler != nil {
		t.Errorf("bare room: MessageReviewHandler = %+v, want nil", got.MessageReviewHandler)
	}

	allow := newRoom("allow")
	allow.MessageReviewHandler = &chat.MessageReviewHandler{URI: "arn:aws:lambda:us-east-1:123456789012:function:x", FallbackResult: chat.FallbackAllow}
	mustCreateRoom(t, st, allow)
	checkRoom(t, getRoom(t, st, allow.ID), cloneRoom(allow))

	// Returned values are the caller's to change: a second Get must not see
	// changes made to the first result.
	r1 := getRoom(t, st, full.ID)
	r1.Tags["team"] = "changed"
	r1.LoggingConfigurationIDs[0] = "changed"
	r1.MessageReviewHandler.URI = "changed"
	checkRoom(t, getRoom(t, st, full.ID), want)
}

func (s *suite) roomIsCopied(t *testing.T, st store.Store) {
	lc := mustCreateLC(t, st, newLC("a"))
	r := newRoom("orig")
	r.Tags = map[string]string{"k": "v"}
	r.LoggingConfigurationIDs = []string{lc.ID}
	r.MessageReviewHandler = &chat.MessageReviewHandler{URI: "u", FallbackResult: chat.FallbackAllow}
	want := cloneRoom(r)
	mustCreateRoom(t, st, r)
	// The store must not keep the caller's value.
	r.Name = "changed"
	r.Tags["k"] = "changed"
	r.LoggingConfigurationIDs[0] = "changed"
	r.MessageReviewHandler.URI = "changed"
	checkRoom(t, getRoom(t, st, r.ID), want)
}

func (s *suite) roomMissing(t *testing.T, st store.Store) {
	mustCreateRoom(t, st, newRoom("other"))
	id := chat.NewID()
	_, err := st.GetRoom(ctx(t), id)
	wantError(t, err, chat.CodeResourceNotFound, id)
	called := false
	_, err = st.UpdateRoom(ctx(t), id, func(*chat.Room) error { called = true; return nil })
	wantError(t, err, chat.CodeResourceNotFound, id)
	if called {
		t.Errorf("UpdateRoom called update for a missing room")
	}
	wantError(t, st.DeleteRoom(ctx(t), id), chat.CodeResourceNotFound, id)
}

func (s *suite) roomUpdate(t *testing.T, st store.Store) {
	lc1 := mustCreateLC(t, st, newLC("one"))
	lc2 := mustCreateLC(t, st, newLC("two"))
	lc3 := mustCreateLC(t, st, newLC("three"))
	r := newRoom("before")
	r.Tags = map[string]string{"keep": "me"}
	r.MessageReviewHandler = &chat.MessageReviewHandler{URI: "old", FallbackResult: chat.FallbackAllow}
	r.LoggingConfigurationIDs = []string{lc1.ID, lc2.ID}
	mustCreateRoom(t, st, r)

	later := r.UpdateTime.Add(3 * time.Second)
	want := cloneRoom(r)
	want.Name = "after"
	want.UpdateTime = later
	want.MaximumMessageRatePerSecond = 5
	want.MaximumMessageLength = 50
	want.MessageReviewHandler = nil
	want.LoggingConfigurationIDs = []string{lc3.ID, lc1.ID}

	got, err := st.UpdateRoom(ctx(t), r.ID, func(cur *chat.Room) error {
		checkRoom(t, cur, r) // the callback sees the stored room
		cur.Name = "after"
		cur.UpdateTime = later
		cur.MaximumMessageRatePerSecond = 5
		cur.MaximumMessageLength = 50
		cur.MessageReviewHandler = nil
		cur.LoggingConfigurationIDs = []string{lc3.ID, lc1.ID}
		// Not changed by UpdateRoom:
		cur.Tags = map[string]string{"other": "tags"}
		cur.CreateTime = later
		return nil
	})
	if err != nil {
		t.Fatalf("UpdateRoom: %v", err)
	}
	checkRoom(t, got, want)
	checkRoom(t, getRoom(t, st, r.ID), want)

	// Setting a handler and dropping every logging configuration.
	want.MessageReviewHandler = &chat.MessageReviewHandler{URI: "new", FallbackResult: chat.FallbackDeny}
	want.LoggingConfigurationIDs = nil
	got, err = st.UpdateRoom(ctx(t), r.ID, func(cur *chat.Room) error {
		cur.MessageReviewHandler = &chat.MessageReviewHandler{URI: "new", FallbackResult: chat.FallbackDeny}
		cur.LoggingConfigurationIDs = nil
		return nil
	})
	if err != nil {
		t.Fatalf("UpdateRoom: %v", err)
	}
	checkRoom(t, got, want)
	checkRoom(t, getRoom(t, st, r.ID), want)

	// A missing logging configuration aborts the update with NotFound for it.
	missing := chat.NewID()
	_, err = st.UpdateRoom(ctx(t), r.ID, func(cur *chat.Room) error {
		cur.Name = "not written"
		cur.LoggingConfigurationIDs = []string{lc2.ID, missing}
		return nil
	})
	wantError(t, err, chat.CodeResourceNotFound, missing)
	checkRoom(t, getRoom(t, st, r.ID), want)
}

func (s *suite) roomUpdateAbort(t *testing.T, st store.Store) {
	lc := mustCreateLC(t, st, newLC("a"))
	r := newRoom("keep")
	r.LoggingConfigurationIDs = []string{lc.ID}
	mustCreateRoom(t, st, r)
	_, err := st.UpdateRoom(ctx(t), r.ID, func(cur *chat.Room) error {
		cur.Name = "lost"
		cur.LoggingConfigurationIDs = nil
		return fmt.Errorf("wrapped: %w", errAbort)
	})
	if !errors.Is(err, errAbort) {
		t.Fatalf("UpdateRoom error = %v, want the callback's error", err)
	}
	checkRoom(t, getRoom(t, st, r.ID), r)

	// The reference survived the aborted update.
	wantError(t, st.DeleteLoggingConfiguration(ctx(t), lc.ID), chat.CodeConflict, "")
}

func (s *suite) roomDelete(t *testing.T, st store.Store) {
	lc := mustCreateLC(t, st, newLC("a"))
	r := newRoom("doomed")
	r.LoggingConfigurationIDs = []string{lc.ID}
	mustCreateRoom(t, st, r)
	other := mustCreateRoom(t, st, newRoom("other"))
	if err := st.DeleteRoom(ctx(t), r.ID); err != nil {
		t.Fatalf("DeleteRoom: %v", err)
	}
	_, err := st.GetRoom(ctx(t), r.ID)
	wantError(t, err, chat.CodeResourceNotFound, r.ID)
	wantError(t, st.DeleteRoom(ctx(t), r.ID), chat.CodeResourceNotFound, r.ID)
	checkRoom(t, getRoom(t, st, other.ID), other)
	rooms, err := st.ListRooms(ctx(t), store.RoomFilter{LoggingConfigurationID: lc.ID}, store.Page{Limit: 10})
	if err != nil || len(rooms) != 0 {
		t.Fatalf("ListRooms by deleted room's configuration = %d rooms, %v; want none", len(rooms), err)
	}
}

func (s *suite) roomQuota(t *testing.T, st store.Store) {
	const max = 3
	var ids []string
	for i := range max {
		r := newRoom(fmt.Sprint("r", i))
		if err := st.CreateRoom(ctx(t), r, max); err != nil {
			t.Fatalf("CreateRoom %d of %d: %v", i+1, max, err)
		}
		ids = append(ids, r.ID)
	}
	extra := newRoom("extra")
	ce := wantError(t, st.CreateRoom(ctx(t), extra, max), chat.CodeServiceQuotaExceeded, "")
	if ce.Limit != max {
		t.Errorf("Limit = %d, want %d", ce.Limit, max)
	}
	_, err := st.GetRoom(ctx(t), extra.ID)
	wantError(t, err, chat.CodeResourceNotFound, extra.ID)
	// Logging configurations have their own quota.
	if err := st.CreateLoggingConfiguration(ctx(t), newLC("lc"), max); err != nil {
		t.Fatalf("CreateLoggingConfiguration with rooms at their quota: %v", err)
	}
	// Deleting frees a slot.
	if err := st.DeleteRoom(ctx(t), ids[0]); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateRoom(ctx(t), extra, max); err != nil {
		t.Fatalf("CreateRoom after a delete: %v", err)
	}
	// A larger quota lets more in.
	if err := st.CreateRoom(ctx(t), newRoom("more"), max+1); err != nil {
		t.Fatalf("CreateRoom with a larger quota: %v", err)
	}
}

// concurrentCreates runs workers×perWorker creates at once and checks that
// exactly max succeed and all others fail with QuotaExceeded.
func concurrentCreates(t *testing.T, max int, create func() error, count func() int) {
	const workers, perWorker = 8, 4
	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		succeeded int
		errs      []error
	)
	start := make(chan struct{})
	for range workers {
		wg.Go(func() {
			<-start
			for range perWorker {
				err := create()
				mu.Lock()
				if err == nil {
					succeeded++
				} else if chat.ErrorCode(err) != chat.CodeServiceQuotaExceeded {
					errs = append(errs, err)
				}
				mu.Unlock()
			}
		})
	}
	close(start)
	wg.Wait()
	for _, err := range errs {
		t.Errorf("concurrent create: %v, want nil or QuotaExceeded", err)
	}
	if succeeded != max {
		t.Errorf("%d concurrent creates succeeded, want exactly the quota %d", succeeded, max)
	}
	if n := count(); n != max {
		t.Errorf("store holds %d, want exactly the quota %d", n, max)
	}
}

func (s *suite) roomQuotaConcurrent(t *testing.T, st store.Store) {
	const max = 5
	concurrentCreates(t, max,
		func() error { return st.CreateRoom(ctx(t), newRoom("c"), max) },
		func() int { return len(listAllRooms(t, st, store.RoomFilter{}, 100)) })
}

func (s *suite) roomMissingLoggingConfiguration(t *testing.T, st store.Store) {
	lc := mustCreateLC(t, st, newLC("present"))
	missing := chat.NewID()
	r := newRoom("bad")
	r.LoggingConfigurationIDs = []string{lc.ID, missing}
	wantError(t, st.CreateRoom(ctx(t), r, bigQuota), chat.CodeResourceNotFound, missing)
	_, err := st.GetRoom(ctx(t), r.ID)
	wantError(t, err, chat.CodeResourceNotFound, r.ID)
	if got := listAllRooms(t, st, store.RoomFilter{}, 10); len(got) != 0 {
		t.Errorf("rooms after a failed create = %v, want none", got)
	}
	// Nothing half-written keeps the present configuration referenced.
	if err := st.DeleteLoggingConfiguration(ctx(t), lc.ID); err != nil {
		t.Errorf("DeleteLoggingConfiguration after a failed room create: %v", err)
	}
}

func (s *suite) deleteReferencedLoggingConfiguration(t *testing.T, st store.Store) {
	lc1 := mustCreateLC(t, st, newLC("one"))
	lc2 := mustCreateLC(t, st, newLC("two"))
	r1 := newRoom("r1")
	r1.LoggingConfigurationIDs = []string{lc1.ID, lc2.ID}
	mustCreateRoom(t, st, r1)
	r2 := newRoom("r2")
	r2.LoggingConfigurationIDs = []string{lc2.ID}
	mustCreateRoom(t, st, r2)

	for _, lc := range []*chat.LoggingConfiguration{lc1, lc2} {
		wantError(t, st.DeleteLoggingConfiguration(ctx(t), lc.ID), chat.CodeConflict, lc.ID)
		checkLC(t, getLC(t, st, lc.ID), lc)
	}
	checkRoom(t, getRoom(t, st, r1.ID), r1)
	checkRoom(t, getRoom(t, st, r2.ID), r2)

	// Detaching lc1 from the only room that uses it allows deleting it.
	if _, err := st.UpdateRoom(ctx(t), r1.ID, func(r *chat.Room) error {
		r.LoggingConfigurationIDs = []string{lc2.ID}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteLoggingConfiguration(ctx(t), lc1.ID); err != nil {
		t.Fatalf("DeleteLoggingConfiguration after detaching: %v", err)
	}
	// lc2 is still used by both rooms; deleting one room is not enough.
	if err := st.DeleteRoom(ctx(t), r1.ID); err != nil {
		t.Fatal(err)
	}
	wantError(t, st.DeleteLoggingConfiguration(ctx(t), lc2.ID), chat.CodeConflict, lc2.ID)
	if err := st.DeleteRoom(ctx(t), r2.ID); err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteLoggingConfiguration(ctx(t), lc2.ID); err != nil {
		t.Fatalf("DeleteLoggingConfiguration after deleting the rooms: %v", err)
	}
	_, err := st.GetLoggingConfiguration(ctx(t), lc2.ID)
	wantError(t, err, chat.CodeResourceNotFound, lc2.ID)
	wantError(t, st.DeleteLoggingConfiguration(ctx(t), lc2.ID), chat.CodeResourceNotFound, lc2.ID)
}

// listAllRooms pages through ListRooms with the given page size and returns
// the rooms in order, failing on a repeated item.
func listAllRooms(t *testing.T, st store.Store, f store.RoomFilter, limit int) []*chat.Room {
	t.Helper()
	var all []*chat.Room
	seen := map[string]bool{}
	page := store.Page{Limit: limit}
	for i := 0; ; i++ {
		if i > 1000 {
			t.Fatalf("ListRooms did not end after 1000 pages")
		}
		rooms, err := st.ListRooms(ctx(t), f, page)
		if err != nil {
			t.Fatalf("ListRooms(%+v, %+v): %v", f, page, err)
		}
		if len(rooms) > limit {
			t.Fatalf("ListRooms returned %d items, limit %d", len(rooms), limit)
		}
		for _, r := range rooms {
			if seen[r.ID] {
				t.Fatalf("ListRooms returned %s twice", r.ID)
			}
			seen[r.ID] = true
		}
		all = append(all, rooms...)
		if len(rooms) < limit {
			return all
		}
		last := rooms[len(rooms)-1]
		page.After = &chat.Cursor{UpdateTime: last.UpdateTime, ID: last.ID}
	}
}

func listAllLCs(t *testing.T, st store.Store, limit int) []*chat.LoggingConfiguration {
	t.Helper()
	var all []*chat.LoggingConfiguration
	seen := map[string]bool{}
	page := store.Page{Limit: limit}
	for i := 0; ; i++ {
		if i > 1000 {
			t.Fatalf("ListLoggingConfigurations did not end after 1000 pages")
		}
		lcs, err := st.ListLoggingConfigurations(ctx(t), page)
		if err != nil {
			t.Fatalf("ListLoggingConfigurations(%+v): %v", page, err)
		}
		if len(lcs) > limit {
			t.Fatalf("ListLoggingConfigurations returned %d items, limit %d", len(lcs), limit)
		}
		for _, lc := range lcs {
			if seen[lc.ID] {
				t.Fatalf("ListLoggingConfigurations returned %s twice", lc.ID)
			}
			seen[lc.ID] = true
		}
		all = append(all, lcs...)
		if len(lcs) < limit {
			return all
		}
		last := lcs[len(lcs)-1]
		page.After = &chat.Cursor{UpdateTime: last.UpdateTime, ID: last.ID}
	}
}

// byListOrder is the documented list order: UpdateTime descending, then ID
// ascending by bytes.
func byListOrder(at, bt time.Time, aid, bid string) int {
	if c := bt.Compare(at); c != 0 {
		return c
	}
	return strings.Compare(aid, bid)
}

// spreadTimes gives item i an UpdateTime such that many items share one
// instant (ties are ordered by ID) and the rest are spread around it, not in
// creation order.
func spreadTime(i int) time.Time {
	if i%3 != 0 {
		return baseTime
	}
	return baseTime.Add(time.Duration((i*7)%11-5) * time.Microsecond)
}

func (s *suite) listRoomsOrderAndPages(t *testing.T, st store.Store) {
	const n = 20
	var want []*chat.Room
	for i := range n {
		r := newRoom(fmt.Sprint("room", i))
		r.UpdateTime = spreadTime(i)
		r.CreateTime = baseTime.Add(-time.Hour)
		want = append(want, mustCreateRoom(t, st, r))
	}
	// Make IDs that differ only in case adjacent to catch collations that are
	// not byte order (PostgreSQL's default collation is not).
	for _, id := range []string{"aaaaaaaaaaaa", "AAAAAAAAAAAB", "Zzzzzzzzzzzz", "000000000000"} {
		r := newRoom("fixed")
		r.ID = id
		r.UpdateTime = baseTime
		r.CreateTime = baseTime
		want = append(want, mustCreateRoom(t, st, r))
	}
	slices.SortFunc(want, func(a, b *chat.Room) int { return byListOrder(a.UpdateTime, b.UpdateTime, a.ID, b.ID) })

	for _, limit := range []int{1, 3, 7, len(want), len(want) + 1, 100} {
		got := listAllRooms(t, st, store.RoomFilter{}, limit)
		if len(got) != len(want) {
			t.Fatalf("limit %d: listed %d rooms, want %d", limit, len(got), len(want))
		}
		for i := range want {
			if got[i].ID != want[i].ID {
				t.Fatalf("limit %d: item %d = %s (%v), want %s (%v)", limit, i, got[i].ID, got[i].UpdateTime, want[i].ID, want[i].UpdateTime)
			}
		}
	}
	// Listed rooms are complete, not summaries.
	for _, r := range listAllRooms(t, st, store.RoomFilter{}, 5) {
		for _, w := range want {
			if w.ID == r.ID {
				checkRoom(t, r, w)
			}
		}
	}
	// A cursor need not be an existing item: it starts after the position.
	after := &chat.Cursor{UpdateTime: baseTime, ID: "B"}
	rooms, err := st.ListRooms(ctx(t), store.RoomFilter{}, store.Page{After: after, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var wantAfter []string
	for _, r := range want {
		if byListOrder(r.UpdateTime, after.UpdateTime, r.ID, after.ID) > 0 {
			wantAfter = append(wantAfter, r.ID)
		}
	}
	if gotIDs := roomIDs(rooms); !slices.Equal(gotIDs, wantAfter) {
		t.Errorf("after %+v: got %v, want %v", *after, gotIDs, wantAfter)
	}
}

func roomIDs(rs []*chat.Room) []string {
	ids := make([]string, len(rs))
	for i, r := range rs {
		ids[i] = r.ID
	}
	return ids
}

func (s *suite) listRoomsFilters(t *testing.T, st store.Store) {
	lcA := mustCreateLC(t, st, newLC("a"))
	lcB := mustCreateLC(t, st, newLC("b"))
	type spec struct {
		name, uri string
		lcs       []string
	}
	specs := []spec{
		{"alpha", "", nil},
		{"alpha", "h1", []string{lcA.ID}},
		{"alpha", "h2", []string{lcB.ID, lcA.ID}},
		{"beta", "h1", []string{lcB.ID}},
		{"beta", "", []string{lcA.ID}},
		{"beta", "h1", []string{lcA.ID, lcB.ID}},
		{"gamma", "h2", nil},
		{"alpha", "h1", []string{lcA.ID}},
		{"Alpha", "H1", nil}, // exact comparison: no case folding
		{"", "", nil},
	}
	var rooms []*chat.Room
	for i, sp := range specs {
		r := newRoom(sp.name)
		r.UpdateTime = spreadTime(i)
		if sp.uri != "" {
			r.MessageReviewHandler = &chat.MessageReviewHandler{URI: sp.uri, FallbackResult: chat.FallbackAllow}
		}
		r.LoggingConfigurationIDs = sp.lcs
		rooms = append(rooms, mustCreateRoom(t, st, r))
	}
	slices.SortFunc(rooms, func(a, b *chat.Room) int { return byListOrder(a.UpdateTime, b.UpdateTime, a.ID, b.ID) })

	match := func(r *chat.Room, f store.RoomFilter) bool {
		if f.Name != "" && r.Name != f.Name {
			return false
		}
		if f.MessageReviewHandlerURI != "" && (r.MessageReviewHandler == nil || r.MessageReviewHandler.URI != f.MessageReviewHandlerURI) {
			return false
		}
		if f.LoggingConfigurationID != "" && !slices.Contains(r.LoggingConfigurationIDs, f.LoggingConfigurationID) {
			return false
		}
		return true
	}
	var filters []store.RoomFilter
	for _, name := range []string{"", "alpha", "beta", "Alpha", "nope"} {
		for _, uri := range []string{"", "h1", "h2", "H1"} {
			for _, lc := range []string{"", lcA.ID, lcB.ID, chat.NewID()} {
				filters = append(filters, store.RoomFilter{Name: name, MessageReviewHandlerURI: uri, LoggingConfigurationID: lc})
			}
		}
	}
	for _, f := range filters {
		var want []string
		for _, r := range rooms {
			if match(r, f) {
				want = append(want, r.ID)
			}
		}
		for _, limit := range []int{2, 100} {
			got := roomIDs(listAllRooms(t, st, f, limit))
			if len(got) != 0 || len(want) != 0 {
				if !slices.Equal(got, want) {
					t.Errorf("filter %+v, limit %d: got %v, want %v", f, limit, got, want)
				}
			}
		}
	}
}

// ---- logging configurations ----

func (s *suite) lcRoundTrip(t *testing.T, st store.Store) {
	dests := []chat.Destination{
		{S3BucketName: "my-bucket"},
		{CloudWatchLogGroupName: "/aws/ivschat/log-group"},
		{FirehoseDeliveryStreamName: "stream-1"},
	}
	states := []string{chat.StateActive, chat.StateCreating, chat.StateUpdateFailed}
	for i, d := range dests {
		lc := newLC(fmt.Sprint("lc", i))
		lc.UpdateTime = lc.CreateTime.Add(time.Duration(i+1) * time.Microsecond)
		lc.Destination = d
		lc.State = states[i]
		lc.Tags = map[string]string{"i": fmt.Sprint(i)}
		want := cloneLC(lc)
		mustCreateLC(t, st, lc)
		lc.Tags["i"] = "changed" // the store must not keep the caller's map
		got := getLC(t, st, lc.ID)
		checkLC(t, got, want)
		got.Tags["i"] = "changed"
		checkLC(t, getLC(t, st, lc.ID), want)
	}
	bare := newLC("")
	bare.Tags = nil
	mustCreateLC(t, st, bare)
	checkLC(t, getLC(t, st, bare.ID), cloneLC(bare))
}

func (s *suite) lcMissing(t *testing.T, st store.Store) {
	mustCreateLC(t, st, newLC("other"))
	id := chat.NewID()
	_, err := st.GetLoggingConfiguration(ctx(t), id)
	wantError(t, err, chat.CodeResourceNotFound, id)
	called := false
	_, err = st.UpdateLoggingConfiguration(ctx(t), id, func(*chat.LoggingConfiguration) error { called = true; return nil })
	wantError(t, err, chat.CodeResourceNotFound, id)
	if called {
		t.Errorf("UpdateLoggingConfiguration called update for a missing configuration")
	}
	wantError(t, st.DeleteLoggingConfiguration(ctx(t), id), chat.CodeResourceNotFound, id)
}

func (s *suite) lcUpdate(t *testing.T, st store.Store) {
	lc := newLC("before")
	lc.Tags = map[string]string{"keep": "me"}
	mustCreateLC(t, st, lc)
	later := lc.UpdateTime.Add(time.Minute)
	want := cloneLC(lc)
	want.Name = "after"
	want.UpdateTime = later
	want.Destination = chat.Destination{FirehoseDeliveryStreamName: "fh"}
	want.State = chat.StateUpdating
	got, err := st.UpdateLoggingConfiguration(ctx(t), lc.ID, func(cur *chat.LoggingConfiguration) error {
		checkLC(t, cur, lc)
		cur.Name = "after"
		cur.UpdateTime = later
		cur.Destination = chat.Destination{FirehoseDeliveryStreamName: "fh"}
		cur.State = chat.StateUpdating
		cur.Tags = map[string]string{"ignored": "yes"}
		cur.CreateTime = later
		return nil
	})
	if err != nil {
		t.Fatalf("UpdateLoggingConfiguration: %v", err)
	}
	checkLC(t, got, want)
	checkLC(t, getLC(t, st, lc.ID), want)
}

func (s *suite) lcUpdateAbort(t *testing.T, st store.Store) {
	lc := mustCreateLC(t, st, newLC("keep"))
	_, err := st.UpdateLoggingConfiguration(ctx(t), lc.ID, func(cur *chat.LoggingConfiguration) error {
		cur.Name = "lost"
		cur.State = chat.StateDeleting
		return errAbort
	})
	if !errors.Is(err, errAbort) {
		t.Fatalf("UpdateLoggingConfiguration error = %v, want the callback's error", err)
	}
	checkLC(t, getLC(t, st, lc.ID), lc)
}

func (s *suite) lcDelete(t *testing.T, st store.Store) {
	lc := mustCreateLC(t, st, newLC("doomed"))
	other := mustCreateLC(t, st, newLC("other"))
	if err := st.DeleteLoggingConfiguration(ctx(t), lc.ID); err != nil {
		t.Fatalf("DeleteLoggingConfiguration: %v", err)
	}
	_, err := st.GetLoggingConfiguration(ctx(t), lc.ID)
	wantError(t, err, chat.CodeResourceNotFound, lc.ID)
	wantError(t, st.DeleteLoggingConfiguration(ctx(t), lc.ID), chat.CodeResourceNotFound, lc.ID)
	checkLC(t, getLC(t, st, other.ID), other)
	// A deleted configuration can no longer be referenced.
	r := newRoom("r")
	r.LoggingConfigurationIDs = []string{lc.ID}
	wantError(t, st.CreateRoom(ctx(t), r, bigQuota), chat.CodeResourceNotFound, lc.ID)
}

func (s *suite) lcQuota(t *testing.T, st store.Store) {
	const max = 2
	var ids []string
	for i := range max {
		lc := newLC(fmt.Sprint("lc", i))
		if err := st.CreateLoggingConfiguration(ctx(t), lc, max); err != nil {
			t.Fatalf("CreateLoggingConfiguration %d of %d: %v", i+1, max, err)
		}
		ids = append(ids, lc.ID)
	}
	extra := newLC("extra")
	ce := wantError(t, st.CreateLoggingConfiguration(ctx(t), extra, max), chat.CodeServiceQuotaExceeded, "")
	if ce.Limit != max {
		t.Errorf("Limit = %d, want %d", ce.Limit, max)
	}
	_, err := st.GetLoggingConfiguration(ctx(t), extra.ID)
	wantError(t, err, chat.CodeResourceNotFound, extra.ID)
	if err := st.CreateRoom(ctx(t), newRoom("room"), max); err != nil {
		t.Fatalf("CreateRoom with configurations at their quota: %v", err)
	}
	if err := st.DeleteLoggingConfiguration(ctx(t), ids[0]); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateLoggingConfiguration(ctx(t), extra, max); err != nil {
		t.Fatalf("CreateLoggingConfiguration after a delete: %v", err)
	}
}

func (s *suite) lcQuotaConcurrent(t *testing.T, st store.Store) {
	const max = 6
	concurrentCreates(t, max,
		func() error { return st.CreateLoggingConfiguration(ctx(t), newLC("c"), max) },
		func() int { return len(listAllLCs(t, st, 100)) })
}

func (s *suite) listLCsOrderAndPages(t *testing.T, st store.Store) {
	const n = 17
	var want []*chat.LoggingConfiguration
	for i := range n {
		lc := newLC(fmt.Sprint("lc", i))
		lc.UpdateTime = spreadTime(i)
		want = append(want, mustCreateLC(t, st, lc))
	}
	for _, id := range []string{"bbbbbbbbbbbb", "BBBBBBBBBBBC", "999999999999"} {
		lc := newLC("fixed")
		lc.ID = id
		lc.UpdateTime = baseTime
		want = append(want, mustCreateLC(t, st, lc))
	}
	slices.SortFunc(want, func(a, b *chat.LoggingConfiguration) int {
		return byListOrder(a.UpdateTime, b.UpdateTime, a.ID, b.ID)
	})
	for _, limit := range []int{1, 4, len(want), 50} {
		got := listAllLCs(t, st, limit)
		if len(got) != len(want) {
			t.Fatalf("limit %d: listed %d, want %d", limit, len(got), len(want))
		}
		for i := range want {
			if got[i].ID != want[i].ID {
				t.Fatalf("limit %d: item %d = %s, want %s", limit, i, got[i].ID, want[i].ID)
			}
			checkLC(t, got[i], want[i])
		}
	}
}

// ---- tags ----

func (s *suite) tags(t *testing.T, st store.Store, kind chat.Kind) {
	var id string
	initial := map[string]string{"a": "1", "b": "2"}
	if kind == chat.KindRoom {
		r := newRoom("tagged")
		r.Tags = maps.Clone(initial)
		id = mustCreateRoom(t, st, r).ID
	} else {
		lc := newLC("tagged")
		lc.Tags = maps.Clone(initial)
		id = mustCreateLC(t, st, lc).ID
	}
	// The resource's own view must agree with Tags.
	checkBoth := func(want map[string]string) {
		t.Helper()
		got, err := st.Tags(ctx(t), kind, id)
		if err != nil {
			t.Fatalf("Tags: %v", err)
		}
		checkTags(t, got, want)
		if kind == chat.KindRoom {
			checkTags(t, getRoom(t, st, id).Tags, want)
		} else {
			checkTags(t, getLC(t, st, id).Tags, want)
		}
	}
	checkBoth(initial)

	// Merge: new keys added, equal keys overwritten, others kept.
	in := map[string]string{"b": "two", "c": "3"}
	if err := st.TagResource(ctx(t), kind, id, in); err != nil {
		t.Fatalf("TagResource: %v", err)
	}
	in["c"] = "changed" // the store must not keep the caller's map
	want := map[string]string{"a": "1", "b": "two", "c": "3"}
	checkBoth(want)
	got, _ := st.Tags(ctx(t), kind, id)
	got["a"] = "changed"
	checkBoth(want)

	// Tagging changes neither UpdateTime nor anything else.
	if kind == chat.KindRoom {
		if r := getRoom(t, st, id); !r.UpdateTime.Equal(r.CreateTime) {
			t.Errorf("TagResource changed UpdateTime")
		}
	}

	// Up to the limit after the merge is fine; one more is not.
	fill := map[string]string{}
	for i := 0; len(want)+len(fill) < chat.MaxTagsPerResource; i++ {
		fill[fmt.Sprint("k", i)] = "v"
	}
	fill["a"] = "overwrite" // an existing key does not count twice
	if err := st.TagResource(ctx(t), kind, id, fill); err != nil {
		t.Fatalf("TagResource up to %d tags: %v", chat.MaxTagsPerResource, err)
	}
	maps.Copy(want, fill)
	if len(want) != chat.MaxTagsPerResource {
		t.Fatalf("test bug: %d tags", len(want))
	}
	checkBoth(want)
	ce := wantError(t, st.TagResource(ctx(t), kind, id, map[string]string{"one-too-many": "x", "a": "not written"}), chat.CodeValidation, "")
	if len(ce.Fields) != 1 || ce.Fields[0].Name != "tags" {
		t.Errorf("Fields = %+v, want one named tags", ce.Fields)
	}
	checkBoth(want)
	// Overwriting only is fine at the limit.
	if err := st.TagResource(ctx(t), kind, id, map[string]string{"a": "again"}); err != nil {
		t.Fatalf("TagResource overwriting at the limit: %v", err)
	}
	want["a"] = "again"

	// Untag: present and absent keys together.
	if err := st.UntagResource(ctx(t), kind, id, []string{"a", "absent", "k0"}); err != nil {
		t.Fatalf("UntagResource: %v", err)
	}
	delete(want, "a")
	delete(want, "k0")
	checkBoth(want)
	if err := st.UntagResource(ctx(t), kind, id, []string{"absent"}); err != nil {
		t.Fatalf("UntagResource of an absent key: %v", err)
	}
	if err := st.UntagResource(ctx(t), kind, id, nil); err != nil {
		t.Fatalf("UntagResource of no keys: %v", err)
	}
	checkBoth(want)
	if err := st.UntagResource(ctx(t), kind, id, slices.Collect(maps.Keys(want))); err != nil {
		t.Fatalf("UntagResource of all keys: %v", err)
	}
	checkBoth(map[string]string{})
	if err := st.TagResource(ctx(t), kind, id, map[string]string{}); err != nil {
		t.Fatalf("TagResource with no tags: %v", err)
	}
	checkBoth(map[string]string{})
}

func (s *suite) tagsMissing(t *testing.T, st store.Store) {
	// A room and a configuration exist, each under the other kind's ID, so a
	// store that ignores kind is caught.
	r := mustCreateRoom(t, st, newRoom("r"))
	lc := mustCreateLC(t, st, newLC("lc"))
	cases := []struct {
		kind chat.Kind
		id   string
	}{
		{chat.KindRoom, chat.NewID()},
		{chat.KindLoggingConfiguration, chat.NewID()},
		{chat.KindRoom, lc.ID},
		{chat.KindLoggingConfiguration, r.ID},
	}
	for _, c := range cases {
		wantError(t, st.TagResource(ctx(t), c.kind, c.id, map[string]string{"k": "v"}), chat.CodeResourceNotFound, c.id)
		wantError(t, st.UntagResource(ctx(t), c.kind, c.id, []string{"k"}), chat.CodeResourceNotFound, c.id)
		_, err := st.Tags(ctx(t), c.kind, c.id)
		wantError(t, err, chat.CodeResourceNotFound, c.id)
	}
	checkTags(t, getRoom(t, st, r.ID).Tags, map[string]string{})
	checkTags(t, getLC(t, st, lc.ID).Tags, map[string]string{})
}

// concurrentUpdates checks that read-modify-write operations are atomic: no
// concurrent update or tag merge is lost.
func (s *suite) concurrentUpdates(t *testing.T, st store.Store) {
	r := mustCreateRoom(t, st, newRoom("counter"))
	lc := mustCreateLC(t, st, newLC("counter"))
	const workers, each = 6, 5
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				if _, err := st.UpdateRoom(ctx(t), r.ID, func(cur *chat.Room) error {
					cur.MaximumMessageLength++
					return nil
				}); err != nil {
					t.Errorf("UpdateRoom: %v", err)
				}
				if _, err := st.UpdateLoggingConfiguration(ctx(t), lc.ID, func(cur *chat.LoggingConfiguration) error {
					cur.Name += "x"
					return nil
				}); err != nil {
					t.Errorf("UpdateLoggingConfiguration: %v", err)
				}
				key := fmt.Sprintf("w%d-%d", w, i)
				if err := st.TagResource(ctx(t), chat.KindRoom, r.ID, map[string]string{key: "v"}); err != nil {
					t.Errorf("TagResource: %v", err)
				}
			}
		})
	}
	wg.Wait()
	got := getRoom(t, st, r.ID)
	if want := r.MaximumMessageLength + workers*each; got.MaximumMessageLength != want {
		t.Errorf("MaximumMessageLength after %d concurrent increments = %d, want %d", workers*each, got.MaximumMessageLength, want)
	}
	if len(got.Tags) != workers*each {
		t.Errorf("%d tags after %d concurrent merges of distinct keys, want %d", len(got.Tags), workers*each, workers*each)
	}
	if gotLC := getLC(t, st, lc.ID); len(gotLC.Name) != len(lc.Name)+workers*each {
		t.Errorf("logging configuration name %q: lost concurrent updates", gotLC.Name)
	}
}
