package policy

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"strings"
	"testing"
)

// tarEntry is one entry of a test archive.
type tarEntry struct {
	name     string
	typ      byte
	body     string
	linkname string
}

func tarGz(t testing.TB, entries ...tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, e := range entries {
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		h := &tar.Header{Name: e.name, Typeflag: typ, Mode: 0o644, Linkname: e.linkname}
		if typ == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if typ == tar.TypeReg {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

const okRego = "package meetguard.admission\n\ndecision := {\"allow\": true, \"role\": \"participant\", \"reasons\": [\"ok\"]}\n"

func TestCandidatePath(t *testing.T) {
	good := map[string]string{
		"admission.rego": "admission.rego", "/data.json": "data.json", "./policies/a.rego": "policies/a.rego",
		"schema/team.json": "schema/team.json", "lib/": "lib", "a-b_c.1/x.rego": "a-b_c.1/x.rego",
	}
	for in, want := range good {
		if got, err := CandidatePath(in); err != nil || got != want {
			t.Errorf("CandidatePath(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{
		"", "/", "./", "../admission.rego", "a/../../etc/passwd", "a/./b.rego", "a//b.rego", "//etc/passwd",
		"/../x.rego", "..", `..\x.rego`, `C:\x.rego`, "C:/x.rego", "a b.rego", "x.rego\x00.json", "ädmission.rego",
		"\xff.rego", strings.Repeat("a/", 9) + "x.rego", strings.Repeat("a", 201), "a\nb.rego",
	} {
		if got, err := CandidatePath(in); err == nil {
			t.Errorf("CandidatePath(%q) = %q, want a refusal", in, got)
		}
	}
}

// TestReadCandidateBundle_RefusesHostileArchives: every archive trick
// refuses the whole upload with the entry named, and nothing of it is
// returned.
func TestReadCandidateBundle_RefusesHostileArchives(t *testing.T) {
	small := CandidateLimits{MaxFiles: 5, MaxFileBytes: 1 << 10, MaxTotalBytes: 4 << 10}
	big := strings.Repeat("x", 2<<10)
	tests := []struct {
		name    string
		archive []byte
		lim     CandidateLimits
		want    string // in the problem
		file    string // the problem's file
	}{
		{"zip slip", tarGz(t, tarEntry{name: "ok.rego", body: okRego}, tarEntry{name: "../../etc/cron.d/evil.rego", body: okRego}), small, `".." segment`, "../../etc/cron.d/evil.rego"},
		{"slip inside", tarEntry2(t, "policies/../../evil.rego"), small, `".." segment`, "policies/../../evil.rego"},
		{"absolute escaping", tarEntry2(t, "/../evil.rego"), small, `".." segment`, "/../evil.rego"},
		{"double slash root", tarEntry2(t, "//etc/x.rego"), small, "empty", "//etc/x.rego"},
		{"windows path", tarEntry2(t, `..\..\evil.rego`), small, "character", `..\..\evil.rego`},
		{"symlink", tarGz(t, tarEntry{name: "data.json", typ: tar.TypeSymlink, linkname: "/etc/passwd"}), small, "links are not allowed", "data.json"},
		{"hard link", tarGz(t, tarEntry{name: "a.rego", body: okRego}, tarEntry{name: "b.rego", typ: tar.TypeLink, linkname: "a.rego"}), small, "links are not allowed", "b.rego"},
		{"device", tarGz(t, tarEntry{name: "zero.rego", typ: tar.TypeChar}), small, "only regular files", "zero.rego"},
		{"fifo", tarGz(t, tarEntry{name: "p.rego", typ: tar.TypeFifo}), small, "only regular files", "p.rego"},
		{"huge file", tarGz(t, tarEntry{name: "big.rego", body: big}), small, "larger than the 1024", "big.rego"},
		{"too many entries", tarGz(t, tarEntry{name: "a/", typ: tar.TypeDir}, tarEntry{name: "a/1.rego"}, tarEntry{name: "a/2.rego"}, tarEntry{name: "a/3.rego"}, tarEntry{name: "a/4.rego"}, tarEntry{name: "a/5.rego"}), small, "more than 5 entries", "candidate.tar.gz"},
		{"total", tarGz(t, tarEntry{name: "1.rego", body: big[:1000]}, tarEntry{name: "2.rego", body: big[:1000]}, tarEntry{name: "3.rego", body: big[:1000]}, tarEntry{name: "4.rego", body: big[:1000]}, tarEntry{name: "5.rego", body: big[:1000]}), small, "more than 4096 bytes", "5.rego"},
		{"gzip bomb", bomb(t), small, "file of 67108864 bytes is larger than the 1024", "x.rego"},
		{"twice", tarGz(t, tarEntry{name: "a.rego", body: okRego}, tarEntry{name: "./a.rego", body: okRego}), small, "twice", "./a.rego"},
		{"not gzip", []byte("package meetguard.admission\n"), small, "not a gzipped tar bundle", "candidate.tar.gz"},
		{"not tar", gzipped(t, []byte(strings.Repeat("not a tar ", 100))), small, "not a readable tar bundle", "candidate.tar.gz"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files, err := ReadCandidateBundle("candidate.tar.gz", bytes.NewReader(tt.archive), tt.lim)
			var le *LoadError
			if !errors.As(err, &le) || !errors.Is(err, ErrPolicySource) || len(le.Problems) != 1 {
				t.Fatalf("files %v, err %v: want one refusal", files, err)
			}
			if p := le.Problems[0]; !strings.Contains(p.Message, tt.want) || p.File != tt.file {
				t.Fatalf("problem %+v, want %q about %q", p, tt.want, tt.file)
			}
			if files != nil {
				t.Fatalf("a refused archive returned files: %v", files)
			}
		})
	}
}

func tarEntry2(t testing.TB, name string) []byte {
	return tarGz(t, tarEntry{name: name, body: okRego})
}

func gzipped(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	_, _ = gz.Write(b)
	_ = gz.Close()
	return buf.Bytes()
}

// bomb is a small archive whose one file unpacks to 64 MiB: refused by
// its header, before anything is unpacked.
func bomb(t testing.TB) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	tw := tar.NewWriter(gz)
	if err := tw.WriteHeader(&tar.Header{Name: "x.rego", Typeflag: tar.TypeReg, Size: 64 << 20, Mode: 0o644}); err != nil {
		t.Fatal(err)
	}
	zero := make([]byte, 1<<20)
	for range 64 {
		_, _ = tw.Write(zero)
	}
	_ = tw.Close()
	_ = gz.Close()
	if buf.Len() > 1<<20 {
		t.Fatalf("bomb is %d bytes", buf.Len())
	}
	return buf.Bytes()
}

func TestReadCandidateBundle_ReadsWhatOPABuildWrites(t *testing.T) {
	archive := tarGz(t,
		tarEntry{name: "/", typ: tar.TypeDir},
		tarEntry{name: "/.manifest", body: `{"revision":"x","roots":[""]}`},
		tarEntry{name: "/data.json", body: `{}`},
		tarEntry{name: "/policies/admission.rego", body: okRego},
		tarEntry{name: "./._admission.rego", body: "\x00\x05\x16\x07 AppleDouble"},
		tarEntry{name: "README.md", body: "notes"},
		tarEntry{name: "/.signatures.json", body: "{}"},
	)
	files, err := ReadCandidateBundle("b.tar.gz", bytes.NewReader(archive), CandidateLimits{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range files {
		got = append(got, f.Path)
	}
	if strings.Join(got, " ") != ".manifest data.json policies/admission.rego" {
		t.Fatalf("files kept: %v", got)
	}
}

func TestCandidateFiles_Limits(t *testing.T) {
	lim := CandidateLimits{MaxFiles: 3, MaxFileBytes: 100, MaxTotalBytes: 150}
	for _, tt := range []struct {
		name  string
		files []CandidateFile
		want  string
	}{
		{"path", []CandidateFile{{Path: "../a.rego"}}, `".."`},
		{"count", []CandidateFile{{Path: "a.rego"}, {Path: "b.rego"}, {Path: "c.rego"}, {Path: "d.rego"}}, "more than 3 files"},
		{"size", []CandidateFile{{Path: "a.rego", Data: make([]byte, 101)}}, "larger than the 100"},
		{"total", []CandidateFile{{Path: "a.rego", Data: make([]byte, 100)}, {Path: "b.rego", Data: make([]byte, 51)}}, "more than 150 bytes"},
		{"twice", []CandidateFile{{Path: "a.rego"}, {Path: "/a.rego"}}, "twice"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := CandidateFiles("upload", tt.files, lim)
			if err == nil || !errors.Is(err, ErrPolicySource) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err %v, want %q", err, tt.want)
			}
		})
	}
}

// TestCandidate_CheckedAsAReload: a candidate passes exactly the checks a
// reload does, with the problem's file and line, and building one leaves
// the serving revision alone.
func TestCandidate_CheckedAsAReload(t *testing.T) {
	ctx := context.Background()
	serving := newEngine(t, Options{Dir: policyDir(t, map[string]string{"p.rego": okRego})})
	before := serving.Revision()
	tests := []struct {
		name  string
		rego  string
		stage string
		line  int
		want  string
	}{
		{"http.send", okRego + "\nleak if http.send({\"method\": \"GET\", \"url\": \"https://evil.test\"})\n", "compile", 5, "built-in http.send is not allowed"},
		{"compile error", okRego + "\nbroken := {\"a\" 1}\n", "parse", 5, "rego_parse_error"},
		{"schema mismatch", okRego + "\ntypo if input.identty.sub == \"x\"\n", "compile", 5, "undefined ref: input.identty.sub"},
		{"schema type", okRego + "\nbad_type if input.room.capacity == \"ten\"\n", "compile", 5, "rego_type_error"},
		{"failing test", okRego + "\ntest_always_fails if false\n", "test", 5, "test_always_fails failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := serving.Candidate(ctx, []CandidateFile{{Path: "policies/admission.rego", Data: []byte(tt.rego)}}, CandidateOptions{Name: "mfa.tar.gz"})
			var le *LoadError
			if !errors.As(err, &le) || le.Stage != tt.stage || !errors.Is(err, ErrInvalidPolicy) {
				t.Fatalf("err %v, want a %s-stage refusal", err, tt.stage)
			}
			found := false
			for _, p := range le.Problems {
				if strings.Contains(p.Message, tt.want) || strings.Contains(p.Code, tt.want) {
					found = true
					if !strings.HasSuffix(p.File, "policies/admission.rego") || p.Line != tt.line {
						t.Errorf("problem at %s:%d, want policies/admission.rego:%d", p.File, p.Line, tt.line)
					}
				}
			}
			if !found {
				t.Errorf("no problem says %q: %v", tt.want, err)
			}
		})
	}
	cand, err := serving.Candidate(ctx, []CandidateFile{{Path: "p.rego", Data: []byte(strings.Replace(okRego, "true", "false", 1))}}, CandidateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d := cand.Decide(ctx, staffInput()); d.Allow {
		t.Fatalf("candidate decided %+v, want its own deny", d)
	}
	if serving.Revision() != before || !serving.Decide(ctx, staffInput()).Allow {
		t.Fatal("building a candidate changed the serving policy")
	}
}

func TestEngine_MaskInput(t *testing.T) {
	e := newEngine(t, Options{Dir: policyDir(t, map[string]string{"p.rego": okRego}), MaskFields: []string{"/identity/email", "/input/request/ip"}})
	in := map[string]any{"identity": map[string]any{"email": "a@example.com", "sub": "a"}, "request": map[string]any{"ip": "192.0.2.1"}}
	out, erased := e.MaskInput(in)
	id := out.(map[string]any)["identity"].(map[string]any)
	if _, ok := id["email"]; ok || id["sub"] != "a" || len(erased) != 2 {
		t.Fatalf("masked %v, erased %v", out, erased)
	}
}

// FuzzCandidatePath: whatever a client names a file, an accepted path is
// relative, clean and of the allowed characters.
func FuzzCandidatePath(f *testing.F) {
	for _, s := range []string{"admission.rego", "/data.json", "./a/b.rego", "../x", "a/../b", `C:\x`, "a//b", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		rel, err := CandidatePath(p)
		if err != nil {
			return
		}
		if rel == "" || strings.HasPrefix(rel, "/") || len(rel) > maxCandidatePath {
			t.Fatalf("%q accepted as %q", p, rel)
		}
		for _, seg := range strings.Split(rel, "/") {
			if seg == "" || seg == "." || seg == ".." {
				t.Fatalf("%q accepted as %q", p, rel)
			}
		}
		if strings.ContainsAny(rel, "\\:\x00 ") {
			t.Fatalf("%q accepted as %q", p, rel)
		}
	})
}

// FuzzReadCandidateBundle: an uploaded archive never panics, and what it
// yields obeys the limits and path rules.
func FuzzReadCandidateBundle(f *testing.F) {
	f.Add(tarGz(f, tarEntry{name: "/data.json", body: "{}"}, tarEntry{name: "/p.rego", body: okRego}))
	f.Add(tarGz(f, tarEntry{name: "../evil.rego", body: okRego}))
	f.Add(tarGz(f, tarEntry{name: "l", typ: tar.TypeSymlink, linkname: "/etc/passwd"}))
	f.Add([]byte{0x1f, 0x8b})
	lim := CandidateLimits{MaxFiles: 8, MaxFileBytes: 4 << 10, MaxTotalBytes: 16 << 10}
	f.Fuzz(func(t *testing.T, b []byte) {
		files, err := ReadCandidateBundle("f.tar.gz", bytes.NewReader(b), lim)
		if err != nil {
			return
		}
		var total int
		for _, fl := range files {
			if rel, err := CandidatePath(fl.Path); err != nil || rel != fl.Path {
				t.Fatalf("kept %q (%v)", fl.Path, err)
			}
			total += len(fl.Data)
		}
		if len(files) > lim.MaxFiles || int64(total) > lim.MaxTotalBytes {
			t.Fatalf("%d files, %d bytes past the limits", len(files), total)
		}
	})
}
