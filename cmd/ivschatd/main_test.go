package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ivschat"
	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

// TestMain lets the test binary act as the ivschatd binary: a child process
// started with IVSCHATD_TEST_AS_MAIN=1 runs main() with its arguments.
func TestMain(m *testing.M) {
	if os.Getenv("IVSCHATD_TEST_AS_MAIN") == "1" {
		os.Args = append([]string{"ivschatd"}, strings.Fields(os.Getenv("IVSCHATD_TEST_ARGS"))...)
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

var listenLine = regexp.MustCompile(`listen=(127\.0\.0\.1:\d+)`)

// TestCommandLineContractAndSIGTERM starts the server the documented way
// (flags plus the key pair in the environment), uses it through the SDK and a
// WebSocket connection, then sends SIGTERM: the connection must be closed with
// 1001 (going away) and the process must exit 0.
func TestCommandLineContractAndSIGTERM(t *testing.T) {
	cmd, base, logs := startChild(t, "--listen 127.0.0.1:0 --data-dir "+t.TempDir()+" --region eu-west-1 --account-id 210987654321",
		"IVSCHATD_ACCESS_KEY_ID=AKIDCLI", "IVSCHATD_SECRET_ACCESS_KEY=cli-secret")
	resp, err := http.Get(base + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz: %v %v", err, resp)
	}
	resp.Body.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := ivschat.New(ivschat.Options{Region: "eu-west-1", BaseEndpoint: aws.String(base),
		Credentials: credentials.NewStaticCredentialsProvider("AKIDCLI", "cli-secret", "")})
	room, err := c.CreateRoom(ctx, &ivschat.CreateRoomInput{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(*room.Arn, "arn:aws:ivschat:eu-west-1:210987654321:room/") {
		t.Errorf("ARN %s does not use the flags' region and account", *room.Arn)
	}
	tok, err := c.CreateChatToken(ctx, &ivschat.CreateChatTokenInput{RoomIdentifier: room.Arn, UserId: aws.String("u")})
	if err != nil {
		t.Fatal(err)
	}
	conn, _, _, err := ws.Dialer{Protocols: []string{*tok.Token}}.Dial(ctx, strings.Replace(base, "http", "ws", 1)+"/")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	var closeCode uint16
	for closeCode == 0 {
		hdr, err := ws.ReadHeader(conn)
		if err != nil {
			t.Fatalf("reading until the close frame: %v", err)
		}
		if hdr.Length > 1<<16 {
			t.Fatalf("frame of %d bytes", hdr.Length)
		}
		payload := make([]byte, hdr.Length)
		if _, err := io.ReadFull(conn, payload); err != nil {
			t.Fatal(err)
		}
		if hdr.OpCode == ws.OpClose {
			if len(payload) < 2 {
				t.Fatalf("close frame without a code")
			}
			closeCode = binary.BigEndian.Uint16(payload)
			wsutil.WriteClientMessage(conn, ws.OpClose, payload[:2])
		}
	}
	if closeCode != 1001 {
		t.Errorf("close code %d, want 1001", closeCode)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, logs())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("server did not exit within 15s of SIGTERM")
	}
}

// startChild runs the test binary as ivschatd with args and extra environment,
// and returns it with its base URL and a function that returns its log so far.
func startChild(t *testing.T, args string, env ...string) (*exec.Cmd, string, func() string) {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), append([]string{"IVSCHATD_TEST_AS_MAIN=1", "IVSCHATD_TEST_ARGS=" + args}, env...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr := make(chan string, 1)
	var mu sync.Mutex
	var lines []string
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := listenLine.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
			mu.Lock()
			lines = append(lines, sc.Text())
			mu.Unlock()
		}
	}()
	logs := func() string {
		mu.Lock()
		defer mu.Unlock()
		return strings.Join(lines, "\n")
	}
	select {
	case a := <-addr:
		return cmd, "http://" + a, logs
	case <-time.After(20 * time.Second):
		t.Fatalf("server did not log its listen address:\n%s", logs())
	}
	return nil, "", nil
}
