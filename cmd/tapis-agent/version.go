package main

import (
	"runtime"
	"runtime/debug"
)

// version and commit are set at build time with
// -ldflags "-X main.version=… -X main.commit=…" (make build, make dist).
var (
	version = "dev"
	commit  = ""
)

// versionLine is what `tapis-agent version` and `tapis-token version`
// print after the program's name: the version, the commit it was built
// from, and the Go release and platform it was built with.
func versionLine() string {
	return version + " (commit " + buildCommit(commit) + ", " + runtime.Version() + ", " + runtime.GOOS + "/" + runtime.GOARCH + ")"
}

// buildCommit returns c, else the commit that the go command recorded
// when it built from a git checkout ("-dirty" when files were changed),
// else "unknown".
func buildCommit(c string) string {
	if c != "" {
		return c
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	var rev, dirty string
	for _, s := range info.Settings {
		switch {
		case s.Key == "vcs.revision":
			rev = s.Value
		case s.Key == "vcs.modified" && s.Value == "true":
			dirty = "-dirty"
		}
	}
	if rev == "" {
		return "unknown"
	}
	return rev + dirty
}
