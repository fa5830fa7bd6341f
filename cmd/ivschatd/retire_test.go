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

	"github.com/ivschatd/ivschatd/internal/server"
	"github.com/ivschatd/ivschatd/internal/token"
)

// mintToken creates a chat token for roomARN (creating a room if it is "")
// through the SDK, with the key pair AKIDOPS/ops-secret.
func mintToken(ctx context.Context, t *testing.T, base, roomARN string) (tok, room string) {
	t.Helper()
	c := ivschat.New(ivschat.Options{Region: "us-west-2", BaseEndpoint: aws.String(base),
		Credentials: credentials.NewStaticCredentialsProvider("AKIDOPS", "ops-secret", "")})
	if roomARN == "" {
		r, err := c.CreateRoom(ctx, &ivschat.CreateRoomInput{})
		if err != nil {
			t.Fatal(err)
		}
		roomARN = *r.Arn
	}
	out, err := c.CreateChatToken(ctx, &ivschat.CreateChatTokenInput{RoomIdentifier: aws.String(roomARN), UserId: aws.String("u")})
	if err != nil {
		t.Fatal(err)
	}
	return *out.Token, roomARN
}

var opsEnv = []string{"IVSCHATD_ACCESS_KEY_ID=AKIDOPS", "IVSCHATD_SECRET_ACCESS_KEY=ops-secret"}

// dialToken opens a chat connection with tok and closes it again.
func dialToken(ctx context.Context, base, tok string) error {
	conn, _, _, err := ws.Dialer{Protocols: []string{tok}}.Dial(ctx, strings.Replace(base, "http", "ws", 1)+"/")
	if err == nil {
		conn.Close()
	}
	return err
}

// TestRetireTokenKeys: retire-token-keys refuses a key while it may still
// seal tokens (the server has not sealed with the newer key yet) and while
// tokens it sealed may still be valid (less than --token-ttl since the newer
// key began sealing); after that it removes the key, tokens it sealed are
// refused as not ours, and new tokens work.
func TestRetireTokenKeys(t *testing.T) {
	dir := t.TempDir()
	const ttl, ttlD = "3s", 3 * time.Second
	args := "--listen 127.0.0.1:0 --token-ttl " + ttl + " --data-dir " + dir
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	keys := func() []token.Key {
		t.Helper()
		kr, err := token.LoadOrCreateKeyring(server.KeyringPath(dir))
		if err != nil {
			t.Fatal(err)
		}
		return kr.Keys()
	}
	retire := func(wantCode int, extra string, want ...string) string {
		t.Helper()
		code, stdout, stderr, _ := runToExit(t, "retire-token-keys --data-dir "+dir+" --token-ttl "+ttl+" "+extra)
		if code != wantCode {
			t.Fatalf("retire-token-keys %s: exit %d, want %d\nstdout: %s\nstderr: %s", extra, code, wantCode, stdout, stderr)
		}
		for _, w := range want {
			if !strings.Contains(stdout+stderr, w) {
				t.Errorf("retire-token-keys %s: output lacks %q:\n%s%s", extra, w, stdout, stderr)
			}
		}
		return stdout + stderr
	}
	cmd, base, _ := startChild(t, args, opsEnv...)
	old, roomARN := mintToken(ctx, t, base, "")
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
	k1 := keys()[0]

	if code, out, errOut, _ := runToExit(t, "rotate-token-key --data-dir "+dir); code != 0 {
		t.Fatalf("rotate-token-key: exit %d: %s%s", code, out, errOut)
	}
	k2 := keys()[1]
	// The server has not sealed with k2 yet: a running one would still
	// seal with k1.
	retire(1, "--key "+k1.ID, "may still seal tokens", k2.ID, "nothing was removed")
	if n := len(keys()); n != 2 {
		t.Fatalf("%d keys after a refused retirement", n)
	}

	cmd, base, _ = startChild(t, args, opsEnv...)
	since := keys()[1].SealingSince
	if since.IsZero() {
		t.Fatal("the server did not record when the new key began sealing")
	}
	fresh, _ := mintToken(ctx, t, base, roomARN)
	if time.Since(since) < ttlD-time.Second {
		retire(1, "--key "+k1.ID, "stay valid until", "nothing was removed")
		retire(0, "", "kept key "+k1.ID, "no key retired")
	} else {
		t.Logf("start and mint took %v: the machine is too slow to check the refusal within --token-ttl", time.Since(since))
	}
	retire(1, "--key "+k2.ID, "seals new tokens")
	if err := dialToken(ctx, base, fresh); err != nil {
		t.Fatalf("a token sealed by the new key does not open: %v", err)
	}

	time.Sleep(time.Until(since.Add(ttlD + 100*time.Millisecond)))
	ring, _ := token.NewKeyring(keys()...)
	if _, err := ring.Open(old, time.Now()); !errors.Is(err, token.ErrExpired) {
		t.Fatalf("before retirement, the old token opens as %v, want expired", err)
	}
	retire(0, "", "retired key "+k1.ID, "kept key "+k2.ID)
	left := keys()
	if len(left) != 1 || left[0].ID != k2.ID {
		t.Fatalf("keys after retirement: %v", left)
	}
	ring, _ = token.NewKeyring(left...)
	if _, err := ring.Open(old, time.Now()); !errors.Is(err, token.ErrMalformed) {
		t.Errorf("after retirement, the old token opens as %v, want refused as not sealed by this server", err)
	}

	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
	_, base, logs := startChild(t, args, opsEnv...)
	if err := dialToken(ctx, base, old); err == nil {
		t.Error("a token sealed by the retired key opened")
	}
	tok, _ := mintToken(ctx, t, base, roomARN)
	if err := dialToken(ctx, base, tok); err != nil {
		t.Fatalf("a new token does not open after the retirement: %v\n%s", err, logs())
	}
}
