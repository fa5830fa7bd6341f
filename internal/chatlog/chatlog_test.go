package chatlog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/ivschatd/ivschatd/internal/chat"
)

var s3KeyRE = regexp.MustCompile(`^AWSLogs/123456789012/IVSChatLogs/1\.0/us-west-2/room_([A-Za-z0-9]+)/(\d{4})/(\d{2})/(\d{2})/(\d{2})/123456789012_IVSChatLogs_1\.0_us-west-2_room_([A-Za-z0-9]+)_(\d{8}T\d{4}Z)_[0-9a-f]{16}\.log\.gz$`)

// checkS3Key checks the key layout against the first record of the object.
func checkS3Key(t *testing.T, key string, first logRecord) string {
	t.Helper()
	m := s3KeyRE.FindStringSubmatch(key)
	if m == nil {
		t.Fatalf("S3 key %q does not match the IVS layout", key)
	}
	if m[1] != m[6] {
		t.Fatalf("S3 key %q names two rooms", key)
	}
	ts, _ := time.Parse("2006-01-02T15:04:05.000Z", first.EventTimestamp)
	if got, want := strings.Join(m[2:6], "/"), ts.Format("2006/01/02/15"); got != want {
		t.Fatalf("S3 key %q hour folder %s, first record at %s", key, got, want)
	}
	if m[7] != ts.Format("20060102T1504Z") {
		t.Fatalf("S3 key %q timestamp %s, first record at %s", key, m[7], first.EventTimestamp)
	}
	return m[1]
}

func TestLocalFilesDefault(t *testing.T) {
	store := newMemStore()
	store.addRoom("roomA",
		chat.Destination{S3BucketName: "bucket1"},
		chat.Destination{CloudWatchLogGroupName: "/ivs/chat"},
		chat.Destination{FirehoseDeliveryStreamName: "fh1"})
	// A configuration that is not ACTIVE is skipped.
	store.lcs["creating"] = &chat.LoggingConfiguration{ID: "creating", State: chat.StateCreating, Destination: chat.Destination{FirehoseDeliveryStreamName: "never"}}
	store.rooms["roomA"].LoggingConfigurationIDs = append(store.rooms["roomA"].LoggingConfigurationIDs, "creating")
	store.addRoom("quiet")
	opts := testOptions(t, store)
	p := mustOpen(t, opts)
	ctx := context.Background()
	at := time.Date(2024, 5, 1, 10, 59, 59, 999_700_000, time.UTC)
	const n = 40
	for i := range n {
		typ, fr := "MESSAGE", frame(fmt.Sprint("m", i))
		if i%4 == 3 {
			typ, fr = "EVENT", eventFrame(fmt.Sprint("e", i))
		}
		if err := p.Record(ctx, "roomA", typ, fr, at.Add(time.Duration(i)*10*time.Millisecond)); err != nil {
			t.Fatal(err)
		}
		if err := p.Record(ctx, "quiet", "MESSAGE", frame("q"), at); err != nil {
			t.Fatal(err)
		}
	}
	closeP(t, p, 5*time.Second)

	st := p.Stats().Destinations
	for _, k := range []string{"s3:bucket1", "cloudWatchLogs:/ivs/chat", "firehose:fh1"} {
		if st[k].Spooled != n || st[k].Delivered != n {
			t.Errorf("%s stats %+v, want %d spooled and delivered", k, st[k], n)
		}
	}
	if _, ok := st["firehose:never"]; ok || len(st) != 3 {
		t.Errorf("unexpected destinations %v", st)
	}

	// S3: gzip NDJSON objects under s3/<bucket>/<key>; records straddle an
	// hour, so two objects.
	var ids idSet
	var keys []string
	root := filepath.Join(opts.LocalDir, "s3", "bucket1")
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		key, _ := filepath.Rel(root, path)
		keys = append(keys, key)
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		ls := lines(gunzip(t, b))
		first, _ := checkRecord(t, ls[0])
		if room := checkS3Key(t, filepath.ToSlash(key), first); room != "roomA" {
			t.Errorf("object for room %s", room)
		}
		for _, l := range ls {
			_, id := checkRecord(t, l)
			ids.add(id)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) < 2 || ids.len() != n || ids.dups() != 0 {
		t.Fatalf("S3 objects %v hold %d distinct records (%d dups), want ≥2 objects (one per hour) and %d", keys, ids.len(), ids.dups(), n)
	}

	// CloudWatch Logs: <group>/<stream>.log.
	checkLines := func(path string) {
		t.Helper()
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		ls := lines(b)
		if len(ls) != n {
			t.Fatalf("%s: %d lines, want %d", path, len(ls), n)
		}
		for i, l := range ls {
			r, _ := checkRecord(t, l)
			if i > 0 && r.EventTimestamp < string(lines(b)[i-1][20:44]) {
				t.Fatalf("%s: out of order", path)
			}
		}
	}
	checkLines(filepath.Join(opts.LocalDir, "cloudwatchlogs", "ivs", "chat", "aws", "IVSChatLogs", "1.0", "room_roomA.log"))
	checkLines(filepath.Join(opts.LocalDir, "firehose", "fh1.log"))
}

