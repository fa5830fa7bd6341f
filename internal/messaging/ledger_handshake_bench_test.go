package messaging

import (
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkHandshakeLedger is a whole handshake over loopback (TCP connect,
// upgrade request, token open, ledger, room, 101 response) with n tokens
// already in the gateway's memory ledger. The ledger's clock moves a minute
// per Use, so every handshake is the first of its minute: the one that swept
// the whole map in the old ledger. The clock starts a century back so that
// the tokens, which expire an hour from now, stay live in the ledger.
//
// Run with a fixed count (-benchtime 3000x): each handshake leaves a client
// port in TIME_WAIT.
func BenchmarkHandshakeLedger(b *testing.B) {
	for _, n := range []int{0, 1_000_000} {
		b.Run("n="+strconv.Itoa(n), func(b *testing.B) {
			base := time.Now().AddDate(-100, 0, 0)
			l, _ := fakeClockLedger(base)
			forever := time.Now().AddDate(100, 0, 0)
			for i := range n {
				mustUse(b, l, "p"+strconv.Itoa(i), forever)
			}
			// Set before the gateway exists, which then calls it concurrently.
			var minutes atomic.Int64
			l.now = func() time.Time { return base.Add(time.Duration(minutes.Add(1)) * time.Minute) }
			e := newEnv(b, func(o *Options) {
				o.Ledger = l
				o.MaxConnections = 1 << 20
			})
			b.ResetTimer()
			for b.Loop() {
				rawDial(b, e, e.token(b, "room1", "viewer"), 0).Close()
			}
		})
	}
}
