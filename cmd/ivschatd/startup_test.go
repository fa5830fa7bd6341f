package main

import (
	"bytes"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// runToExit runs the test binary as ivschatd with args until it exits (20 s at
// most) and returns its exit code, its stdout and stderr and how long it ran.
func runToExit(t *testing.T, args string, env ...string) (code int, stdout, stderr string, took time.Duration) {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), append([]string{"IVSCHATD_TEST_AS_MAIN=1", "IVSCHATD_TEST_ARGS=" + args}, env...)...)
	var out, errOut bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &errOut
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("ivschatd %s: still running after 20s:\n%s", args, errOut.String())
	}
	took = time.Since(start)
	var exit *exec.ExitError
	switch {
	case err == nil:
		code = 0
	case errors.As(err, &exit):
		code = exit.ExitCode()
	default:
		t.Fatal(err)
	}
	return code, out.String(), errOut.String(), took
}

// dirNames lists the names in dir (nil if it does not exist).
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// TestStartFailuresAreOneLine: every way the start can fail on the
// environment exits 1 within seconds with one line naming the setting and
// the cause — no panic, no goroutine trace — and creates nothing in the data
// dir (no credentials, key ring, secret or database left half-made).
func TestStartFailuresAreOneLine(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	garbage := filepath.Join(t.TempDir(), "garbage.pem")
	os.WriteFile(garbage, []byte("not PEM\n"), 0o600)
	notADir := filepath.Join(t.TempDir(), "file")
	os.WriteFile(notADir, []byte("x"), 0o600)

	readOnly := filepath.Join(t.TempDir(), "ro")
	os.Mkdir(readOnly, 0o500)
	readOnlyWorks := true // root writes anyway: that case cannot be tested then
	if f, err := os.CreateTemp(readOnly, "probe"); err == nil {
		f.Close()
		os.Remove(f.Name())
		readOnlyWorks = false
	}

	cases := []struct {
		name  string
		skip  bool
		args  string
		setup func(dir string) // prepares the data dir
		want  []string         // substrings of the one line
	}{
		{name: "postgres unreachable", args: "--postgres-url postgres://u:hunter2@127.0.0.1:1/x",
			want: []string{"--postgres-url: cannot connect to 127.0.0.1:1: connection refused"}},
		{name: "postgres URL invalid", args: "--postgres-url postgres://u:hunter2@host:port/x",
			want: []string{"--postgres-url", "cannot parse"}},
		{name: "redis unreachable", args: "--redis-url redis://:hunter2@127.0.0.1:1/0",
			want: []string{"--redis-url", "unreachable", "connection refused"}},
		{name: "corrupt sqlite", setup: func(dir string) {
			os.WriteFile(filepath.Join(dir, "ivschatd.db"), bytes.Repeat([]byte("corrupt!"), 2048), 0o600)
		}, want: []string{"--data-dir", "ivschatd.db", "not a database"}},
		{name: "data dir is a file", args: "--data-dir " + notADir,
			want: []string{"--data-dir " + notADir + ": not a directory"}},
		{name: "data dir not writable", skip: !readOnlyWorks, args: "--data-dir " + readOnly,
			want: []string{"--data-dir " + readOnly + ": not writable: permission denied"}},
		{name: "data dir below a file", args: "--data-dir " + notADir + "/sub",
			want: []string{"--data-dir", "not a directory"}},
		{name: "listen address in use", args: "--listen " + busy.Addr().String(),
			want: []string{"--listen " + busy.Addr().String(), "address already in use"}},
		{name: "messaging address in use", args: "--messaging-listen " + busy.Addr().String(),
			want: []string{"--messaging-listen", "address already in use"}},
		{name: "pprof address in use", args: "--pprof-listen " + busy.Addr().String(),
			want: []string{"--pprof-listen", "address already in use"}},
		{name: "TLS cert missing", args: "--tls-cert /nonexistent/cert.pem --tls-key " + garbage,
			want: []string{"--tls-cert: open /nonexistent/cert.pem: no such file or directory"}},
		{name: "TLS key missing", args: "--tls-cert " + garbage + " --tls-key /nonexistent/key.pem",
			want: []string{"--tls-key: open /nonexistent/key.pem"}},
		{name: "TLS pair not PEM", args: "--tls-cert " + garbage + " --tls-key " + garbage,
			want: []string{"--tls-cert/--tls-key", "PEM"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.skip {
				t.Skip("running as root: a mode 0500 directory is writable")
			}
			dir := t.TempDir()
			if tc.setup != nil {
				tc.setup(dir)
			}
			before := dirNames(t, dir)
			args := "--listen 127.0.0.1:0 --data-dir " + dir + " " + tc.args
			code, _, stderr, took := runToExit(t, args)
			lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n")
			if code != 1 || len(lines) != 1 || !strings.HasPrefix(lines[0], "ivschatd: ") {
				t.Fatalf("exit %d with stderr:\n%s\nwant exit 1 and one line", code, stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(lines[0], w) {
					t.Errorf("line %q lacks %q", lines[0], w)
				}
			}
			if strings.Contains(stderr, "hunter2") {
				t.Errorf("the password is shown: %s", stderr)
			}
			if took > 10*time.Second {
				t.Errorf("took %v to fail", took)
			}
			if after := dirNames(t, dir); !slices.Equal(before, after) {
				t.Errorf("data dir changed from %v to %v", before, after)
			}
		})
	}
}
