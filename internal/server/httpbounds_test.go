package server

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivschat"

	"github.com/ivschatd/ivschatd/internal/config"
)

// shortHTTPBounds shrinks the HTTP read and idle bounds so the tests see them
// act in well under a second instead of the defaults' 30 s and 120 s.
func shortHTTPBounds(c *config.Config) {
	c.HTTPReadTimeout = 300 * time.Millisecond
	c.HTTPIdleTimeout = 300 * time.Millisecond
}

// waitClosed reads from conn until the server closes it and fails the test
// if that has not happened within limit.
func waitClosed(t *testing.T, conn net.Conn, limit time.Duration) {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(limit))
	_, err := io.Copy(io.Discard, conn)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the server kept the connection open for %v", limit)
	}
}

// A client that sends the headers and half of a body, then nothing, is
// disconnected once the read bound has passed (before: held forever).
func TestSlowRequestBodyIsCut(t *testing.T) {
	ts := startServer(t, "", shortHTTPBounds)
	conn, err := net.Dial("tcp", strings.TrimPrefix(ts.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := `{"name":"half a body that never ends"}`
	_, err = io.WriteString(conn, "POST /CreateRoom HTTP/1.1\r\nHost: "+conn.RemoteAddr().String()+
		"\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"+body[:len(body)/2])
	if err != nil {
		t.Fatal(err)
	}
	waitClosed(t, conn, 5*time.Second)
}

// An idle keep-alive connection is closed after the idle bound.
func TestIdleKeepAliveIsClosed(t *testing.T) {
	ts := startServer(t, "", shortHTTPBounds)
	conn, err := net.Dial("tcp", strings.TrimPrefix(ts.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Close {
		t.Fatalf("healthz: %d, close %v", resp.StatusCode, resp.Close)
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.Copy(io.Discard, br); errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal("the idle keep-alive connection is still open after 5s")
	}
}

// A chat connection lives on long after the HTTP read bound has passed: the
// bound is for reading a request, and the gateway manages the upgraded
// connection's deadlines itself.
func TestChatOutlivesHTTPReadTimeout(t *testing.T) {
	for _, separate := range []bool{false, true} {
		name := "shared listener"
		if separate {
			name = "messaging listener"
		}
		t.Run(name, func(t *testing.T) {
			ts := startServer(t, "", func(c *config.Config) {
				shortHTTPBounds(c)
				if separate {
					c.MessagingListen = "127.0.0.1:0"
				}
			})
			chatURL := ts.URL
			if separate {
				chatURL = ts.messagingURL
			}
			c := ts.client()
			room := createRoom(t, c, "long")
			tok, err := c.CreateChatToken(ctxT(t), &ivschat.CreateChatTokenInput{RoomIdentifier: room.Arn, UserId: aws.String("u"),
				Capabilities: toCaps([]string{"SEND_MESSAGE"})})
			if err != nil {
				t.Fatal(err)
			}
			conn := dialChat(t, chatURL, *tok.Token)
			defer conn.Close()
			// The point of the test is time passing: several read bounds.
			time.Sleep(4 * ts.cfg.HTTPReadTimeout)
			send(t, conn, `{"Action":"SEND_MESSAGE","RequestId":"r1","Content":"still here"}`)
			if msg := readText(t, conn); !strings.Contains(string(msg), "still here") {
				t.Fatalf("got %s", msg)
			}
		})
	}
}
