package main

import (
	"bytes"
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

	"github.com/ivschatd/ivschatd/internal/server"
	"github.com/ivschatd/ivschatd/internal/token"
)

// TestRotateTokenKey: after `ivschatd rotate-token-key` and a restart, new
// tokens are sealed with the new key while tokens minted before still open.
func TestRotateTokenKey(t *testing.T) {
	dir := t.TempDir()
	args := "--listen 127.0.0.1:0 --data-dir " + dir
	env := []string{"IVSCHATD_ACCESS_KEY_ID=AKIDROT", "IVSCHATD_SECRET_ACCESS_KEY=rot-secret"}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	mint := func(base string, roomARN *string) (string, *string) {
		c := ivschat.New(ivschat.Options{Region: "us-west-2", BaseEndpoint: aws.String(base),
			Credentials: credentials.NewStaticCredentialsProvider("AKIDROT", "rot-secret", "")})
		if roomARN == nil {
			room, err := c.CreateRoom(ctx, &ivschat.CreateRoomInput{})
			if err != nil {
				t.Fatal(err)
			}
			roomARN = room.Arn
		}
		tok, err := c.CreateChatToken(ctx, &ivschat.CreateChatTokenInput{RoomIdentifier: roomARN, UserId: aws.String("u")})
		if err != nil {
			t.Fatal(err)
		}
		return *tok.Token, roomARN
	}

	cmd, base, _ := startChild(t, args, env...)
	before, roomARN := mint(base, nil)
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()

	var out bytes.Buffer
	if err := rotateTokenKey([]string{"--data-dir", dir}, &out); err != nil {
		t.Fatal(err)
	}
	kr, err := token.LoadOrCreateKeyring(server.KeyringPath(dir))
	if err != nil {
		t.Fatal(err)
	}
	keys := kr.Keys()
	if len(keys) != 2 || !strings.Contains(out.String(), keys[1].ID) {
		t.Fatalf("after rotation: %d keys, output %q", len(keys), out.String())
	}
	newest, _ := token.NewKeyring(keys[1])

	_, base, _ = startChild(t, args, env...)
	after, _ := mint(base, roomARN)
	if _, err := newest.Open(after, time.Now()); err != nil {
		t.Errorf("a token minted after the rotation is not sealed with the new key: %v", err)
	}
	if _, err := newest.Open(before, time.Now()); !errors.Is(err, token.ErrMalformed) {
		t.Errorf("the old token opened with only the new key: %v", err)
	}
	for name, tok := range map[string]string{"before": before, "after": after} {
		conn, _, _, err := ws.Dialer{Protocols: []string{tok}}.Dial(ctx, strings.Replace(base, "http", "ws", 1)+"/")
		if err != nil {
			t.Errorf("token minted %s the rotation does not open: %v", name, err)
			continue
		}
		conn.Close()
	}
}
