package chatlog

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ivschatd/ivschatd/internal/chat"
	"github.com/ivschatd/ivschatd/internal/testlog"
)

// activeSegment returns the base LSN and on-disk size of the highest
// segment file in a destination's spool directory.
func activeSegment(t testing.TB, dir string) (uint64, int64) {
	t.Helper()
	segs, err := filepath.Glob(filepath.Join(dir, "*.seg"))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(segs)
	for i := len(segs) - 1; i >= 0; i-- {
		fi, err := os.Stat(segs[i])
		if err != nil {
			t.Fatal(err)
		}
		if !fi.Mode().IsRegular() {
			continue // the test's obstacle
		}
		var base uint64
		if _, err := fmt.Sscanf(filepath.Base(segs[i]), "%d.seg", &base); err != nil {
			t.Fatal(err)
		}
		return base, fi.Size()
	}
	t.Fatalf("no segment files in %s", dir)
	return 0, 0
}

// recordUntilRollDue records fixed-size frames one at a time until the next
// one no longer fits the active segment, and returns the IDs recorded and the
// base LSN the next segment will have. The destination must be down, so no
// delivery makes the spool roll early.
func recordUntilRollDue(t *testing.T, p *Pipeline, room, segDir, prefix string, segSize int64) ([]string, uint64) {
	t.Helper()
	ctx := context.Background()
	var ids []string
	var entry int64
	for i := 0; ; i++ {
		id := fmt.Sprintf("%s%04d", prefix, i)
		if err := p.Record(ctx, room, "MESSAGE", frame(id), time.Now()); err != nil {
			t.Fatalf("record %s: %v", id, err)
		}
		ids = append(ids, id)
		base, size := activeSegment(t, segDir)
		if entry == 0 {
			entry = size // the first entry of a fresh spool
		}
		if size+entry > segSize {
			return ids, base + uint64(size)
		}
	}
}

// A segment roll that fails (the next segment's name is taken by a
// directory, so creating it fails with EISDIR, an error the real filesystem
// produces) refuses the records written meanwhile — Record wraps
// ErrNotRecorded, FailedToSpool counts them, one Warn line per 10 s says so —
// and the spool recovers by itself as soon as the segment can be created: no
// restart, nothing acknowledged lost, nothing refused delivered.
func TestSpoolRecoversAfterFailedRoll(t *testing.T) {
	var logs *testlog.Buffer
	fh, p, opts := downFirehoseRoom(t, func(opts *Options) {
		opts.MaxSpoolBytes = 256 << 10 // 32 KiB segments
		opts.RetryBase, opts.RetryMax = 5*time.Millisecond, 20*time.Millisecond
		opts.Logger, logs = capturingLogger(t)
	})
	ctx := context.Background()
	segDir := filepath.Join(opts.Dir, dirName(KindFirehose, "fh1"))

	ok, next := recordUntilRollDue(t, p, "roomA", segDir, "a", segmentSize(opts.MaxSpoolBytes))
	_, sizeBefore := activeSegment(t, segDir)
	blocker := filepath.Join(segDir, segName(next))
	if err := os.Mkdir(blocker, 0o700); err != nil {
		t.Fatal(err)
	}
	var refused []string
	for i := range 3 {
		id := fmt.Sprint("fail", i)
		err := p.Record(ctx, "roomA", "MESSAGE", frame(id), time.Now())
		if !errors.Is(err, ErrNotRecorded) {
			t.Fatalf("Record during the fault = %v, want ErrNotRecorded", err)
		}
		refused = append(refused, id)
	}
	st := p.Stats().Destinations["firehose:fh1"]
	if st.FailedToSpool != 3 || st.Spooled != uint64(len(ok)) {
		t.Fatalf("stats during the fault: %+v, want 3 failed and %d spooled", st, len(ok))
	}
	if n := logs.Count("level=WARN", "cannot write to the spool", "destination=firehose:fh1"); n != 1 {
		t.Errorf("%d Warn lines for 3 failures within 10 s, want 1 (rate limited)", n)
	}
	if _, size := activeSegment(t, segDir); size != sizeBefore {
		t.Errorf("active segment %d bytes after the failures, %d before", size, sizeBefore)
	}

	// The fault goes away: the next record rolls and is spooled, and so are
	// enough after it to roll again.
	if err := os.Remove(blocker); err != nil {
		t.Fatal(err)
	}
	more, _ := recordUntilRollDue(t, p, "roomA", segDir, "b", segmentSize(opts.MaxSpoolBytes))
	ok = append(ok, more...)
	for i := range 10 {
		id := fmt.Sprint("c", i)
		if err := p.Record(ctx, "roomA", "MESSAGE", frame(id), time.Now()); err != nil {
			t.Fatalf("record %s after the fault: %v", id, err)
		}
		ok = append(ok, id)
	}
	if logs.Count("level=INFO", "spool writable again", "destination=firehose:fh1") != 1 {
		t.Error("recovery not logged")
	}
	if st := p.Stats().Destinations["firehose:fh1"]; st.FailedToSpool != 3 || st.Spooled != uint64(len(ok)) {
		t.Fatalf("stats after recovery: %+v, want 3 failed and %d spooled", st, len(ok))
	}

	fh.down.Store(false)
	waitFor(t, "delivery", 10*time.Second, func() bool { return fh.ids.len() >= len(ok) })
	for _, id := range ok {
		if fh.ids.count(id) == 0 {
			t.Fatalf("acknowledged record %s lost", id)
		}
	}
	for _, id := range refused {
		if fh.ids.count(id) != 0 {
			t.Fatalf("refused record %s delivered", id)
		}
	}
	if fh.ids.len() != len(ok) {
		t.Fatalf("%d distinct records delivered, want %d", fh.ids.len(), len(ok))
	}
}

