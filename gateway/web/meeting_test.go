package web

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestBundles_CommittedEqualAFreshBuild rebuilds the meeting page's bundles from web/src with the locked
// esbuild and compares them byte for byte with the embedded ones: what the gateway serves (and its CSP
// admits by hash) is what the sources say.
func TestBundles_CommittedEqualAFreshBuild(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed: cannot rebuild the bundles (web/ needs Node 20)")
	}
	web, _ := filepath.Abs(filepath.Join("..", "..", "web"))
	if _, err := os.Stat(filepath.Join(web, "node_modules", "esbuild")); err != nil {
		t.Skip("web/node_modules is missing: run `npm ci` in web/ first")
	}
	out := t.TempDir()
	cmd := exec.Command(node, "build.mjs", "--outdir", out)
	cmd.Dir = web
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, b)
	}
	for _, name := range []string{"meeting.js", "demoapp.js", meetingWorker} {
		fresh, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		committed, err := fs.ReadFile(files, "static/"+name)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(fresh, committed) {
			t.Errorf("static/%s differs from a fresh build of web/src (%d vs %d bytes): run `cd web && node build.mjs` and commit", name, len(committed), len(fresh))
		}
	}
}

var (
	jsonBlock = regexp.MustCompile(`(?s)<script type="application/json" id="([a-z-]+)">(.*?)</script>`)
	anyScript = regexp.MustCompile(`<script\b`)
)

// TestRenderMeeting_RunsOnlyItsBundleAndStartsOnlyItsWorker: whatever the data holds (a room name or display
// name is the caller's), the meeting page runs exactly the hashed bundle, its worker can only come from a blob:
// URL (the worker source it carries, byte for byte), it connects only to its own origin and the origins the
// caller names, and it speaks the reader's language.
func TestRenderMeeting_RunsOnlyItsBundleAndStartsOnlyItsWorker(t *testing.T) {
	evil := `"></script><script>alert(1)</script><img src=x onerror=alert(1)>`
	worker, _ := fs.ReadFile(files, "static/"+meetingWorker)
	for _, lang := range []string{"en", "vi"} {
		rec := httptest.NewRecorder()
		Default().RenderMeeting(rec, httptest.NewRequest(http.MethodGet, "/?lang="+lang, nil),
			Meeting{Room: evil, AuthorityKey: evil, SignalPath: evil, Subject: evil, Issuer: evil, Who: evil}, []string{"ws://127.0.0.1:7880"})
		body, csp := rec.Body.String(), rec.Header().Get("Content-Security-Policy")
		if rec.Code != http.StatusOK {
			t.Fatalf("%s: %d", lang, rec.Code)
		}
		scripts := inlineScript.FindAllStringSubmatch(body, -1)
		blocks := jsonBlock.FindAllStringSubmatch(body, -1)
		if len(scripts) != 1 || len(blocks) != 2 || len(anyScript.FindAllString(body, -1)) != 3 {
			t.Fatalf("%s: %d scripts, %d data blocks, %d script tags (injection?)", lang, len(scripts), len(blocks), len(anyScript.FindAllString(body, -1)))
		}
		for _, want := range []string{
			"script-src " + Hash(scripts[0][1]) + ";", "worker-src blob:;", "connect-src 'self' ws://127.0.0.1:7880;",
			"media-src mediastream: blob:", "default-src 'none'", "frame-ancestors 'none'", "form-action 'none'",
		} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s: CSP %q lacks %q", lang, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe") || strings.Contains(csp, "'self' blob:") {
			t.Errorf("%s: CSP %q", lang, csp)
		}
		var src string
		var text map[string]string
		for _, b := range blocks {
			switch b[1] {
			case "mg-worker":
				if err := json.Unmarshal([]byte(b[2]), &src); err != nil {
					t.Fatalf("worker block: %v", err)
				}
			case "mg-text":
				if err := json.Unmarshal([]byte(b[2]), &text); err != nil {
					t.Fatalf("text block: %v", err)
				}
			}
		}
		if src != string(worker) {
			t.Errorf("%s: the page carries another worker source (%d bytes, want %d)", lang, len(src), len(worker))
		}
		if want := Default().Catalog().For(httptest.NewRequest(http.MethodGet, "/?lang="+lang, nil)).T("meeting.js.removed"); text["removed"] != want || want == "" {
			t.Errorf("%s: strings %q, want %q", lang, text["removed"], want)
		}
		if strings.Contains(body, "<img") || !strings.Contains(body, `<html lang="`+lang+`">`) {
			t.Errorf("%s: page not safe or not in its language", lang)
		}
	}
}
