package messaging

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// countingQuota is a ConnectionQuota that counts what the gateway does with
// it.
type countingQuota struct {
	limit              int64
	held               atomic.Int64
	granted, released  atomic.Int64
	refused            atomic.Int64
	releasedBeyondHeld atomic.Int64
}

func (q *countingQuota) Acquire(context.Context) bool {
	if q.held.Add(1) > q.limit {
		q.held.Add(-1)
		q.refused.Add(1)
		return false
	}
	q.granted.Add(1)
	return true
}

func (q *countingQuota) Release() {
	q.released.Add(1)
	if q.held.Add(-1) < 0 {
		q.releasedBeyondHeld.Add(1)
	}
}

type failingLedger struct{}

func (failingLedger) Use(context.Context, string, time.Time) (bool, error) {
	return false, errors.New("disk on fire")
}

// Every slot the quota grants is released exactly once, whichever way the
// handshake or the connection ends: refused for a used token, for a failing
// ledger, a failed upgrade, closed by the client, closed by shutdown.
func TestQuotaReleasedExactlyOnce(t *testing.T) {
	q := &countingQuota{limit: 3}
	e := newEnv(t, func(o *Options) { o.Quota = q })

	open1 := e.connect(t, "room1", "a")
	tok := e.token(t, "room1", "b")
	e.dial(t, tok) // closed by the shutdown below
	if _, status, _ := e.tryDial(tok); status != http.StatusUnauthorized {
		t.Fatalf("reused token: %d, want 401", status)
	}
	// An upgrade request the upgrader refuses (no Sec-WebSocket-Key), after
	// every check of the gateway passed.
	req, _ := http.NewRequest(http.MethodGet, "http"+strings.TrimPrefix(e.url, "ws")+"/", nil)
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Sec-WebSocket-Protocol", e.token(t, "room1", "c"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusSwitchingProtocols {
		t.Fatal("upgrade without a key succeeded")
	}
	// The upgrader answers before the gateway tears the attempt down, so the
	// slot comes back just after the refusal.
	checkFor(t, 5*time.Second, time.Millisecond, func() error {
		if q.held.Load() != 2 {
			return errorf("held %d after the failed upgrade, want 2", q.held.Load())
		}
		return nil
	})
	e.connect(t, "room2", "d")
	if _, status, _ := e.tryDial(e.token(t, "room1", "e")); status != http.StatusTooManyRequests {
		t.Fatalf("fourth connection: %d, want 429", status)
	}
	if got := e.g.Stats().RejectedByReason["quota_exceeded"]; got != 1 {
		t.Fatalf("quota_exceeded = %d, want 1", got)
	}
	open1.close()
	checkFor(t, 5*time.Second, 5*time.Millisecond, func() error {
		if q.held.Load() != 2 {
			return errorf("held %d after a client closed, want 2", q.held.Load())
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.g.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	// Granted: a, b, the reused token (refused after), the failed upgrade,
	// d. Refused: e.
	if q.granted.Load() != 5 || q.refused.Load() != 1 || q.released.Load() != 5 || q.held.Load() != 0 || q.releasedBeyondHeld.Load() != 0 {
		t.Fatalf("granted %d, refused %d, released %d, held %d, released beyond held %d; want 5, 1, 5, 0, 0",
			q.granted.Load(), q.refused.Load(), q.released.Load(), q.held.Load(), q.releasedBeyondHeld.Load())
	}
	if c := e.g.Stats().Connections; c != 0 {
		t.Fatalf("Stats().Connections = %d after shutdown", c)
	}
}

// A failing ledger refuses the handshake with 500 and gives the slot back.
func TestQuotaReleasedOnLedgerFailure(t *testing.T) {
	q := &countingQuota{limit: 1}
	e := newEnv(t, func(o *Options) { o.Quota = q; o.Ledger = failingLedger{} })
	for range 3 {
		if _, status, _ := e.tryDial(e.token(t, "room1", "a")); status != http.StatusInternalServerError {
			t.Fatalf("status %d, want 500", status)
		}
	}
	if q.granted.Load() != 3 || q.released.Load() != 3 || q.held.Load() != 0 {
		t.Fatalf("granted %d, released %d, held %d", q.granted.Load(), q.released.Load(), q.held.Load())
	}
}