func TestQuietRoomNoIO(t *testing.T) {
	store := newMemStore()
	store.addRoom("quiet")
	opts := testOptions(t, store)
	p := mustOpen(t, opts)
	defer closeP(t, p, time.Second)
	ctx := context.Background()
	for range 100 {
		if err := p.Record(ctx, "quiet", "MESSAGE", frame("x"), time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	if g := store.gets.Load(); g != 1 {
		t.Fatalf("GetRoom called %d times; routing should be cached", g)
	}
	if des, _ := os.ReadDir(opts.Dir); len(des) != 0 {
		t.Fatalf("spool has %d entries for a room without logging", len(des))
	}
	if testing.AllocsPerRun(100, func() { _ = p.Record(ctx, "quiet", "MESSAGE", frame("x"), time.Now()) }) > 4 /* frame() */ {
		t.Fatal("Record for a quiet room allocates")
	}

	// Attaching a configuration takes effect after RoomChanged.
	store.addRoom("quiet", chat.Destination{FirehoseDeliveryStreamName: "fh"})
	p.RoomChanged("quiet")
	if err := p.Record(ctx, "quiet", "MESSAGE", frame("after"), time.Now()); err != nil {
		t.Fatal(err)
	}
	if s := p.Stats().Destinations["firehose:fh"]; s.Spooled != 1 {
		t.Fatalf("after RoomChanged: %+v", s)
	}
	// A configuration leaving ACTIVE stops logging after LoggingConfigurationChanged.
	store.mu.Lock()
	store.lcs["quiet-lc0"].State = chat.StateDeleting
	store.mu.Unlock()
	p.LoggingConfigurationChanged("quiet-lc0")
	if err := p.Record(ctx, "quiet", "MESSAGE", frame("gone"), time.Now()); err != nil {
		t.Fatal(err)
	}
	if s := p.Stats().Destinations["firehose:fh"]; s.Spooled != 1 {
		t.Fatalf("after LoggingConfigurationChanged: %+v", s)
	}
}

func TestS3(t *testing.T) {
	backend := s3mem.New()
	if err := backend.CreateBucket("chatlogs"); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gofakes3.New(backend).Server())
	defer srv.Close()

	store := newMemStore()
	store.addRoom("roomA", chat.Destination{S3BucketName: "chatlogs"})
	store.addRoom("roomB", chat.Destination{S3BucketName: "chatlogs"})
	opts := testOptions(t, store)
	opts.Destinations.S3 = staticEndpoint(srv.URL)
	opts.S3BatchBytes = 4 << 10 // several batches
	p := mustOpen(t, opts)
	ctx := context.Background()
	const n = 60
	at := time.Now().UTC()
	for i := range n {
		room := []string{"roomA", "roomB"}[i%2]
		if err := p.Record(ctx, room, "MESSAGE", frame(fmt.Sprint("s", i)), at); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "S3 delivery", 10*time.Second, func() bool { return p.Stats().Destinations["s3:chatlogs"].Delivered == n })
	closeP(t, p, time.Second)

	client := s3.New(s3.Options{BaseEndpoint: aws.String(srv.URL), Region: "us-west-2", UsePathStyle: true, Credentials: aws.AnonymousCredentials{}})
	list, err := client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("chatlogs")})
	if err != nil {
		t.Fatal(err)
	}
	var ids idSet
	rooms := map[string]int{}
	for _, o := range list.Contents {
		got, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("chatlogs"), Key: o.Key})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(got.Body)
		got.Body.Close()
		ls := lines(gunzip(t, b))
		first, _ := checkRecord(t, ls[0])
		room := checkS3Key(t, *o.Key, first)
		for _, l := range ls {
			_, id := checkRecord(t, l)
			var i int
			fmt.Sscanf(id, "s%d", &i)
			if want := []string{"roomA", "roomB"}[i%2]; want != room {
				t.Errorf("record %s of %s in object of %s", id, want, room)
			}
			ids.add(id)
			rooms[room]++
		}
	}
	if ids.len() != n || ids.dups() != 0 || len(list.Contents) < 4 {
		t.Fatalf("%d objects with %d distinct records (%d dups), want ≥4 objects and %d", len(list.Contents), ids.len(), ids.dups(), n)
	}
}

