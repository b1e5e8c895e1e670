package policy

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/v1/bundle"
	"github.com/open-policy-agent/opa/v1/loader/filter"
)

// Size limits for what one revision may hold. They keep a runaway file or a
// hostile bundle from exhausting memory during a reload.
const (
	maxPolicyFileBytes  = 8 << 20
	maxBundleBytes      = 64 << 20
	maxPolicyTotalBytes = 64 << 20
)

const (
	signaturesFile = ".signatures.json"
	manifestFile   = ".manifest"
	schemaDir      = "schema"
)

// sourceFile is one file of a revision, with its path relative to the bundle
// root (slash-separated, no leading slash).
type sourceFile struct {
	path string
	data []byte
}

// source is a revision's files read into memory once, so that hashing,
// signature verification and parsing all see exactly the same bytes.
type source struct {
	name       string // what the operator configured: a directory or a bundle file
	bundleFile bool
	files      []sourceFile // sorted by path
}

// readSource reads a policy directory or a bundle file.
func readSource(dir, bundlePath string) (*source, error) {
	if bundlePath != "" {
		return readBundleFile(bundlePath)
	}
	return readDir(dir)
}

// relevantFile reports whether a file of a revision is part of the policy.
// Everything else (READMEs, editor swap files, VCS metadata) is ignored so
// that it neither changes the revision hash nor breaks a load.
func relevantFile(rel string) bool {
	base := path.Base(rel)
	switch {
	case base == signaturesFile || base == manifestFile:
		return rel == base
	case strings.HasPrefix(base, "."):
		return false
	case strings.HasSuffix(base, ".rego"):
		return true
	case base == "data.json" || base == "data.yaml" || base == "data.yml":
		return true
	case strings.HasPrefix(rel, schemaDir+"/") && strings.HasSuffix(base, ".json"):
		return true
	}
	return false
}

func readDir(dir string) (*source, error) {
	src := &source{name: dir}
	fail := func(err error) (*source, error) {
		return nil, &LoadError{Source: dir, Stage: "read", kind: ErrPolicySource, cause: err}
	}
	info, err := os.Stat(dir)
	if err != nil {
		return fail(err)
	}
	if !info.IsDir() {
		return fail(fmt.Errorf("%s is not a directory", dir))
	}
	var total int64
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			// Hidden directories hold VCS data or, for Kubernetes ConfigMap
			// volumes, the real files behind the visible symlinks.
			if rel != "." && strings.HasPrefix(d.Name(), ".") {
				return filepath.SkipDir
			}
			return nil
		}
		// Hidden files are editor and VCS litter. Other files are read
		// even if the policy does not use them, because a signature
		// (`opa sign --bundle DIR`) may list them; only relevant files count
		// toward the revision hash and reach the parser.
		if name := d.Name(); strings.HasPrefix(name, ".") && name != signaturesFile && name != manifestFile {
			return nil
		}
		// Follow symlinks to regular files (ConfigMap volumes are made of
		// them) but never to directories or devices.
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		if !fi.Mode().IsRegular() {
			return nil
		}
		if fi.Size() > maxPolicyFileBytes {
			return fmt.Errorf("%s: %d bytes is more than the %d allowed for a policy file", p, fi.Size(), maxPolicyFileBytes)
		}
		total += fi.Size()
		if total > maxPolicyTotalBytes {
			return fmt.Errorf("%s: policy directory is larger than %d bytes", dir, maxPolicyTotalBytes)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		src.files = append(src.files, sourceFile{path: rel, data: data})
		return nil
	})
	if err != nil {
		return fail(err)
	}
	src.sort()
	return src, nil
}

func readBundleFile(name string) (*source, error) {
	fail := func(err error) (*source, error) {
		return nil, &LoadError{Source: name, Stage: "read", kind: ErrPolicySource, cause: err}
	}
	f, err := os.Open(name)
	if err != nil {
		return fail(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fail(err)
	}
	if fi.Size() > maxBundleBytes {
		return fail(fmt.Errorf("bundle is %d bytes, more than the %d allowed", fi.Size(), maxBundleBytes))
	}
	return readBundle(name, io.LimitReader(f, maxBundleBytes))
}

// readBundle reads every file of a gzipped tar bundle. All files are kept,
// not only the relevant ones, so that signature verification sees files a
// signer listed (or an attacker added).
func readBundle(name string, r io.Reader) (*source, error) {
	src := &source{name: name, bundleFile: true}
	tl := bundle.NewTarballLoaderWithBaseURL(r, "").WithSizeLimitBytes(maxPolicyFileBytes)
	var total int
	for {
		d, err := tl.NextFile()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, &LoadError{Source: name, Stage: "read", kind: ErrPolicySource, cause: err}
		}
		var buf bytes.Buffer
		_, err = d.Read(&buf, maxPolicyFileBytes+1)
		_ = d.Close()
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, &LoadError{Source: name, Stage: "read", kind: ErrPolicySource, cause: fmt.Errorf("%s: %w", d.Path(), err)}
		}
		rel := strings.TrimPrefix(path.Clean("/"+filepath.ToSlash(d.Path())), "/")
		if buf.Len() > maxPolicyFileBytes {
			return nil, &LoadError{Source: name, Stage: "read", kind: ErrPolicySource, cause: fmt.Errorf("%s: file is larger than %d bytes", rel, maxPolicyFileBytes)}
		}
		total += buf.Len()
		if total > maxPolicyTotalBytes {
			return nil, &LoadError{Source: name, Stage: "read", kind: ErrPolicySource, cause: fmt.Errorf("bundle unpacks to more than %d bytes", maxPolicyTotalBytes)}
		}
		src.files = append(src.files, sourceFile{path: rel, data: buf.Bytes()})
	}
	src.sort()
	for i := 1; i < len(src.files); i++ {
		if src.files[i].path == src.files[i-1].path {
			return nil, &LoadError{Source: name, Stage: "read", kind: ErrPolicySource, cause: fmt.Errorf("bundle holds %s twice", src.files[i].path)}
		}
	}
	return src, nil
}

