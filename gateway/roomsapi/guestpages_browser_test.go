package roomsapi_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/meetguard/meetguard/gateway/browsertest"
	"github.com/meetguard/meetguard/gateway/web"
)

// TestGuestPages_WaitingThenDeniedInEachLanguage: a guest in real
// Chromium knocks on a room with a waiting room. The waiting page names
// the room, says who is signed in, offers a way out and passes axe-core;
// when the host denies, the same page is headed "A host did not let you
// in". The same again for a Vietnamese browser, whose pages are
// Vietnamese (lang="vi") from the first byte to the denial.
func TestGuestPages_WaitingThenDeniedInEachLanguage(t *testing.T) {
	browsertest.Path(t)
	c := newCluster(t, clusterOptions{policyTimeout: time.Minute})
	n := c.nodes[0]
	h := host("hanna")
	shots := t.TempDir()
	for _, lang := range []string{"en", "vi"} {
		room := "lobby-" + lang
		c.createRoom(n, h, room, map[string]any{"lobby_enabled": true})
		tr := web.Default().Catalog().In(lang)
		bctx := chromiumSignedIn(t, c, n)
		ctx, cancel := context.WithTimeout(bctx, 2*time.Minute)
		if _, err := chromedp.Call(ctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Accept-Language": lang + ";q=1"}}); err != nil {
			t.Fatal(err)
		}
		if err := chromedp.Do(ctx, chromedp.Navigate(n.URL+"/room/"+room), chromedp.WaitVisible(`#mg[data-state=waiting]`)); err != nil {
			t.Fatalf("%s: waiting page: %v", lang, err)
		}
		for _, want := range []string{tr.T("waiting.title"), tr.T("waiting.room", room), tr.T("waiting.leave"), tr.T("who.not_you")} {
			if err := pageText(ctx, want); err != nil {
				t.Fatalf("%s: waiting page lacks %q: %v", lang, want, err)
			}
		}
		if got, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.documentElement.lang`)); got != lang {
			t.Errorf("waiting page lang %q, want %q", got, lang)
		}
		browsertest.Axe(ctx, t, "waiting page "+lang)
		browsertest.Screenshot(ctx, t, shots, "waiting-"+lang)

		// The host denies from the API; the page says so.
		view := call(t, nil, http.MethodGet, n.apiURL(room), c.token(h), nil).json(t)
		waiting, _ := view["waiting"].([]any)
		if len(waiting) != 1 {
			t.Fatalf("%s: waiting list %v", lang, view["waiting"])
		}
		wid := waiting[0].(map[string]any)["id"].(string)
		if r := call(t, nil, http.MethodPost, n.apiURL(room+"/lobby/"+wid+"/deny"), c.token(h), map[string]any{}); r.Status != http.StatusOK {
			t.Fatalf("deny: %d %s", r.Status, r.Body)
		}
		if err := pageText(ctx, tr.T("waiting.host_denied")); err != nil {
			t.Fatalf("%s: denied guest's page never said so: %v", lang, err)
		}
		if body, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`)); lang == "vi" && strings.Contains(body, "host") {
			t.Errorf("vi page shows English: %q", body)
		}
		browsertest.Axe(ctx, t, "denied page "+lang)
		browsertest.Screenshot(ctx, t, shots, "denied-"+lang)

		// The refusal page (a room the guest may not enter).
		if err := chromedp.Do(ctx, chromedp.Navigate(n.URL+"/room/nosuch-"+lang), chromedp.WaitVisible(`#mg[data-state=denied]`)); err != nil {
			t.Fatalf("%s: refusal page: %v", lang, err)
		}
		if err := pageText(ctx, tr.T("refusal.message")); err != nil {
			t.Fatalf("%s: refusal page: %v", lang, err)
		}
		browsertest.Axe(ctx, t, "refusal page "+lang)
		browsertest.Screenshot(ctx, t, shots, "refusal-"+lang)
		cancel()
	}
}
