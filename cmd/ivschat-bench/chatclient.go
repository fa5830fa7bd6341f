package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ivschat"
	"github.com/aws/aws-sdk-go-v2/service/ivschat/types"
	"github.com/gobwas/ws"
)

// The pieces the messaging and soak modes share: control-plane credentials
// and client, the bench room, and opening a chat connection.

// credFlags are the signing flags every WebSocket mode takes.
type credFlags struct {
	region    string
	accessKey string
	secretKey string
}

func (c *credFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.region, "region", "us-west-2", "signing region")
	fs.StringVar(&c.accessKey, "access-key", os.Getenv("AWS_ACCESS_KEY_ID"), "access key ID (default $AWS_ACCESS_KEY_ID)")
	fs.StringVar(&c.secretKey, "secret-key", os.Getenv("AWS_SECRET_ACCESS_KEY"), "secret access key (default $AWS_SECRET_ACCESS_KEY)")
}

func (c *credFlags) missing() bool { return c.accessKey == "" || c.secretKey == "" }

var errMissingCreds = errors.New("access key and secret are required (-access-key/-secret-key or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)")

// client is an SDK client for endpoint with keep-alive connections for
// workers concurrent requests.
func (c *credFlags) client(endpoint string, workers int) *ivschat.Client {
	httpClient := &http.Client{
		Transport: &http.Transport{MaxIdleConnsPerHost: workers, MaxConnsPerHost: workers},
		Timeout:   30 * time.Second,
	}
	return ivschat.New(ivschat.Options{
		Region: c.region, BaseEndpoint: aws.String(endpoint), HTTPClient: httpClient,
		Credentials: credentials.NewStaticCredentialsProvider(c.accessKey, c.secretKey, ""),
	})
}

// createBenchRoom creates a room at the real service's ceilings, so that
// the requested rate plus scheduling jitter never meets the room limit.
func createBenchRoom(ctx context.Context, client *ivschat.Client, name string) (*ivschat.CreateRoomOutput, error) {
	room, err := client.CreateRoom(ctx, &ivschat.CreateRoomInput{
		Name:                        aws.String(name),
		MaximumMessageRatePerSecond: aws.Int32(maxRoomRate),
		MaximumMessageLength:        aws.Int32(500),
	})
	if err != nil {
		return nil, fmt.Errorf("CreateRoom: %w", err)
	}
	return room, nil
}

// deleteBenchRoom deletes a room with a fresh context: the run's may be
// cancelled by Ctrl-C, and the room must go either way.
func deleteBenchRoom(client *ivschat.Client, arn *string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := client.DeleteRoom(ctx, &ivschat.DeleteRoomInput{Identifier: arn}); err != nil {
		fmt.Fprintln(os.Stderr, "ivschat-bench: DeleteRoom:", err)
	}
}

// mintToken asks for one chat token; senders get SEND_MESSAGE.
func mintToken(ctx context.Context, client *ivschat.Client, roomArn, userID string, sessionMinutes int32, send bool) (string, error) {
	in := &ivschat.CreateChatTokenInput{
		RoomIdentifier:           aws.String(roomArn),
		UserId:                   aws.String(userID),
		SessionDurationInMinutes: aws.Int32(sessionMinutes),
	}
	if send {
		in.Capabilities = []types.ChatTokenCapability{types.ChatTokenCapabilitySendMessage}
	}
	out, err := client.CreateChatToken(ctx, in)
	if err != nil {
		return "", fmt.Errorf("CreateChatToken: %w", err)
	}
	return aws.ToString(out.Token), nil
}

// chatURL derives the chat address from a control-plane endpoint: clients
// connect to ws://HOST:PORT/. srcIPv4 says the target is IPv4 loopback, so
// 127.0.0.x source addresses can be rotated.
func chatURL(endpoint string) (wsURL string, srcIPv4 bool) {
	u, _ := url.Parse(endpoint)
	host := u.Hostname()
	if host == "localhost" {
		// Dial the address rather than the name so that the source address
		// rotation applies (and no resolver is involved).
		host = "127.0.0.1"
	}
	port := u.Port()
	if port == "" {
		port = "80"
	}
	return "ws://" + net.JoinHostPort(host, port) + "/", net.ParseIP(host).To4() != nil
}

// dialChat opens one chat connection with token as its sub-protocol, from
// source address src if not nil. The connection is a *stampConn.
func dialChat(ctx context.Context, wsURL string, src net.IP, token string) (net.Conn, *bufio.Reader, error) {
	var status int
	d := ws.Dialer{
		Protocols: []string{token},
		Timeout:   15 * time.Second,
		OnStatusError: func(code int, _ []byte, _ io.Reader) {
			status = code
		},
	}
	nd := &net.Dialer{}
	if src != nil {
		nd.LocalAddr = &net.TCPAddr{IP: src}
	}
	d.NetDial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		nc, err := nd.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return newStampConn(nc), nil
	}
	conn, br, hs, err := d.Dial(ctx, wsURL)
	if err != nil {
		if status != 0 {
			return nil, nil, fmt.Errorf("HTTP %d", status)
		}
		return nil, nil, err
	}
	if hs.Protocol != token {
		// Browsers fail the handshake when the offered sub-protocol is not
		// echoed (spec/messaging.md §2), so this counts as a failure.
		conn.Close()
		return nil, nil, errors.New("token not echoed as sub-protocol")
	}
	if br == nil {
		br = bufio.NewReaderSize(conn, readBufSize)
	}
	// Otherwise the server sent frames right behind the 101 and they sit in
	// the dialer's buffer; keep reading through it.
	return conn, br, nil
}

// handshakeCause is the short, countable cause of a failed handshake: the
// HTTP status, or the kind of network error.
func handshakeCause(err error) string {
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return "no ephemeral port (EADDRNOTAVAIL)"
	case errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE):
		return "too many open files"
	}
	return err.Error()
}

// errorFrameCode returns the ErrorCode of an ERROR frame ("?" if it has
// none); ok is false for any other frame.
func errorFrameCode(p []byte) (code string, ok bool) {
	if !bytes.Contains(p, []byte(`"Type":"ERROR"`)) {
		return "", false
	}
	code = "?"
	if i := bytes.Index(p, []byte(`"ErrorCode":`)); i >= 0 {
		j := i + len(`"ErrorCode":`)
		k := j
		for k < len(p) && p[k] >= '0' && p[k] <= '9' {
			k++
		}
		code = string(p[j:k])
	}
	return code, true
}

// errorRequestSeq returns the sender and sequence of the request an ERROR
// frame answers, from the RequestId "<sender>-<seq>" the senders set.
func errorRequestSeq(p []byte) (sender int, seq uint32, ok bool) {
	const key = `"RequestId":"`
	i := bytes.Index(p, []byte(key))
	if i < 0 {
		return 0, 0, false
	}
	rest := p[i+len(key):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return 0, 0, false
	}
	a, b, found := strings.Cut(string(rest[:j]), "-")
	if !found {
		return 0, 0, false
	}
	s, err1 := strconv.Atoi(a)
	q, err2 := strconv.ParseUint(b, 10, 32)
	if err1 != nil || err2 != nil {
		return 0, 0, false
	}
	return s, uint32(q), true
}
