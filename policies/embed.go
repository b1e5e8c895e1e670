// Package policies embeds the shipped admission policy (Rego, its tests,
// data.json and the input schema) so that meetguard runs on it with no
// files on disk. Security teams edit the files beside this one; the Go
// code here only carries them into the binary.
package policies

import (
	"embed"
	"io/fs"
	"os"
	"path/filepath"
)

//go:embed *.rego data.json schema/*.json
var bundle embed.FS

// FS is the shipped policy directory.
func FS() fs.FS { return bundle }

// WriteTo copies the shipped policy into dir (which must exist), so that
// tools taking a directory can load it.
func WriteTo(dir string) error {
	return fs.WalkDir(bundle, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		target := filepath.Join(dir, filepath.FromSlash(path))
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := bundle.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
}