// When the store cannot be read, a room whose routing is known keeps it
// (chat goes on during a database blip, even right after the room changed)
// and is not held up by the failing store on every record; a room with
// nothing known has its records refused. Once the store answers again,
// routing is read again.
func TestRouteStoreFailure(t *testing.T) {
	store := newMemStore()
	store.addRoom("known", chat.Destination{S3BucketName: "b"})
	store.addRoom("unknown", chat.Destination{S3BucketName: "b"})
	opts := testOptions(t, store)
	opts.RouteTTL = time.Hour
	var logs *testlog.Buffer
	opts.Logger, logs = capturingLogger(t)
	p := mustOpen(t, opts)
	defer closeP(t, p, time.Second)
	ctx := context.Background()
	rec := func(room, id string) error { return p.Record(ctx, room, "MESSAGE", frame(id), time.Now()) }
	if err := rec("known", "k0"); err != nil {
		t.Fatal(err)
	}
	p.RoomChanged("known") // e.g. renamed through the API just before the blip

	store.failWith(errors.New("dial tcp 127.0.0.1:5432: connect: connection refused"))
	gets := store.gets.Load()
	start := time.Now()
	const n = 20
	for i := range n {
		if err := rec("known", fmt.Sprint("k", i+1)); err != nil {
			t.Fatalf("known room during a store failure: %v", err)
		}
	}
	elapsed := time.Since(start)
	// One read found the store failing; after that at most one per
	// storeRetry tries again.
	if tries, max := store.gets.Load()-gets, 1+int64(elapsed/storeRetry)+1; tries > max {
		t.Errorf("%d store reads for %d records in %v; want at most %d", tries, n, elapsed, max)
	}
	if err := rec("unknown", "u0"); !errors.Is(err, ErrNotRecorded) {
		t.Fatalf("unknown room during a store failure: %v, want ErrNotRecorded", err)
	}
	s := p.Stats()
	if s.RoutesStale != n || s.RoutesRefused != 1 || s.Destinations["s3:b"].Spooled != n+1 {
		t.Fatalf("stats %+v, want %d stale, 1 refused, %d spooled", s, n, n+1)
	}
	if logs.Count("level=WARN", "using the last known ones") != 1 || logs.Count("level=WARN", "record refused") != 1 {
		t.Error("route failures not logged once per kind and 10 s")
	}

	store.failWith(nil)
	if err := rec("unknown", "u1"); err != nil {
		t.Fatalf("unknown room after the store is back: %v", err)
	}
	// The known room's changed routing is read once the store is back.
	store.addRoom("known") // its configuration was detached
	waitFor(t, "known room re-read", 5*time.Second, func() bool {
		before := p.Stats().Destinations["s3:b"].Spooled
		if err := rec("known", "probe"); err != nil {
			t.Fatal(err)
		}
		return p.Stats().Destinations["s3:b"].Spooled == before
	})
}

// A store that stops answering costs a room with known routing at most
// RouteLookupTimeout, not the sender's whole wait.
func TestRouteStoreHangs(t *testing.T) {
	store := newMemStore()
	store.addRoom("roomA", chat.Destination{S3BucketName: "b"})
	opts := testOptions(t, store)
	opts.RouteTTL = time.Hour
	opts.RouteLookupTimeout = 20 * time.Millisecond
	p := mustOpen(t, opts)
	defer closeP(t, p, time.Second)
	ctx := context.Background()
	if err := p.Record(ctx, "roomA", "MESSAGE", frame("h0"), time.Now()); err != nil {
		t.Fatal(err)
	}
	p.LoggingConfigurationChanged("roomA-lc0")
	store.hang()
	// The caller's context has no deadline (the gateway's reader): without
	// the lookup timeout this would block for ever.
	if err := p.Record(ctx, "roomA", "MESSAGE", frame("h1"), time.Now()); err != nil {
		t.Fatal(err)
	}
	if s := p.Stats(); s.RoutesStale != 1 || s.Destinations["s3:b"].Spooled != 2 {
		t.Fatalf("stats %+v", s)
	}
}

