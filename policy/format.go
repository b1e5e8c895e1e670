package policy

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/format"
)

// FormatResult is one Rego file's formatting state.
type FormatResult struct {
	File      string
	Changed   bool   // the file is not in opa fmt's canonical form
	Formatted []byte // the canonical form
}

// RegoFiles lists the .rego files under the given files and directories,
// skipping hidden directories.
func RegoFiles(paths ...string) ([]string, error) {
	var files []string
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !fi.IsDir() {
			files = append(files, p)
			continue
		}
		err = filepath.WalkDir(p, func(name string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && name != p && strings.HasPrefix(d.Name(), ".") {
				return filepath.SkipDir
			}
			if !d.IsDir() && strings.HasSuffix(name, ".rego") {
				files = append(files, name)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return files, nil
}

// FormatFile formats one Rego v1 file the way `opa fmt` does. A file that
// does not parse is an error naming its line.
func FormatFile(name string) (FormatResult, error) {
	src, err := os.ReadFile(name)
	if err != nil {
		return FormatResult{}, err
	}
	out, err := format.SourceWithOpts(name, src, format.Opts{RegoVersion: ast.RegoV1})
	if err != nil {
		return FormatResult{}, &LoadError{Source: name, Stage: "parse", kind: ErrInvalidPolicy, cause: err, Problems: astProblems(err, name)}
	}
	return FormatResult{File: name, Changed: !bytes.Equal(src, out), Formatted: out}, nil
}

// WriteFormatted replaces a file with its formatted form atomically: a
// reader (or the policy watcher) sees the old file or the new one, never a
// half-written one.
func WriteFormatted(r FormatResult) error {
	fi, err := os.Stat(r.File)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(r.File), "."+filepath.Base(r.File)+".*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(r.Formatted); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", r.File, err)
	}
	if err := tmp.Chmod(fi.Mode().Perm()); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), r.File)
}
