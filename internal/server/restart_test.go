package server

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivschat"
	"github.com/aws/aws-sdk-go-v2/service/ivschat/types"
	"github.com/gobwas/ws"
)

// TestRestartKeepsEverything stops the server and starts a new one on the same
// data dir: rooms, logging configurations, tags, the generated credentials and
// the token key ring must all survive, so tokens minted before the restart
// still open a connection.
func TestRestartKeepsEverything(t *testing.T) {
	dir := t.TempDir()
	ts := startServer(t, dir, nil)
	c := ts.client()
	ctx := ctxT(t)
	lc := createLoggingConfiguration(t, c, "persist")
	room, err := c.CreateRoom(ctx, &ivschat.CreateRoomInput{
		Name: aws.String("persist"), MaximumMessageLength: aws.Int32(42),
		MessageReviewHandler:            &types.MessageReviewHandler{Uri: aws.String("arn:aws:lambda:us-west-2:123456789012:function:f"), FallbackResult: types.FallbackResultDeny},
		Tags:                            map[string]string{"k": "v"},
		LoggingConfigurationIdentifiers: []string{*lc.Arn},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.TagResource(ctx, &ivschat.TagResourceInput{ResourceArn: lc.Arn, Tags: map[string]string{"lc": "tag"}}); err != nil {
		t.Fatal(err)
	}
	tok, err := c.CreateChatToken(ctx, &ivschat.CreateChatTokenInput{RoomIdentifier: room.Arn, UserId: aws.String("viewer")})
	if err != nil {
		t.Fatal(err)
	}
	list, err := c.ListRooms(ctx, &ivschat.ListRoomsInput{MaxResults: aws.Int32(1)})
	if err != nil {
		t.Fatal(err)
	}
	ts.Stop()

	ts = startServer(t, dir, nil)
	c = ts.client()
	got, err := c.GetRoom(ctx, &ivschat.GetRoomInput{Identifier: room.Arn})
	if err != nil {
		t.Fatalf("room lost across restart: %v", err)
	}
	if aws.ToString(got.Name) != "persist" || aws.ToInt32(got.MaximumMessageLength) != 42 || got.Tags["k"] != "v" ||
		got.MessageReviewHandler == nil || got.MessageReviewHandler.FallbackResult != types.FallbackResultDeny ||
		len(got.LoggingConfigurationIdentifiers) != 1 || got.LoggingConfigurationIdentifiers[0] != *lc.Arn ||
		!got.CreateTime.Equal(*room.CreateTime) || !got.UpdateTime.Equal(*room.UpdateTime) {
		t.Errorf("room after restart = %+v", got)
	}
	gotLC, err := c.GetLoggingConfiguration(ctx, &ivschat.GetLoggingConfigurationInput{Identifier: lc.Arn})
	if err != nil || gotLC.Tags["lc"] != "tag" || aws.ToString(gotLC.Name) != "persist" {
		t.Fatalf("logging configuration after restart: %v %+v", err, gotLC)
	}
	// Page tokens stay valid too (their key derives from the persisted key ring).
	if _, err := c.ListRooms(ctx, &ivschat.ListRoomsInput{NextToken: list.NextToken}); list.NextToken != nil && err != nil {
		t.Errorf("page token from before the restart: %v", err)
	}

	dialCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, _, hs, err := ws.Dialer{Protocols: []string{*tok.Token}}.Dial(dialCtx, strings.Replace(ts.URL, "http://", "ws://", 1)+"/")
	if err != nil {
		t.Fatalf("token minted before the restart does not open: %v", err)
	}
	conn.Close()
	if hs.Protocol != *tok.Token {
		t.Errorf("sub-protocol not echoed: %q", hs.Protocol)
	}
}
