package messaging

import (
	"net/http"
	"net/netip"
	"testing"
)

func TestClientIP(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("127.0.0.1/32")}
	cases := []struct {
		name, remote string
		xff          []string
		want         string
	}{
		{"direct client", "203.0.113.7:5000", nil, "203.0.113.7"},
		{"untrusted peer cannot spoof", "203.0.113.7:5000", []string{"198.51.100.1"}, "203.0.113.7"},
		{"trusted proxy", "10.1.2.3:443", []string{"198.51.100.1"}, "198.51.100.1"},
		{"chain of trusted proxies", "127.0.0.1:1", []string{"198.51.100.1, 10.0.0.5", "10.0.0.9"}, "198.51.100.1"},
		{"client forged a left entry", "10.1.2.3:443", []string{"1.2.3.4, 198.51.100.1"}, "198.51.100.1"},
		{"trusted proxy without header", "10.1.2.3:443", nil, "10.1.2.3"},
		{"garbage hop", "10.1.2.3:443", []string{"not-an-ip"}, "10.1.2.3"},
		{"ipv6 client", "10.1.2.3:443", []string{"2001:db8::1"}, "2001:db8::1"},
		{"hop with port", "10.1.2.3:443", []string{"198.51.100.1:4711"}, "198.51.100.1"},
		{"no trusted proxies configured", "127.0.0.1:1", []string{"198.51.100.1"}, "198.51.100.1"},
	}
	for _, tc := range cases {
		r := &http.Request{RemoteAddr: tc.remote, Header: http.Header{}}
		for _, h := range tc.xff {
			r.Header.Add("X-Forwarded-For", h)
		}
		tr := trusted
		if tc.name == "no trusted proxies configured" {
			tr = nil
			tc.want = "127.0.0.1"
		}
		if got := clientIP(r, tr); got != tc.want {
			t.Errorf("%s: clientIP = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func FuzzClientIP(f *testing.F) {
	f.Add("10.1.2.3:443", "198.51.100.1, 10.0.0.5")
	f.Add("[::1]:80", "garbage,,, ")
	f.Add("x", "")
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	f.Fuzz(func(t *testing.T, remote, xff string) {
		r := &http.Request{RemoteAddr: remote, Header: http.Header{"X-Forwarded-For": {xff}}}
		clientIP(r, trusted) // must not panic
	})
}
