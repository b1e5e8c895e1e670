package config

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// checkFiles reports every file and directory the config names that the
// gateway could not use: what it reads must exist and be readable, what it
// writes (the audit log, keys created on first start) must be writable, so
// that `config validate` finds at once what `serve` would otherwise die on
// one at a time.
func (l *loader) checkFiles(c *Config) {
	read := func(path, file string) {
		if file != "" {
			l.checkReadable(path, file, false)
		}
	}
	dir := func(path, d string) {
		if d != "" {
			l.checkReadable(path, d, true)
		}
	}
	read("tls.cert_file", c.TLS.CertFile)
	read("tls.key_file", c.TLS.KeyFile)
	dir("policy.dir", c.Policy.Dir)
	dir("policy.shadow_dir", c.Policy.ShadowDir)
	read("policy.bundle", c.Policy.Bundle)
	read("policy.bundle_verification.key_file", c.Policy.BundleVerification.KeyFile)
	read("assertion.key_file", c.Assertion.KeyFile)
	for i, u := range c.Upstreams {
		if u.Jitsi != nil {
			read(idx("upstreams", i)+".jitsi.private_key_file", u.Jitsi.PrivateKeyFile)
		}
	}
	if c.Audit.Path != "" {
		l.checkWritableFile("audit.path", c.Audit.Path)
	}
	// Keys created on first start: readable if they exist, else their
	// directory must take them.
	for _, k := range []struct{ path, file string }{{"audit.key_file", c.Audit.KeyFile}, {"e2ee.key_file", c.E2EE.KeyFile}} {
		if _, inFile := l.lines[k.path]; k.file == "" || !inFile && l.failed("audit.path") {
			continue // the default beside the audit log, already reported
		}
		if _, err := os.Stat(k.file); errors.Is(err, fs.ErrNotExist) {
			l.checkWritableDir(k.path, filepath.Dir(k.file), "it is created on first start in")
			continue
		}
		l.checkReadable(k.path, k.file, false)
	}
}

// checkReadable opens name (a directory when dir) for reading.
func (l *loader) checkReadable(path, name string, dir bool) {
	f, err := os.Open(name)
	if err != nil {
		l.add(path, "cannot read %s: %v", name, reason(err))
		return
	}
	defer f.Close()
	st, err := f.Stat()
	switch {
	case err != nil:
		l.add(path, "cannot read %s: %v", name, reason(err))
	case dir && !st.IsDir():
		l.add(path, "%s is not a directory", name)
	case !dir && st.IsDir():
		l.add(path, "%s is a directory, not a file", name)
	case dir:
		if _, err := f.Readdirnames(1); err != nil && !errors.Is(err, io.EOF) {
			l.add(path, "cannot read %s: %v", name, reason(err))
		}
	}
}

// checkWritableFile: an existing file must open for appending; a new one
// needs a writable directory.
func (l *loader) checkWritableFile(path, name string) {
	st, err := os.Stat(name)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		l.checkWritableDir(path, filepath.Dir(name), "the log is created in")
		return
	case err != nil:
		l.add(path, "cannot use %s: %v", name, reason(err))
		return
	case st.IsDir():
		l.add(path, "%s is a directory, not a file", name)
		return
	}
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		l.add(path, "cannot write %s: %v", name, reason(err))
		return
	}
	_ = f.Close()
	// Rotation renames files beside it.
	l.checkWritableDir(path, filepath.Dir(name), "rotated files are written to")
}

// checkWritableDir proves dir takes new files by creating and removing one.
func (l *loader) checkWritableDir(path, dir, why string) {
	f, err := os.CreateTemp(dir, ".meetguard-validate-*")
	if err != nil {
		l.add(path, "cannot write to directory %s (%s it): %v", dir, why, reason(err))
		return
	}
	name := f.Name()
	_ = f.Close()
	_ = os.Remove(name)
}

// reason is an error without the path it repeats (*PathError's Op and
// Path), which the message already names.
func reason(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// failed reports whether path already has a problem.
func (l *loader) failed(path string) bool {
	for _, e := range l.errs {
		if e.Path == path {
			return true
		}
	}
	return false
}
