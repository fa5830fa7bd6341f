package sigv4

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/ivschatd/ivschatd/internal/chat"
)

const (
	testAKID   = "AKIDIVSCHATTEST"
	testSecret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
	testRegion = "us-west-2"
	// The ARN of a room as a client puts it in a path: every ':' and '/'
	// percent-encoded once.
	escapedARN = "arn%3Aaws%3Aivschat%3Aus-west-2%3A123456789012%3Aroom%2FAbCdEf123456"
)

// testNow is the server clock in every test; requests are signed a little
// before it, as on a real network.
var testNow = time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)

func testVerifier(t testing.TB) *Verifier {
	t.Helper()
	v, err := NewVerifier("ivschat", []Credential{
		{AccessKeyID: testAKID, SecretAccessKey: testSecret},
		{AccessKeyID: "AKIDREADONLY", SecretAccessKey: "other-secret", Policy: Policy{Statements: []Statement{
			{Actions: []string{"ivschat:Get*", "ivschat:List*"}, Resources: []string{"*"}},
		}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// verifyServer is a real HTTP server whose handler verifies each request at
// testNow, so r.RequestURI, r.Host and the headers are exactly as parsed off
// the wire. It answers "OK <key> <region>" or 403 "<code>\n<message>".
func verifyServer(t *testing.T, v *Verifier) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		cred, region, err := v.Verify(r, body, testNow)
		if err != nil {
			var ce *chat.Error
			if !errors.As(err, &ce) {
				http.Error(w, "not a *chat.Error: "+err.Error(), http.StatusInternalServerError)
				return
			}
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprintf(w, "%s\n%s", ce.Code, ce.Message)
			return
		}
		fmt.Fprintf(w, "OK %s %s", cred.AccessKeyID, region)
	}))
	t.Cleanup(srv.Close)
	return srv
}

type signOpts struct {
	akid, secret, region, service, token string
	at                                   time.Time
}

func defaultSignOpts() signOpts {
	return signOpts{akid: testAKID, secret: testSecret, region: testRegion, service: "ivschat", at: testNow.Add(-3 * time.Second)}
}

// sdkSign signs req with the aws-sdk-go-v2 signer, as every Go client does.
func sdkSign(t *testing.T, req *http.Request, body []byte, o signOpts) {
	t.Helper()
	sum := sha256.Sum256(body)
	creds := aws.Credentials{AccessKeyID: o.akid, SecretAccessKey: o.secret, SessionToken: o.token}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), o.service, o.region, o.at); err != nil {
		t.Fatal(err)
	}
}

