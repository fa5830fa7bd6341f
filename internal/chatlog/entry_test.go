package chatlog

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ivschatd/ivschatd/internal/chat"
)

func FuzzDecodeEntry(f *testing.F) {
	valid := encodeBody(time.UnixMilli(1714557600123), "roomA", []byte(`{"event_timestamp":"x","payload":{}}`))
	f.Add(valid)
	f.Add(valid[:len(valid)-3])
	f.Add(append(append([]byte{}, valid...), valid...))
	f.Add([]byte{})
	f.Add(bytes.Repeat([]byte{0xff}, 20))
	f.Add(make([]byte, 16))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, n, err := decodeEntry(b)
		if err != nil {
			if n != 0 {
				t.Fatalf("error with n=%d", n)
			}
			return
		}
		if n < entryHeaderLen+bodyFixedLen || n > len(b) || e.size != n {
			t.Fatalf("n=%d size=%d len=%d", n, e.size, len(b))
		}
		// A decoded entry re-encodes to exactly the bytes it came from.
		if re := encodeBody(e.at, e.roomID, e.record); !bytes.Equal(re, b[:n]) {
			t.Fatalf("re-encoding differs:\n%x\n%x", re, b[:n])
		}
	})
}

func TestEntryRoundTrip(t *testing.T) {
	at := time.Date(2024, 5, 1, 10, 0, 0, 123_000_000, time.UTC)
	b := encodeBody(at, "room", []byte(`{"a":1}`))
	e, n, err := decodeEntry(b)
	if err != nil || n != len(b) || !e.at.Equal(at) || e.roomID != "room" || string(e.record) != `{"a":1}` {
		t.Fatalf("%+v %d %v", e, n, err)
	}
	for i := range len(b) {
		if _, _, err := decodeEntry(b[:i]); err == nil {
			t.Fatalf("prefix of %d bytes decoded", i)
		}
		c := append([]byte{}, b...)
		c[i] ^= 0x40
		if _, _, err := decodeEntry(c); err == nil {
			t.Fatalf("flipped byte %d decoded", i)
		}
	}
}

// BenchmarkRecord measures Record into a spool (fsync per group commit) with
// 1 and 64 concurrent callers. The destination is the local-files default
// with a long batch interval, so delivery does not compete.
func BenchmarkRecord(b *testing.B) {
	for _, callers := range []int{1, 64} {
		b.Run(fmt.Sprintf("callers=%d", callers), func(b *testing.B) {
			store := newMemStore()
			store.addRoom("roomA", chat.Destination{S3BucketName: "bench"})
			opts := testOptions(b, store)
			opts.S3BatchInterval = time.Hour
			opts.S3BatchBytes = 1 << 30
			p := mustOpen(b, opts)
			defer closeP(b, p, 10*time.Second)
			payload := frame("WhO6MW6iRdS5")
			ctx := context.Background()
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			for range callers {
				wg.Go(func() {
					for next.Add(1) <= int64(b.N) {
						if err := p.Record(ctx, "roomA", "MESSAGE", payload, time.Now()); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "records/s")
		})
	}
}
