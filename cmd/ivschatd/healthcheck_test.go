package main

import (
	"io"
	"net"
	"strings"
	"testing"
)

// TestHealthcheck probes a real server: ready answers 0, a path that is not
// 200 and a port nobody listens on answer an error (non-zero exit).
func TestHealthcheck(t *testing.T) {
	_, base, logs := startChild(t, "--listen 127.0.0.1:0 --data-dir "+t.TempDir(),
		"IVSCHATD_ACCESS_KEY_ID=AKIDHC", "IVSCHATD_SECRET_ACCESS_KEY=hc-secret")
	var out strings.Builder
	if err := run([]string{"healthcheck", "--url", base + "/readyz"}, &out, io.Discard); err != nil {
		t.Fatalf("ready server: %v\n%s", err, logs())
	}
	if !strings.Contains(out.String(), "200") {
		t.Errorf("output %q does not name the status", out.String())
	}
	if err := run([]string{"healthcheck", "--url", base + "/no-such-probe"}, io.Discard, io.Discard); err == nil {
		t.Error("a non-200 answer passed the healthcheck")
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	if err := run([]string{"healthcheck", "--url", "http://" + closed + "/readyz", "--timeout", "2s"}, io.Discard, io.Discard); err == nil {
		t.Error("a port nobody listens on passed the healthcheck")
	}
	if err := run([]string{"healthcheck", "extra"}, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "unexpected arguments") {
		t.Errorf("stray argument: %v", err)
	}
}
