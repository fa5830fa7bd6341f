package main

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ivschat"
	"github.com/aws/aws-sdk-go-v2/service/ivschat/types"

	"github.com/ivschatd/ivschatd/internal/server"
)

// TestBackupRestoreUnderLoad backs up a running server while a client keeps
// creating rooms with tags and minting tokens, restores the archive into a
// new data dir and starts a server on it: the generated credentials, the
// logging configuration, the rooms with their tags and configuration, and
// tokens minted before the backup are all there, and every room in the
// snapshot has its tags (each CreateRoom is in the snapshot whole or not at
// all).
func TestBackupRestoreUnderLoad(t *testing.T) {
	fh := &firehoseEndpoint{ids: map[string]int{}}
	endpoint := httptest.NewServer(fh)
	defer endpoint.Close()
	dir := t.TempDir()
	flags := " --firehose-endpoint " + endpoint.URL + " --destinations-access-key-id AKIDFH --destinations-secret-access-key fh-secret"
	// No key pair configured: the server generates credentials.json, which
	// the backup must carry.
	_, base, logs := startChild(t, "--listen 127.0.0.1:0 --data-dir "+dir+flags)
	key, _, err := server.GeneratedCredentials(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	client := func(base string) *ivschat.Client {
		return ivschat.New(ivschat.Options{Region: "us-west-2", BaseEndpoint: aws.String(base), RetryMaxAttempts: 1,
			Credentials: credentials.NewStaticCredentialsProvider(key.AccessKeyID, key.SecretAccessKey, "")})
	}
	c := client(base)
	lc, err := c.CreateLoggingConfiguration(ctx, &ivschat.CreateLoggingConfigurationInput{Name: aws.String("before"),
		DestinationConfiguration: &types.DestinationConfigurationMemberFirehose{
			Value: types.FirehoseDestinationConfiguration{DeliveryStreamName: aws.String("chat-stream")}}})
	if err != nil {
		t.Fatal(err)
	}
	type minted struct{ room, token string }
	var before []minted
	for i := range 5 {
		room, err := c.CreateRoom(ctx, &ivschat.CreateRoomInput{Name: aws.String(fmt.Sprintf("before-%d", i)),
			LoggingConfigurationIdentifiers: []string{*lc.Arn}, Tags: map[string]string{"n": strconv.Itoa(i), "phase": "before"}})
		if err != nil {
			t.Fatal(err)
		}
		tok, err := c.CreateChatToken(ctx, &ivschat.CreateChatTokenInput{RoomIdentifier: room.Arn, UserId: aws.String("u"),
			SessionDurationInMinutes: aws.Int32(180)})
		if err != nil {
			t.Fatal(err)
		}
		before = append(before, minted{*room.Arn, *tok.Token})
	}

	// The load: rooms with tags, tag updates and tokens, until stopped.
	var ops atomic.Int64
	stopLoad := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stopLoad:
				return
			default:
			}
			room, err := c.CreateRoom(ctx, &ivschat.CreateRoomInput{Name: aws.String(fmt.Sprintf("load-%d", i)),
				Tags: map[string]string{"n": strconv.Itoa(i), "phase": "load"}})
			if err != nil {
				t.Errorf("CreateRoom under load: %v", err)
				return
			}
			if _, err := c.TagResource(ctx, &ivschat.TagResourceInput{ResourceArn: room.Arn, Tags: map[string]string{"tagged": "yes"}}); err != nil {
				t.Errorf("TagResource under load: %v", err)
				return
			}
			if _, err := c.CreateChatToken(ctx, &ivschat.CreateChatTokenInput{RoomIdentifier: room.Arn, UserId: aws.String("u")}); err != nil {
				t.Errorf("CreateChatToken under load: %v", err)
				return
			}
			ops.Add(1)
		}
	}()
	for ops.Load() < 5 { // the load is running before the backup starts
		time.Sleep(10 * time.Millisecond)
	}
	archive := filepath.Join(t.TempDir(), "ivschatd-backup.tar.gz")
	opsAtStart := ops.Load()
	code, stdout, stderr, took := runToExit(t, "backup --data-dir "+dir+" --out "+archive)
	opsDuring := ops.Load() - opsAtStart
	close(stopLoad)
	wg.Wait()
	if code != 0 {
		t.Fatalf("backup: exit %d\n%s%s", code, stdout, stderr)
	}
	t.Logf("backup took %v; %d rounds of CreateRoom+TagResource+CreateChatToken ran during it; %s", took, opsDuring, stdout)
	if opsDuring == 0 {
		t.Error("no write ran during the backup: the load did not overlap it")
	}
	fi, err := os.Stat(archive)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("archive mode %v, want 0600", fi.Mode().Perm())
	}

	restored := filepath.Join(t.TempDir(), "restored")
	if code, stdout, stderr, _ := runToExit(t, "restore --in "+archive+" --data-dir "+restored); code != 0 {
		t.Fatalf("restore: exit %d\n%s%s", code, stdout, stderr)
	}
	if code, _, stderr, _ := runToExit(t, "restore --in "+archive+" --data-dir "+restored); code != 1 {
		t.Errorf("a restore into a non-empty data dir: exit %d, want 1\n%s", code, stderr)
	}
	databases, files := server.BackupFiles()
	want := append(databases, files...)
	slices.Sort(want)
	if got := dirNames(t, restored); !slices.Equal(got, want) {
		t.Errorf("restored data dir holds %v, want %v", got, want)
	}
	for _, name := range files {
		a, _ := os.ReadFile(filepath.Join(dir, name))
		b, _ := os.ReadFile(filepath.Join(restored, name))
		if string(a) != string(b) {
			t.Errorf("%s differs after the restore", name)
		}
	}

	_, base2, logs2 := startChild(t, "--listen 127.0.0.1:0 --data-dir "+restored+flags)
	c2 := client(base2) // the generated key pair of the original
	if _, err := c2.GetLoggingConfiguration(ctx, &ivschat.GetLoggingConfigurationInput{Identifier: lc.Arn}); err != nil {
		t.Fatalf("logging configuration after the restore: %v\n%s\n%s", err, logs(), logs2())
	}
	for _, m := range before {
		room, err := c2.GetRoom(ctx, &ivschat.GetRoomInput{Identifier: aws.String(m.room)})
		if err != nil {
			t.Fatalf("room after the restore: %v", err)
		}
		if room.Tags["phase"] != "before" || !slices.Equal(room.LoggingConfigurationIdentifiers, []string{*lc.Arn}) {
			t.Errorf("room %s restored with tags %v, logging %v", *room.Name, room.Tags, room.LoggingConfigurationIdentifiers)
		}
		if err := dialToken(ctx, base2, m.token); err != nil {
			t.Errorf("a token minted before the backup does not open on the restored server: %v", err)
		}
	}
	var loadRooms int
	p := ivschat.NewListRoomsPaginator(c2, &ivschat.ListRoomsInput{MaxResults: aws.Int32(50)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range page.Rooms {
			if r.Tags["phase"] == "load" {
				loadRooms++
			}
			if r.Tags["n"] == "" {
				t.Errorf("room %s restored without the tags it was created with: %v", *r.Name, r.Tags)
			}
		}
	}
	if int64(loadRooms) < opsAtStart {
		t.Errorf("%d rooms of the load restored; %d were created before the backup began", loadRooms, opsAtStart)
	}
	t.Logf("restored %d rooms of the load (%d before the backup began, %d by its end)", loadRooms, opsAtStart, opsAtStart+opsDuring)
}
