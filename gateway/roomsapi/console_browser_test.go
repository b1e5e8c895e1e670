package roomsapi_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/meetguard/meetguard/gateway/audit"
	"github.com/meetguard/meetguard/gateway/browsertest"
	"github.com/meetguard/meetguard/gateway/web"
)

// hostInChromium signs the provider's test user in (staff by
// staffTestUser), lets it create room (so it owns it and the policy makes
// it host), and starts Chromium carrying that session.
func hostInChromium(t *testing.T, c *cluster, n *node, room string, settings map[string]any) context.Context {
	t.Helper()
	b := c.login(n)
	if r := call(t, b, http.MethodPut, n.apiURL(room), "", settings, web.CSRFHeader, "1"); r.Status != http.StatusCreated {
		t.Fatalf("creating %s from the browser session: %d %s", room, r.Status, r.Body)
	}
	return browsertest.StartSignedIn(t, b, n.URL)
}

// TestConsole_ZoombomberStoppedFromTheBrowser is the zoombombing scenario
// end to end in real Chromium: the host's console at its stable URL shows
// each knock live (server push), the host denies Eve, admits Mallory from
// the keyboard alone, removes and bans her when she misbehaves (her
// WebSocket closes with 4003, she cannot come back with a fresh token, the
// ban's reason reaches the audit log), and locks the room so the next
// knock is refused. Each step is a click on the console: nothing here
// calls a host endpoint directly.
func TestConsole_ZoombomberStoppedFromTheBrowser(t *testing.T) {
	browsertest.Path(t)
	c := newCluster(t, clusterOptions{policyConfig: staffTestUser, policyTimeout: time.Minute})
	n := c.nodes[0]
	const room = "standup"
	bctx := hostInChromium(t, c, n, room, map[string]any{"lobby_enabled": true})
	ctx, cancel := context.WithTimeout(bctx, 3*time.Minute)
	defer cancel()
	shots := t.TempDir()
	live := web.Default().Catalog().In("en").T("console.js.live")

	if err := chromedp.Do(ctx, chromedp.Navigate(n.URL+web.ConsolePath(room))); err != nil {
		t.Fatal(err)
	}
	if err := browsertest.EvalUntil(ctx, `document.getElementById("conn").textContent === `+jsString(live)); err != nil {
		t.Fatalf("console never went live (CSP, event stream?): %v", err)
	}
	browsertest.Axe(ctx, t, "console, empty")

	// Eve knocks; the console shows her, announces her and counts her in
	// the tab title.
	eve := c.token(guest("eve"))
	knock := c.join(n, eve, room, nil)
	if knock.Status != http.StatusAccepted {
		t.Fatalf("eve's knock: %d %s", knock.Status, knock.Body)
	}
	eveWait := knock.str(t, "wait_id")
	start := time.Now()
	if err := browsertest.EvalUntil(ctx, `document.querySelectorAll("#waiting li").length === 1 && document.title.startsWith("(1) ")`); err != nil {
		t.Fatalf("eve's knock never reached the console: %v", err)
	}
	t.Logf("knock visible in the console after %v (figure, not a bound)", time.Since(start))
	if err := browsertest.EvalUntil(ctx, `document.getElementById("announce").textContent.includes("eve")`); err != nil {
		t.Fatalf("the knock was not announced: %v", err)
	}
	browsertest.Axe(ctx, t, "console, one knock")
	browsertest.Screenshot(ctx, t, shots, "console")

	// Deny Eve (one confirmation).
	if err := chromedp.Do(ctx, chromedp.Click(`#waiting button[aria-label^="Deny"]`), chromedp.WaitVisible(`#confirm-yes`)); err != nil {
		t.Fatal(err)
	}
	browsertest.Axe(ctx, t, "console, confirm dialog")
	if err := chromedp.Do(ctx, chromedp.Click(`#confirm-yes`)); err != nil {
		t.Fatal(err)
	}
	if r := call(t, nil, http.MethodGet, n.apiURL(room+"/wait/"+eveWait), eve, nil); r.Status != http.StatusForbidden || r.str(t, "status") != "denied" {
		t.Fatalf("eve after the deny: %d %s", r.Status, r.Body)
	}

	// Mallory knocks and is admitted from the keyboard alone.
	mallory := guest("mallory")
	mk := c.join(n, c.token(mallory), room, nil)
	if mk.Status != http.StatusAccepted {
		t.Fatalf("mallory's knock: %d %s", mk.Status, mk.Body)
	}
	if err := browsertest.EvalUntil(ctx, `document.querySelectorAll("#waiting li").length === 1`); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.Focus(`#waiting button[aria-label^="Admit"]`), chromedp.KeyEvent("\r")); err != nil {
		t.Fatal(err)
	}
	adm := call(t, nil, http.MethodGet, n.apiURL(room+"/wait/"+mk.str(t, "wait_id")), c.token(mallory), nil)
	if adm.Status != http.StatusOK || adm.str(t, "status") != "admitted" {
		t.Fatalf("mallory after the keyboard admit: %d %s", adm.Status, adm.Body)
	}
	ws := dialRoom(t, n, room, c.token(mallory), adm.str(t, "ticket"))
	if err := browsertest.EvalUntil(ctx, `[...document.querySelectorAll("#people li")].some(li => li.textContent.includes("mallory"))`); err != nil {
		t.Fatalf("mallory never showed in the room list: %v", err)
	}

	// She misbehaves: Remove and ban, with a reason.
	if err := chromedp.Do(ctx, chromedp.Click(`#people button[aria-label="Remove and ban mallory"]`), chromedp.WaitVisible(`#reason`),
		chromedp.SetValue(`#reason`, "disruptive"), chromedp.Click(`#confirm-yes`)); err != nil {
		t.Fatal(err)
	}
	if code, reason := readClose(t, ws); code != 4003 || reason != "banned" {
		t.Fatalf("mallory's socket closed with %d %q, want 4003 banned", code, reason)
	}
	if r := c.join(n, c.token(mallory), room, nil); r.Status != http.StatusForbidden {
		t.Fatalf("banned mallory came back with a fresh token: %d %s", r.Status, r.Body)
	}
	var banReason string
	for _, e := range c.auditEntries() {
		if e.Event == audit.EventRoomBan {
			banReason = e.Str("reason")
		}
	}
	if banReason != "disruptive" {
		t.Errorf("room.ban reason %q, want the one chosen in the console", banReason)
	}

	// Lock: the next knock is refused.
	if err := chromedp.Do(ctx, chromedp.Click(`#lock`)); err != nil {
		t.Fatal(err)
	}
	if err := browsertest.EvalUntil(ctx, `!document.getElementById("unlock").hidden`); err != nil {
		t.Fatalf("console never showed the lock: %v", err)
	}
	if r := c.join(n, c.token(guest("trudy")), room, nil); r.Status != http.StatusForbidden {
		t.Fatalf("a knock on the locked room: %d %s", r.Status, r.Body)
	}
}

