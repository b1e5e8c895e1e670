package securityconsole_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/meetguard/meetguard/gateway/audit"
	"github.com/meetguard/meetguard/gateway/browsertest"
	"github.com/meetguard/meetguard/gateway/web"
)

// TestBrowser_PolicyAndIntegrityPages: in real Chromium, under the
// console's CSP, an auditor reads the policy page after a rejected reload
// (the refused file and line, the bundle's tests all passing at 100 %
// coverage, shadow mode not configured) and the integrity page (the chain
// verified, its last signed checkpoint), in English and Vietnamese, with
// no serious or critical axe-core violation; a colleague without a console
// role gets the one refusal on both.
func TestBrowser_PolicyAndIntegrityPages(t *testing.T) {
	browsertest.Path(t)
	e := newEnv(t)
	e.meeting("board", 20, 5)
	rego := filepath.Join(e.policyDir, "admission.rego")
	good, err := os.ReadFile(rego)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(rego, append(append([]byte{}, good...), "\nthis is { not rego\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	e.waitForEvent(audit.EventPolicyReloadRejected)

	bctx := auditorInChromium(t, e)
	ctx, cancel := context.WithTimeout(bctx, 2*time.Minute)
	defer cancel()
	shots := t.TempDir()
	en, vi := web.Default().Catalog().In("en"), web.Default().Catalog().In("vi")

	// The policy page reloads itself while the tests run.
	if err := chromedp.Do(ctx, chromedp.Navigate(e.URL+"/.meetguard/security/policy")); err != nil {
		t.Fatal(err)
	}
	if err := browsertest.EvalUntil(ctx, `!!document.getElementById("tests-summary") && document.readyState === "complete"`); err != nil {
		body, _ := chromedp.Run(bctx, chromedp.Evaluate[string](`document.body.innerText`))
		t.Fatalf("policy page: %v\n%s", err, body)
	}
	rejected, err := chromedp.Run(ctx, chromedp.Text(`#rejected`))
	if err != nil || !strings.Contains(rejected, "admission.rego:") {
		t.Fatalf("rejected revisions: %q %v", rejected, err)
	}
	summary, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(s => s.dataset.failed + " " + s.dataset.coverage + " " + document.querySelectorAll("#tests tbody tr[data-pass=true]").length)(document.getElementById("tests-summary"))`))
	if err != nil || !strings.HasPrefix(summary, "0 100.0 ") || strings.HasSuffix(summary, " 0") {
		t.Fatalf("tests: %q %v", summary, err)
	}
	shadow, err := chromedp.Run(ctx, chromedp.Text(`#shadow-off`))
	if err != nil || shadow != en.T("security.polpage.shadow_off") {
		t.Fatalf("shadow section: %q %v", shadow, err)
	}
	browsertest.Axe(ctx, t, "policy")
	browsertest.Screenshot(ctx, t, shots, "security-policy")

	if err := chromedp.Do(ctx, chromedp.Navigate(e.URL+"/.meetguard/security/integrity")); err != nil {
		t.Fatal(err)
	}
	if err := browsertest.EvalUntil(ctx, `!!document.querySelector("section.chain[data-state=verified]") && document.readyState === "complete"`); err != nil {
		body, _ := chromedp.Run(bctx, chromedp.Evaluate[string](`document.body.innerText`))
		t.Fatalf("integrity page: %v\n%s", err, body)
	}
	facts, err := chromedp.Run(ctx, chromedp.Text(`section.chain dl`))
	if err != nil || !strings.Contains(facts, ", key ") || !strings.Contains(facts, "seq 1 to ") {
		t.Fatalf("integrity facts: %q %v", facts, err)
	}
	browsertest.Axe(ctx, t, "integrity")
	browsertest.Screenshot(ctx, t, shots, "security-integrity")

	for _, p := range []struct{ path, key, ready string }{
		{"policy?lang=vi", "security.polpage.title", `!!document.getElementById("tests-summary")`},
		{"integrity?lang=vi", "security.integrity.title", `!!document.querySelector("section.chain")`},
	} {
		if err := chromedp.Do(ctx, chromedp.Navigate(e.URL+"/.meetguard/security/"+p.path)); err != nil {
			t.Fatal(err)
		}
		if err := browsertest.EvalUntil(ctx, p.ready+` && document.readyState === "complete"`); err != nil {
			t.Fatalf("%s: %v", p.path, err)
		}
		h1, err := chromedp.Run(ctx, chromedp.Text(`h1`))
		lang, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.documentElement.lang`))
		if err != nil || h1 != vi.T(p.key) || lang != "vi" {
			t.Fatalf("%s: h1 %q lang %q (%v)", p.path, h1, lang, err)
		}
		browsertest.Axe(ctx, t, p.path)
	}

	// A colleague without a role.
	other := browsertest.Start(t)
	octx, ocancel := context.WithTimeout(other, time.Minute)
	defer ocancel()
	if _, err := chromedp.Call(octx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(octx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Authorization": "Bearer " + e.bearer("bob")}}); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"policy", "integrity"} {
		if err := chromedp.Do(octx, chromedp.Navigate(e.URL+"/.meetguard/security/"+path)); err != nil {
			t.Fatal(err)
		}
		body, err := chromedp.Run(octx, chromedp.Text(`body`))
		if err != nil || !strings.Contains(body, en.T("security.refusal")) || strings.Contains(body, "admission.rego") || strings.Contains(body, "seq") {
			t.Fatalf("non-auditor on %s sees %q (%v)", path, body, err)
		}
	}
	browsertest.Axe(octx, t, "refusal")
}
