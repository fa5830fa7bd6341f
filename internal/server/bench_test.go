package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// BenchmarkCreateChatToken measures signed CreateChatToken requests over real
// loopback HTTP, client signing included (the load generator's "tokens" mode
// is the end-to-end figure in docs/benchmarks.md).
func BenchmarkCreateChatToken(b *testing.B) {
	ts := startServer(b, "", nil)
	room := createRoomB(b, ts)
	body, _ := json.Marshal(map[string]any{"roomIdentifier": room, "userId": "bench", "capabilities": []string{"SEND_MESSAGE"}})
	sum := sha256.Sum256(body)
	hash := hex.EncodeToString(sum[:])
	signer := v4.NewSigner()
	creds := aws.Credentials{AccessKeyID: testAccessKey, SecretAccessKey: testSecretKey}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	defer client.CloseIdleConnections()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest("POST", ts.URL+"/CreateChatToken", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			signer.SignHTTP(context.Background(), creds, req, hash, "ivschat", testRegion, time.Now())
			resp, err := client.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Fatalf("status %d", resp.StatusCode)
			}
		}
	})
}

func createRoomB(b *testing.B, ts *testServer) string {
	out, err := ts.client().CreateRoom(context.Background(), nil)
	if err != nil {
		b.Fatal(err)
	}
	return *out.Arn
}
