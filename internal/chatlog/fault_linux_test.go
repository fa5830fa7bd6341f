//go:build linux

package chatlog

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// A write cut short by the file size limit — the kernel writes part of the
// batch, then fails with EFBIG: a torn write, as a full disk also produces —
// is cut off the segment at once, so the spool on disk holds only whole
// records. The record is refused and counted, and the spool goes on once the
// limit is lifted.
func TestSpoolTornWriteCutOff(t *testing.T) {
	fh, p, opts := downFirehoseRoom(t, nil)
	ctx := context.Background()
	segDir := filepath.Join(opts.Dir, dirName(KindFirehose, "fh1"))
	var ok []string
	for i := range 5 {
		id := fmt.Sprint("w", i)
		if err := p.Record(ctx, "roomA", "MESSAGE", frame(id), time.Now()); err != nil {
			t.Fatal(err)
		}
		ok = append(ok, id)
	}
	base, size := activeSegment(t, segDir)

	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		t.Fatal(err)
	}
	restore := func() {
		if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
			t.Fatal(err)
		}
	}
	// Half of the next entry fits (the Go runtime ignores SIGXFSZ, so the
	// write just fails).
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: uint64(size + size/5/2), Max: old.Max}); err != nil {
		t.Fatal(err)
	}
	err := p.Record(ctx, "roomA", "MESSAGE", frame("torn"), time.Now())
	restore()
	if !errors.Is(err, ErrNotRecorded) || !errors.Is(err, syscall.EFBIG) {
		t.Fatalf("Record past the size limit = %v, want ErrNotRecorded wrapping EFBIG", err)
	}
	if b, s := activeSegment(t, segDir); b != base || s != size {
		t.Fatalf("segment %d is %d bytes after the torn write, was %d", b, s, size)
	}
	if st := p.Stats().Destinations["firehose:fh1"]; st.FailedToSpool != 1 || st.Spooled != 5 {
		t.Fatalf("stats %+v", st)
	}

	if err := p.Record(ctx, "roomA", "MESSAGE", frame("after"), time.Now()); err != nil {
		t.Fatalf("record after the limit was lifted: %v", err)
	}
	ok = append(ok, "after")
	f, err := os.Open(filepath.Join(segDir, segName(base)))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	if valid, err := scanValid(f); err != nil || valid != fi.Size() {
		t.Fatalf("segment holds %d valid bytes of %d: %v", valid, fi.Size(), err)
	}

	fh.down.Store(false)
	waitFor(t, "delivery", 10*time.Second, func() bool { return fh.ids.len() >= len(ok) })
	if fh.ids.count("torn") != 0 || fh.ids.len() != len(ok) {
		t.Fatalf("delivered %d records (torn: %d), want the %d acknowledged", fh.ids.len(), fh.ids.count("torn"), len(ok))
	}
}
