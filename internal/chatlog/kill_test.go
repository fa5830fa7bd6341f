package chatlog

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ivschatd/ivschatd/internal/chat"
)

const helperEnv = "CHATLOG_HELPER_DIR"

// TestHelperProcess is the child of TestKillDashNine: it records until it
// is killed, printing the ID of every record whose Record call returned nil.
func TestHelperProcess(t *testing.T) {
	dir := os.Getenv(helperEnv)
	if dir == "" {
		t.Skip("helper process only")
	}
	store := newMemStore()
	store.addRoom("roomK", chat.Destination{FirehoseDeliveryStreamName: "fh"}, chat.Destination{S3BucketName: "bk"})
	p, err := Open(context.Background(), Options{
		Dir: filepath.Join(dir, "spool"), LocalDir: filepath.Join(dir, "unused"), Store: store,
		// Both destinations are down (nothing listens on port 1), so every
		// acknowledged record is only in the spool when the kill comes.
		Destinations: DestinationOptions{
			Firehose: staticEndpoint("http://127.0.0.1:1"),
			S3:       staticEndpoint("http://127.0.0.1:1"),
		},
		RetryBase: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond,
	})
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(2)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				id := fmt.Sprintf("k%d-%d", w, i)
				if err := p.Record(context.Background(), "roomK", "MESSAGE", frame(id), time.Now()); err != nil {
					fmt.Println("error:", err)
					os.Exit(3)
				}
				mu.Lock()
				os.Stdout.WriteString("ack " + id + "\n") // unbuffered: the parent sees it at once
				mu.Unlock()
			}
		})
	}
	wg.Wait()
}

// TestKillDashNine: a process is killed with SIGKILL while recording; every
// record it was told is durable is delivered after a restart.
func TestKillDashNine(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a process")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"="+dir)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := map[string]bool{}
	sc := bufio.NewScanner(stdout)
	killed := false
	for sc.Scan() {
		line := sc.Text()
		id, ok := strings.CutPrefix(line, "ack ")
		if !ok {
			t.Fatalf("child: %s", line)
		}
		acked[id] = true
		if len(acked) == 2000 && !killed {
			// Mid-way: the child keeps recording; acks already in the pipe
			// are still read below.
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			killed = true
		}
	}
	err = cmd.Wait()
	if !killed {
		t.Fatalf("child ended before the kill: %v\n%s", err, stderr.String())
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child not killed by SIGKILL: %v", err)
	}

	// Restart with working destinations: the local-files default for both.
	store := newMemStore()
	opts := testOptions(t, store)
	opts.Dir = filepath.Join(dir, "spool")
	p := mustOpen(t, opts)
	waitFor(t, "replay", 20*time.Second, func() bool {
		s := p.Stats().Destinations
		return s["firehose:fh"].Delivered >= uint64(len(acked)) &&
			s["s3:bk"].Delivered >= uint64(len(acked))
	})
	closeP(t, p, 5*time.Second)

	var fh idSet
	b, err := os.ReadFile(filepath.Join(opts.LocalDir, "firehose", "fh.log"))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range lines(b) {
		_, id := checkRecord(t, l)
		fh.add(id)
	}
	var s3 idSet
	err = filepath.Walk(filepath.Join(opts.LocalDir, "s3", "bk"), func(path string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		for _, l := range lines(gunzip(t, b)) {
			_, id := checkRecord(t, l)
			s3.add(id)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for id := range acked {
		if fh.count(id) == 0 || s3.count(id) == 0 {
			t.Fatalf("acknowledged record %s lost (firehose %d, s3 %d)", id, fh.count(id), s3.count(id))
		}
	}
	t.Logf("%d acknowledged before SIGKILL; delivered %d to firehose (%d dups), %d to s3 (%d dups)",
		len(acked), fh.len(), fh.dups(), s3.len(), s3.dups())
}
