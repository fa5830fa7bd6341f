package messaging

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"
	"time"
)

// BenchmarkEncodeMessage measures the once-per-broadcast cost: a MESSAGE
// frame with attributes, header included.
func BenchmarkEncodeMessage(b *testing.B) {
	sender := encodeSender("75758272-f3f2-4f65-83c5-9b8f144116b8", map[string]string{"username": "gleningp"})
	attrs := sortedAttrs(map[string]string{"color": "blue", "badge": "mod"})
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		encodeMessage("WhO6MW6iRdS5", "318fd00d-b456-4bf4-8624-db3258784d29", attrs, "bbiab! see you in a minute", now, sender)
	}
}

// BenchmarkFanout publishes into a room of N viewers on loopback TCP (each
// viewer a goroutine discarding what it reads) and reports delivered frames
// per second and the coalescing factor (frames per write).
func BenchmarkFanout(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprintf("viewers=%d", n), func(b *testing.B) {
			e := newEnv(b, func(o *Options) {
				o.QueueLimit = 1024
				o.MaxConnections = n + 10
			})
			for i := range n {
				nc := rawDial(b, e, e.token(b, "room1", fmt.Sprintf("v%d", i)), 0)
				go io.Copy(io.Discard, nc)
			}
			frame := encodeEvent("AAAAAAAAAAAA", "", "tick", []attr{{"pad", strings.Repeat("x", 100)}}, time.Now())
			ctx := context.Background()
			const round = 100
			start := e.g.Stats()
			b.ResetTimer()
			for sent := 0; sent < b.N; {
				k := min(round, b.N-sent)
				for range k {
					if err := e.g.publishFrame(ctx, "room1", frame, refuseUnrecorded); err != nil {
						b.Fatal(err)
					}
				}
				sent += k
				want := start.FramesDelivered + uint64(sent*n)
				deadline := time.Now().Add(30 * time.Second)
				for e.g.Stats().FramesDelivered < want {
					if time.Now().After(deadline) {
						b.Fatalf("stalled: %+v", e.g.Stats())
					}
					time.Sleep(50 * time.Microsecond)
				}
			}
			b.StopTimer()
			s := e.g.Stats()
			frames := float64(s.FramesDelivered - start.FramesDelivered)
			b.ReportMetric(frames/b.Elapsed().Seconds(), "frames/s")
			b.ReportMetric(frames/float64(s.Writes-start.Writes), "frames/write")
			if s.SlowConsumerDisconnects != 0 {
				b.Fatalf("%d slow consumers", s.SlowConsumerDisconnects)
			}
		})
	}
}

// BenchmarkIdleConnMemory opens idle connections and reports the heap and
// stack growth per connection (run with -benchtime=1x). The raw clients live
// in the same process, so the figure includes their sockets: an upper bound
// for the server side.
func BenchmarkIdleConnMemory(b *testing.B) {
	const n = 2000
	e := newEnv(b, func(o *Options) { o.MaxConnections = n + 10 })
	toks := make([]string, n)
	for i := range toks {
		toks[i] = e.token(b, "room1", fmt.Sprintf("v%d", i))
	}
	before := memInUse()
	for i := range n {
		rawDial(b, e, toks[i], 0)
	}
	checkFor(b, 10*time.Second, 10*time.Millisecond, func() error {
		if c := e.g.Stats().Connections; c != n {
			return fmt.Errorf("%d connections", c)
		}
		return nil
	})
	after := memInUse()
	b.ReportMetric(float64(after-before)/n, "bytes/conn")
}

func memInUse() uint64 {
	var m runtime.MemStats
	for range 3 {
		runtime.GC()
	}
	runtime.ReadMemStats(&m)
	return m.HeapInuse + m.StackInuse
}