func (s *source) sort() {
	slices.SortFunc(s.files, func(a, b sourceFile) int { return strings.Compare(a.path, b.path) })
}

// hash is the revision's content hash: SHA-256 over the relevant files'
// paths and bytes, in path order. Signatures are left out so that re-signing
// the same policy does not change its revision.
func (s *source) hash() string {
	h := sha256.New()
	var n [8]byte
	for _, f := range s.files {
		if !relevantFile(f.path) || f.path == signaturesFile {
			continue
		}
		binary.BigEndian.PutUint64(n[:], uint64(len(f.path)))
		h.Write(n[:])
		h.Write([]byte(f.path))
		binary.BigEndian.PutUint64(n[:], uint64(len(f.data)))
		h.Write(n[:])
		h.Write(f.data)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// baseDir is the prefix that turns a bundle-relative path into what an
// operator recognises in an error message.
func (s *source) baseDir() string {
	if s.bundleFile {
		return s.name + "!"
	}
	return s.name
}

// displayPath names a bundle-relative file for people.
func (s *source) displayPath(rel string) string {
	return filepath.Join(s.baseDir(), filepath.FromSlash(rel))
}

func (s *source) file(rel string) (sourceFile, bool) {
	i, ok := slices.BinarySearchFunc(s.files, rel, func(f sourceFile, p string) int { return strings.Compare(f.path, p) })
	if !ok {
		return sourceFile{}, false
	}
	return s.files[i], true
}

// checkJSON reports JSON syntax errors in data and schema files with a line
// and column, which OPA's own loader does not give.
func (s *source) checkJSON() []Problem {
	var problems []Problem
	for _, f := range s.files {
		if !strings.HasSuffix(f.path, ".json") || f.path == signaturesFile || !relevantFile(f.path) {
			continue
		}
		if err := validJSON(f.data); err != nil {
			p := Problem{File: s.displayPath(f.path), Code: "json_error", Message: err.Error()}
			if off, ok := jsonErrorOffset(err); ok {
				p.Line, p.Column = lineCol(f.data, off)
			}
			problems = append(problems, p)
		}
	}
	return problems
}

func validJSON(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	var v any
	if err := dec.Decode(&v); err != nil {
		switch {
		case errors.Is(err, io.EOF):
			return errors.New("empty file")
		case errors.Is(err, io.ErrUnexpectedEOF):
			return &truncatedJSONError{offset: int64(len(data))}
		}
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return &json.SyntaxError{Offset: dec.InputOffset()}
	}
	return nil
}

// truncatedJSONError is a JSON document that ends in the middle of a value.
type truncatedJSONError struct{ offset int64 }

func (*truncatedJSONError) Error() string { return "unexpected end of file" }

func jsonErrorOffset(err error) (int64, bool) {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return se.Offset, true
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return te.Offset, true
	}
	var tr *truncatedJSONError
	if errors.As(err, &tr) {
		return tr.offset, true
	}
	return 0, false
}

// lineCol turns a byte offset into a 1-based line and column.
func lineCol(data []byte, offset int64) (line, col int) {
	if offset > int64(len(data)) {
		offset = int64(len(data))
	}
	if offset < 0 {
		offset = 0
	}
	before := data[:offset]
	line = bytes.Count(before, []byte("\n")) + 1
	col = int(offset) - (bytes.LastIndexByte(before, '\n') + 1)
	if col < 1 {
		col = 1
	}
	return line, col
}

// memLoader hands a source's files to OPA's bundle reader.
type memLoader struct {
	files []sourceFile
	next  int
}

var _ bundle.DirectoryLoader = (*memLoader)(nil)

func (m *memLoader) NextFile() (*bundle.Descriptor, error) {
	if m.next >= len(m.files) {
		return nil, io.EOF
	}
	f := m.files[m.next]
	m.next++
	// The URL is the bundle-relative path: with a base directory set the
	// reader verifies signatures against the URL, and signatures name files
	// relative to the bundle root.
	return bundle.NewDescriptor(f.path, "/"+f.path, bytes.NewBuffer(f.data)), nil
}

func (m *memLoader) WithFilter(filter.LoaderFilter) bundle.DirectoryLoader   { return m }
func (m *memLoader) WithPathFormat(bundle.PathFormat) bundle.DirectoryLoader { return m }
func (m *memLoader) WithSizeLimitBytes(int64) bundle.DirectoryLoader         { return m }
func (m *memLoader) WithFollowSymlinks(bool) bundle.DirectoryLoader          { return m }
