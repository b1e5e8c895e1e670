package policy

import (
	"archive/tar"
	"cmp"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"
)

// A candidate is a policy that is built and asked, never served: the
// security console's what-if replays logged decisions against one. It is
// built from files a person uploaded, so its limits are far tighter than a
// policy directory's, and its paths are names inside the candidate only:
// nothing of it is ever written to disk.

// Default CandidateLimits.
const (
	DefaultCandidateFiles      = 100
	DefaultCandidateFileBytes  = 2 << 20
	DefaultCandidateTotalBytes = 8 << 20
	// maxCandidatePath bounds one path name; maxCandidateDepth its
	// directories.
	maxCandidatePath  = 200
	maxCandidateDepth = 8
)

// CandidateLimits bound an uploaded candidate. Zero fields take the
// defaults.
type CandidateLimits struct {
	// MaxFiles counts every entry of an archive (directories included)
	// or every uploaded file.
	MaxFiles int
	// MaxFileBytes bounds one file, unpacked.
	MaxFileBytes int64
	// MaxTotalBytes bounds all files together, unpacked.
	MaxTotalBytes int64
}

func (l CandidateLimits) withDefaults() CandidateLimits {
	l.MaxFiles = cmp.Or(l.MaxFiles, DefaultCandidateFiles)
	l.MaxFileBytes = cmp.Or(l.MaxFileBytes, DefaultCandidateFileBytes)
	l.MaxTotalBytes = cmp.Or(l.MaxTotalBytes, DefaultCandidateTotalBytes)
	return l
}

// CandidateFile is one file of a candidate, Path relative to the bundle
// root (as CandidatePath returns it).
type CandidateFile struct {
	Path string
	Data []byte
}

// candidateRefused is the error of an upload that breaks a rule: a
// *LoadError of the read stage naming the file.
func candidateRefused(source, file, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	return &LoadError{Source: source, Stage: "read", kind: ErrPolicySource, cause: errors.New(msg),
		Problems: []Problem{{File: file, Code: "upload_refused", Message: msg}}}
}

// CandidatePath checks a path name from an upload (a tar entry or a
// multipart file name) and returns it relative to the bundle root. One
// leading "/" or "./" is the bundle root, as `opa build` and `tar -C dir .`
// write it; anything else that could name a place outside the candidate
// or alias another of its files is refused: "..", "." or empty segments,
// backslashes, drive letters, control or non-ASCII characters, more than
// 200 bytes or 8 levels.
func CandidatePath(p string) (string, error) {
	rel := p
	if s, ok := strings.CutPrefix(rel, "./"); ok {
		rel = s
	} else if s, ok := strings.CutPrefix(rel, "/"); ok {
		rel = s
	}
	switch {
	case p == "" || rel == "":
		return "", errors.New("empty path")
	case len(p) > maxCandidatePath:
		return "", fmt.Errorf("path longer than %d bytes", maxCandidatePath)
	case !utf8.ValidString(p):
		return "", errors.New("path is not UTF-8")
	}
	for _, r := range rel {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-' || r == '/') {
			return "", fmt.Errorf("path has the character %q: only A-Z a-z 0-9 . _ - and / are allowed", r)
		}
	}
	segs := strings.Split(strings.TrimSuffix(rel, "/"), "/")
	if len(segs) > maxCandidateDepth {
		return "", fmt.Errorf("path deeper than %d levels", maxCandidateDepth)
	}
	for _, s := range segs {
		switch s {
		case "", ".", "..":
			return "", errors.New(`path has an empty, "." or ".." segment`)
		}
	}
	return strings.TrimSuffix(rel, "/"), nil
}

// candidateFileKept reports whether a checked file of an upload becomes
// part of the candidate. Hidden files (macOS "._" companions, editor
// litter) and files a policy does not use are left out, as a policy
// directory's are; signatures are left out too: a candidate is never
// served, so it need not be signed.
func candidateFileKept(rel string) bool {
	return relevantFile(rel) && rel != signaturesFile
}

