package sigv4

import (
	"errors"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ivschatd/ivschatd/internal/chat"
)

const validHeader = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/ivschat/aws4_request, " +
	"SignedHeaders=content-type;host;x-amz-date, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"

func TestParseAuthorization(t *testing.T) {
	want := Authorization{
		AccessKeyID:   "AKIDEXAMPLE",
		Date:          "20150830",
		Region:        "us-east-1",
		Service:       "ivschat",
		SignedHeaders: []string{"content-type", "host", "x-amz-date"},
		Signature:     "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7",
	}
	ok := []struct{ name, header string }{
		{"canonical", validHeader},
		{"no spaces after commas", strings.ReplaceAll(validHeader, ", ", ",")},
		{"extra blanks", "  AWS4-HMAC-SHA256  Credential=AKIDEXAMPLE/20150830/us-east-1/ivschat/aws4_request ,\tSignedHeaders=content-type;host;x-amz-date ,  Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7 "},
		{"other order", "AWS4-HMAC-SHA256 Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7, SignedHeaders=content-type;host;x-amz-date, Credential=AKIDEXAMPLE/20150830/us-east-1/ivschat/aws4_request"},
		{"unknown parameter ignored", validHeader + ", Foo=bar"},
		{"trailing comma", validHeader + ","},
	}
	for _, tc := range ok {
		got, err := ParseAuthorization(tc.header)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: got %+v", tc.name, got)
		}
	}
	if got := want.String(); got != validHeader {
		t.Errorf("String() = %q", got)
	}

	bad := []struct{ name, header, message string }{
		{"empty", "", "not a valid AWS Signature Version 4 header"},
		{"algorithm only", "AWS4-HMAC-SHA256", "requires 'Credential' parameter"},
		{"wrong algorithm", "AWS4-HMAC-SHA1 Credential=a/b", "Unsupported AWS 'algorithm'"},
		{"basic auth", "Basic dXNlcjpwYXNz", "Unsupported AWS 'algorithm'"},
		{"no credential", "AWS4-HMAC-SHA256 SignedHeaders=host, Signature=abc", "requires 'Credential' parameter"},
		{"no signed headers", "AWS4-HMAC-SHA256 Credential=A/20150830/r/s/aws4_request, Signature=abc", "requires 'SignedHeaders' parameter"},
		{"no signature", "AWS4-HMAC-SHA256 Credential=A/20150830/r/s/aws4_request, SignedHeaders=host", "requires 'Signature' parameter"},
		{"empty signature", "AWS4-HMAC-SHA256 Credential=A/20150830/r/s/aws4_request, SignedHeaders=host, Signature=", "requires 'Signature' parameter"},
		{"missing equal sign", "AWS4-HMAC-SHA256 Credential", "missing equal-sign"},
		{"duplicate credential", validHeader + ", Credential=B/20150830/r/s/aws4_request", "duplicate 'Credential'"},
		{"4 scope parts", "AWS4-HMAC-SHA256 Credential=A/20150830/r/aws4_request, SignedHeaders=host, Signature=abc", "exactly 5"},
		{"6 scope parts", "AWS4-HMAC-SHA256 Credential=A/20150830/r/s/x/aws4_request, SignedHeaders=host, Signature=abc", "exactly 5"},
		{"bad terminator", "AWS4-HMAC-SHA256 Credential=A/20150830/r/s/aws4_requesT, SignedHeaders=host, Signature=abc", "valid terminator"},
		{"bad date", "AWS4-HMAC-SHA256 Credential=A/2015-08-30/r/s/aws4_request, SignedHeaders=host, Signature=abc", "YYYYMMDD"},
		{"empty key", "AWS4-HMAC-SHA256 Credential=/20150830/r/s/aws4_request, SignedHeaders=host, Signature=abc", "empty access key ID"},
		{"empty region", "AWS4-HMAC-SHA256 Credential=A/20150830//s/aws4_request, SignedHeaders=host, Signature=abc", "valid region"},
		{"empty service", "AWS4-HMAC-SHA256 Credential=A/20150830/r//aws4_request, SignedHeaders=host, Signature=abc", "valid service"},
		{"empty signed header", "AWS4-HMAC-SHA256 Credential=A/20150830/r/s/aws4_request, SignedHeaders=host;;x-amz-date, Signature=abc", "invalid header name"},
		{"space in signed header", "AWS4-HMAC-SHA256 Credential=A/20150830/r/s/aws4_request, SignedHeaders=host; x-amz-date, Signature=abc", "invalid header name"},
		{"space in signature", "AWS4-HMAC-SHA256 Credential=A/20150830/r/s/aws4_request, SignedHeaders=host, Signature=ab cd", "Signature must consist"},
	}
	for _, tc := range bad {
		_, err := ParseAuthorization(tc.header)
		var ce *chat.Error
		if !errors.As(err, &ce) || ce.Code != chat.CodeIncompleteSignature || !strings.Contains(ce.Message, tc.message) {
			t.Errorf("%s: got %v, want %s containing %q", tc.name, err, chat.CodeIncompleteSignature, tc.message)
		}
	}
}