// A change made through another node (nobody calls RoomChanged here) takes
// effect once the routing is older than RouteTTL.
func TestRouteTTL(t *testing.T) {
	store := newMemStore()
	store.addRoom("roomA")
	opts := testOptions(t, store)
	opts.RouteTTL = 50 * time.Millisecond
	p := mustOpen(t, opts)
	defer closeP(t, p, time.Second)
	ctx := context.Background()
	if err := p.Record(ctx, "roomA", "MESSAGE", frame("t0"), time.Now()); err != nil {
		t.Fatal(err)
	}
	store.addRoom("roomA", chat.Destination{FirehoseDeliveryStreamName: "fh"})
	waitFor(t, "routing refreshed", 5*time.Second, func() bool {
		if err := p.Record(ctx, "roomA", "MESSAGE", frame("t1"), time.Now()); err != nil {
			t.Fatal(err)
		}
		return p.Stats().Destinations["firehose:fh"].Spooled > 0
	})
}

// A room whose routing is past RouteTTL, with nothing signalling a change,
// keeps recording on the known routing while one background read refreshes
// it: a store that stopped answering (a frozen database) holds no record up,
// and however many records find the routing expired, one read runs at a time.
// What the refresh finds is used once the store answers again.
func TestRouteTTLRefreshesInBackground(t *testing.T) {
	const lookupTimeout = 500 * time.Millisecond
	store := newMemStore()
	store.addRoom("roomA", chat.Destination{S3BucketName: "b"})
	opts := testOptions(t, store)
	opts.RouteTTL = 50 * time.Millisecond
	opts.RouteLookupTimeout = lookupTimeout
	p := mustOpen(t, opts)
	defer closeP(t, p, time.Second)
	ctx := context.Background()
	rec := func(id string) {
		t.Helper()
		start := time.Now()
		if err := p.Record(ctx, "roomA", "MESSAGE", frame(id), time.Now()); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d >= lookupTimeout/2 {
			t.Fatalf("record %s took %v: it waited for the store (lookup timeout %v)", id, d, lookupTimeout)
		}
	}
	rec("b0")
	store.hang()
	time.Sleep(2 * opts.RouteTTL)
	gets := store.gets.Load()
	const n = 20
	for i := range n {
		rec(fmt.Sprint("b", i+1))
	}
	if reads := store.gets.Load() - gets; reads != 1 {
		t.Errorf("%d store reads for %d records past the TTL, want 1 (single-flight)", reads, n)
	}
	if s := p.Stats(); s.Destinations["s3:b"].Spooled != n+1 || s.RoutesRefused != 0 {
		t.Fatalf("stats %+v, want %d spooled on the known routing", s, n+1)
	}
	waitFor(t, "the hung refresh counted", 5*time.Second, func() bool { return p.Stats().RouteRefreshFailures >= 1 })

	// The store answers again, with the room's configuration detached and
	// another attached: a later record's refresh brings the change.
	store.addRoom("roomA", chat.Destination{FirehoseDeliveryStreamName: "fh"})
	store.setFault(nil)
	waitFor(t, "routing refreshed after the store came back", 5*time.Second, func() bool {
		rec("probe")
		return p.Stats().Destinations["firehose:fh"].Spooled > 0
	})
}

