package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/meetguard/meetguard/policies"
)

// runPolicyInit is `meetguard policy init DIR`: the shipped bundle
// (policies, their tests, data.json, the input schema) written out so a
// security team can edit it outside the source tree. It refuses to write
// over existing files: an edited policy is never silently replaced.
func runPolicyInit(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("policy init", stderr)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: meetguard policy init DIR\n\nwrites the shipped policies, their tests, data.json and schema/ into DIR (created if missing); existing files are never overwritten")
	}
	rest, err := parseInterspersed(fs, args)
	if err != nil {
		return exitUsage
	}
	if len(rest) != 1 {
		fs.Usage()
		return exitUsage
	}
	dir := rest[0]
	if clash := existingBundleFile(dir); clash != "" {
		fmt.Fprintf(stderr, "meetguard policy init: %s already exists; not overwriting (choose an empty directory)\n", clash)
		return 1
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		fmt.Fprintf(stderr, "meetguard policy init: %v\n", err)
		return 1
	}
	if err := policies.WriteTo(dir); err != nil {
		fmt.Fprintf(stderr, "meetguard policy init: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "wrote the shipped policy bundle to %s\nnext: meetguard policy test %s, then set policy.dir: %s in the config\n", dir, dir, dir)
	return exitOK
}

// existingBundleFile names the first shipped file that already exists in dir.
func existingBundleFile(dir string) string {
	var clash string
	_ = fs.WalkDir(policies.FS(), ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		target := filepath.Join(dir, filepath.FromSlash(path))
		if _, err := os.Lstat(target); !errors.Is(err, os.ErrNotExist) {
			clash = target
			return fs.SkipAll
		}
		return nil
	})
	return clash
}
