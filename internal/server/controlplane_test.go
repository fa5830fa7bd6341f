package server

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivschat"
	"github.com/aws/aws-sdk-go-v2/service/ivschat/types"
	"github.com/aws/smithy-go"

	"github.com/ivschatd/ivschatd/internal/config"
)

// These tests drive every control-plane operation through the unchanged
// aws-sdk-go-v2 IVS Chat client against the real server over HTTP.

var (
	roomARNPattern = regexp.MustCompile(`^arn:aws:ivschat:us-west-2:123456789012:room/[A-Za-z0-9]{12}$`)
	lcARNPattern   = regexp.MustCompile(`^arn:aws:ivschat:us-west-2:123456789012:logging-configuration/[A-Za-z0-9]{12}$`)
	idPattern      = regexp.MustCompile(`^[A-Za-z0-9]{12}$`)
	tokenPattern   = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func s3Destination(bucket string) types.DestinationConfiguration {
	return &types.DestinationConfigurationMemberS3{Value: types.S3DestinationConfiguration{BucketName: aws.String(bucket)}}
}

func createLoggingConfiguration(t *testing.T, c *ivschat.Client, name string) *ivschat.CreateLoggingConfigurationOutput {
	t.Helper()
	out, err := c.CreateLoggingConfiguration(ctxT(t), &ivschat.CreateLoggingConfigurationInput{
		Name:                     aws.String(name),
		DestinationConfiguration: s3Destination("chat-logs"),
	})
	if err != nil {
		t.Fatalf("CreateLoggingConfiguration: %v", err)
	}
	return out
}

func createRoom(t *testing.T, c *ivschat.Client, name string) *ivschat.CreateRoomOutput {
	t.Helper()
	out, err := c.CreateRoom(ctxT(t), &ivschat.CreateRoomInput{Name: aws.String(name)})
	if err != nil {
		t.Fatalf("CreateRoom: %v", err)
	}
	return out
}

// asError asserts that err is (or wraps) a *T and returns it.
func asError[T error](t *testing.T, err error) T {
	t.Helper()
	var target T
	if !errors.As(err, &target) {
		t.Fatalf("error = %T %v, want %T", err, err, target)
	}
	return target
}

func TestRoomLifecycle(t *testing.T) {
	ts := startServer(t, "", nil)
	c := ts.client()
	ctx := ctxT(t)
	lc := createLoggingConfiguration(t, c, "logs")

	before := time.Now().Add(-time.Second)
	created, err := c.CreateRoom(ctx, &ivschat.CreateRoomInput{
		Name:                            aws.String("main-stage_1"),
		MaximumMessageLength:            aws.Int32(200),
		MaximumMessageRatePerSecond:     aws.Int32(7),
		MessageReviewHandler:            &types.MessageReviewHandler{Uri: aws.String("arn:aws:lambda:us-west-2:123456789012:function:review"), FallbackResult: types.FallbackResultDeny},
		Tags:                            map[string]string{"team": "video", "env": ""},
		LoggingConfigurationIdentifiers: []string{*lc.Arn},
	})
	if err != nil {
		t.Fatalf("CreateRoom: %v", err)
	}
	if !roomARNPattern.MatchString(aws.ToString(created.Arn)) || !strings.HasSuffix(*created.Arn, "/"+aws.ToString(created.Id)) {
		t.Errorf("arn %q / id %q", aws.ToString(created.Arn), aws.ToString(created.Id))
	}
	if aws.ToString(created.Name) != "main-stage_1" || aws.ToInt32(created.MaximumMessageLength) != 200 || aws.ToInt32(created.MaximumMessageRatePerSecond) != 7 {
		t.Errorf("created = name %q len %d rate %d", aws.ToString(created.Name), created.MaximumMessageLength, created.MaximumMessageRatePerSecond)
	}
	if h := created.MessageReviewHandler; h == nil || aws.ToString(h.Uri) != "arn:aws:lambda:us-west-2:123456789012:function:review" || h.FallbackResult != types.FallbackResultDeny {
		t.Errorf("messageReviewHandler = %+v", h)
	}
	if len(created.Tags) != 2 || created.Tags["team"] != "video" || created.Tags["env"] != "" {
		t.Errorf("tags = %v", created.Tags)
	}
	if !slices.Equal(created.LoggingConfigurationIdentifiers, []string{*lc.Arn}) {
		t.Errorf("loggingConfigurationIdentifiers = %v", created.LoggingConfigurationIdentifiers)
	}
	if created.CreateTime == nil || created.CreateTime.Before(before) || !created.CreateTime.Equal(*created.UpdateTime) {
		t.Errorf("createTime %v updateTime %v", created.CreateTime, created.UpdateTime)
	}

	got, err := c.GetRoom(ctx, &ivschat.GetRoomInput{Identifier: created.Arn})
	if err != nil {
		t.Fatalf("GetRoom: %v", err)
	}
	if aws.ToString(got.Arn) != *created.Arn || aws.ToString(got.Name) != "main-stage_1" || aws.ToInt32(got.MaximumMessageLength) != 200 ||
		aws.ToInt32(got.MaximumMessageRatePerSecond) != 7 || !got.CreateTime.Equal(*created.CreateTime) || !got.UpdateTime.Equal(*created.UpdateTime) ||
		got.Tags["team"] != "video" || got.MessageReviewHandler == nil || !slices.Equal(got.LoggingConfigurationIdentifiers, created.LoggingConfigurationIdentifiers) {
		t.Errorf("GetRoom = %+v", got)
	}
	// The bare room ID is accepted too (documented extension).
	if _, err := c.GetRoom(ctx, &ivschat.GetRoomInput{Identifier: created.Id}); err != nil {
		t.Errorf("GetRoom by ID: %v", err)
	}

	// A partial update changes only the given fields and bumps updateTime.
	time.Sleep(5 * time.Millisecond) // the wire has millisecond precision
	updated, err := c.UpdateRoom(ctx, &ivschat.UpdateRoomInput{Identifier: created.Arn, MaximumMessageLength: aws.Int32(100)})
	if err != nil {
		t.Fatalf("UpdateRoom: %v", err)
	}
	if aws.ToInt32(updated.MaximumMessageLength) != 100 || aws.ToInt32(updated.MaximumMessageRatePerSecond) != 7 || aws.ToString(updated.Name) != "main-stage_1" ||
		updated.MessageReviewHandler == nil || len(updated.LoggingConfigurationIdentifiers) != 1 || updated.Tags["team"] != "video" {
		t.Errorf("UpdateRoom changed more than asked: %+v", updated)
	}
	if !updated.UpdateTime.After(*created.UpdateTime) || !updated.CreateTime.Equal(*created.CreateTime) {
		t.Errorf("updateTime %v (was %v), createTime %v", updated.UpdateTime, created.UpdateTime, updated.CreateTime)
	}
	// An empty handler URI removes the handler; an empty list detaches all configurations.
	updated, err = c.UpdateRoom(ctx, &ivschat.UpdateRoomInput{
		Identifier:                      created.Arn,
		MessageReviewHandler:            &types.MessageReviewHandler{Uri: aws.String("")},
		LoggingConfigurationIdentifiers: []string{},
		Name:                            aws.String(""),
	})
	if err != nil {
		t.Fatalf("UpdateRoom: %v", err)
	}
	if updated.MessageReviewHandler != nil || len(updated.LoggingConfigurationIdentifiers) != 0 || aws.ToString(updated.Name) != "" {
		t.Errorf("after clearing: handler %+v, configs %v, name %q", updated.MessageReviewHandler, updated.LoggingConfigurationIdentifiers, aws.ToString(updated.Name))
	}

	if _, err := c.DeleteRoom(ctx, &ivschat.DeleteRoomInput{Identifier: created.Arn}); err != nil {
		t.Fatalf("DeleteRoom: %v", err)
	}
	_, err = c.GetRoom(ctx, &ivschat.GetRoomInput{Identifier: created.Arn})
	nf := asError[*types.ResourceNotFoundException](t, err)
	if aws.ToString(nf.ResourceId) != *created.Id || nf.ResourceType != types.ResourceTypeRoom {
		t.Errorf("not found = %+v", nf)
	}
	_, err = c.DeleteRoom(ctx, &ivschat.DeleteRoomInput{Identifier: created.Arn})
	asError[*types.ResourceNotFoundException](t, err)
}

func TestCreateRoomDefaults(t *testing.T) {
	ts := startServer(t, "", nil)
	c := ts.client()
	out, err := c.CreateRoom(ctxT(t), &ivschat.CreateRoomInput{})
	if err != nil {
		t.Fatalf("CreateRoom: %v", err)
	}
	if aws.ToInt32(out.MaximumMessageLength) != 500 || aws.ToInt32(out.MaximumMessageRatePerSecond) != 10 || aws.ToString(out.Name) != "" ||
		out.MessageReviewHandler != nil || out.Tags == nil || out.LoggingConfigurationIdentifiers == nil {
		t.Errorf("defaults = %+v", out)
	}
	// A handler given without fallbackResult falls back to ALLOW.
	out, err = c.CreateRoom(ctxT(t), &ivschat.CreateRoomInput{MessageReviewHandler: &types.MessageReviewHandler{Uri: aws.String("arn:aws:lambda:us-west-2:123456789012:function:f")}})
	if err != nil {
		t.Fatalf("CreateRoom: %v", err)
	}
	if out.MessageReviewHandler == nil || out.MessageReviewHandler.FallbackResult != types.FallbackResultAllow {
		t.Errorf("handler = %+v", out.MessageReviewHandler)
	}
}

func TestListRooms(t *testing.T) {
	ts := startServer(t, "", nil)
	c := ts.client()
	ctx := ctxT(t)
	lc := createLoggingConfiguration(t, c, "")
	var arns []string
	for i := range 7 {
		in := &ivschat.CreateRoomInput{Name: aws.String("room")}
		if i%2 == 0 {
			in.Name = aws.String("even")
			in.LoggingConfigurationIdentifiers = []string{*lc.Arn}
		}
		if i == 3 {
			in.MessageReviewHandler = &types.MessageReviewHandler{Uri: aws.String("arn:aws:lambda:us-west-2:123456789012:function:r3")}
		}
		out, err := c.CreateRoom(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		arns = append(arns, *out.Arn)
	}
	// Touch room 0 so it becomes the most recently updated.
	time.Sleep(2 * time.Millisecond)
	if _, err := c.UpdateRoom(ctx, &ivschat.UpdateRoomInput{Identifier: &arns[0], MaximumMessageLength: aws.Int32(9)}); err != nil {
		t.Fatal(err)
	}

	var listed []types.RoomSummary
	var pages int
	p := ivschat.NewListRoomsPaginator(c, &ivschat.ListRoomsInput{MaxResults: aws.Int32(3)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Rooms) > 3 {
			t.Fatalf("page of %d rooms, maxResults 3", len(page.Rooms))
		}
		pages++
		listed = append(listed, page.Rooms...)
	}
	if len(listed) != 7 || pages != 3 {
		t.Fatalf("listed %d rooms in %d pages, want 7 in 3", len(listed), pages)
	}
	if *listed[0].Arn != arns[0] {
		t.Errorf("first room %s, want the most recently updated %s", *listed[0].Arn, arns[0])
	}
	for i := 1; i < len(listed); i++ {
		if listed[i].UpdateTime.After(*listed[i-1].UpdateTime) {
			t.Errorf("rooms not in descending updateTime order at %d", i)
		}
	}
	seen := map[string]bool{}
	for _, r := range listed {
		if seen[*r.Arn] {
			t.Errorf("room %s listed twice", *r.Arn)
		}
		seen[*r.Arn] = true
		if r.Tags == nil || r.LoggingConfigurationIdentifiers == nil || r.CreateTime == nil {
			t.Errorf("summary missing fields: %+v", r)
		}
	}

	count := func(in *ivschat.ListRoomsInput) int {
		out, err := c.ListRooms(ctx, in)
		if err != nil {
			t.Fatalf("ListRooms(%+v): %v", in, err)
		}
		return len(out.Rooms)
	}
	if n := count(&ivschat.ListRoomsInput{Name: aws.String("even")}); n != 4 {
		t.Errorf("name filter: %d rooms, want 4", n)
	}
	if n := count(&ivschat.ListRoomsInput{LoggingConfigurationIdentifier: lc.Arn}); n != 4 {
		t.Errorf("logging configuration filter: %d rooms, want 4", n)
	}
	if n := count(&ivschat.ListRoomsInput{MessageReviewHandlerUri: aws.String("arn:aws:lambda:us-west-2:123456789012:function:r3")}); n != 1 {
		t.Errorf("handler filter: %d rooms, want 1", n)
	}
	if n := count(&ivschat.ListRoomsInput{Name: aws.String("room"), LoggingConfigurationIdentifier: lc.Arn}); n != 0 {
		t.Errorf("combined filters: %d rooms, want 0", n)
	}

	// A forged or altered nextToken is refused.
	_, err := c.ListRooms(ctx, &ivschat.ListRoomsInput{NextToken: aws.String("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")})
	ve := asError[*types.ValidationException](t, err)
	if len(ve.FieldList) != 1 || aws.ToString(ve.FieldList[0].Name) != "nextToken" {
		t.Errorf("fieldList = %+v", ve.FieldList)
	}
	// A filter naming a logging configuration that does not exist.
	_, err = c.ListRooms(ctx, &ivschat.ListRoomsInput{LoggingConfigurationIdentifier: aws.String("arn:aws:ivschat:us-west-2:123456789012:logging-configuration/AAAAAAAAAAAA")})
	asError[*types.ResourceNotFoundException](t, err)
}

func TestLoggingConfigurationLifecycle(t *testing.T) {
	ts := startServer(t, "", nil)
	c := ts.client()
	ctx := ctxT(t)
	dests := []types.DestinationConfiguration{
		s3Destination("my-bucket.logs"),
		&types.DestinationConfigurationMemberCloudWatchLogs{Value: types.CloudWatchLogsDestinationConfiguration{LogGroupName: aws.String("/ivs/chat#1")}},
		&types.DestinationConfigurationMemberFirehose{Value: types.FirehoseDestinationConfiguration{DeliveryStreamName: aws.String("chat_stream-1.x")}},
	}
	var arns []string
	for i, d := range dests {
		out, err := c.CreateLoggingConfiguration(ctx, &ivschat.CreateLoggingConfigurationInput{
			Name: aws.String("cfg-" + string(rune('a'+i))), DestinationConfiguration: d, Tags: map[string]string{"n": string(rune('0' + i))},
		})
		if err != nil {
			t.Fatalf("CreateLoggingConfiguration: %v", err)
		}
		if !lcARNPattern.MatchString(aws.ToString(out.Arn)) || !idPattern.MatchString(aws.ToString(out.Id)) || out.State != types.CreateLoggingConfigurationStateActive ||
			out.CreateTime == nil || !out.CreateTime.Equal(*out.UpdateTime) || out.Tags["n"] == "" {
			t.Errorf("created = %+v", out)
		}
		if !sameDestination(out.DestinationConfiguration, d) {
			t.Errorf("destination = %#v, want %#v", out.DestinationConfiguration, d)
		}
		arns = append(arns, *out.Arn)
		got, err := c.GetLoggingConfiguration(ctx, &ivschat.GetLoggingConfigurationInput{Identifier: out.Arn})
		if err != nil {
			t.Fatalf("GetLoggingConfiguration: %v", err)
		}
		if aws.ToString(got.Name) != *out.Name || got.State != types.LoggingConfigurationStateActive || !sameDestination(got.DestinationConfiguration, d) || !got.UpdateTime.Equal(*out.UpdateTime) {
			t.Errorf("got = %+v", got)
		}
	}

	time.Sleep(5 * time.Millisecond)
	upd, err := c.UpdateLoggingConfiguration(ctx, &ivschat.UpdateLoggingConfigurationInput{Identifier: &arns[0], DestinationConfiguration: dests[2]})
	if err != nil {
		t.Fatalf("UpdateLoggingConfiguration: %v", err)
	}
	if aws.ToString(upd.Name) != "cfg-a" || !sameDestination(upd.DestinationConfiguration, dests[2]) || upd.State != types.UpdateLoggingConfigurationStateActive || upd.Tags["n"] != "0" {
		t.Errorf("updated = %+v", upd)
	}

	list, err := c.ListLoggingConfigurations(ctx, &ivschat.ListLoggingConfigurationsInput{MaxResults: aws.Int32(2)})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.LoggingConfigurations) != 2 || aws.ToString(list.LoggingConfigurations[0].Arn) != arns[0] || list.NextToken == nil {
		t.Fatalf("first page = %+v", list)
	}
	rest, err := c.ListLoggingConfigurations(ctx, &ivschat.ListLoggingConfigurationsInput{NextToken: list.NextToken})
	if err != nil {
		t.Fatal(err)
	}
	if len(rest.LoggingConfigurations) != 1 || rest.NextToken != nil {
		t.Fatalf("second page = %+v", rest)
	}
	// A ListRooms token is not a ListLoggingConfigurations token.
	createRoom(t, c, "a")
	createRoom(t, c, "b")
	rooms, err := c.ListRooms(ctx, &ivschat.ListRoomsInput{MaxResults: aws.Int32(1)})
	if err != nil || rooms.NextToken == nil {
		t.Fatalf("ListRooms: %v %+v", err, rooms)
	}
	_, err = c.ListLoggingConfigurations(ctx, &ivschat.ListLoggingConfigurationsInput{NextToken: rooms.NextToken})
	asError[*types.ValidationException](t, err)

	// A configuration that a room references cannot be deleted (409) until
	// the room lets go of it.
	room, err := c.CreateRoom(ctx, &ivschat.CreateRoomInput{LoggingConfigurationIdentifiers: []string{arns[1]}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.DeleteLoggingConfiguration(ctx, &ivschat.DeleteLoggingConfigurationInput{Identifier: &arns[1]})
	conflict := asError[*types.ConflictException](t, err)
	if !strings.HasSuffix(arns[1], "/"+aws.ToString(conflict.ResourceId)) {
		t.Errorf("conflict resourceId = %q", aws.ToString(conflict.ResourceId))
	}
	if _, err := c.UpdateRoom(ctx, &ivschat.UpdateRoomInput{Identifier: room.Arn, LoggingConfigurationIdentifiers: []string{}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteLoggingConfiguration(ctx, &ivschat.DeleteLoggingConfigurationInput{Identifier: &arns[1]}); err != nil {
		t.Fatalf("DeleteLoggingConfiguration: %v", err)
	}
	_, err = c.GetLoggingConfiguration(ctx, &ivschat.GetLoggingConfigurationInput{Identifier: &arns[1]})
	asError[*types.ResourceNotFoundException](t, err)
	// Referencing a configuration that does not exist.
	_, err = c.CreateRoom(ctx, &ivschat.CreateRoomInput{LoggingConfigurationIdentifiers: []string{arns[1]}})
	asError[*types.ResourceNotFoundException](t, err)
}

func sameDestination(a, b types.DestinationConfiguration) bool {
	switch x := a.(type) {
	case *types.DestinationConfigurationMemberS3:
		y, ok := b.(*types.DestinationConfigurationMemberS3)
		return ok && aws.ToString(x.Value.BucketName) == aws.ToString(y.Value.BucketName)
	case *types.DestinationConfigurationMemberCloudWatchLogs:
		y, ok := b.(*types.DestinationConfigurationMemberCloudWatchLogs)
		return ok && aws.ToString(x.Value.LogGroupName) == aws.ToString(y.Value.LogGroupName)
	case *types.DestinationConfigurationMemberFirehose:
		y, ok := b.(*types.DestinationConfigurationMemberFirehose)
		return ok && aws.ToString(x.Value.DeliveryStreamName) == aws.ToString(y.Value.DeliveryStreamName)
	}
	return false
}

func TestTags(t *testing.T) {
	ts := startServer(t, "", nil)
	c := ts.client()
	ctx := ctxT(t)
	room := createRoom(t, c, "tagged")
	lc := createLoggingConfiguration(t, c, "tagged")
	for _, arn := range []string{*room.Arn, *lc.Arn} {
		if _, err := c.TagResource(ctx, &ivschat.TagResourceInput{ResourceArn: &arn, Tags: map[string]string{"a": "1", "b": "2", "c": ""}}); err != nil {
			t.Fatalf("TagResource(%s): %v", arn, err)
		}
		if _, err := c.TagResource(ctx, &ivschat.TagResourceInput{ResourceArn: &arn, Tags: map[string]string{"a": "one"}}); err != nil {
			t.Fatalf("TagResource: %v", err)
		}
		if _, err := c.UntagResource(ctx, &ivschat.UntagResourceInput{ResourceArn: &arn, TagKeys: []string{"b", "absent"}}); err != nil {
			t.Fatalf("UntagResource: %v", err)
		}
		out, err := c.ListTagsForResource(ctx, &ivschat.ListTagsForResourceInput{ResourceArn: &arn})
		if err != nil {
			t.Fatalf("ListTagsForResource: %v", err)
		}
		if len(out.Tags) != 2 || out.Tags["a"] != "one" || out.Tags["c"] != "" {
			t.Errorf("%s tags = %v", arn, out.Tags)
		}
		// More than 50 tags after the merge is refused and changes nothing.
		many := map[string]string{}
		for i := range 49 {
			many[fmt.Sprintf("k%d", i)] = "v"
		}
		_, err = c.TagResource(ctx, &ivschat.TagResourceInput{ResourceArn: &arn, Tags: many})
		ve := asError[*types.ValidationException](t, err)
		if len(ve.FieldList) == 0 || aws.ToString(ve.FieldList[0].Name) != "tags" {
			t.Errorf("fieldList = %+v", ve.FieldList)
		}
		out, _ = c.ListTagsForResource(ctx, &ivschat.ListTagsForResourceInput{ResourceArn: &arn})
		if len(out.Tags) != 2 {
			t.Errorf("refused TagResource changed tags: %v", out.Tags)
		}
	}
	// The room record carries its tags.
	got, _ := c.GetRoom(ctx, &ivschat.GetRoomInput{Identifier: room.Arn})
	if got.Tags["a"] != "one" {
		t.Errorf("GetRoom tags = %v", got.Tags)
	}
	missing := "arn:aws:ivschat:us-west-2:123456789012:room/AAAAAAAAAAAA"
	_, err := c.ListTagsForResource(ctx, &ivschat.ListTagsForResourceInput{ResourceArn: &missing})
	asError[*types.ResourceNotFoundException](t, err)
	bad := "arn:aws:s3:::bucket"
	_, err = c.TagResource(ctx, &ivschat.TagResourceInput{ResourceArn: &bad, Tags: map[string]string{"a": "b"}})
	asError[*types.ValidationException](t, err)
}

func TestCreateChatToken(t *testing.T) {
	ts := startServer(t, "", func(c *config.Config) { c.TokenTTL = 45 * time.Minute })
	c := ts.client()
	ctx := ctxT(t)
	room := createRoom(t, c, "tokens")
	out, err := c.CreateChatToken(ctx, &ivschat.CreateChatTokenInput{
		RoomIdentifier:           room.Arn,
		UserId:                   aws.String("user-1 ✓"),
		Capabilities:             []types.ChatTokenCapability{types.ChatTokenCapabilitySendMessage, types.ChatTokenCapabilityDeleteMessage},
		SessionDurationInMinutes: aws.Int32(90),
		Attributes:               map[string]string{"displayName": "Ana"},
	})
	if err != nil {
		t.Fatalf("CreateChatToken: %v", err)
	}
	if !tokenPattern.MatchString(aws.ToString(out.Token)) {
		t.Errorf("token %q has characters outside unpadded base64url", aws.ToString(out.Token))
	}
	now := time.Now()
	if d := out.SessionExpirationTime.Sub(now); d < 89*time.Minute || d > 91*time.Minute {
		t.Errorf("session expires in %v, want 90m", d)
	}
	if d := out.TokenExpirationTime.Sub(now); d < 44*time.Minute || d > 46*time.Minute {
		t.Errorf("token expires in %v, want the configured 45m", d)
	}
	def, err := c.CreateChatToken(ctx, &ivschat.CreateChatTokenInput{RoomIdentifier: room.Arn, UserId: aws.String("u")})
	if err != nil {
		t.Fatal(err)
	}
	if d := def.SessionExpirationTime.Sub(now); d < 59*time.Minute || d > 61*time.Minute {
		t.Errorf("default session %v, want 60m", d)
	}
	if aws.ToString(def.Token) == aws.ToString(out.Token) {
		t.Error("two tokens are equal")
	}

	// The token never outlives its session.
	short, err := c.CreateChatToken(ctx, &ivschat.CreateChatTokenInput{RoomIdentifier: room.Arn, UserId: aws.String("u"), SessionDurationInMinutes: aws.Int32(5)})
	if err != nil {
		t.Fatal(err)
	}
	if !short.TokenExpirationTime.Equal(*short.SessionExpirationTime) {
		t.Errorf("5-minute session: token expires %v, session %v", short.TokenExpirationTime, short.SessionExpirationTime)
	}

	_, err = c.CreateChatToken(ctx, &ivschat.CreateChatTokenInput{RoomIdentifier: aws.String("arn:aws:ivschat:us-west-2:123456789012:room/AAAAAAAAAAAA"), UserId: aws.String("u")})
	nf := asError[*types.ResourceNotFoundException](t, err)
	if aws.ToString(nf.ResourceId) != "AAAAAAAAAAAA" {
		t.Errorf("resourceId = %q", aws.ToString(nf.ResourceId))
	}
	_, err = c.CreateChatToken(ctx, &ivschat.CreateChatTokenInput{
		RoomIdentifier: room.Arn, UserId: aws.String("u"), SessionDurationInMinutes: aws.Int32(181),
		Attributes: map[string]string{"big": strings.Repeat("x", 1100)}, Capabilities: []types.ChatTokenCapability{"SHOUT"},
	})
	ve := asError[*types.ValidationException](t, err)
	var names []string
	for _, f := range ve.FieldList {
		names = append(names, aws.ToString(f.Name))
	}
	slices.Sort(names)
	if want := []string{"attributes", "capabilities[0]", "sessionDurationInMinutes"}; !slices.Equal(names, want) {
		t.Errorf("fieldList names = %v, want %v", names, want)
	}
	if ve.Reason != types.ValidationExceptionReasonFieldValidationFailed {
		t.Errorf("reason = %q", ve.Reason)
	}
}

func TestLiveRoomOperations(t *testing.T) {
	ts := startServer(t, "", nil)
	c := ts.client()
	ctx := ctxT(t)
	room := createRoom(t, c, "live")
	ev, err := c.SendEvent(ctx, &ivschat.SendEventInput{RoomIdentifier: room.Arn, EventName: aws.String("app:poll"), Attributes: map[string]string{"q": "?"}})
	if err != nil || !idPattern.MatchString(aws.ToString(ev.Id)) {
		t.Fatalf("SendEvent: %v %+v", err, ev)
	}
	del, err := c.DeleteMessage(ctx, &ivschat.DeleteMessageInput{RoomIdentifier: room.Arn, Id: aws.String("AbCdEf123456"), Reason: aws.String("spam")})
	if err != nil || !idPattern.MatchString(aws.ToString(del.Id)) || aws.ToString(del.Id) == aws.ToString(ev.Id) {
		t.Fatalf("DeleteMessage: %v %+v", err, del)
	}
	if _, err := c.DisconnectUser(ctx, &ivschat.DisconnectUserInput{RoomIdentifier: room.Arn, UserId: aws.String("nobody"), Reason: aws.String("bye")}); err != nil {
		t.Fatalf("DisconnectUser: %v", err)
	}
	missing := aws.String("arn:aws:ivschat:us-west-2:123456789012:room/AAAAAAAAAAAA")
	_, err = c.SendEvent(ctx, &ivschat.SendEventInput{RoomIdentifier: missing, EventName: aws.String("x")})
	asError[*types.ResourceNotFoundException](t, err)
	_, err = c.DeleteMessage(ctx, &ivschat.DeleteMessageInput{RoomIdentifier: missing, Id: aws.String("AbCdEf123456")})
	asError[*types.ResourceNotFoundException](t, err)
	_, err = c.DisconnectUser(ctx, &ivschat.DisconnectUserInput{RoomIdentifier: missing, UserId: aws.String("u")})
	asError[*types.ResourceNotFoundException](t, err)
	_, err = c.DeleteMessage(ctx, &ivschat.DeleteMessageInput{RoomIdentifier: room.Arn, Id: aws.String("short")})
	ve := asError[*types.ValidationException](t, err)
	if len(ve.FieldList) != 1 || aws.ToString(ve.FieldList[0].Name) != "id" {
		t.Errorf("fieldList = %+v", ve.FieldList)
	}
}

func TestQuotas(t *testing.T) {
	ts := startServer(t, "", func(c *config.Config) {
		c.MaxRooms = 2
		c.MaxLoggingConfigurations = 1
		c.RateLimits = map[string]float64{"SendEvent": 1, "GetRoom": 1}
	})
	c := ts.client()
	ctx := ctxT(t)
	room := createRoom(t, c, "a")
	createRoom(t, c, "b")
	_, err := c.CreateRoom(ctx, &ivschat.CreateRoomInput{})
	q := asError[*types.ServiceQuotaExceededException](t, err)
	if q.Limit != 2 || q.ResourceType != types.ResourceTypeRoom {
		t.Errorf("quota error = %+v", q)
	}
	createLoggingConfiguration(t, c, "one")
	_, err = c.CreateLoggingConfiguration(ctx, &ivschat.CreateLoggingConfigurationInput{DestinationConfiguration: s3Destination("bucket")})
	q = asError[*types.ServiceQuotaExceededException](t, err)
	if q.Limit != 1 {
		t.Errorf("limit = %d", q.Limit)
	}
	// SendEvent is limited to 1/s: of two immediate calls, the second is
	// throttled (ThrottlingException is modeled for SendEvent).
	send := func() error {
		_, err := c.SendEvent(ctx, &ivschat.SendEventInput{RoomIdentifier: room.Arn, EventName: aws.String("e")})
		return err
	}
	err1, err2 := send(), send()
	if err1 != nil {
		t.Fatalf("first SendEvent: %v", err1)
	}
	th := asError[*types.ThrottlingException](t, err2)
	if th.Limit != 1 {
		t.Errorf("throttling limit = %d", th.Limit)
	}
	// Where the model has no ThrottlingException (GetRoom), the SDK still
	// surfaces the code as an API error.
	_, err1 = c.GetRoom(ctx, &ivschat.GetRoomInput{Identifier: room.Arn})
	_, err2 = c.GetRoom(ctx, &ivschat.GetRoomInput{Identifier: room.Arn})
	var apiErr smithy.APIError
	if err1 != nil || !errors.As(err2, &apiErr) || apiErr.ErrorCode() != "ThrottlingException" {
		t.Errorf("GetRoom throttling: %v, %v", err1, err2)
	}
}
