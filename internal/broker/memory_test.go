package broker

import (
	"context"
	"fmt"
	"sync"
	"testing"
)

func TestMemoryOrderAndIsolation(t *testing.T) {
	b := NewMemory()
	defer b.Close()
	var mu sync.Mutex
	got := map[string][]string{}
	rec := func(name string) Handler {
		return func(room string, m Message) {
			mu.Lock()
			defer mu.Unlock()
			got[name] = append(got[name], room+":"+string(m.Frame))
		}
	}
	unsubA, _ := b.Subscribe("r1", rec("a"))
	b.Subscribe("r1", rec("b"))
	b.Subscribe("r2", rec("c"))
	ctx := context.Background()
	// Concurrent publishers: every subscriber of a room sees the same order.
	var wg sync.WaitGroup
	for p := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				b.Publish(ctx, "r1", Message{Kind: KindFrame, Frame: fmt.Appendf(nil, "%d-%d", p, i)})
			}
		}()
	}
	wg.Wait()
	b.Publish(ctx, "r2", Message{Kind: KindFrame, Frame: []byte("only-r2")})
	mu.Lock()
	if len(got["a"]) != 200 || fmt.Sprint(got["a"]) != fmt.Sprint(got["b"]) {
		t.Fatalf("subscribers disagree: %d vs %d messages", len(got["a"]), len(got["b"]))
	}
	if fmt.Sprint(got["c"]) != "[r2:only-r2]" {
		t.Fatalf("r2 subscriber got %v", got["c"])
	}
	mu.Unlock()

	unsubA()
	unsubA() // idempotent
	b.Publish(ctx, "r1", Message{Kind: KindFrame, Frame: []byte("late")})
	mu.Lock()
	defer mu.Unlock()
	if len(got["a"]) != 200 || len(got["b"]) != 201 {
		t.Fatalf("after unsubscribe: a=%d b=%d", len(got["a"]), len(got["b"]))
	}
}

func TestMemoryClosed(t *testing.T) {
	b := NewMemory()
	b.Close()
	if err := b.Publish(context.Background(), "r", Message{}); err != ErrClosed {
		t.Fatalf("Publish after Close: %v", err)
	}
	if _, err := b.Subscribe("r", func(string, Message) {}); err != ErrClosed {
		t.Fatalf("Subscribe after Close: %v", err)
	}
}