// ReadCandidateBundle reads an uploaded gzipped tar bundle (as `opa build`
// writes it) under lim. It refuses the whole archive, naming the entry,
// for any path CandidatePath refuses, any entry that is not a regular file
// or directory (symbolic and hard links, devices), a file or archive over
// its size, too many entries, or a file given twice. name labels errors.
func ReadCandidateBundle(name string, r io.Reader, lim CandidateLimits) ([]CandidateFile, error) {
	lim = lim.withDefaults()
	gz, err := gzip.NewReader(r)
	if err != nil {
		return nil, candidateRefused(name, name, "not a gzipped tar bundle: %v", err)
	}
	defer gz.Close()
	// Headers, padding and the data of skipped entries count as well: a
	// small upload must not unpack into gigabytes read and thrown away.
	unpacked := &io.LimitedReader{R: gz, N: lim.MaxTotalBytes + int64(lim.MaxFiles+2)*1024}
	tr := tar.NewReader(unpacked)
	var (
		files   []CandidateFile
		seen    = map[string]bool{}
		entries int
		total   int64
	)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if unpacked.N <= 0 {
				return nil, candidateRefused(name, name, "bundle unpacks to more than %d bytes", lim.MaxTotalBytes)
			}
			return nil, candidateRefused(name, name, "not a readable tar bundle: %v", err)
		}
		if entries++; entries > lim.MaxFiles {
			return nil, candidateRefused(name, name, "bundle has more than %d entries", lim.MaxFiles)
		}
		if h.Typeflag == tar.TypeDir && (h.Name == "/" || h.Name == "./" || h.Name == ".") {
			continue // the bundle root itself
		}
		entry := strings.ToValidUTF8(h.Name, "?")
		rel, err := CandidatePath(h.Name)
		if err != nil {
			return nil, candidateRefused(name, entry, "%v", err)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			continue
		case tar.TypeReg:
		case tar.TypeXGlobalHeader:
			continue
		case tar.TypeSymlink, tar.TypeLink:
			return nil, candidateRefused(name, entry, "links are not allowed in a candidate")
		default:
			return nil, candidateRefused(name, entry, "only regular files and directories are allowed (tar type %q)", h.Typeflag)
		}
		if h.Size > lim.MaxFileBytes {
			return nil, candidateRefused(name, entry, "file of %d bytes is larger than the %d allowed", h.Size, lim.MaxFileBytes)
		}
		data, err := io.ReadAll(io.LimitReader(tr, lim.MaxFileBytes+1))
		if err != nil {
			if unpacked.N <= 0 {
				return nil, candidateRefused(name, name, "bundle unpacks to more than %d bytes", lim.MaxTotalBytes)
			}
			return nil, candidateRefused(name, entry, "unreadable: %v", err)
		}
		if int64(len(data)) > lim.MaxFileBytes {
			return nil, candidateRefused(name, entry, "file is larger than the %d bytes allowed", lim.MaxFileBytes)
		}
		if total += int64(len(data)); total > lim.MaxTotalBytes {
			return nil, candidateRefused(name, entry, "bundle unpacks to more than %d bytes", lim.MaxTotalBytes)
		}
		if seen[rel] {
			return nil, candidateRefused(name, entry, "the bundle holds %s twice", rel)
		}
		seen[rel] = true
		if candidateFileKept(rel) {
			files = append(files, CandidateFile{Path: rel, Data: data})
		}
	}
	return files, nil
}

