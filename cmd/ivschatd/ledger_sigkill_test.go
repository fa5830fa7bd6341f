package main

import (
	"context"
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ivschat"
	"github.com/gobwas/ws"
)

// TestUsedTokenSurvivesSIGKILL: a single node (no Redis) killed with SIGKILL
// while a connection is open, so nothing runs at exit, still refuses that
// connection's token after it restarts on the same data dir (item 7: the
// used-token ledger is committed to its file before the 101).
func TestUsedTokenSurvivesSIGKILL(t *testing.T) {
	dir := t.TempDir()
	args := "--listen 127.0.0.1:0 --data-dir " + dir
	env := []string{"IVSCHATD_ACCESS_KEY_ID=AKIDCLI", "IVSCHATD_SECRET_ACCESS_KEY=cli-secret"}
	cmd, base, _ := startChild(t, args, env...)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client := func(base string) *ivschat.Client {
		return ivschat.New(ivschat.Options{Region: "us-west-2", BaseEndpoint: aws.String(base),
			Credentials: credentials.NewStaticCredentialsProvider("AKIDCLI", "cli-secret", "")})
	}
	room, err := client(base).CreateRoom(ctx, &ivschat.CreateRoomInput{})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := client(base).CreateChatToken(ctx, &ivschat.CreateChatTokenInput{RoomIdentifier: room.Arn, UserId: aws.String("u")})
	if err != nil {
		t.Fatal(err)
	}
	dial := func(base string) error {
		conn, _, _, err := ws.Dialer{Protocols: []string{*tok.Token}}.Dial(ctx, strings.Replace(base, "http", "ws", 1)+"/")
		if err == nil {
			conn.Close()
		}
		return err
	}
	conn, _, _, err := ws.Dialer{Protocols: []string{*tok.Token}}.Dial(ctx, strings.Replace(base, "http", "ws", 1)+"/")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()

	_, base, logs := startChild(t, args, env...)
	var status ws.StatusError
	if err := dial(base); !errors.As(err, &status) || int(status) != 401 {
		t.Fatalf("the token of a connection open at the SIGKILL, after the restart: %v, want HTTP 401\n%s", err, logs())
	}
}
