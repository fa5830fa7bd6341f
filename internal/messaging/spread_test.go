package messaging

import (
	"bufio"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
)

// A room that gathers spreads each walk over its gap (flushPacer.spread):
// through real sockets, 256 viewers (8 chunks of flushChunk) and a 400 ms
// gap, the last chunk's viewers get a broadcast about 350 ms after the
// first chunk's, and every viewer gets it. The pacer's sample of the walk
// is the time its workers spent writing, not the 400 ms the walk lasted:
// otherwise the gap of a room that spreads its walks would ratchet up to
// the maximum.
func TestGatheringRoomSpreadsWalk(t *testing.T) {
	const (
		viewers = 8 * flushChunk
		gap     = 400 * time.Millisecond
		cost    = 100 * time.Millisecond
	)
	e := newEnv(t, func(o *Options) { o.WriteCoalesce = 2 * gap })
	conns := make([]*bufio.Reader, viewers)
	for i := range viewers {
		nc := rawDial(t, e, e.token(t, "room1", fmt.Sprint("viewer", i)), 0)
		conns[i] = bufio.NewReader(nc)
		nc.SetReadDeadline(time.Now().Add(30 * time.Second))
	}
	checkFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		if n := e.g.Stats().Connections; n != viewers {
			return fmt.Errorf("%d connections, want %d", n, viewers)
		}
		return nil
	})
	e.g.mu.Lock()
	r := e.g.rooms["room1"]
	e.g.mu.Unlock()
	r.mu.Lock()
	// A room that gathers with a 400 ms gap, whose walks cost 100 ms on
	// average (the sample of the walk below must stay under that, even
	// on a loaded machine with the race detector: 256 writes). The interval is long, so the first sample ends gathering;
	// the walk this test watches is spread as it started.
	r.pacer = flushPacer{max: 2 * gap, gathering: true, gap: gap, cost: cost, interval: time.Second}
	r.lastFlush = time.Time{}
	r.mu.Unlock()

	if _, err := e.g.SendEvent(t.Context(), "room1", "spread", nil); err != nil {
		t.Fatal(err)
	}
	got := make([]time.Time, viewers)
	var wg sync.WaitGroup
	for i, br := range conns {
		wg.Go(func() {
			h, err := ws.ReadHeader(br)
			if err == nil {
				_, err = br.Discard(int(h.Length))
			}
			if err != nil {
				t.Errorf("viewer %d: %v", i, err)
				return
			}
			got[i] = time.Now()
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	// r.conns is in join order: viewer i is in chunk i/flushChunk, whose
	// turn comes 50 ms after the previous chunk's.
	first, last := got[0], got[viewers-1]
	for _, g := range got[:flushChunk] {
		if g.Before(first) {
			first = g
		}
	}
	for _, g := range got[viewers-flushChunk:] {
		if g.After(last) {
			last = g
		}
	}
	if d := last.Sub(first); d < 250*time.Millisecond {
		t.Errorf("the last chunk got the broadcast %v after the first, want its turn 350 ms into a walk spread over %v", d, gap)
	}
	checkFor(t, 5*time.Second, 5*time.Millisecond, func() error {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.flushing {
			return fmt.Errorf("the walk is still running")
		}
		if r.pacer.cost >= cost {
			return fmt.Errorf("average flush cost %v after the spread walk, want below %v: the sample counted the walk's waits", r.pacer.cost, cost)
		}
		return nil
	})
}
