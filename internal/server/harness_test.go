package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ivschat"

	"github.com/ivschatd/ivschatd/internal/config"
)

const (
	testAccessKey = "AKIDTESTFULLACCESS01"
	testSecretKey = "test-secret-key-0123456789abcdefghijklmn"
	testRegion    = "us-west-2"
	testAccount   = "123456789012"
)

// testServer is an ivschatd running in-process on a loopback port.
type testServer struct {
	t   testing.TB
	cfg config.Config
	URL string
	// messagingURL is set when the config asks for a separate chat listener.
	messagingURL string
	cancel       context.CancelFunc
	done         chan error
	// srv is the server itself, for tests that reach past the API (its
	// store).
	srv *Server
}

// startServer runs a server on a fresh data dir (or dataDir, to restart on an
// existing one) with the test key pair; edit adjusts the config first.
func startServer(t testing.TB, dataDir string, edit func(*config.Config)) *testServer {
	t.Helper()
	return startServerLogging(t, dataDir, edit, discardLogger())
}

// startServerLogging is startServer with the server's logger.
func startServerLogging(t testing.TB, dataDir string, edit func(*config.Config), log *slog.Logger) *testServer {
	t.Helper()
	cfg := config.Default()
	cfg.Listen = "127.0.0.1:0"
	if dataDir == "" {
		dataDir = t.TempDir()
	}
	cfg.DataDir = dataDir
	cfg.AccessKeys = []config.AccessKey{{AccessKeyID: testAccessKey, SecretAccessKey: testSecretKey}}
	cfg.ShutdownTimeout = 5 * time.Second
	if url := os.Getenv("IVSCHATD_TEST_POSTGRES_URL"); url != "" && os.Getenv("IVSCHATD_TEST_E2E_POSTGRES") != "" {
		cfg.PostgresURL = url
	}
	if edit != nil {
		edit(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := New(ctx, cfg, log)
	if err != nil {
		cancel()
		t.Fatalf("server.New: %v", err)
	}
	ts := &testServer{t: t, cfg: cfg, URL: "http://" + srv.Addr().String(), cancel: cancel, done: make(chan error, 1), srv: srv}
	if a := srv.MessagingAddr(); a != nil {
		ts.messagingURL = "http://" + a.String()
	}
	go func() { ts.done <- srv.Run(ctx) }()
	checkFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		resp, err := http.Get(ts.URL + "/healthz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("healthz: %d", resp.StatusCode)
		}
		return nil
	})
	t.Cleanup(ts.Stop)
	return ts
}

// Stop shuts the server down gracefully and waits for it; it is idempotent.
func (ts *testServer) Stop() {
	if ts.cancel == nil {
		return
	}
	ts.cancel()
	ts.cancel = nil
	select {
	case err := <-ts.done:
		if err != nil {
			ts.t.Errorf("server stopped with error: %v", err)
		}
	case <-time.After(15 * time.Second):
		ts.t.Errorf("server did not stop within 15s")
	}
}

// client returns an unchanged aws-sdk-go-v2 IVS Chat client pointed at the
// server with the given key pair (the test's full-access pair by default).
func (ts *testServer) client(keyAndSecret ...string) *ivschat.Client {
	key, secret := testAccessKey, testSecretKey
	if len(keyAndSecret) == 2 {
		key, secret = keyAndSecret[0], keyAndSecret[1]
	}
	return ivschat.New(ivschat.Options{
		Region:       testRegion,
		BaseEndpoint: aws.String(ts.URL),
		Credentials:  credentials.NewStaticCredentialsProvider(key, secret, ""),
		// Retries would hide the first answer; tests want exactly one call.
		RetryMaxAttempts: 1,
	})
}

// checkFor polls f until it returns nil or timeout passes (no fixed sleeps).
func checkFor(t testing.TB, timeout, interval time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v: %v", timeout, err)
		}
		time.Sleep(interval)
	}
}

// discardLogger is silent unless the tests run with -v.
func discardLogger() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}