// TestConsole_OnlyHostsGetIt: the console and its event stream answer
// everyone but a host of the room exactly as they answer for a room that
// does not exist, so they reveal neither the room nor who hosts it.
func TestConsole_OnlyHostsGetIt(t *testing.T) {
	c := newCluster(t, clusterOptions{})
	n := c.nodes[0]
	c.createRoom(n, host("hanna"), "board1", map[string]any{"lobby_enabled": false})
	bob := c.token(staff("bob"))
	c.mustJoin(n, staff("bob"), "board1") // a participant, not a host
	html := []string{"Accept", "text/html"}
	for _, kind := range []string{"console", "events"} {
		got := call(t, nil, http.MethodGet, n.apiURL("board1/"+kind), bob, nil, html...)
		want := call(t, nil, http.MethodGet, n.apiURL("nosuch/"+kind), bob, nil, html...)
		if got.Status == http.StatusOK || got.Status != want.Status || string(got.Body) != strings.ReplaceAll(string(want.Body), "nosuch", "board1") {
			t.Errorf("%s for a non-host: %d %s\nfor a missing room: %d %s", kind, got.Status, got.Body, want.Status, want.Body)
		}
	}
	if r := call(t, nil, http.MethodGet, n.apiURL("board1/console"), c.token(host("hanna")), nil, html...); r.Status != http.StatusOK {
		t.Fatalf("host: %d %s", r.Status, r.Body)
	}
}

func jsString(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}
