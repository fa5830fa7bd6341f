package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// version is the release version. Releases may set it with
// -ldflags "-X main.version=v1.2.3"; otherwise the build info's module
// version is used ("(devel)" for a plain go build in a checkout).
var version string

// versionLine describes the running binary: version, commit and Go version,
// from the build info the Go toolchain embeds.
func versionLine(info *debug.BuildInfo, ok bool) string {
	v, commit, goVersion := version, "unknown", runtime.Version()
	if ok {
		if v == "" {
			v = info.Main.Version
		}
		if info.GoVersion != "" {
			goVersion = info.GoVersion
		}
		modified := false
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				commit = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
		if modified {
			commit += " (modified)"
		}
	}
	if v == "" {
		v = "(devel)"
	}
	return fmt.Sprintf("ivschatd %s, commit %s, %s %s/%s", v, commit, goVersion, runtime.GOOS, runtime.GOARCH)
}
