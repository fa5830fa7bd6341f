package server

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivschat"
	"github.com/aws/aws-sdk-go-v2/service/ivschat/types"

	"github.com/ivschatd/ivschatd/internal/chat"
)

// The extension tags' values are validated on rooms, through CreateRoom and
// TagResource, with a ValidationException whose field names the tag; good
// values are stored as ordinary tags; on logging configurations the keys
// are ordinary tags.
func TestExtensionTagValidation(t *testing.T) {
	ts := startServer(t, "", nil)
	c := ts.client()
	room := createRoom(t, c, "ext")
	lc := createLoggingConfiguration(t, c, "ext")

	bad := map[string][]string{
		chat.TagViewerCountInterval: {"0", "4", "301", "abc", "", "-5", "+5", " 5", "5.0"},
		chat.TagHistory:             {"0", "101", "abc", "", "-1", "1e1"},
	}
	for key, values := range bad {
		for _, value := range values {
			tags := map[string]string{"team": "chat", key: value}
			_, err := c.CreateRoom(ctxT(t), &ivschat.CreateRoomInput{Tags: tags})
			checkTagValidation(t, "CreateRoom", err, key, value)
			_, err = c.TagResource(ctxT(t), &ivschat.TagResourceInput{ResourceArn: room.Arn, Tags: tags})
			checkTagValidation(t, "TagResource", err, key, value)
		}
	}
	// Nothing of the refused calls was stored.
	if got, err := c.ListTagsForResource(ctxT(t), &ivschat.ListTagsForResourceInput{ResourceArn: room.Arn}); err != nil || len(got.Tags) != 0 {
		t.Fatalf("room tags after refused calls: %v, %v", got, err)
	}
	if n := roomCount(t, c); n != 1 {
		t.Fatalf("%d rooms after refused CreateRooms, want 1", n)
	}

	// Both tags, with values at the bounds, together with others.
	for _, tags := range []map[string]string{
		{chat.TagViewerCountInterval: "5", chat.TagHistory: "1"},
		{chat.TagViewerCountInterval: "300", chat.TagHistory: "100", "ivschatd:other": "anything", "team": "chat"},
	} {
		out, err := c.CreateRoom(ctxT(t), &ivschat.CreateRoomInput{Tags: tags})
		if err != nil {
			t.Fatalf("CreateRoom with %v: %v", tags, err)
		}
		if len(out.Tags) != len(tags) || out.Tags[chat.TagViewerCountInterval] != tags[chat.TagViewerCountInterval] {
			t.Errorf("CreateRoom tags = %v, want %v", out.Tags, tags)
		}
		if _, err := c.TagResource(ctxT(t), &ivschat.TagResourceInput{ResourceArn: room.Arn, Tags: tags}); err != nil {
			t.Fatalf("TagResource with %v: %v", tags, err)
		}
	}
	got, err := c.ListTagsForResource(ctxT(t), &ivschat.ListTagsForResourceInput{ResourceArn: room.Arn})
	if err != nil || got.Tags[chat.TagViewerCountInterval] != "300" || got.Tags[chat.TagHistory] != "100" {
		t.Fatalf("room tags = %v, %v", got.Tags, err)
	}

	// A logging configuration takes any value: the keys mean nothing there.
	lcTags := map[string]string{chat.TagViewerCountInterval: "abc", chat.TagHistory: "0"}
	if _, err := c.TagResource(ctxT(t), &ivschat.TagResourceInput{ResourceArn: lc.Arn, Tags: lcTags}); err != nil {
		t.Fatalf("TagResource on a logging configuration: %v", err)
	}
	if _, err := c.CreateLoggingConfiguration(ctxT(t), &ivschat.CreateLoggingConfigurationInput{
		DestinationConfiguration: s3Destination("chat-logs"), Tags: lcTags,
	}); err != nil {
		t.Fatalf("CreateLoggingConfiguration with extension keys: %v", err)
	}
}

func checkTagValidation(t *testing.T, op string, err error, key, value string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s with %s=%q succeeded, want ValidationException", op, key, value)
		return
	}
	ve := asError[*types.ValidationException](t, err)
	if len(ve.FieldList) != 1 {
		t.Errorf("%s with %s=%q: fieldList %+v, want one field", op, key, value, ve.FieldList)
		return
	}
	f := ve.FieldList[0]
	if aws.ToString(f.Name) != "tags."+key || !strings.Contains(aws.ToString(f.Message), key) {
		t.Errorf("%s with %s=%q: field %q %q, want the tag named", op, key, value, aws.ToString(f.Name), aws.ToString(f.Message))
	}
}
