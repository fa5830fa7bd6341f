package server

import (
	"compress/gzip"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/ivschat"

	"github.com/ivschatd/ivschatd/internal/config"
)

// consoleClient reports redirects instead of following them, and does not
// ask for gzip on its own: each test decides.
var consoleClient = &http.Client{
	Transport:     &http.Transport{DisableCompression: true},
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

func consoleGet(t *testing.T, url string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := consoleClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

// The web console is served by default on the main listener, with its
// security headers, gzip and the redirect from /console; the files index.html
// names are there; the messaging listener does not serve it; and the API on
// the same listener is untouched.
func TestConsoleServedOnMainListenerOnly(t *testing.T) {
	ts := startServer(t, "", func(c *config.Config) { c.MessagingListen = "127.0.0.1:0" })

	resp, _ := consoleGet(t, ts.URL+"/console")
	if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != "/console/" {
		t.Errorf("GET /console: %d Location %q, want 301 /console/", resp.StatusCode, resp.Header.Get("Location"))
	}

	resp, index := consoleGet(t, ts.URL+"/console/")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("GET /console/: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for k, v := range map[string]string{
		"Content-Security-Policy": "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; style-src 'self'; frame-ancestors 'none'",
		"X-Content-Type-Options":  "nosniff",
		"Referrer-Policy":         "no-referrer",
		"Cache-Control":           "no-cache",
	} {
		if got := resp.Header.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if resp.Header.Get("ETag") == "" {
		t.Error("no ETag")
	}

	refs := regexp.MustCompile(`(?:src|href)="(app\.[a-z]+\?v=[0-9a-f]+)"`).FindAllStringSubmatch(string(index), -1)
	if len(refs) != 2 {
		t.Fatalf("index.html references %v, want app.js and app.css", refs)
	}
	for _, ref := range refs {
		resp, body := consoleGet(t, ts.URL+"/console/"+ref[1], "Accept-Encoding", "gzip")
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Encoding") != "gzip" {
			t.Errorf("%s: %d encoding %q, want 200 gzip", ref[1], resp.StatusCode, resp.Header.Get("Content-Encoding"))
			continue
		}
		if !strings.Contains(resp.Header.Get("Cache-Control"), "immutable") {
			t.Errorf("%s: Cache-Control %q, want immutable for the versioned file", ref[1], resp.Header.Get("Cache-Control"))
		}
		zr, err := gzip.NewReader(strings.NewReader(string(body)))
		if err != nil {
			t.Fatalf("%s: %v", ref[1], err)
		}
		if plain, err := io.ReadAll(zr); err != nil || len(plain) == 0 {
			t.Errorf("%s: gzip body: %d bytes, %v", ref[1], len(plain), err)
		}
	}

	for _, path := range []string{"/console", "/console/", "/console/app.js"} {
		if resp, body := consoleGet(t, ts.messagingURL+path); resp.StatusCode != http.StatusNotFound || strings.Contains(string(body), "<html") {
			t.Errorf("GET %s on the messaging listener: %d, want 404", path, resp.StatusCode)
		}
	}

	if _, err := ts.client().ListRooms(ctxT(t), &ivschat.ListRoomsInput{}); err != nil {
		t.Errorf("the API beside the console: %v", err)
	}
}

// --console=false: nothing under /console is served, not even the redirect.
func TestConsoleTurnedOff(t *testing.T) {
	ts := startServer(t, "", func(c *config.Config) { c.Console = false })
	for _, path := range []string{"/console", "/console/", "/console/app.js", "/console/index.html"} {
		resp, body := consoleGet(t, ts.URL+path)
		if resp.StatusCode != http.StatusNotFound || strings.Contains(string(body), "<html") {
			t.Errorf("GET %s with the console off: %d, want 404", path, resp.StatusCode)
		}
		if resp.Header.Get("Content-Security-Policy") != "" {
			t.Errorf("GET %s with the console off answered with the console's headers", path)
		}
	}
	if _, err := ts.client().ListRooms(ctxT(t), &ivschat.ListRoomsInput{}); err != nil {
		t.Errorf("the API with the console off: %v", err)
	}
}
