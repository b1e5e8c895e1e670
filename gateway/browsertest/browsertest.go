// Package browsertest starts real headless Chromium for tests that check
// what a person sees: login pages, room pages, waiting pages and their
// scripts under the pages' own CSP.
//
// It is for tests only. It launches Chromium with the flags this
// workplace's closed network needs (no background networking, updates or
// sync, which otherwise open many refused connections), a fresh profile per
// test, and skips with an install hint when Chromium is absent.
package browsertest

import (
	"context"
	"os/exec"
	"testing"

	"github.com/chromedp/chromedp"
)

// Path returns the Chromium binary, or skips the test.
func Path(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("chromium is not installed (apt-get install chromium); .ci/run installs it")
	return ""
}

// Start launches a browser and returns the context of its first tab; a
// chromedp.NewContext derived from it opens another tab in the same
// browser. Everything is closed when the test ends.
func Start(t testing.TB) context.Context {
	t.Helper()
	exe := Path(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	tab, cancelTab := chromedp.NewContext(actx)
	t.Cleanup(cancelTab)
	return tab
}
