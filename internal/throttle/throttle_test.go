package throttle

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestEvery(t *testing.T) {
	var e Every
	t0 := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	for _, step := range []struct {
		at   time.Duration
		want bool
	}{{0, true}, {time.Second, false}, {9999 * time.Millisecond, false}, {10 * time.Second, true}, {15 * time.Second, false}, {20 * time.Second, true}} {
		if got := e.Allow(t0.Add(step.at), 10*time.Second); got != step.want {
			t.Errorf("at +%v: Allow = %v, want %v", step.at, got, step.want)
		}
	}
}

func TestEveryOneWinnerAmongRacers(t *testing.T) {
	var e Every
	now := time.Now()
	var won atomic.Int32
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			if e.Allow(now, time.Minute) {
				won.Add(1)
			}
		})
	}
	wg.Wait()
	if won.Load() != 1 {
		t.Fatalf("%d callers let through at the same instant, want 1", won.Load())
	}
}
