package roomsapi_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/meetguard/meetguard/gateway/browsertest"
)

// TestBrowser_PasscodeFormThenWaitingPageThenRoom drives real Chromium
// through the pages' own script under their strict CSP: a refused
// browser enters the passcode, is sent to the waiting room (no host yet),
// and walks into the meeting by itself when a host admits it.
func TestBrowser_PasscodeFormThenWaitingPageThenRoom(t *testing.T) {
	browsertest.Path(t)
	c := newCluster(t, clusterOptions{policyConfig: func(cfg map[string]any) {
		// The provider's test user becomes staff, and staff wait for a
		// host: the path from passcode to lobby to room.
		cfg["staff_domains"] = append(cfg["staff_domains"].([]any), "zitadel.ch")
		cfg["participants_wait_for_host"] = true
	}})
	n := c.nodes[0]
	h := host("hanna")
	c.createRoom(n, h, "vault", map[string]any{"passcode": "2468", "lobby_enabled": true})
	b := c.login(n)
	bctx := browsertest.StartSignedIn(t, b, n.URL)
	ctx, cancel := context.WithTimeout(bctx, 15*time.Second)
	defer cancel()
	err := chromedp.Do(ctx,
		chromedp.Navigate(n.URL+"/room/vault"),
		chromedp.WaitVisible(chromedp.CSS(`#pc input[name=passcode]`)),
		chromedp.SendKeys(chromedp.CSS(`#pc input[name=passcode]`), "2468"),
		chromedp.Click(chromedp.CSS(`#pc button`)),
		chromedp.WaitVisible(chromedp.CSS(`#mg[data-state=waiting]`)),
	)
	if err != nil {
		html, _ := chromedp.Run(bctx, chromedp.Evaluate[string](`location.href + "\n" + document.documentElement.outerHTML`))
		t.Fatalf("passcode form: %v\npage: %s", err, html)
	}
	msg, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#msg`)))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(msg, "starts when a host joins") {
		t.Errorf("waiting message %q", msg)
	}

	// The host lets the one knock in.
	deadline := time.Now().Add(10 * time.Second)
	var wait string
	for wait == "" {
		r := call(t, nil, http.MethodGet, n.apiURL("vault"), c.token(h), nil)
		if ws, _ := r.json(t)["waiting"].([]any); len(ws) == 1 {
			wait, _ = ws[0].(map[string]any)["id"].(string)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no knock in the host view: %s", r.Body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if r := call(t, nil, http.MethodPost, n.apiURL("vault/lobby/"+wait+"/admit"), c.token(h), nil); r.Status != http.StatusOK {
		t.Fatalf("admit: %d %s", r.Status, r.Body)
	}
	// The page reloads itself; evaluation fails while it navigates.
	for {
		in, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`!!document.body && document.body.innerText.startsWith("upstream:/room/vault")`))
		if err == nil && in {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the waiting page did not walk into the room: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if dir := os.Getenv("MEETGUARD_SCREENSHOTS"); dir != "" {
		if shot, err := chromedp.Run(ctx, chromedp.CaptureScreenshot()); err == nil {
			_ = os.WriteFile(filepath.Join(dir, "rooms-admitted.png"), shot, 0o644)
		}
	}
}
