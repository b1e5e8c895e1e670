package browsertest

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// axeScript reads axe-core from the npm project (web/node_modules, made by
// `cd web && npm ci`), or skips the test.
func axeScript(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("browsertest: no go.mod above the test's directory")
		}
		dir = parent
	}
	b, err := os.ReadFile(filepath.Join(dir, "web", "node_modules", "axe-core", "axe.min.js"))
	if err != nil {
		t.Skip("axe-core is not installed (cd web && npm ci); .ci/run installs it")
	}
	return string(b)
}

// Axe runs axe-core in the tab's current page and fails the test with
// every serious or critical accessibility violation. axe-core is injected
// by the test through DevTools, never shipped with the page (its CSP would
// refuse it, rightly).
func Axe(ctx context.Context, t testing.TB, page string) {
	t.Helper()
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](axeScript(t)+";true")); err != nil {
		t.Fatalf("%s: injecting axe-core: %v", page, err)
	}
	out, err := chromedp.Run(ctx, chromedp.Evaluate[string](`axe.run(document, {resultTypes: ["violations"]}).then(r =>
 JSON.stringify(r.violations.filter(v => v.impact === "serious" || v.impact === "critical")
  .map(v => v.impact + " " + v.id + ": " + v.help + " at " + v.nodes.map(n => n.target.join(" ")).join(", "))))`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("%s: axe-core: %v", page, err)
	}
	var violations []string
	if err := json.Unmarshal([]byte(out), &violations); err != nil {
		t.Fatalf("%s: axe-core answer %q: %v", page, out, err)
	}
	if len(violations) > 0 {
		t.Errorf("%s: accessibility violations:\n%s", page, strings.Join(violations, "\n"))
	}
}

// ScreenshotsEnv names a directory that, when set, receives the
// screenshots instead of the test's directory: how docs/screenshots/ is
// refreshed (MEETGUARD_SCREENSHOTS=$PWD/docs/screenshots go test …).
const ScreenshotsEnv = "MEETGUARD_SCREENSHOTS"

// Screenshot saves the tab at 390 CSS pixels wide (a phone) as a PNG in
// dir (or $MEETGUARD_SCREENSHOTS) and logs its path; the page layout must
// work at that width.
func Screenshot(ctx context.Context, t testing.TB, dir, name string) string {
	t.Helper()
	if d := os.Getenv(ScreenshotsEnv); d != "" {
		dir = d
	}
	if _, err := chromedp.Run(ctx, chromedp.EmulateViewport(390, 844)); err != nil {
		t.Fatalf("%s: viewport: %v", name, err)
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("%s: screenshot: %v", name, err)
	}
	p := filepath.Join(dir, name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot of %s at 390px: %s", name, p)
	return p
}
