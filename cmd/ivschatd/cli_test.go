package main

import (
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

// TestCommandLineHelpVersionAndMistakes runs the real process: version and
// --version print one line with the version, commit and Go version; --help
// lists the subcommands and flags; a mistake on the command line is one line
// naming it with a hint to --help (exit 2), and a malformed --region is a
// config error naming the setting (exit 1).
func TestCommandLineHelpVersionAndMistakes(t *testing.T) {
	for _, args := range []string{"version", "--version"} {
		code, stdout, stderr, _ := runToExit(t, args)
		lines := strings.Split(strings.TrimRight(stdout, "\n"), "\n")
		if code != 0 || stderr != "" || len(lines) != 1 ||
			!strings.HasPrefix(lines[0], "ivschatd ") || !strings.Contains(lines[0], "commit ") || !strings.Contains(lines[0], runtime.Version()) {
			t.Errorf("%s: exit %d, stdout %q, stderr %q", args, code, stdout, stderr)
		}
	}

	code, stdout, stderr, _ := runToExit(t, "--help")
	if code != 0 || stderr != "" {
		t.Errorf("--help: exit %d, stderr %q", code, stderr)
	}
	for _, want := range []string{"ivschatd rotate-token-key", "ivschatd version", "--version", "--listen", "IVSCHATD_LISTEN", "--http-read-timeout", "--messaging-listen"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("--help lacks %q:\n%s", want, stdout)
		}
	}

	// Should a case start a server after all, it must not touch the
	// package directory or a fixed port.
	safe := "--listen 127.0.0.1:0 --data-dir " + t.TempDir()
	for _, tc := range []struct {
		args string
		code int
		line string
	}{
		{"--no-such-flag", 2, "ivschatd: unknown flag --no-such-flag (see 'ivschatd --help')"},
		{"--listen 127.0.0.1:0 -x", 2, "ivschatd: unknown flag --x (see 'ivschatd --help')"},
		{safe + " --max-rooms many", 2, `ivschatd: invalid value "many" for flag --max-rooms: "many" is not an integer (see 'ivschatd --help')`},
		{"serve", 2, "ivschatd: unexpected arguments: serve (see 'ivschatd --help')"},
		{"rotate-token-key --bogus", 2, "ivschatd: rotate-token-key: unknown flag --bogus (see 'ivschatd --help')"},
		{safe + " --region US_WEST_2", 1, `ivschatd: region "US_WEST_2": must look like an AWS region (e.g. us-west-2, eu-central-1)`},
		{safe + " --region us-west", 1, `ivschatd: region "us-west": must look like an AWS region (e.g. us-west-2, eu-central-1)`},
	} {
		code, stdout, stderr, _ := runToExit(t, tc.args)
		if code != tc.code || stdout != "" || stderr != tc.line+"\n" {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want exit %d and %q", tc.args, code, stdout, stderr, tc.code, tc.line)
		}
	}
}

// The version line takes the release version from -ldflags -X main.version
// when set, else the module version, and the commit from the VCS stamp.
func TestVersionLine(t *testing.T) {
	info := &debug.BuildInfo{GoVersion: "go1.99.1", Main: debug.Module{Version: "v1.4.0"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"},
		{Key: "vcs.modified", Value: "true"},
	}}
	want := "ivschatd v1.4.0, commit 0123456789abcdef0123456789abcdef01234567 (modified), go1.99.1 " + runtime.GOOS + "/" + runtime.GOARCH
	if got := versionLine(info, true); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	defer func(v string) { version = v }(version)
	version = "v2.0.0"
	if got := versionLine(info, true); !strings.HasPrefix(got, "ivschatd v2.0.0, commit 0123") {
		t.Errorf("with -X main.version: %q", got)
	}
	defer func(c string) { commit = c }(commit)
	commit = "feedface"
	if got := versionLine(info, true); !strings.HasPrefix(got, "ivschatd v2.0.0, commit feedface, go1.99.1") {
		t.Errorf("with -X main.commit: %q", got)
	}
	commit = ""
	if got := versionLine(nil, false); !strings.HasPrefix(got, "ivschatd v2.0.0, commit unknown, "+runtime.Version()) {
		t.Errorf("without build info: %q", got)
	}
}
