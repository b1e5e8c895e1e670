package securityconsole

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"strconv"
	"strings"

	"github.com/meetguard/meetguard/policy"
)

// What-if bounds. The upload's own file limits are policy.CandidateLimits'.
const (
	// DefaultWhatIfDecisions is how many of the latest decisions a what-if
	// replays unless told; MaxWhatIfDecisions the most it replays.
	DefaultWhatIfDecisions = 1000
	MaxWhatIfDecisions     = 10000
	// maxUploadBytes bounds a what-if request body (the files compressed
	// or not, and the form around them).
	maxUploadBytes = policy.DefaultCandidateTotalBytes + 256<<10
	// maxFieldBytes bounds a form field that is not a file.
	maxFieldBytes = 64
	// maxParts bounds the parts of the form: files and fields.
	maxParts = policy.DefaultCandidateFiles + 8
)

// Where a candidate comes from.
const (
	sourceUpload = "upload"
	sourceDisk   = "disk"
)

// whatIfForm is a parsed what-if request.
type whatIfForm struct {
	Source string // sourceUpload or sourceDisk
	N      int
	// An uploaded bundle (a .tar.gz), or loose files; at most one of them.
	BundleName string
	Bundle     []byte
	Files      []policy.CandidateFile
}

// errUpload is a what-if form the console refuses; the message says why.
type errUpload struct{ msg string }

func (e *errUpload) Error() string { return e.msg }

func uploadErr(format string, args ...any) error { return &errUpload{fmt.Sprintf(format, args...)} }

// parseWhatIfForm reads a what-if form (multipart/form-data): "source"
// (upload or disk), "n" (how many decisions) and, for an upload, "files":
// one gzipped tar bundle or several policy files. Every part is bounded
// before it is read; file names are taken as sent (not reduced to their
// base name as mime/multipart's FileName does) so that
// policy.CandidatePath sees, and refuses, whatever path a client sends.
func parseWhatIfForm(body io.Reader, contentType string) (whatIfForm, error) {
	f := whatIfForm{Source: sourceUpload, N: DefaultWhatIfDecisions}
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil || mt != "multipart/form-data" || params["boundary"] == "" {
		return f, uploadErr("the form must be sent as multipart/form-data")
	}
	mr := multipart.NewReader(body, params["boundary"])
	var files []policy.CandidateFile
	var total int64
	for parts := 0; ; parts++ {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return f, uploadErr("the form is not readable: %v", err)
		}
		if parts >= maxParts {
			return f, uploadErr("the form has more than %d parts", maxParts)
		}
		name, filename, hasFile, err := partNames(p)
		if err != nil {
			return f, err
		}
		switch name {
		case "source", "n":
			v, err := io.ReadAll(io.LimitReader(p, maxFieldBytes+1))
			if err != nil || len(v) > maxFieldBytes {
				return f, uploadErr("%s: at most %d bytes", name, maxFieldBytes)
			}
			s := strings.TrimSpace(string(v))
			if name == "source" {
				if s != sourceUpload && s != sourceDisk {
					return f, uploadErr("source: upload or disk")
				}
				f.Source = s
				continue
			}
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 || n > MaxWhatIfDecisions {
				return f, uploadErr("n: a number of decisions from 1 to %d", MaxWhatIfDecisions)
			}
			f.N = n
		case "files":
			if !hasFile {
				return f, uploadErr("files: a file part without a file name")
			}
			data, err := io.ReadAll(io.LimitReader(p, policy.DefaultCandidateFileBytes+1))
			if err != nil {
				return f, uploadErr("files: %v", err)
			}
			if filename == "" && len(data) == 0 {
				continue // a browser's empty file input
			}
			if len(data) > policy.DefaultCandidateFileBytes {
				return f, uploadErr("%s: larger than the %d bytes allowed", safeName(filename), policy.DefaultCandidateFileBytes)
			}
			if total += int64(len(data)); total > policy.DefaultCandidateTotalBytes {
				return f, uploadErr("the files add up to more than %d bytes", policy.DefaultCandidateTotalBytes)
			}
			if len(files) >= policy.DefaultCandidateFiles {
				return f, uploadErr("more than %d files", policy.DefaultCandidateFiles)
			}
			files = append(files, policy.CandidateFile{Path: filename, Data: data})
		default:
			return f, uploadErr("unexpected form field %q", safeName(name))
		}
	}
	if f.Source == sourceDisk {
		if len(files) > 0 {
			return f, uploadErr("either upload files or choose the policy directory on disk, not both")
		}
		return f, nil
	}
	switch {
	case len(files) == 0:
		return f, uploadErr("no candidate: upload a bundle (.tar.gz) or policy files (.rego, data.json)")
	case len(files) == 1 && isBundle(files[0]):
		f.BundleName, f.Bundle = files[0].Path, files[0].Data
	default:
		for _, x := range files {
			if isBundle(x) {
				return f, uploadErr("%s: upload a bundle alone, not with other files", safeName(x.Path))
			}
		}
		f.Files = files
	}
	return f, nil
}

// partNames reads a part's form name and file name from its
// Content-Disposition as sent.
func partNames(p *multipart.Part) (name, filename string, hasFile bool, err error) {
	cd := p.Header.Get("Content-Disposition")
	disp, params, perr := mime.ParseMediaType(cd)
	if perr != nil || disp != "form-data" {
		return "", "", false, uploadErr("a form part without a form-data Content-Disposition")
	}
	filename, hasFile = params["filename"]
	return params["name"], filename, hasFile, nil
}

// isBundle: a gzipped file, by name or by its first bytes.
func isBundle(f policy.CandidateFile) bool {
	return strings.HasSuffix(f.Path, ".tar.gz") || strings.HasSuffix(f.Path, ".tgz") ||
		len(f.Data) >= 2 && f.Data[0] == 0x1f && f.Data[1] == 0x8b
}

// safeName shows a name a client sent, bounded and printable.
func safeName(s string) string {
	s = strings.ToValidUTF8(s, "?")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
	if len(s) > 100 {
		s = strings.ToValidUTF8(s[:100], "") + "…"
	}
	return s
}
