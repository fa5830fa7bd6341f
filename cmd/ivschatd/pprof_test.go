package main

import (
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

var pprofLine = regexp.MustCompile(`pprofListen=(127\.0\.0\.1:\d+)`)

// TestPprofDoesNotServeTheCommandLine: --pprof-listen serves profiles but not
// /debug/pprof/cmdline, which would show secrets given as flags.
func TestPprofDoesNotServeTheCommandLine(t *testing.T) {
	const secret = "hunter2-webhook-secret"
	_, _, logs := startChild(t, "--listen 127.0.0.1:0 --pprof-listen 127.0.0.1:0 --data-dir "+t.TempDir()+" --review-webhook-secret "+secret,
		"IVSCHATD_ACCESS_KEY_ID=AKIDPPROF", "IVSCHATD_SECRET_ACCESS_KEY=pprof-secret")
	m := pprofLine.FindStringSubmatch(logs())
	if m == nil {
		t.Fatalf("no pprof address in the log:\n%s", logs())
	}
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + m[1] + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if status, body := get("/debug/pprof/cmdline"); status != http.StatusNotFound || strings.Contains(body, secret) {
		t.Errorf("cmdline: %d %q, want 404 without the secret", status, body)
	}
	if status, body := get("/debug/pprof/goroutine?debug=1"); status != http.StatusOK || !strings.Contains(body, "goroutine profile") {
		t.Errorf("goroutine profile: %d %.80q", status, body)
	}
}
