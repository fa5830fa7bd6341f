package sigv4

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestCanonicalURI(t *testing.T) {
	tests := []struct{ requestURI, want string }{
		{"/tags/" + escapedARN + "?tagKeys=a",
			"/tags/arn%253Aaws%253Aivschat%253Aus-west-2%253A123456789012%253Aroom%252FAbCdEf123456"},
		{"/CreateRoom", "/CreateRoom"},
		{"/", "/"},
		{"", "/"},
		{"/a b/~x_y.z-", "/a%20b/~x_y.z-"},
		{"//a/./b/../c", "//a/./b/../c"}, // no normalisation outside S3
		{"/%E2%9C%93", "/%25E2%259C%2593"},
		{"/a+b=c:d", "/a%2Bb%3Dc%3Ad"},
		{"http://example.com/x%2Fy?q=1", "/x%252Fy"},
		{"https://example.com", "/"},
	}
	for _, tc := range tests {
		r := &http.Request{RequestURI: tc.requestURI}
		if got := string(appendCanonicalURI(nil, rawPath(r))); got != tc.want {
			t.Errorf("%q: got %q, want %q", tc.requestURI, got, tc.want)
		}
	}
	// Without RequestURI (a request built in process) the escaped path is used.
	r := httptest.NewRequest("GET", "/tags/"+escapedARN, nil)
	r.RequestURI = ""
	if got, want := string(appendCanonicalURI(nil, rawPath(r))), "/tags/arn%253Aaws%253Aivschat%253Aus-west-2%253A123456789012%253Aroom%252FAbCdEf123456"; got != want {
		t.Errorf("from URL: got %q, want %q", got, want)
	}
}

func TestCanonicalQuery(t *testing.T) {
	tests := []struct{ raw, want string }{
		{"", ""},
		{"tagKeys=b&tagKeys=a", "tagKeys=a&tagKeys=b"},
		{"tagKeys=a&tagKeys=a", "tagKeys=a&tagKeys=a"},
		{"b=2&a=1&a", "a=&a=1&b=2"},
		{"a-b=1&a=2", "a=2&a-b=1"}, // by key, not by "key=value"
		{"q=a+b&r=a%20b&s=a%2Bb", "q=a%20b&r=a%20b&s=a%2Bb"},
		{"k=%e2%9c%93&k2=~._-", "k=%E2%9C%93&k2=~._-"},
		{"x=%zz", "x=%25zz"}, // malformed escape kept literally
		{"&&a=1&", "a=1"},
		{"=v", "=v"},
		{"a;b=1", "a%3Bb=1"},
	}
	for _, tc := range tests {
		if got := string(appendCanonicalQuery(nil, tc.raw)); got != tc.want {
			t.Errorf("%q: got %q, want %q", tc.raw, got, tc.want)
		}
	}
}

func TestCanonicalHeaders(t *testing.T) {
	r := httptest.NewRequest("POST", "http://Example.com:8080/", nil)
	r.Header.Add("X-Multi", " a ")
	r.Header.Add("X-Multi", "b   c")
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("X-Tab", "\tv\t")
	r.ContentLength = 0
	got, absent := appendCanonicalHeaders(nil, r, []string{"content-length", "content-type", "host", "x-multi", "x-tab"})
	want := "content-length:0\ncontent-type:application/json\nhost:Example.com:8080\nx-multi:a,b c\nx-tab:v\n"
	if absent != "" || string(got) != want {
		t.Errorf("got %q (absent %q), want %q", got, absent, want)
	}
	if _, absent := appendCanonicalHeaders(nil, r, []string{"host", "x-missing"}); absent != "x-missing" {
		t.Errorf("absent = %q, want x-missing", absent)
	}
}

func TestParseAmzDate(t *testing.T) {
	for _, s := range []string{"20260314T150926Z", "20240229T000000Z", "19991231T235959Z"} {
		tm, ok := parseAmzDate(s)
		if !ok || tm.Format(amzDateFormat) != s {
			t.Errorf("%s: got %v %v", s, tm, ok)
		}
	}
	for _, s := range []string{"", "20260314T150926", "20260314 150926Z", "20261314T150926Z", "20260431T000000Z", "20230229T000000Z",
		"20260314T240000Z", "20260314T156000Z", "20260314T150960Z", "2026031AT150926Z", "+0260314T150926Z"} {
		if _, ok := parseAmzDate(s); ok {
			t.Errorf("%q accepted", s)
		}
	}
}