func TestCloudWatchLogs(t *testing.T) {
	srv := newCWLServer(t, "/ivs/chat")
	store := newMemStore()
	store.addRoom("roomA", chat.Destination{CloudWatchLogGroupName: "/ivs/chat"})
	store.addRoom("roomB", chat.Destination{CloudWatchLogGroupName: "/ivs/chat"})
	opts := testOptions(t, store)
	opts.Destinations.CloudWatchLogs = staticEndpoint(srv.URL)
	// The stream of roomB already exists: CreateLogStream is not needed.
	srv.streams["aws/IVSChatLogs/1.0/room_roomB"] = []string{}
	p := mustOpen(t, opts)
	defer closeP(t, p, time.Second)
	ctx := context.Background()
	const n = 50
	base := time.Now().UTC()
	for i := range n {
		room := []string{"roomA", "roomB"}[i%2]
		// Timestamps go backwards within the batch: the sink must sort.
		if err := p.Record(ctx, room, "MESSAGE", frame(fmt.Sprint("c", i)), base.Add(-time.Duration(i)*time.Millisecond)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "CloudWatch Logs delivery", 10*time.Second, func() bool { return srv.ids.len() == n })
	if a, b := len(srv.stream("aws/IVSChatLogs/1.0/room_roomA")), len(srv.stream("aws/IVSChatLogs/1.0/room_roomB")); a != n/2 || b != n/2 {
		t.Fatalf("streams hold %d and %d events", a, b)
	}
	if c := srv.callCount("Logs_20140328.CreateLogStream"); c != 1 {
		t.Fatalf("CreateLogStream called %d times, want 1 (roomA only)", c)
	}
}

func TestFirehosePartialFailure(t *testing.T) {
	srv := newFirehoseServer(t, "fh1")
	srv.failFirst.Store(true)
	store := newMemStore()
	store.addRoom("roomA", chat.Destination{FirehoseDeliveryStreamName: "fh1"})
	opts := testOptions(t, store)
	opts.Destinations.Firehose = staticEndpoint(srv.URL)
	p := mustOpen(t, opts)
	defer closeP(t, p, time.Second)
	ctx := context.Background()
	const n = 20
	for i := range n {
		if err := p.Record(ctx, "roomA", "MESSAGE", frame(fmt.Sprint("f", i)), time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "Firehose delivery", 10*time.Second, func() bool { return p.Stats().Destinations["firehose:fh1"].Delivered == n })
	if srv.ids.len() != n || srv.ids.dups() != 0 {
		t.Fatalf("firehose got %d distinct, %d dups; only failed entries must be retried", srv.ids.len(), srv.ids.dups())
	}
	if s := p.Stats().Destinations["firehose:fh1"]; s.FailedAttempts == 0 {
		t.Fatalf("stats %+v: the partial failure is not counted", s)
	}
}

// TestDestinationDown: records spooled while the destination is down survive
// Close and reach it after a restart.
func TestDestinationDown(t *testing.T) {
	fh := newFirehoseServer(t, "fh1")
	cwl := newCWLServer(t, "grp")
	fh.down.Store(true)
	cwl.down.Store(true)
	store := newMemStore()
	store.addRoom("roomA", chat.Destination{FirehoseDeliveryStreamName: "fh1"}, chat.Destination{CloudWatchLogGroupName: "grp"})
	opts := testOptions(t, store)
	opts.Destinations.Firehose = staticEndpoint(fh.URL)
	opts.Destinations.CloudWatchLogs = staticEndpoint(cwl.URL)
	opts.RetryBase, opts.RetryMax = 5*time.Millisecond, 20*time.Millisecond
	opts.MaxSpoolBytes = 1 << 20 // 128 KiB segments: several of them

	p := mustOpen(t, opts)
	ctx := context.Background()
	const n = 300
	for i := range n {
		if err := p.Record(ctx, "roomA", "MESSAGE", frame(fmt.Sprint("d", i)), time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "failed attempts", 5*time.Second, func() bool {
		s := p.Stats().Destinations
		return s["firehose:fh1"].FailedAttempts >= 3 && s["cloudWatchLogs:grp"].FailedAttempts >= 3
	})
	closeP(t, p, time.Second)
	if fh.ids.len() != 0 {
		t.Fatal("delivered while down")
	}

	fh.down.Store(false)
	cwl.down.Store(false)
	p = mustOpen(t, opts)
	defer closeP(t, p, time.Second)
	waitFor(t, "replay", 10*time.Second, func() bool { return fh.ids.len() == n && cwl.ids.len() == n })
	for i := range n {
		if id := fmt.Sprint("d", i); fh.ids.count(id) == 0 || cwl.ids.count(id) == 0 {
			t.Fatalf("record %s lost", id)
		}
	}
	t.Logf("duplicates: firehose %d, cloudwatch %d", fh.ids.dups(), cwl.ids.dups())
	// Delivered segments are deleted.
	segs, _ := filepath.Glob(filepath.Join(opts.Dir, "firehose~fh1", "*.seg"))
	if len(segs) != 1 {
		t.Fatalf("%d segments left after delivery", len(segs))
	}
}

func TestSpoolFull(t *testing.T) {
	fh := newFirehoseServer(t, "fh1")
	fh.down.Store(true)
	store := newMemStore()
	store.addRoom("roomA", chat.Destination{FirehoseDeliveryStreamName: "fh1"}, chat.Destination{S3BucketName: "b"})
	opts := testOptions(t, store)
	opts.MaxSpoolBytes = 64 << 10
	opts.Destinations.Firehose = staticEndpoint(fh.URL)
	p := mustOpen(t, opts)
	ctx := context.Background()
	const n = 400
	start := time.Now()
	for i := range n {
		// A full spool drops the record for that destination only and chat
		// goes on: Record reports no failure.
		if err := p.Record(ctx, "roomA", "MESSAGE", frame(fmt.Sprint("x", i)), time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	elapsed := time.Since(start)
	s := p.Stats().Destinations
	f := s["firehose:fh1"]
	if f.Dropped == 0 || f.Spooled+f.Dropped != n || f.FailedToSpool != 0 {
		t.Fatalf("firehose stats %+v", f)
	}
	if f.SpoolBytes > opts.MaxSpoolBytes {
		t.Fatalf("spool %d bytes over the %d bound", f.SpoolBytes, opts.MaxSpoolBytes)
	}
	// The healthy destination keeps up: the full one does not hold it back.
	waitFor(t, "healthy destination", 5*time.Second, func() bool {
		h := p.Stats().Destinations["s3:b"]
		return h.Delivered == h.Spooled && h.Spooled+h.Dropped == n
	})
	if h := p.Stats().Destinations["s3:b"]; h.Dropped*10 > n {
		t.Errorf("healthy destination dropped %d of %d", h.Dropped, n)
	}
	if elapsed > 5*time.Second {
		t.Fatalf("recording with a full spool took %v", elapsed)
	}
	// Back up: what was spooled arrives.
	fh.down.Store(false)
	waitFor(t, "delivery after outage", 10*time.Second, func() bool { return uint64(fh.ids.len()) == f.Spooled })
	closeP(t, p, time.Second)
	t.Logf("spooled %d, dropped %d of %d in %v", f.Spooled, f.Dropped, n, elapsed)
}

// TestTornTail: a partly written last entry (kill -9 mid-write) is cut off
// at Open, earlier records are delivered and new ones appended after it.
func TestTornTail(t *testing.T) {
	fh := newFirehoseServer(t, "fh1")
	fh.down.Store(true)
	store := newMemStore()
	store.addRoom("roomA", chat.Destination{FirehoseDeliveryStreamName: "fh1"})
	opts := testOptions(t, store)
	opts.Destinations.Firehose = staticEndpoint(fh.URL)
	p := mustOpen(t, opts)
	ctx := context.Background()
	for i := range 10 {
		if err := p.Record(ctx, "roomA", "MESSAGE", frame(fmt.Sprint("t", i)), time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	closeP(t, p, 100*time.Millisecond)

	segs, _ := filepath.Glob(filepath.Join(opts.Dir, "firehose~fh1", "*.seg"))
	last := segs[len(segs)-1]
	fi, _ := os.Stat(last)
	if err := os.Truncate(last, fi.Size()-7); err != nil {
		t.Fatal(err)
	}
	fh.down.Store(false)
	p = mustOpen(t, opts)
	defer closeP(t, p, time.Second)
	if err := p.Record(ctx, "roomA", "MESSAGE", frame("after"), time.Now()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "delivery", 5*time.Second, func() bool { return fh.ids.count("after") == 1 })
	for i := range 9 {
		if fh.ids.count(fmt.Sprint("t", i)) == 0 {
			t.Fatalf("record t%d lost", i)
		}
	}
	if fh.ids.count("t9") != 0 {
		t.Fatal("torn record delivered")
	}

	// Garbage instead of a short tail is cut off too.
	closeP(t, p, time.Second)
	f, _ := os.OpenFile(last, os.O_WRONLY|os.O_APPEND, 0)
	f.Write(bytes.Repeat([]byte{0xff}, 100))
	f.Close()
	p = mustOpen(t, opts)
	defer closeP(t, p, time.Second)
	if err := p.Record(ctx, "roomA", "MESSAGE", frame("after2"), time.Now()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "delivery", 5*time.Second, func() bool { return fh.ids.count("after2") == 1 })
}

func TestRecordValidation(t *testing.T) {
	store := newMemStore()
	store.addRoom("roomA", chat.Destination{FirehoseDeliveryStreamName: "fh1"})
	p := mustOpen(t, testOptions(t, store))
	ctx := context.Background()
	if err := p.Record(ctx, "roomA", "ERROR", frame("e"), time.Now()); err == nil {
		t.Fatal("ERROR frame accepted")
	}
	if err := p.Record(ctx, "roomA", "MESSAGE", []byte(`{"Id":`), time.Now()); err == nil {
		t.Fatal("invalid JSON accepted")
	}
	// A multi-line payload is compacted so NDJSON stays one record per line.
	if err := p.Record(ctx, "roomA", "MESSAGE", []byte("{\n \"Type\": \"MESSAGE\",\n \"Id\": \"ml\"\n}"), time.Now()); err != nil {
		t.Fatal(err)
	}
	closeP(t, p, time.Second)
	if err := p.Record(ctx, "roomA", "MESSAGE", frame("late"), time.Now()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Record after Close: %v", err)
	}
}
