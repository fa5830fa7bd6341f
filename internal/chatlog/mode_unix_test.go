//go:build unix

package chatlog

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/ivschatd/ivschatd/internal/chat"
)

// withUmask sets the process umask for the test (it is process-wide: these
// tests do not run in parallel).
func withUmask(t *testing.T, mask int) {
	old := syscall.Umask(mask)
	t.Cleanup(func() { syscall.Umask(old) })
}

// checkPrivate fails unless root and every directory under it is 0700 and
// every regular file 0600; it returns how many files it saw.
func checkPrivate(t *testing.T, root string) int {
	t.Helper()
	files := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type()&fs.ModeSymlink != 0 {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		want := fileMode
		if d.IsDir() {
			want = dirMode
		} else {
			files++
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", path, fi.Mode().Perm(), want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// recordAndDeliver records a few frames to the three local destinations of
// roomA and waits until they are delivered (so cursors and output files
// exist).
func recordAndDeliver(t *testing.T, opts Options, ids ...string) {
	t.Helper()
	p := mustOpen(t, opts)
	defer closeP(t, p, time.Second)
	for _, id := range ids {
		if err := p.Record(context.Background(), "roomA", "MESSAGE", frame(id), time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "delivery", 10*time.Second, func() bool {
		s := p.Stats().Destinations
		for _, k := range []string{"s3:bkt", "cloudWatchLogs:grp/sub", "firehose:fh"} {
			if s[k].Spooled == 0 || s[k].Delivered != s[k].Spooled {
				return false
			}
		}
		return true
	})
	// A destination checked but never written still gets a private directory.
	if err := p.Probe(context.Background(), chat.Destination{S3BucketName: "probed-" + ids[0]}); err != nil {
		t.Fatal(err)
	}
}

func localRoom() *memStore {
	store := newMemStore()
	store.addRoom("roomA", chat.Destination{S3BucketName: "bkt"}, chat.Destination{CloudWatchLogGroupName: "grp/sub"},
		chat.Destination{FirehoseDeliveryStreamName: "fh"})
	return store
}

// Spool and local chat-log files are 0600 in 0700 directories even with
// umask 0.
func TestFileModes(t *testing.T) {
	withUmask(t, 0)
	opts := testOptions(t, localRoom())
	recordAndDeliver(t, opts, "m0", "m1")
	if n := checkPrivate(t, opts.Dir); n < 6 { // a segment and a cursor per destination
		t.Errorf("%d spool files", n)
	}
	if n := checkPrivate(t, opts.LocalDir); n < 3 {
		t.Errorf("%d chat-log files", n)
	}
}

// Opening a data dir that an earlier version wrote (0644 files in 0755
// directories) makes it private; symbolic links, and what they point to,
// are left alone.
func TestOpenTightensOldFiles(t *testing.T) {
	withUmask(t, 0)
	opts := testOptions(t, localRoom())
	recordAndDeliver(t, opts, "o0")
	// What an earlier version left behind.
	for _, root := range []string{opts.Dir, opts.LocalDir} {
		filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				t.Fatal(err)
			}
			mode := os.FileMode(0o644)
			if d.IsDir() {
				mode = 0o755
			}
			return os.Chmod(path, mode)
		})
	}
	outside := filepath.Join(t.TempDir(), "not-ours")
	if err := os.WriteFile(outside, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(opts.LocalDir, "link")); err != nil {
		t.Fatal(err)
	}

	recordAndDeliver(t, opts, "o1")
	checkPrivate(t, opts.Dir)
	checkPrivate(t, opts.LocalDir)
	if fi, _ := os.Stat(outside); fi.Mode().Perm() != 0o644 {
		t.Errorf("symlink target changed to %v", fi.Mode().Perm())
	}
}
