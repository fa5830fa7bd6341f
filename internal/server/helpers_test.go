package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/jackc/pgx/v5"
)

func timeNow() time.Time { return time.Now() }

func mustRequest(t *testing.T, method, url, body string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// dialChat opens a WebSocket chat connection with token and checks that the
// token is echoed as the sub-protocol.
func dialChat(t testing.TB, serverURL, tok string) net.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, _, hs, err := ws.Dialer{Protocols: []string{tok}}.Dial(ctx, strings.Replace(serverURL, "http://", "ws://", 1)+"/")
	if err != nil {
		t.Fatalf("WebSocket handshake: %v", err)
	}
	if hs.Protocol != tok {
		t.Errorf("sub-protocol not echoed")
	}
	return conn
}

// freshSchema creates a schema with a random name for one test and drops it
// afterwards, so concurrent test runs on one database don't collide.
func freshSchema(t testing.TB, dbURL string) string {
	t.Helper()
	var b [6]byte
	rand.Read(b[:])
	schema := "ivschatd_e2e_" + hex.EncodeToString(b[:])
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatalf("PostgreSQL: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn, err := pgx.Connect(ctx, dbURL)
		if err != nil {
			return
		}
		defer conn.Close(ctx)
		conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE")
	})
	return schema
}

func withSearchPath(dbURL, schema string) string {
	u, err := url.Parse(dbURL)
	if err != nil {
		return dbURL
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// startRedis runs a redis-server of the test's own on a free loopback port
// (fault-injection tests must never stop the machine's shared Redis) and
// returns its URL and a function that kills it (also called at cleanup).
func startRedis(t *testing.T) (redisURL string, kill func()) {
	t.Helper()
	path, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server is not installed")
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := lis.Addr().(*net.TCPAddr).Port
	lis.Close()
	cmd := exec.Command(path, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	kill = func() {
		once.Do(func() {
			cmd.Process.Kill()
			cmd.Wait()
		})
	}
	t.Cleanup(kill)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	checkFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return err
		}
		return c.Close()
	})
	return "redis://" + addr + "/0", kill
}

// dialStatus attempts a chat handshake offering protocols (the chat token)
// and returns the HTTP status of its refusal, or 101 when it succeeded.
func dialStatus(t *testing.T, serverURL string, protocols ...string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, _, _, err := ws.Dialer{Protocols: protocols}.Dial(ctx, strings.Replace(serverURL, "http://", "ws://", 1)+"/")
	if err == nil {
		conn.Close()
		return http.StatusSwitchingProtocols
	}
	var status ws.StatusError
	if !errors.As(err, &status) {
		t.Fatalf("handshake: %v, want an HTTP refusal", err)
	}
	return int(status)
}