func newRequest(t *testing.T, method, url string, body []byte) *http.Request {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func send(t *testing.T, req *http.Request) (int, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// sendRaw writes a request byte for byte, for wire shapes the Go client will
// not produce (Content-Length: 0 on a DELETE, as paws sends).
func sendRaw(t *testing.T, srv *httptest.Server, raw string) (int, string) {
	t.Helper()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestVerifyAcceptsSDKSignedRequests(t *testing.T) {
	v := testVerifier(t)
	srv := verifyServer(t, v)
	createRoom := []byte(`{"name":"lobby","maximumMessageLength":500,"tags":{"team":"a b"}}`)

	tests := []struct {
		name    string
		method  string
		path    string // appended to the server URL, sent as is
		body    []byte
		headers map[string]string
		hash    bool // send X-Amz-Content-Sha256
		opts    func(*signOpts)
		want    string
	}{
		{name: "POST CreateRoom JSON", method: "POST", path: "/CreateRoom", body: createRoom,
			headers: map[string]string{"Content-Type": "application/json"}},
		{name: "GET tags of escaped ARN", method: "GET", path: "/tags/" + escapedARN + "?tagKeys=a&tagKeys=b"},
		{name: "DELETE tags of escaped ARN", method: "DELETE", path: "/tags/" + escapedARN + "?tagKeys=b&tagKeys=a"},
		{name: "query needing encoding", method: "DELETE", path: "/tags/" + escapedARN + "?tagKeys=a%20b&tagKeys=c%2Fd&tagKeys=%E2%9C%93"},
		{name: "X-Amz-Content-Sha256", method: "POST", path: "/GetRoom", body: []byte(`{"identifier":"AbCdEf123456"}`),
			headers: map[string]string{"Content-Type": "application/json"}, hash: true},
		{name: "security token", method: "POST", path: "/ListRooms", body: []byte(`{}`),
			headers: map[string]string{"Content-Type": "application/json"},
			opts:    func(o *signOpts) { o.token = "FwoGZXIvYXdzEJr//////////wEaDOUf+session/token=" }},
		{name: "other region", method: "POST", path: "/ListRooms", body: []byte(`{}`),
			opts: func(o *signOpts) { o.region = "eu-central-1" }, want: "OK " + testAKID + " eu-central-1"},
		{name: "second key", method: "POST", path: "/GetRoom", body: []byte(`{}`),
			opts: func(o *signOpts) { o.akid, o.secret = "AKIDREADONLY", "other-secret" }, want: "OK AKIDREADONLY " + testRegion},
		{name: "15 minutes old", method: "POST", path: "/ListRooms", body: []byte(`{}`),
			opts: func(o *signOpts) { o.at = testNow.Add(-MaxSkew) }},
		{name: "root path", method: "GET", path: "/"},
		{name: "spaces in header value", method: "POST", path: "/ListRooms", body: []byte(`{}`),
			headers: map[string]string{"X-Custom": "  a   b  c "}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := newRequest(t, tc.method, srv.URL+tc.path, tc.body)
			for k, val := range tc.headers {
				req.Header.Set(k, val)
			}
			if tc.hash {
				sum := sha256.Sum256(tc.body)
				req.Header.Set("X-Amz-Content-Sha256", hex.EncodeToString(sum[:]))
			}
			o := defaultSignOpts()
			if tc.opts != nil {
				tc.opts(&o)
			}
			sdkSign(t, req, tc.body, o)
			status, got := send(t, req)
			want := tc.want
			if want == "" {
				want = "OK " + testAKID + " " + testRegion
			}
			if status != http.StatusOK || got != want {
				t.Fatalf("got %d %q, want %q\nAuthorization: %s", status, got, want, req.Header.Get("Authorization"))
			}
		})
	}
}

// TestVerifyPawsStyle sends what R paws sends for UntagResource: no
// Content-Type, an empty body with an explicit Content-Length: 0 that is
// signed, and a repeated query value. The SDK signer never signs a zero
// content-length, so the header is computed by refSign, which
// TestRefSignMatchesSDK checks against the SDK.
func TestVerifyPawsStyle(t *testing.T) {
	srv := verifyServer(t, testVerifier(t))
	host := srv.Listener.Addr().String()
	at := testNow.Add(-time.Second).Format(amzDateFormat)
	path := "/tags/" + escapedARN
	query := "tagKeys=team&tagKeys=team"
	hdrs := [][2]string{{"content-length", "0"}, {"host", host}, {"x-amz-date", at}}
	authz := refSign("DELETE", path, query, hdrs, nil, testAKID, testSecret, testRegion, "ivschat", at)
	raw := "DELETE " + path + "?" + query + " HTTP/1.1\r\n" +
		"Host: " + host + "\r\n" +
		"Content-Length: 0\r\n" +
		"X-Amz-Date: " + at + "\r\n" +
		"Authorization: " + authz + "\r\n" +
		"Connection: close\r\n\r\n"
	if status, got := sendRaw(t, srv, raw); status != http.StatusOK {
		t.Fatalf("got %d %q", status, got)
	}

	// The duplicate is significant: dropping it must change the signature.
	raw = strings.Replace(raw, "?"+query, "?tagKeys=team", 1)
	if status, got := sendRaw(t, srv, raw); status != http.StatusForbidden || !strings.HasPrefix(got, string(chat.CodeInvalidSignature)) {
		t.Fatalf("deduplicated query: got %d %q", status, got)
	}
}

// TestVerifyDateHeader covers clients that date requests with Date instead
// of X-Amz-Date.
func TestVerifyDateHeader(t *testing.T) {
	srv := verifyServer(t, testVerifier(t))
	host := srv.Listener.Addr().String()
	at := testNow.Add(-time.Minute)
	date := at.Format(http.TimeFormat)
	body := `{"identifier":"x"}`
	hdrs := [][2]string{{"content-type", "application/json"}, {"date", date}, {"host", host}}
	authz := refSign("POST", "/GetRoom", "", hdrs, []byte(body), testAKID, testSecret, testRegion, "ivschat", at.Format(amzDateFormat))
	raw := "POST /GetRoom HTTP/1.1\r\nHost: " + host + "\r\nContent-Type: application/json\r\nDate: " + date +
		"\r\nContent-Length: " + fmt.Sprint(len(body)) + "\r\nAuthorization: " + authz + "\r\nConnection: close\r\n\r\n" + body
	if status, got := sendRaw(t, srv, raw); status != http.StatusOK {
		t.Fatalf("got %d %q", status, got)
	}
}

func TestVerifyRejects(t *testing.T) {
	v := testVerifier(t)
	srv := verifyServer(t, v)
	body := []byte(`{"name":"lobby"}`)

	tests := []struct {
		name    string
		opts    func(*signOpts)
		before  func(*http.Request) // before signing
		after   func(*http.Request) // after signing, before sending
		code    chat.Code
		message string // substring of the message
	}{
		{name: "wrong secret", opts: func(o *signOpts) { o.secret = "not-the-secret" },
			code: chat.CodeInvalidSignature, message: "does not match the signature you provided"},
		{name: "unknown key", opts: func(o *signOpts) { o.akid = "AKIDUNKNOWN" },
			code: chat.CodeUnrecognizedClient, message: "The security token included in the request is invalid."},
		{name: "missing header", after: func(r *http.Request) { r.Header.Del("Authorization") },
			code: chat.CodeMissingAuthenticationToken, message: "Missing Authentication Token"},
		{name: "garbage header", after: func(r *http.Request) { r.Header.Set("Authorization", "Bearer abc.def") },
			code: chat.CodeIncompleteSignature, message: "Unsupported AWS 'algorithm'"},
		{name: "no signature", after: func(r *http.Request) {
			a := r.Header.Get("Authorization")
			r.Header.Set("Authorization", a[:strings.Index(a, ", Signature=")])
		}, code: chat.CodeIncompleteSignature, message: "requires 'Signature' parameter"},
		{name: "16 minutes old", opts: func(o *signOpts) { o.at = testNow.Add(-16 * time.Minute) },
			code: chat.CodeInvalidSignature, message: "Signature expired: 20260314T145326Z is now earlier than 20260314T145426Z (20260314T150926Z - 15 min.)"},
		{name: "16 minutes ahead", opts: func(o *signOpts) { o.at = testNow.Add(16 * time.Minute) },
			code: chat.CodeInvalidSignature, message: "Signature not yet current: 20260314T152526Z is still later than 20260314T152426Z (20260314T150926Z + 15 min.)"},
		{name: "scope date mismatch", after: func(r *http.Request) {
			a := r.Header.Get("Authorization")
			r.Header.Set("Authorization", strings.Replace(a, "/20260314/", "/20260313/", 1))
		}, code: chat.CodeInvalidSignature, message: "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '20260313' != '20260314'"},
		{name: "wrong service", opts: func(o *signOpts) { o.service = "ivs" },
			code: chat.CodeInvalidSignature, message: "Credential should be scoped to correct service: 'ivschat'"},
		{name: "tampered body", after: func(r *http.Request) {
			r.Body = io.NopCloser(strings.NewReader(`{"name":"LOBBY"}`))
		}, code: chat.CodeInvalidSignature, message: "does not match the signature you provided"},
		{name: "tampered body with content hash", before: func(r *http.Request) {
			sum := sha256.Sum256(body)
			r.Header.Set("X-Amz-Content-Sha256", hex.EncodeToString(sum[:]))
		}, after: func(r *http.Request) {
			r.Body = io.NopCloser(strings.NewReader(`{"name":"LOBBY"}`))
		}, code: chat.CodeInvalidSignature, message: "x-amz-content-sha256"},
		{name: "unsigned payload", before: func(r *http.Request) { r.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD") },
			code: chat.CodeInvalidSignature, message: "x-amz-content-sha256"},
		{name: "tampered query", before: func(r *http.Request) { r.URL.RawQuery = "tagKeys=a" },
			after: func(r *http.Request) { r.URL.RawQuery = "tagKeys=b" },
			code:  chat.CodeInvalidSignature, message: "tagKeys=b"},
		{name: "added query", after: func(r *http.Request) { r.URL.RawQuery = "x=1" },
			code: chat.CodeInvalidSignature, message: "does not match"},
		{name: "tampered path", after: func(r *http.Request) { r.URL.Path = "/DeleteRoom" },
			code: chat.CodeInvalidSignature, message: "/DeleteRoom"},
		{name: "tampered signed header", before: func(r *http.Request) { r.Header.Set("Content-Type", "application/json") },
			after: func(r *http.Request) { r.Header.Set("Content-Type", "text/plain") },
			code:  chat.CodeInvalidSignature, message: "content-type:text/plain"},
		{name: "signed header removed", before: func(r *http.Request) { r.Header.Set("Content-Type", "application/json") },
			after: func(r *http.Request) { r.Header.Del("Content-Type") },
			code:  chat.CodeInvalidSignature, message: "Header 'content-type' is listed in SignedHeaders but is not present"},
		{name: "unsigned host", after: func(r *http.Request) {
			a := r.Header.Get("Authorization")
			r.Header.Set("Authorization", strings.Replace(a, "SignedHeaders=content-length;host;", "SignedHeaders=content-length;", 1))
		}, code: chat.CodeIncompleteSignature, message: "'Host' or ':authority' must be a 'SignedHeader'"},
		{name: "unsigned x-amz-date", after: func(r *http.Request) {
			a := r.Header.Get("Authorization")
			r.Header.Set("Authorization", strings.Replace(a, ";x-amz-date", "", 1))
		}, code: chat.CodeIncompleteSignature, message: "'X-Amz-Date' must be a 'SignedHeader'"},
		{name: "no date", after: func(r *http.Request) { r.Header.Del("X-Amz-Date") },
			code: chat.CodeIncompleteSignature, message: "requires existence of either a 'X-Amz-Date' or a 'Date' header"},
		{name: "bad x-amz-date", after: func(r *http.Request) { r.Header.Set("X-Amz-Date", "2026-03-14T15:09:26Z") },
			code: chat.CodeIncompleteSignature, message: "ISO8601"},
		{name: "tampered x-amz-date", after: func(r *http.Request) { r.Header.Set("X-Amz-Date", "20260314T150900Z") },
			code: chat.CodeInvalidSignature, message: "does not match"},
		{name: "tampered method", after: func(r *http.Request) { r.Method = "PUT" },
			code: chat.CodeInvalidSignature, message: "PUT\n/CreateRoom"},
		{name: "two Authorization headers", after: func(r *http.Request) { r.Header.Add("Authorization", r.Header.Get("Authorization")) },
			code: chat.CodeIncompleteSignature, message: "more than one Authorization header"},
		{name: "sigv4a", after: func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256", "AWS4-ECDSA-P256-SHA256", 1))
		}, code: chat.CodeIncompleteSignature, message: "Unsupported AWS 'algorithm': 'AWS4-ECDSA-P256-SHA256'"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := newRequest(t, "POST", srv.URL+"/CreateRoom", body)
			if tc.before != nil {
				tc.before(req)
			}
			o := defaultSignOpts()
			if tc.opts != nil {
				tc.opts(&o)
			}
			sdkSign(t, req, body, o)
			if tc.after != nil {
				tc.after(req)
			}
			status, got := send(t, req)
			code, msg, _ := strings.Cut(got, "\n")
			if status != http.StatusForbidden || code != string(tc.code) || !strings.Contains(msg, tc.message) {
				t.Fatalf("got %d %s %q\nwant 403 %s containing %q", status, code, msg, tc.code, tc.message)
			}
		})
	}
}

// TestKnownAnswer checks the get-vanilla case of AWS's published SigV4 test
// suite, independent of any SDK.
func TestKnownAnswer(t *testing.T) {
	v, err := NewVerifier("service", []Credential{{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"}})
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.Host = "example.amazonaws.com"
	r.Header.Set("X-Amz-Date", "20150830T123600Z")
	r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "+
		"SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")
	cred, region, err := v.Verify(r, nil, time.Date(2015, 8, 30, 12, 40, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if cred.AccessKeyID != "AKIDEXAMPLE" || region != "us-east-1" {
		t.Fatalf("got %s %s", cred.AccessKeyID, region)
	}
}

// TestRefSignMatchesSDK pins the test-only reference signer to the SDK, so
// the tests that need refSign (shapes the SDK cannot produce) are as
// trustworthy as the SDK ones.
func TestRefSignMatchesSDK(t *testing.T) {
	at := testNow.Format(amzDateFormat)
	for _, tc := range []struct{ method, path, query, body, ctype string }{
		{"POST", "/CreateRoom", "", `{"name":"x"}`, "application/json"},
		{"GET", "/tags/" + escapedARN, "tagKeys=b&tagKeys=a&tagKeys=a", "", ""},
		{"DELETE", "/tags/" + escapedARN, "tagKeys=a%20b&z=&y", "", ""},
	} {
		u := "http://ivschat.us-west-2.example.com" + tc.path
		if tc.query != "" {
			u += "?" + tc.query
		}
		req := newRequest(t, tc.method, u, []byte(tc.body))
		if tc.body == "" {
			req.Body, req.ContentLength = nil, 0
		}
		hdrs := [][2]string{{"host", req.URL.Host}, {"x-amz-date", at}}
		if tc.body != "" {
			hdrs = append(hdrs, [2]string{"content-length", fmt.Sprint(len(tc.body))})
		}
		if tc.ctype != "" {
			req.Header.Set("Content-Type", tc.ctype)
			hdrs = append(hdrs, [2]string{"content-type", tc.ctype})
		}
		o := defaultSignOpts()
		o.at = testNow
		sdkSign(t, req, []byte(tc.body), o)
		want := req.Header.Get("Authorization")
		got := refSign(tc.method, tc.path, tc.query, hdrs, []byte(tc.body), testAKID, testSecret, testRegion, "ivschat", at)
		if got != want {
			t.Errorf("%s %s?%s:\nref %s\nsdk %s", tc.method, tc.path, tc.query, got, want)
		}
	}
}

// refSign is a deliberately naive SigV4 signer written straight from the
// AWS documentation, sharing no code with the package. hdrs are lower-case
// name/value pairs.
func refSign(method, path, query string, hdrs [][2]string, body []byte, akid, secret, region, service, amzDate string) string {
	enc := func(s string, slash bool) string {
		var b strings.Builder
		for _, c := range []byte(s) {
			if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.IndexByte("-._~", c) >= 0 || slash && c == '/' {
				b.WriteByte(c)
			} else {
				fmt.Fprintf(&b, "%%%02X", c)
			}
		}
		return b.String()
	}
	var pairs [][2]string
	for _, p := range strings.Split(query, "&") {
		if p == "" {
			continue
		}
		k, v, _ := strings.Cut(p, "=")
		k, _ = url.QueryUnescape(k)
		v, _ = url.QueryUnescape(v)
		pairs = append(pairs, [2]string{enc(k, false), enc(v, false)})
	}
	sort.Slice(pairs, func(i, j int) bool {
		if pairs[i][0] != pairs[j][0] {
			return pairs[i][0] < pairs[j][0]
		}
		return pairs[i][1] < pairs[j][1]
	})
	var params []string
	for _, p := range pairs {
		params = append(params, p[0]+"="+p[1])
	}
	sorted := append([][2]string(nil), hdrs...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i][0] < sorted[j][0] })
	var names []string
	var canonHdrs string
	for _, h := range sorted {
		names = append(names, h[0])
		canonHdrs += h[0] + ":" + strings.Join(strings.Fields(h[1]), " ") + "\n"
	}
	bodySum := sha256.Sum256(body)
	if path == "" {
		path = "/"
	}
	cr := strings.Join([]string{method, enc(path, true), strings.Join(params, "&"), canonHdrs, strings.Join(names, ";"), hex.EncodeToString(bodySum[:])}, "\n")
	crSum := sha256.Sum256([]byte(cr))
	scope := amzDate[:8] + "/" + region + "/" + service + "/aws4_request"
	sts := "AWS4-HMAC-SHA256\n" + amzDate + "\n" + scope + "\n" + hex.EncodeToString(crSum[:])
	mac := func(k []byte, s string) []byte { h := hmac.New(sha256.New, k); h.Write([]byte(s)); return h.Sum(nil) }
	key := mac(mac(mac(mac([]byte("AWS4"+secret), amzDate[:8]), region), service), "aws4_request")
	return "AWS4-HMAC-SHA256 Credential=" + akid + "/" + scope + ", SignedHeaders=" + strings.Join(names, ";") +
		", Signature=" + hex.EncodeToString(mac(key, sts))
}

func TestNewVerifierRejectsBadCredentials(t *testing.T) {
	for _, tc := range []struct {
		name  string
		creds []Credential
	}{
		{"empty key ID", []Credential{{SecretAccessKey: "s"}}},
		{"duplicate key ID", []Credential{{AccessKeyID: "A", SecretAccessKey: "s"}, {AccessKeyID: "A", SecretAccessKey: "t"}}},
		{"empty secret", []Credential{{AccessKeyID: "A"}}},
		{"slash in key ID", []Credential{{AccessKeyID: "A/B", SecretAccessKey: "s"}}},
	} {
		if _, err := NewVerifier("ivschat", tc.creds); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
	if _, err := NewVerifier("", nil); err == nil {
		t.Error("empty service: no error")
	}
}

// TestVerifyConcurrent runs many goroutines through one Verifier across
// several regions and days so that the key cache is filled, hit and evicted
// concurrently; -race checks the locking.
func TestVerifyConcurrent(t *testing.T) {
	v := testVerifier(t)
	type signed struct {
		r   *http.Request
		now time.Time
	}
	var reqs []signed
	for day := 0; day < 3; day++ {
		for _, region := range []string{"us-east-1", "us-west-2", "eu-west-1", "ap-northeast-1"} {
			r := httptest.NewRequest("POST", "http://ivschat.example.com/ListRooms", strings.NewReader("{}"))
			o := defaultSignOpts()
			o.region = region
			o.at = testNow.AddDate(0, 0, day)
			sdkSign(t, r, []byte("{}"), o)
			reqs = append(reqs, signed{r, o.at})
		}
	}
	var wg sync.WaitGroup
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				s := reqs[(g+i)%len(reqs)]
				if _, _, err := v.Verify(s.r, []byte("{}"), s.now); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestKeyCacheIsBounded(t *testing.T) {
	v := testVerifier(t)
	cred := v.creds[testAKID]
	want := deriveKey(testSecret, "20260314", "us-west-2", "ivschat")
	if got := v.signingKey(cred, "20260314", "us-west-2").key; got != want {
		t.Fatal("cached key differs from derived key")
	}
	for i := 0; i < 3*maxCachedKeys; i++ {
		v.signingKey(cred, "20260314", fmt.Sprintf("region-%d", i))
	}
	if n := len(v.keys); n > maxCachedKeys {
		t.Fatalf("cache holds %d keys, bound is %d", n, maxCachedKeys)
	}
	if got := v.signingKey(cred, "20260314", "us-west-2").key; got != want {
		t.Fatal("key after eviction differs")
	}
}

// benchRequest is a typical signed CreateChatToken call as it arrives at the
// server.
func benchRequest(b *testing.B) (*http.Request, []byte) {
	body := []byte(`{"roomIdentifier":"arn:aws:ivschat:us-west-2:123456789012:room/AbCdEf123456","userId":"u-1","capabilities":["SEND_MESSAGE"]}`)
	r := httptest.NewRequest("POST", "http://ivschat.us-west-2.example.com/CreateChatToken", bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Amz-Sdk-Invocation-Id", "5f1d2c0e-2d7a-4f53-9a1e-0d6b3c0b1a2e")
	r.Header.Set("Amz-Sdk-Request", "attempt=1; max=3")
	sum := sha256.Sum256(body)
	creds := aws.Credentials{AccessKeyID: testAKID, SecretAccessKey: testSecret}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, r, hex.EncodeToString(sum[:]), "ivschat", testRegion, testNow); err != nil {
		b.Fatal(err)
	}
	return r, body
}

func BenchmarkVerify(b *testing.B) {
	v := testVerifier(b)
	r, body := benchRequest(b)
	if _, _, err := v.Verify(r, body, testNow); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := v.Verify(r, body, testNow); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyParallel(b *testing.B) {
	v := testVerifier(b)
	r, body := benchRequest(b)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, _, err := v.Verify(r, body, testNow); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
