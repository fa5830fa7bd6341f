package api

import (
	"errors"
	"testing"

	"github.com/ivschatd/ivschatd/internal/chat"
)

func TestDecodeBody(t *testing.T) {
	cases := []struct {
		body      string
		wantField string // "" with wantErr: a body-level error
		wantErr   bool
	}{
		{``, "", false},
		{`  `, "", false},
		{`{}`, "", false},
		{`{"name":"x","unknown":[1,{"a":null}]}`, "", false},
		{`{"name":null}`, "", false},
		{`{"name":5}`, "name", true},
		{`{"maximumMessageLength":"5"}`, "maximumMessageLength", true},
		{`{"maximumMessageLength":5.5}`, "maximumMessageLength", true},
		{`{"maximumMessageLength":99999999999999999999}`, "maximumMessageLength", true},
		{`{"tags":{"a":1}}`, "tags", true},
		{`{"messageReviewHandler":{"uri":true}}`, "messageReviewHandler.uri", true},
		{`{"loggingConfigurationIdentifiers":"x"}`, "loggingConfigurationIdentifiers", true},
		{`[]`, "", true},
		{`"x"`, "", true},
		{`{`, "", true},
		{`{}x`, "", true},
		{`{} {}`, "", true},
	}
	for _, tc := range cases {
		var in createRoomInput
		err := decodeBody([]byte(tc.body), &in)
		if (err != nil) != tc.wantErr {
			t.Errorf("%s: err = %v, want error %v", tc.body, err, tc.wantErr)
			continue
		}
		if err == nil {
			continue
		}
		var ce *chat.Error
		if !errors.As(err, &ce) || ce.Code != chat.CodeValidation {
			t.Errorf("%s: %v is not a ValidationException", tc.body, err)
			continue
		}
		got := ""
		if len(ce.Fields) > 0 {
			got = ce.Fields[0].Name
		}
		if got != tc.wantField {
			t.Errorf("%s: field %q, want %q", tc.body, got, tc.wantField)
		}
	}
}

// FuzzDecodeBody feeds arbitrary bytes to the request decoder of every input
// shape: it must never panic, and every failure must be a ValidationException.
func FuzzDecodeBody(f *testing.F) {
	for _, seed := range []string{
		``, `{}`, `{"name":"a","tags":{"k":"v"},"maximumMessageLength":5}`,
		`{"messageReviewHandler":{"uri":"arn:aws:lambda:us-west-2:123456789012:function:f","fallbackResult":"DENY"}}`,
		`{"destinationConfiguration":{"s3":{"bucketName":"b"},"firehose":{}}}`,
		`{"capabilities":["SEND_MESSAGE"],"sessionDurationInMinutes":1e2}`,
		`{"loggingConfigurationIdentifiers":[null,"x"]}`, `[`, `{"a":"\ud800"}`, "{\"name\":\"\xff\"}",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		inputs := []any{
			&createRoomInput{}, &updateRoomInput{}, &listRoomsInput{}, &createLoggingConfigurationInput{},
			&updateLoggingConfigurationInput{}, &createChatTokenInput{}, &sendEventInput{}, &deleteMessageInput{},
			&disconnectUserInput{}, &tagResourceInput{}, &listLoggingConfigurationsInput{}, &roomIdentifierInput{},
		}
		for _, in := range inputs {
			err := decodeBody(body, in)
			if err == nil {
				continue
			}
			var ce *chat.Error
			if !errors.As(err, &ce) || ce.Code != chat.CodeValidation || ce.Message == "" {
				t.Fatalf("decodeBody(%q) = %v, want a ValidationException", body, err)
			}
		}
	})
}
