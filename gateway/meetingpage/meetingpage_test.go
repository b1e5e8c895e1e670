package meetingpage

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestBundles_CommittedEqualAFreshBuild rebuilds the bundles from web/src with the locked esbuild and
// compares them byte for byte with the embedded ones: what the gateway serves is what the sources say.
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
	for _, name := range []string{"meeting.js", "e2ee-worker.js"} {
		fresh, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		committed, err := os.ReadFile(filepath.Join("static", name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(fresh, committed) {
			t.Errorf("static/%s differs from a fresh build of web/src (%d vs %d bytes): run `cd web && node build.mjs` and commit", name, len(committed), len(fresh))
		}
	}
}

func TestHandler_ServesThePageWithAStrictPolicyAndNothingElse(t *testing.T) {
	srv := httptest.NewServer(http.StripPrefix("", Handler(Options{Prefix: "/m/", ConnectSrc: []string{"ws://127.0.0.1:7880"}})))
	defer srv.Close()
	for _, tc := range []struct {
		path, method string
		status       int
		typ          string
	}{
		{"/m/", "GET", 200, "text/html; charset=utf-8"},
		{"/m/meeting.js", "GET", 200, "text/javascript; charset=utf-8"},
		{"/m/e2ee-worker.js", "GET", 200, "text/javascript; charset=utf-8"},
		{"/m/meeting.css", "GET", 200, "text/css; charset=utf-8"},
		{"/m/../meetingpage.go", "GET", 404, ""},
		{"/m/static/meeting.js", "GET", 404, ""},
		{"/m/nothing.js", "GET", 404, ""},
		{"/m/meeting.js", "POST", 405, ""},
	} {
		req, _ := http.NewRequest(tc.method, srv.URL+tc.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.path, resp.StatusCode, tc.status)
			continue
		}
		if tc.status != 200 {
			continue
		}
		if got := resp.Header.Get("Content-Type"); got != tc.typ {
			t.Errorf("%s: type %q", tc.path, got)
		}
		csp := resp.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "script-src 'self';") || strings.Contains(csp, "unsafe") || !strings.Contains(csp, "ws://127.0.0.1:7880") {
			t.Errorf("%s: CSP %q", tc.path, csp)
		}
	}
}
