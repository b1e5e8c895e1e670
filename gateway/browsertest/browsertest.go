// Package browsertest gives tests a browser: real headless Chromium for
// tests that check what a person sees (login pages, room pages, waiting
// pages and their scripts under the pages' own CSP), and Client, a
// cookie-keeping HTTP client for tests that only follow the redirects and
// cookies of a browser flow.
//
// It is for tests only. It launches Chromium with the flags this
// workplace's closed network needs (no background networking, updates or
// sync, which otherwise open many refused connections), a fresh profile per
// test, and skips with an install hint when Chromium is absent.
package browsertest

import (
	"context"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
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

// Client is an HTTP client with its own cookie jar that follows redirects,
// as a browser does; NoFollow makes one that stops at each redirect.
func Client(t testing.TB) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, Timeout: 30 * time.Second}
}

// NoFollow is c (same jar, transport and timeout) without following
// redirects, so a test reads where each response sends the browser.
func NoFollow(c *http.Client) *http.Client {
	return &http.Client{Jar: c.Jar, Transport: c.Transport, Timeout: c.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// StartSignedIn launches a browser (as Start) carrying the cookies that
// client holds for base, so a session signed in over HTTP continues in
// Chromium. It fails the test when client holds no cookie for base.
func StartSignedIn(t testing.TB, client *http.Client, base string) context.Context {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	cookies := client.Jar.Cookies(u)
	if len(cookies) == 0 {
		t.Fatalf("no session cookie for %s", base)
	}
	bctx := Start(t)
	if err := chromedp.Do(bctx); err != nil { // starts the browser
		t.Fatalf("chromium: %v", err)
	}
	httpOnly := true
	for _, ck := range cookies {
		if _, err := chromedp.Call(bctx, network.SetCookie, network.SetCookieParams{Name: ck.Name, Value: ck.Value, URL: base + "/", HTTPOnly: &httpOnly}); err != nil {
			t.Fatal(err)
		}
	}
	return bctx
}

// EvalUntil polls a boolean expression in the tab until it holds or ctx
// ends.
func EvalUntil(ctx context.Context, expr string) error {
	for {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
		if err == nil && ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
