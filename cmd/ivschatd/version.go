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

// commit is the source revision. Release builds (scripts/release.sh) set it
// with -ldflags "-X main.commit=..." and build with -buildvcs=false, so the
// same source gives the same bytes with or without a .git directory (a
// container build context has none); otherwise the toolchain's VCS stamp is
// used.
var commit string

// versionLine describes the running binary: version, commit and Go version,
// from the build info the Go toolchain embeds.
func versionLine(info *debug.BuildInfo, ok bool) string {
	v, rev, goVersion := buildVersion(info, ok)
	return fmt.Sprintf("ivschatd %s, commit %s, %s %s/%s", v, rev, goVersion, runtime.GOOS, runtime.GOARCH)
}

// buildVersion is the version, commit and Go version of the binary (also
// reported by the GetServerStatus extension).
func buildVersion(info *debug.BuildInfo, ok bool) (v, rev, goVersion string) {
	v, rev, goVersion = version, "unknown", runtime.Version()
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
				rev = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
		if modified {
			rev += " (modified)"
		}
	}
	if commit != "" {
		rev = commit
	}
	if v == "" {
		v = "(devel)"
	}
	return v, rev, goVersion
}