func FuzzParseAuthorization(f *testing.F) {
	for _, s := range []string{
		validHeader,
		strings.ReplaceAll(validHeader, ", ", ","),
		"AWS4-HMAC-SHA256 Credential=A/20150830/r/s/aws4_request, SignedHeaders=host, Signature=abc",
		"AWS4-HMAC-SHA256 Credential=A/20150830/r/s/aws4_request,SignedHeaders=host;x-amz-date,Signature=0,Extra=1",
		"",
		"AWS4-HMAC-SHA256",
		"AWS4-HMAC-SHA256 ",
		"AWS4-HMAC-SHA256 ,,,",
		"AWS4-HMAC-SHA256 Credential=A/B/C/D/E/F",
		"AWS4-HMAC-SHA256 Credential==, Signature==",
		"AWS4-HMAC-SHA256 Credential=A/20150830/r/s/aws4_request, SignedHeaders=;, Signature=x",
		"AWS4-HMAC-SHA256\tCredential=A/20150830/r/s/aws4_request,\tSignedHeaders=host,\tSignature=x",
		"Bearer token",
		"AWS4-HMAC-SHA256 Credential=\xff/20150830/r/s/aws4_request, SignedHeaders=host, Signature=x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		a, err := ParseAuthorization(header)
		if err != nil {
			var ce *chat.Error
			if !errors.As(err, &ce) || ce.Code != chat.CodeIncompleteSignature {
				t.Fatalf("error %v is not an IncompleteSignature *chat.Error", err)
			}
			return
		}
		if a.AccessKeyID == "" || len(a.Date) != 8 || a.Region == "" || a.Service == "" || a.Signature == "" || len(a.SignedHeaders) == 0 {
			t.Fatalf("parse of %q succeeded with an empty field: %+v", header, a)
		}
		again, err := ParseAuthorization(a.String())
		if err != nil {
			t.Fatalf("re-parse of %q (from %q): %v", a.String(), header, err)
		}
		if !reflect.DeepEqual(again, a) {
			t.Fatalf("round trip changed %+v into %+v", a, again)
		}
	})
}

// FuzzVerify drives the whole verification with hostile headers, paths and
// queries. It must never panic, and every failure must be a *chat.Error.
func FuzzVerify(f *testing.F) {
	v, err := NewVerifier("service", []Credential{{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"}})
	if err != nil {
		f.Fatal(err)
	}
	now := time.Date(2015, 8, 30, 12, 36, 0, 0, time.UTC)
	// The AWS test suite's get-vanilla request verifies, so mutations of it
	// reach the canonicalisation code rather than stopping at the parser.
	vanilla := "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, " +
		"SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
	f.Add(vanilla, "20150830T123600Z", "/", "", "", "")
	f.Add(vanilla, "20150830T123600Z", "/tags/"+escapedARN, "tagKeys=a&tagKeys=a&b", "", "x")
	f.Add(strings.Replace(vanilla, "host;x-amz-date", "content-length;host;x-amz-content-sha256;x-amz-date;x-foo", 1), "20150830T123600Z", "//a/./b/../%zz", "a=%&=b&&c=+%2B", "UNSIGNED-PAYLOAD", "body")
	f.Add(strings.Replace(vanilla, "host;x-amz-date", "date;host", 1), "", "", "%", "", "")
	f.Add("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;transfer-encoding;x-amz-date, Signature=00", "20150831T003600Z", "http://x/y", "?", "", "")
	f.Add("", "", "", "", "", "")
	f.Fuzz(func(t *testing.T, authz, amzDate, path, query, contentSHA, body string) {
		r := &http.Request{
			Method:     "GET",
			Host:       "example.amazonaws.com",
			RequestURI: path,
			URL:        &url.URL{RawQuery: query},
			Header:     http.Header{},
		}
		if query != "" {
			r.RequestURI += "?" + query
		}
		if authz != "" {
			r.Header.Set("Authorization", authz)
		}
		if amzDate != "" {
			r.Header.Set("X-Amz-Date", amzDate)
		} else {
			r.Header.Set("Date", "Sun, 30 Aug 2015 12:36:00 GMT")
		}
		if contentSHA != "" {
			r.Header.Set("X-Amz-Content-Sha256", contentSHA)
		}
		r.Header.Set("X-Foo", "  a  b ")
		cred, region, err := v.Verify(r, []byte(body), now)
		if err != nil {
			var ce *chat.Error
			if !errors.As(err, &ce) {
				t.Fatalf("error %v is not a *chat.Error", err)
			}
			return
		}
		if cred == nil || region == "" {
			t.Fatalf("success without credential or region")
		}
	})
}
