package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/ivschat"
	"github.com/aws/aws-sdk-go-v2/service/ivschat/types"
	"github.com/aws/smithy-go"

	"github.com/ivschatd/ivschatd/internal/config"
	"github.com/ivschatd/ivschatd/internal/sigv4"
)

// signedRequest builds a request to the server signed like an SDK would, at
// signTime, with the given key pair.
func signedRequest(t *testing.T, ts *testServer, method, pathAndQuery string, body []byte, key, secret string, signTime time.Time) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, ts.URL+pathAndQuery, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	sum := sha256.Sum256(body)
	err = v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: key, SecretAccessKey: secret}, req, hex.EncodeToString(sum[:]), "ivschat", testRegion, signTime)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

type wireError struct {
	Status    int
	Type      string `json:"__type"`
	Message   string `json:"message"`
	Header    string
	Reason    string            `json:"reason"`
	FieldList []json.RawMessage `json:"fieldList"`
}

func do(t *testing.T, req *http.Request) wireError {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var we wireError
	if resp.StatusCode >= 300 {
		if err := json.Unmarshal(body, &we); err != nil {
			t.Fatalf("error body %q: %v", body, err)
		}
	}
	we.Status = resp.StatusCode
	we.Header = resp.Header.Get("X-Amzn-Errortype")
	if resp.Header.Get("X-Amzn-Requestid") == "" {
		t.Errorf("no x-amzn-RequestId header")
	}
	return we
}

func roomCount(t *testing.T, c *ivschat.Client) int {
	t.Helper()
	out, err := c.ListRooms(ctxT(t), &ivschat.ListRoomsInput{})
	if err != nil {
		t.Fatal(err)
	}
	return len(out.Rooms)
}

func TestSignatureRejected(t *testing.T) {
	ts := startServer(t, "", nil)
	c := ts.client()
	room := createRoom(t, c, "keep")
	body := []byte(`{"name":"evil"}`)
	now := time.Now()

	tamperBody := func(r *http.Request) {
		b := []byte(`{"name":"eviL"}`)
		r.Body = io.NopCloser(bytes.NewReader(b))
	}
	tamperQuery := func(r *http.Request) { r.URL.RawQuery = "x=1" }
	type tc struct {
		name string
		req  *http.Request
		code string
	}
	tcs := []tc{
		{"wrong secret", signedRequest(t, ts, "POST", "/CreateRoom", body, testAccessKey, "wrong-secret", now), "InvalidSignatureException"},
		{"unknown key", signedRequest(t, ts, "POST", "/CreateRoom", body, "AKIDUNKNOWN", testSecretKey, now), "UnrecognizedClientException"},
		{"expired date", signedRequest(t, ts, "POST", "/CreateRoom", body, testAccessKey, testSecretKey, now.Add(-20*time.Minute)), "InvalidSignatureException"},
		{"future date", signedRequest(t, ts, "POST", "/CreateRoom", body, testAccessKey, testSecretKey, now.Add(20*time.Minute)), "InvalidSignatureException"},
	}
	r := signedRequest(t, ts, "POST", "/CreateRoom", body, testAccessKey, testSecretKey, now)
	tamperBody(r)
	tcs = append(tcs, tc{"tampered body", r, "InvalidSignatureException"})
	r = signedRequest(t, ts, "POST", "/CreateRoom", body, testAccessKey, testSecretKey, now)
	tamperQuery(r)
	tcs = append(tcs, tc{"tampered query", r, "InvalidSignatureException"})
	r = signedRequest(t, ts, "DELETE", "/tags/"+strings.ReplaceAll(strings.ReplaceAll(*room.Arn, ":", "%3A"), "/", "%2F")+"?tagKeys=a", nil, testAccessKey, testSecretKey, now)
	r.URL.RawQuery = "tagKeys=b"
	tcs = append(tcs, tc{"tampered repeated query", r, "InvalidSignatureException"})
	unsigned, _ := http.NewRequest("POST", ts.URL+"/CreateRoom", bytes.NewReader(body))
	tcs = append(tcs, tc{"unsigned", unsigned, "MissingAuthenticationTokenException"})
	garbage, _ := http.NewRequest("POST", ts.URL+"/CreateRoom", bytes.NewReader(body))
	garbage.Header.Set("Authorization", "AWS4-HMAC-SHA256 nonsense")
	tcs = append(tcs, tc{"garbage header", garbage, "IncompleteSignatureException"})

	for _, tc := range tcs {
		t.Run(tc.name, func(t *testing.T) {
			we := do(t, tc.req)
			if we.Status != http.StatusForbidden || we.Type != tc.code || we.Header != tc.code || we.Message == "" {
				t.Errorf("got %d %q (header %q) %q, want 403 %s", we.Status, we.Type, we.Header, we.Message, tc.code)
			}
		})
	}
	if n := roomCount(t, c); n != 1 {
		t.Errorf("%d rooms after refused requests, want 1", n)
	}

	// The SDK surfaces a bad secret as an API error with AWS's code.
	_, err := ts.client(testAccessKey, "wrong").CreateRoom(ctxT(t), &ivschat.CreateRoomInput{})
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "InvalidSignatureException" {
		t.Errorf("SDK error = %v", err)
	}
}

