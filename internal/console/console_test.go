package console

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"
)

func newTestHandler(t *testing.T) *Handler {
	t.Helper()
	h, err := New()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func get(t *testing.T, h http.Handler, path string, hdr ...string) *http.Response {
	t.Helper()
	return do(t, h, http.MethodGet, path, hdr...)
}

func do(t *testing.T, h http.Handler, method, path string, hdr ...string) *http.Response {
	t.Helper()
	r := httptest.NewRequest(method, path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Result()
}

func body(t *testing.T, resp *http.Response) []byte {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func checkSecurityHeaders(t *testing.T, resp *http.Response) {
	t.Helper()
	want := map[string]string{
		"Content-Security-Policy": "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; style-src 'self'; frame-ancestors 'none'",
		"X-Content-Type-Options":  "nosniff",
		"Referrer-Policy":         "no-referrer",
	}
	for k, v := range want {
		if got := resp.Header.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
}

// The embedded build is the one the binary ships: index.html must name the
// current versions of app.js and app.css, or browsers would load stale or
// missing files.
func TestEmbeddedIndexNamesCurrentAssets(t *testing.T) {
	h := newTestHandler(t)
	index := string(h.assets["index.html"].body)
	for _, name := range []string{"app.js", "app.css"} {
		a := h.assets[name]
		if a == nil {
			t.Fatalf("embedded build lacks %s", name)
		}
		if want := name + "?v=" + a.version; !strings.Contains(index, want) {
			t.Errorf("index.html does not reference %s (stale build? run npm run build in console/)", want)
		}
	}
	if regexp.MustCompile(`<script>|<style>|style="`).MatchString(index) {
		t.Errorf("index.html has inline script or style, which the CSP forbids")
	}
}

func TestServesIndexWithHeaders(t *testing.T) {
	h := newTestHandler(t)
	resp := get(t, h, "/console/")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	checkSecurityHeaders(t, resp)
	if ct := resp.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-cache" {
		t.Errorf("Cache-Control %q, want no-cache", cc)
	}
	if resp.Header.Get("Content-Encoding") != "" {
		t.Errorf("gzip without Accept-Encoding")
	}
	if b := body(t, resp); !bytes.Equal(b, h.assets["index.html"].body) {
		t.Errorf("body is not index.html")
	}
}

func TestContentTypes(t *testing.T) {
	h := newTestHandler(t)
	for path, want := range map[string]string{
		"/console/app.js":     "text/javascript; charset=utf-8",
		"/console/app.css":    "text/css; charset=utf-8",
		"/console/index.html": "text/html; charset=utf-8",
	} {
		resp := get(t, h, path)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != want {
			t.Errorf("%s: %d %q, want 200 %q", path, resp.StatusCode, resp.Header.Get("Content-Type"), want)
		}
		checkSecurityHeaders(t, resp)
	}
}

func TestGzip(t *testing.T) {
	h := newTestHandler(t)
	plain := h.assets["app.js"].body
	for _, tc := range []struct {
		accept string
		gzip   bool
	}{
		{"gzip", true},
		{"br, gzip, deflate", true},
		{"gzip;q=0.5", true},
		{"*", true},
		{"gzip;q=0", false},
		{"gzip;q=0.000", false},
		{"*;q=0", false},
		{"identity", false},
		{"br", false},
		{"", false},
	} {
		resp := get(t, h, "/console/app.js", "Accept-Encoding", tc.accept)
		b := body(t, resp)
		if got := resp.Header.Get("Content-Encoding") == "gzip"; got != tc.gzip {
			t.Errorf("Accept-Encoding %q: gzip %v, want %v", tc.accept, got, tc.gzip)
			continue
		}
		if !strings.Contains(resp.Header.Get("Vary"), "Accept-Encoding") {
			t.Errorf("Accept-Encoding %q: no Vary: Accept-Encoding", tc.accept)
		}
		if tc.gzip {
			zr, err := gzip.NewReader(bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			b, err = io.ReadAll(zr)
			if err != nil {
				t.Fatal(err)
			}
		}
		if !bytes.Equal(b, plain) {
			t.Errorf("Accept-Encoding %q: body differs from app.js", tc.accept)
		}
	}
}

func TestETagAndConditionalRequests(t *testing.T) {
	h := newTestHandler(t)
	plain := get(t, h, "/console/app.js")
	zipped := get(t, h, "/console/app.js", "Accept-Encoding", "gzip")
	etag, zetag := plain.Header.Get("ETag"), zipped.Header.Get("ETag")
	if etag == "" || zetag == "" || etag == zetag {
		t.Fatalf("ETags %q and %q: want two different ones for the two encodings", etag, zetag)
	}
	resp := get(t, h, "/console/app.js", "If-None-Match", etag)
	if resp.StatusCode != http.StatusNotModified || len(body(t, resp)) != 0 {
		t.Errorf("If-None-Match with the current ETag: %d, want 304 without a body", resp.StatusCode)
	}
	resp = get(t, h, "/console/app.js", "Accept-Encoding", "gzip", "If-None-Match", zetag)
	if resp.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match with the gzip ETag: %d, want 304", resp.StatusCode)
	}
	resp = get(t, h, "/console/app.js", "If-None-Match", `"stale"`)
	if resp.StatusCode != http.StatusOK {
		t.Errorf("If-None-Match with another ETag: %d, want 200", resp.StatusCode)
	}
}

// A file requested with the version index.html names may be cached for
// good; without it (or with an old one), browsers must revalidate.
func TestCacheControlByVersion(t *testing.T) {
	h := newTestHandler(t)
	v := h.assets["app.css"].version
	for query, want := range map[string]string{
		"?v=" + v:      "public, max-age=31536000, immutable",
		"":             "no-cache",
		"?v=000000000": "no-cache",
	} {
		resp := get(t, h, "/console/app.css"+query)
		if cc := resp.Header.Get("Cache-Control"); cc != want {
			t.Errorf("app.css%s: Cache-Control %q, want %q", query, cc, want)
		}
	}
}

func TestRedirectAndNotFound(t *testing.T) {
	h := newTestHandler(t)
	resp := get(t, h, "/console")
	if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != "/console/" {
		t.Errorf("/console: %d Location %q, want 301 to /console/", resp.StatusCode, resp.Header.Get("Location"))
	}
	checkSecurityHeaders(t, resp)
	for _, path := range []string{"/console/rooms", "/console/app.js.map", "/console/../go.mod", "/console/dist/app.js", "/elsewhere"} {
		resp := get(t, h, path)
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", path, resp.StatusCode)
		}
		checkSecurityHeaders(t, resp)
	}
}

func TestMethods(t *testing.T) {
	h := newTestHandler(t)
	resp := do(t, h, http.MethodHead, "/console/app.js")
	if resp.StatusCode != http.StatusOK || len(body(t, resp)) != 0 || resp.Header.Get("Content-Length") == "" {
		t.Errorf("HEAD: %d, Content-Length %q", resp.StatusCode, resp.Header.Get("Content-Length"))
	}
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodOptions} {
		resp := do(t, h, m, "/console/")
		if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD" {
			t.Errorf("%s: %d Allow %q, want 405 GET, HEAD", m, resp.StatusCode, resp.Header.Get("Allow"))
		}
	}
}

func TestNeedsIndex(t *testing.T) {
	if _, err := newHandler(fstest.MapFS{"app.js": {Data: []byte("x")}}); err == nil {
		t.Error("a build without index.html was accepted")
	}
}

// Tiny files that gzip would make larger are served as they are.
func TestIncompressibleServedPlain(t *testing.T) {
	h, err := newHandler(fstest.MapFS{"index.html": {Data: []byte("<p>")}})
	if err != nil {
		t.Fatal(err)
	}
	resp := get(t, h, "/console/", "Accept-Encoding", "gzip")
	if resp.Header.Get("Content-Encoding") != "" || string(body(t, resp)) != "<p>" {
		t.Errorf("tiny file: encoding %q", resp.Header.Get("Content-Encoding"))
	}
}

func FuzzAcceptsGzip(f *testing.F) {
	for _, s := range []string{"gzip", "gzip;q=0", "*;q=0.5, gzip;q=0", "br;q=1.0, gzip ; q = 0.001", ";;,,==", "GZIP;Q=1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := acceptsGzip(s)
		if !strings.Contains(strings.ToLower(s), "gzip") && !strings.Contains(s, "*") && got {
			t.Errorf("acceptsGzip(%q) = true without gzip or *", s)
		}
	})
}
