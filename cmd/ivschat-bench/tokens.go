package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ivschat"
)

// runTokens measures signed CreateChatToken requests per second. Every request
// is signed afresh with SigV4, as an application backend would, over
// keep-alive connections from a fixed number of workers.
func runTokens(args []string) error {
	fs := flag.NewFlagSet("tokens", flag.ContinueOnError)
	endpoint := fs.String("endpoint", "http://127.0.0.1:8080", "server URL (loopback only)")
	region := fs.String("region", "us-west-2", "signing region")
	accessKey := fs.String("access-key", os.Getenv("AWS_ACCESS_KEY_ID"), "access key ID (default $AWS_ACCESS_KEY_ID)")
	secretKey := fs.String("secret-key", os.Getenv("AWS_SECRET_ACCESS_KEY"), "secret access key (default $AWS_SECRET_ACCESS_KEY)")
	duration := fs.Duration("duration", 10*time.Second, "how long to run (at most 5m)")
	workers := fs.Int("workers", 32, "concurrent requests")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := requireLoopback(*endpoint); err != nil {
		return err
	}
	if *duration <= 0 || *duration > 5*time.Minute {
		return fmt.Errorf("duration must be between 0 and 5m")
	}
	if *accessKey == "" || *secretKey == "" {
		return fmt.Errorf("access key and secret are required")
	}
	creds := aws.Credentials{AccessKeyID: *accessKey, SecretAccessKey: *secretKey}

	// Set up a room through the real SDK.
	client := ivschat.New(ivschat.Options{
		Region: *region, BaseEndpoint: endpoint,
		Credentials: credentials.NewStaticCredentialsProvider(*accessKey, *secretKey, ""),
	})
	ctx := context.Background()
	room, err := client.CreateRoom(ctx, &ivschat.CreateRoomInput{Name: aws.String("bench-tokens")})
	if err != nil {
		return fmt.Errorf("CreateRoom: %w", err)
	}
	defer client.DeleteRoom(ctx, &ivschat.DeleteRoomInput{Identifier: room.Arn})

	body, _ := json.Marshal(map[string]any{
		"roomIdentifier": *room.Arn,
		"userId":         "bench-user",
		"capabilities":   []string{"SEND_MESSAGE"},
		"attributes":     map[string]string{"displayName": "Bench"},
	})
	sum := sha256.Sum256(body)
	payloadHash := hex.EncodeToString(sum[:])
	transport := &http.Transport{MaxIdleConnsPerHost: *workers, MaxConnsPerHost: *workers}
	httpClient := &http.Client{Transport: transport, Timeout: 10 * time.Second}
	signer := v4.NewSigner()

	var ok, failed atomic.Int64
	var mu sync.Mutex
	var latencies []time.Duration
	deadline := time.Now().Add(*duration)
	start := time.Now()
	var wg sync.WaitGroup
	for range *workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]time.Duration, 0, 1<<16)
			for time.Now().Before(deadline) {
				req, _ := http.NewRequest(http.MethodPost, *endpoint+"/CreateChatToken", bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				t0 := time.Now()
				if err := signer.SignHTTP(ctx, creds, req, payloadHash, "ivschat", *region, t0); err != nil {
					failed.Add(1)
					continue
				}
				resp, err := httpClient.Do(req)
				if err != nil {
					failed.Add(1)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					failed.Add(1)
					continue
				}
				local = append(local, time.Since(t0))
				ok.Add(1)
			}
			mu.Lock()
			latencies = append(latencies, local...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	slices.Sort(latencies)
	fmt.Printf("CreateChatToken: %d ok, %d failed in %.1fs with %d workers: %.0f requests/s\n",
		ok.Load(), failed.Load(), elapsed.Seconds(), *workers, float64(ok.Load())/elapsed.Seconds())
	if len(latencies) > 0 {
		fmt.Printf("latency p50 %v p90 %v p99 %v max %v\n",
			pct(latencies, 50), pct(latencies, 90), pct(latencies, 99), latencies[len(latencies)-1])
	}
	if failed.Load() > 0 {
		return fmt.Errorf("%d requests failed", failed.Load())
	}
	return nil
}

func pct(sorted []time.Duration, p int) time.Duration {
	return sorted[(len(sorted)-1)*p/100].Round(time.Microsecond)
}
