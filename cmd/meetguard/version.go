package main

import (
	"context"
	"fmt"
	"io"
	goruntime "runtime"
	"runtime/debug"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// buildInfo is what `meetguard version` reports, from the binary itself.
type buildInfo struct {
	Version, Commit, CommitTime, GoVersion string
	Modified                               bool
}

// readBuildInfo reads the module version (set by `go install ...@vX`), the
// VCS commit (set when built from a checkout) and the Go version.
func readBuildInfo() buildInfo {
	b := buildInfo{Version: version, GoVersion: goruntime.Version()}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return b
	}
	if b.Version == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		b.Version = bi.Main.Version
	}
	b.GoVersion = bi.GoVersion
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			b.Commit = s.Value
		case "vcs.time":
			b.CommitTime = s.Value
		case "vcs.modified":
			b.Modified = s.Value == "true"
		}
	}
	return b
}

func runVersion(_ context.Context, _ []string, stdout, _ io.Writer) int {
	b := readBuildInfo()
	fmt.Fprintf(stdout, "meetguard %s\n", b.Version)
	switch {
	case b.Commit == "":
		fmt.Fprintln(stdout, "commit: unknown (built without VCS information)")
	case b.Modified:
		fmt.Fprintf(stdout, "commit: %s %s (with uncommitted changes)\n", b.Commit, b.CommitTime)
	default:
		fmt.Fprintf(stdout, "commit: %s %s\n", b.Commit, b.CommitTime)
	}
	fmt.Fprintf(stdout, "go: %s %s/%s\n", b.GoVersion, goruntime.GOOS, goruntime.GOARCH)
	return 0
}