// CandidateFiles checks uploaded loose files (several .rego files and a
// data.json) under lim: paths by CandidatePath, sizes, count and no file
// twice. Files a policy does not use are left out.
func CandidateFiles(name string, in []CandidateFile, lim CandidateLimits) ([]CandidateFile, error) {
	lim = lim.withDefaults()
	if len(in) > lim.MaxFiles {
		return nil, candidateRefused(name, name, "more than %d files", lim.MaxFiles)
	}
	var (
		out   []CandidateFile
		seen  = map[string]bool{}
		total int64
	)
	for _, f := range in {
		shown := strings.ToValidUTF8(f.Path, "?")
		rel, err := CandidatePath(f.Path)
		if err != nil {
			return nil, candidateRefused(name, shown, "%v", err)
		}
		if int64(len(f.Data)) > lim.MaxFileBytes {
			return nil, candidateRefused(name, shown, "file is larger than the %d bytes allowed", lim.MaxFileBytes)
		}
		if total += int64(len(f.Data)); total > lim.MaxTotalBytes {
			return nil, candidateRefused(name, shown, "files add up to more than %d bytes", lim.MaxTotalBytes)
		}
		if seen[rel] {
			return nil, candidateRefused(name, shown, "%s given twice", rel)
		}
		seen[rel] = true
		if candidateFileKept(rel) {
			out = append(out, CandidateFile{Path: rel, Data: f.Data})
		}
	}
	return out, nil
}

// CandidateOptions configure a candidate engine.
type CandidateOptions struct {
	// Name labels the candidate in errors ("upload", a bundle's file
	// name).
	Name string
	// Timeout bounds one decision; default the serving engine's. A what-if
	// on a busy gateway should not turn slow decisions into policy_error
	// changes.
	Timeout time.Duration
}

// Candidate builds files into an engine that is never served: the same
// compile, signature-free parse, schema type-check, capability check and
// bundle tests a reload applies (so a candidate calling http.send is
// refused with file and line), with this engine's queries and masks. It
// has no watcher, no decision log and no shadow; e itself is not touched.
func (e *Engine) Candidate(ctx context.Context, files []CandidateFile, o CandidateOptions) (*Engine, error) {
	name := cmp.Or(o.Name, "candidate")
	src := &source{name: name, bundleFile: true}
	for _, f := range files {
		src.files = append(src.files, sourceFile{path: f.Path, data: f.Data})
	}
	src.sort()
	for i := 1; i < len(src.files); i++ {
		if src.files[i].path == src.files[i-1].path {
			return nil, candidateRefused(name, src.files[i].path, "%s given twice", src.files[i].path)
		}
	}
	return e.candidate(ctx, src, nil, o)
}

// CandidateFromDisk builds the serving engine's policy directory (or
// bundle file) as it is on disk now into a candidate engine, checked as a
// reload checks it (signature included, when one is required), without
// serving it.
func (e *Engine) CandidateFromDisk(ctx context.Context, o CandidateOptions) (*Engine, error) {
	src, err := readSource(e.opts.Dir, e.opts.Bundle)
	if err != nil {
		return nil, err
	}
	return e.candidate(ctx, src, e.verify, o)
}

func (e *Engine) candidate(ctx context.Context, src *source, v *verifier, o CandidateOptions) (*Engine, error) {
	c := &Engine{
		opts: Options{Query: e.opts.Query, CreateQuery: e.opts.CreateQuery, Timeout: cmp.Or(o.Timeout, e.opts.Timeout),
			MaskFields: e.opts.MaskFields, WatchDebounce: e.opts.WatchDebounce, BundleVerificationKeyID: e.opts.BundleVerificationKeyID},
		log: zap.NewNop(), verify: v, queries: e.queries, mask: e.mask, shadowSlots: make(chan struct{}, 1),
	}
	rev, err := c.buildRevision(ctx, src, v)
	if err != nil {
		return nil, err
	}
	c.live.Store(rev)
	c.lastReload = rev.loadedAt
	return c, nil
}

// MaskInput removes the configured mask fields (Options.MaskFields) from a
// JSON-shaped input (as encoding/json decodes it into any), in place, and
// lists what it removed as "/input/..." pointers: what the decision log
// leaves out, anything else that shows a logged input leaves out too.
func (e *Engine) MaskInput(in any) (any, []string) { return maskInput(in, e.mask) }
