package server

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivschat"
)

// BenchmarkHandshake is a whole chat handshake over loopback (TCP connect,
// upgrade request, token, room, quota, ledger, 101) on a single node (the
// used-token ledger in memory and in used-tokens.db) and on a node of a
// two-node cluster (quota and ledger in Redis: two round trips). Minting
// the token and closing the connection are not timed.
//
// Run with a fixed count (-benchtime 2000x): each handshake leaves a client
// port in TIME_WAIT.
func BenchmarkHandshake(b *testing.B) {
	run := func(b *testing.B, ts *testServer) {
		c := ts.client()
		room := createRoomB(b, ts)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			out, err := c.CreateChatToken(context.Background(), &ivschat.CreateChatTokenInput{RoomIdentifier: aws.String(room), UserId: aws.String("bench")})
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			conn := dialChat(b, ts.URL, *out.Token)
			b.StopTimer()
			conn.Close()
			b.StartTimer()
		}
	}
	b.Run("single-node", func(b *testing.B) {
		run(b, startServer(b, "", nil))
	})
	b.Run("cluster", func(b *testing.B) {
		a, _ := startCluster(b, "")
		run(b, a)
	})
}
