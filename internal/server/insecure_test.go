package server

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/ivschat"

	"github.com/ivschatd/ivschatd/internal/config"
)

// In --insecure-no-auth mode no web page but the server's own may drive the
// server: foreign origins are neither reflected nor served, and requests with
// a Content-Type that a page can send cross-site without a preflight are
// refused. Non-browser clients (no Origin; no Content-Type like paws, or a
// JSON one like the AWS SDKs) keep working.
func TestInsecureModeRefusesWebPages(t *testing.T) {
	ts := startServer(t, "", func(c *config.Config) { c.AccessKeys = nil; c.Insecure = true })
	host := strings.TrimPrefix(ts.URL, "http://")
	// Room names unique to this run: the database may be shared
	// (IVSCHATD_TEST_E2E_POSTGRES).
	refusedName, acceptedName := uniqueName("csrf"), uniqueName("ok")
	type result struct {
		status      int
		errType     string
		allowOrigin string
	}
	call := func(method, path, contentType, origin, body string) result {
		t.Helper()
		req := mustRequest(t, method, ts.URL+path, body)
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		if method == http.MethodOptions {
			req.Header.Set("Access-Control-Request-Method", "POST")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		var e struct {
			Type string `json:"__type"`
		}
		json.Unmarshal(data, &e)
		return result{resp.StatusCode, e.Type, resp.Header.Get("Access-Control-Allow-Origin")}
	}
	rooms := func(name string) int {
		t.Helper()
		req := mustRequest(t, "POST", ts.URL+"/ListRooms", `{"name":"`+name+`"}`)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out struct{ Rooms []json.RawMessage }
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("ListRooms: %d %v", resp.StatusCode, err)
		}
		return len(out.Rooms)
	}

	// Refused: what a foreign page can send.
	for _, tc := range []struct{ name, contentType, origin string }{
		{"form post text/plain", "text/plain", ""},
		{"fetch text/plain with charset", "text/plain;charset=UTF-8", ""},
		{"upper-case type", "Text/Plain", ""},
		{"urlencoded form", "application/x-www-form-urlencoded", ""},
		{"multipart form", "multipart/form-data; boundary=xyz", ""},
		{"foreign origin, JSON", "application/json", "https://evil.example"},
		{"foreign origin, no Content-Type (no-cors fetch of a Blob)", "", "https://evil.example"},
		{"foreign port on the same host", "application/json", "http://" + strings.Split(host, ":")[0] + ":1"},
		{"opaque origin", "", "null"},
	} {
		got := call("POST", "/CreateRoom", tc.contentType, tc.origin, `{"name":"`+refusedName+`"}`)
		if got.status != http.StatusForbidden || got.errType != "AccessDeniedException" || got.allowOrigin != "" {
			t.Errorf("%s: %+v, want 403 AccessDeniedException without Access-Control-Allow-Origin", tc.name, got)
		}
	}
	if got := call("OPTIONS", "/CreateRoom", "", "https://evil.example", ""); got.allowOrigin != "" || got.status < 400 {
		t.Errorf("preflight from a foreign origin: %+v, want refused", got)
	}
	if n := rooms(refusedName); n != 0 {
		t.Fatalf("%d rooms created by refused requests", n)
	}

	// Accepted: non-browser clients, and the server's own origin.
	for _, tc := range []struct{ name, contentType, origin string }{
		{"no Content-Type (paws)", "", ""},
		{"application/json", "application/json", ""},
		{"application/x-amz-json-1.1", "application/x-amz-json-1.1", ""},
		{"same origin", "application/json", "http://" + host},
	} {
		got := call("POST", "/CreateRoom", tc.contentType, tc.origin, `{"name":"`+acceptedName+`"}`)
		if got.status != http.StatusOK {
			t.Errorf("%s: %+v, want 200", tc.name, got)
		}
		if tc.origin != "" && got.allowOrigin != tc.origin {
			t.Errorf("%s: Access-Control-Allow-Origin %q, want the origin reflected", tc.name, got.allowOrigin)
		}
	}
	// The AWS SDK without credentials, as local emulation setups use it.
	c := ivschat.New(ivschat.Options{Region: testRegion, BaseEndpoint: aws.String(ts.URL), Credentials: aws.AnonymousCredentials{}, RetryMaxAttempts: 1})
	if _, err := c.CreateRoom(ctxT(t), &ivschat.CreateRoomInput{Name: aws.String(acceptedName)}); err != nil {
		t.Errorf("unsigned SDK CreateRoom: %v", err)
	}
	if n := rooms(acceptedName); n != 5 {
		t.Errorf("%d rooms, want 5", n)
	}
}

// uniqueName is a room name no other test run uses.
func uniqueName(prefix string) string {
	var b [6]byte
	rand.Read(b[:])
	return prefix + "-" + hex.EncodeToString(b[:])
}

// With authentication on, CORS stays open to any origin (the signature
// protects; browser apps need it), and a signed request is served whatever
// its Content-Type.
func TestSignedRequestsKeepCORS(t *testing.T) {
	ts := startServer(t, "", nil)
	body := []byte(`{"name":"browser"}`)
	req := mustRequest(t, "POST", ts.URL+"/CreateRoom", string(body))
	req.Header.Set("Origin", "https://app.example")
	req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
	sum := sha256.Sum256(body)
	creds := aws.Credentials{AccessKeyID: testAccessKey, SecretAccessKey: testSecretKey}
	if err := v4.NewSigner().SignHTTP(ctxT(t), creds, req, hex.EncodeToString(sum[:]), "ivschat", testRegion, timeNow()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example" {
		t.Errorf("signed cross-origin text/plain request: %d %v", resp.StatusCode, resp.Header)
	}
}