// While a configuration's new destination is checked (UPDATING), its rooms
// keep recording to the destination last seen ACTIVE; once it settles ACTIVE
// they record to the new one, and nothing in between is lost.
func TestUpdatingKeepsLastActiveDestination(t *testing.T) {
	store := newMemStore()
	store.addRoom("roomA", chat.Destination{FirehoseDeliveryStreamName: "old"})
	opts := testOptions(t, store)
	p := mustOpen(t, opts)
	defer closeP(t, p, time.Second)
	ctx := context.Background()
	rec := func(id string) {
		t.Helper()
		if err := p.Record(ctx, "roomA", "MESSAGE", frame(id), time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	setLC := func(state, stream string) {
		store.mu.Lock()
		lc := store.lcs["roomA-lc0"]
		lc.State, lc.Destination = state, chat.Destination{FirehoseDeliveryStreamName: stream}
		store.mu.Unlock()
		p.LoggingConfigurationChanged("roomA-lc0")
	}
	rec("u0")
	setLC(chat.StateUpdating, "new")
	rec("u1")
	if s := p.Stats().Destinations; s["firehose:old"].Spooled != 2 || s["firehose:new"].Spooled != 0 {
		t.Fatalf("while UPDATING: %+v", s)
	}
	setLC(chat.StateActive, "new")
	rec("u2")
	if s := p.Stats().Destinations; s["firehose:old"].Spooled != 2 || s["firehose:new"].Spooled != 1 {
		t.Fatalf("after ACTIVE: %+v", s)
	}
	// A failed update records nothing.
	setLC(chat.StateUpdating, "broken")
	rec("u3")
	setLC(chat.StateUpdateFailed, "broken")
	rec("u4")
	if s := p.Stats().Destinations; s["firehose:new"].Spooled != 2 || s["firehose:broken"].Spooled != 0 {
		t.Fatalf("after UPDATE_FAILED: %+v", s)
	}
}

// Every error Record returns says the frame was not recorded.
func TestRecordErrorsWrapErrNotRecorded(t *testing.T) {
	store := newMemStore()
	store.addRoom("roomA", chat.Destination{FirehoseDeliveryStreamName: "fh1"})
	p := mustOpen(t, testOptions(t, store))
	ctx := context.Background()
	for _, tc := range []struct {
		typ     string
		payload []byte
	}{{"ERROR", frame("e")}, {"MESSAGE", []byte(`{"Id":`)}, {"MESSAGE", []byte(`"` + strings.Repeat("x", maxEntryBody) + `"`)}} {
		if err := p.Record(ctx, "roomA", tc.typ, tc.payload, time.Now()); !errors.Is(err, ErrNotRecorded) {
			t.Errorf("Record(%s, %.20s) = %v, want ErrNotRecorded", tc.typ, tc.payload, err)
		}
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := p.Record(cctx, "roomA", "MESSAGE", frame("c"), time.Now()); err != nil && !errors.Is(err, ErrNotRecorded) {
		t.Errorf("Record with a cancelled context = %v", err)
	}
	closeP(t, p, time.Second)
	if err := p.Record(ctx, "roomA", "MESSAGE", frame("late"), time.Now()); !errors.Is(err, ErrNotRecorded) || !errors.Is(err, ErrClosed) {
		t.Fatalf("Record after Close: %v", err)
	}
}

// RoomChanged (what a node calls when the broker says another node changed
// the room, or announced a change of one of its configurations) re-reads the
// configurations the room references, not only the room.
func TestRoomChangedRereadsConfigurations(t *testing.T) {
	store := newMemStore()
	store.addRoom("roomA", chat.Destination{FirehoseDeliveryStreamName: "old"})
	opts := testOptions(t, store)
	opts.RouteTTL = time.Hour
	p := mustOpen(t, opts)
	defer closeP(t, p, time.Second)
	ctx := context.Background()
	rec := func(id string) {
		t.Helper()
		if err := p.Record(ctx, "roomA", "MESSAGE", frame(id), time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	rec("r0")
	store.mu.Lock()
	store.lcs["roomA-lc0"].Destination = chat.Destination{FirehoseDeliveryStreamName: "new"}
	store.mu.Unlock()
	p.RoomChanged("roomA")
	rec("r1")
	if s := p.Stats().Destinations; s["firehose:old"].Spooled != 1 || s["firehose:new"].Spooled != 1 {
		t.Fatalf("after RoomChanged: %+v", s)
	}
}

// RouteTTL bounds the age of everything a room's routing was made of: a room
// read after another room cached their shared configuration expires with that
// configuration, not a TTL later.
func TestRouteTTLCountsCachedConfigurations(t *testing.T) {
	const ttl = 600 * time.Millisecond
	store := newMemStore()
	store.addRoom("roomA", chat.Destination{FirehoseDeliveryStreamName: "old"})
	store.mu.Lock()
	store.rooms["roomB"] = &chat.Room{ID: "roomB", LoggingConfigurationIDs: []string{"roomA-lc0"}}
	store.mu.Unlock()
	opts := testOptions(t, store)
	opts.RouteTTL = ttl
	p := mustOpen(t, opts)
	defer closeP(t, p, time.Second)
	ctx := context.Background()
	rec := func(room, id string) {
		t.Helper()
		if err := p.Record(ctx, room, "MESSAGE", frame(id), time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	rec("roomA", "a0") // caches the configuration
	time.Sleep(ttl * 2 / 3)
	rec("roomB", "b0") // uses the cached configuration
	store.mu.Lock()
	store.lcs["roomA-lc0"].Destination = chat.Destination{FirehoseDeliveryStreamName: "new"}
	store.mu.Unlock()
	changed := time.Now()
	waitFor(t, "roomB follows the change", 5*time.Second, func() bool {
		rec("roomB", "b1")
		return p.Stats().Destinations["firehose:new"].Spooled > 0
	})
	// At the configuration's expiry (≈ ttl/3 after the change), not one TTL
	// after roomB was read (≈ ttl after it); half the gap is slack.
	if d := time.Since(changed); d > ttl*2/3 {
		t.Fatalf("roomB followed the change after %v, want at its configuration's expiry (route TTL %v)", d, ttl)
	}
}