func TestAccessPolicies(t *testing.T) {
	const tokenKey, tokenSecret = "AKIDTOKENSONLY000001", "token-minting-secret-0123456789abcdefghij"
	const readKey, readSecret = "AKIDREADONLY00000001", "read-only-secret-0123456789abcdefghijklm"
	ts := startServer(t, "", func(c *config.Config) {
		c.AccessKeys = append(c.AccessKeys,
			config.AccessKey{AccessKeyID: tokenKey, SecretAccessKey: tokenSecret, Policy: sigv4.Policy{Statements: []sigv4.Statement{{Actions: []string{"ivschat:CreateChatToken"}, Resources: []string{"*"}}}}},
			config.AccessKey{AccessKeyID: readKey, SecretAccessKey: readSecret, Policy: sigv4.Policy{Statements: []sigv4.Statement{{Actions: []string{"ivschat:Get*", "ivschat:List*"}, Resources: []string{"arn:aws:ivschat:*:*:room/*"}}}}},
		)
	})
	admin := ts.client()
	room := createRoom(t, admin, "r")
	lc := createLoggingConfiguration(t, admin, "l")
	ctx := ctxT(t)

	minter := ts.client(tokenKey, tokenSecret)
	if _, err := minter.CreateChatToken(ctx, &ivschat.CreateChatTokenInput{RoomIdentifier: room.Arn, UserId: aws.String("u")}); err != nil {
		t.Fatalf("token-only key cannot mint: %v", err)
	}
	_, err := minter.CreateRoom(ctx, &ivschat.CreateRoomInput{})
	ad := asError[*types.AccessDeniedException](t, err)
	if !strings.Contains(aws.ToString(ad.Message), "ivschat:CreateRoom") {
		t.Errorf("message = %q", aws.ToString(ad.Message))
	}
	_, err = minter.DeleteRoom(ctx, &ivschat.DeleteRoomInput{Identifier: room.Arn})
	asError[*types.AccessDeniedException](t, err)
	_, err = minter.GetRoom(ctx, &ivschat.GetRoomInput{Identifier: room.Arn})
	asError[*types.AccessDeniedException](t, err)

	reader := ts.client(readKey, readSecret)
	if _, err := reader.GetRoom(ctx, &ivschat.GetRoomInput{Identifier: room.Arn}); err != nil {
		t.Errorf("reader GetRoom: %v", err)
	}
	if _, err := reader.ListRooms(ctx, &ivschat.ListRoomsInput{}); err != nil {
		t.Errorf("reader ListRooms: %v", err)
	}
	_, err = reader.GetLoggingConfiguration(ctx, &ivschat.GetLoggingConfigurationInput{Identifier: lc.Arn})
	asError[*types.AccessDeniedException](t, err)
	_, err = reader.UpdateRoom(ctx, &ivschat.UpdateRoomInput{Identifier: room.Arn, Name: aws.String("x")})
	asError[*types.AccessDeniedException](t, err)
	got, _ := admin.GetRoom(ctx, &ivschat.GetRoomInput{Identifier: room.Arn})
	if aws.ToString(got.Name) != "r" || roomCount(t, admin) != 1 {
		t.Errorf("a denied call changed state: %+v", got)
	}
}

func TestMalformedRequests(t *testing.T) {
	ts := startServer(t, "", nil)
	now := time.Now()
	cases := []struct {
		name, method, path string
		body               string
		status             int
		code, reason       string
	}{
		{"bad json", "POST", "/CreateRoom", `{"name":`, 400, "ValidationException", "OTHER"},
		{"not an object", "POST", "/CreateRoom", `[1,2]`, 400, "ValidationException", "OTHER"},
		{"trailing data", "POST", "/CreateRoom", `{} {}`, 400, "ValidationException", "OTHER"},
		{"wrong type", "POST", "/CreateRoom", `{"maximumMessageLength":"10"}`, 400, "ValidationException", "FIELD_VALIDATION_FAILED"},
		{"fraction", "POST", "/CreateRoom", `{"maximumMessageLength":1.5}`, 400, "ValidationException", "FIELD_VALIDATION_FAILED"},
		{"unknown operation", "POST", "/CreateRooms", `{}`, 400, "ValidationException", "UNKNOWN_OPERATION"},
		{"wrong method", "GET", "/CreateRoom", ``, 400, "ValidationException", "UNKNOWN_OPERATION"},
		{"unknown members ignored", "POST", "/CreateRoom", `{"futureField":{"x":1},"name":"ok"}`, 200, "", ""},
		{"empty body", "POST", "/ListRooms", ``, 200, "", ""},
		{"null member", "POST", "/CreateRoom", `{"name":null}`, 200, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var body []byte
			if tc.body != "" {
				body = []byte(tc.body)
			}
			we := do(t, signedRequest(t, ts, tc.method, tc.path, body, testAccessKey, testSecretKey, now))
			if we.Status != tc.status || we.Type != tc.code || we.Reason != tc.reason {
				t.Errorf("got %d %q %q (%s), want %d %q %q", we.Status, we.Type, we.Reason, we.Message, tc.status, tc.code, tc.reason)
			}
		})
	}
}
