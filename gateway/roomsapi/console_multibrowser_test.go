package roomsapi_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/meetguard/meetguard/gateway/auth"
	"github.com/meetguard/meetguard/gateway/browsertest"
	"github.com/meetguard/meetguard/gateway/demoapp"
	"github.com/meetguard/meetguard/gateway/web"
)

// loginInChromium signs a person in the way a browser does: the tab
// follows the gateway to the provider's login form, the form is filled in
// and submitted, and the provider sends the tab back signed in.
func loginInChromium(ctx context.Context, t *testing.T, gateway, start, username, password string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.Navigate(gateway+start), chromedp.WaitVisible(`#username`),
		chromedp.SetValue(`#username`, username), chromedp.SetValue(`#password`, password),
		chromedp.Submit(`#password`)); err != nil {
		t.Fatalf("login form for %s: %v", username, err)
	}
	if err := browsertest.EvalUntil(ctx, `location.origin === `+jsString(gateway)+` && document.readyState === "complete"`); err != nil {
		u, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href`))
		t.Fatalf("%s never came back from the provider: %v (at %s)", username, err, u)
	}
}

// tabCookies is the Cookie header the tab would send to the gateway.
func tabCookies(ctx context.Context, t *testing.T) string {
	t.Helper()
	got, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, c := range got.Cookies {
		out = append(out, c.Name+"="+c.Value)
	}
	return strings.Join(out, "; ")
}

// TestConsole_TwoBrowsersTwoLogins is the scenario with a person in each
// browser, each signed in through the provider's real login form: the
// host (in the provider's host group) creates the room and opens the
// console; the guest (an outside address) opens the room and lands in the
// waiting room; the console shows the knock with the guest's domain and
// verdict within a second or so (figure logged, not asserted); the host
// admits from the keyboard and the guest's meeting page connects; the
// host removes and bans: the guest's live connection is cut, the page
// says so, a reload shows the removed page and asking again is refused.
// Along the way the host changes seats and the waiting room from the
// keyboard, turns the knock chime on, reads Recent events, and every new
// state passes axe-core; the console is also checked in Vietnamese.
func TestConsole_TwoBrowsersTwoLogins(t *testing.T) {
	browsertest.Path(t)
	app, err := demoapp.New(demoapp.Options{OriginPatterns: []string{"127.0.0.1:*"}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(app)
	t.Cleanup(srv.Close)
	t.Cleanup(func() { _ = app.Close() })
	c := newCluster(t, clusterOptions{upstreamURL: srv.URL, policyTimeout: time.Minute})
	n := c.nodes[0]
	const room = "standup"
	shots := t.TempDir()
	en := web.Default().Catalog().In("en")

	// The host: the provider puts her in meeting-hosts.
	c.idp.SetIDTokenClaim("groups", []string{"meeting-hosts"})
	hostTab := browsertest.Start(t)
	hctx, hcancel := context.WithTimeout(hostTab, 4*time.Minute)
	defer hcancel()
	loginInChromium(hctx, t, n.URL, auth.LoginPath+"?rd=/", c.idp.Username, c.idp.Password)
	// The room is created with her browser's session (the page she lands
	// on is the meeting app's, whose CSP keeps scripts from calling the
	// API, so the call is made here with the tab's cookies).
	if r := call(t, nil, http.MethodPut, n.apiURL(room), "", map[string]any{"lobby_enabled": true},
		"Cookie", tabCookies(hctx, t), web.CSRFHeader, "1", "Origin", n.URL); r.Status != http.StatusCreated {
		t.Fatalf("the host creating the room with her session: %d %s", r.Status, r.Body)
	}
	if err := chromedp.Do(hctx, chromedp.Navigate(n.URL+web.ConsolePath(room))); err != nil {
		t.Fatal(err)
	}
	if err := browsertest.EvalUntil(hctx, `document.getElementById("conn").textContent === `+jsString(en.T("console.js.live"))); err != nil {
		t.Fatalf("console never went live: %v", err)
	}
	// The chime, from the keyboard: Tab to the box, Space.
	if err := chromedp.Do(hctx, chromedp.Focus(`#sound`), chromedp.KeyEvent(" ")); err != nil {
		t.Fatal(err)
	}
	if err := browsertest.EvalUntil(hctx, `document.getElementById("sound").checked`); err != nil {
		t.Fatalf("the chime box did not tick from the keyboard: %v", err)
	}

	// The guest: another browser, another login, no groups.
	c.idp.SetIDTokenClaim("groups", []string{})
	guestTab := browsertest.Start(t)
	gctx, gcancel := context.WithTimeout(guestTab, 4*time.Minute)
	defer gcancel()
	knocked := time.Now()
	loginInChromium(gctx, t, n.URL, "/room/"+room, "test-user2", c.idp.Password)
	if err := chromedp.Do(gctx, chromedp.WaitVisible(`#mg[data-state=waiting]`)); err != nil {
		t.Fatalf("the guest's waiting page: %v", err)
	}
	if err := browsertest.EvalUntil(hctx, `document.querySelectorAll("#waiting li").length === 1 && document.title.startsWith("(1) ")`); err != nil {
		t.Fatalf("the guest's knock never reached the console: %v", err)
	}
	t.Logf("login + knock → visible in the other browser's console: %v (figure, not a bound)", time.Since(knocked))
	entry, err := chromedp.Run(hctx, chromedp.Evaluate[string](`document.querySelector("#waiting li").innerText`))
	if err != nil || !strings.Contains(entry, "zitadel.ch") || !strings.Contains(entry, en.T("console.js.verdict_guest")) ||
		strings.Contains(entry, en.T("console.js.verdict_staff")) || !strings.Contains(entry, en.T("console.js.live_knock")) {
		t.Fatalf("the knock in the console reads %q (%v); want the domain, guest, live", entry, err)
	}
	if err := browsertest.EvalUntil(hctx, `document.getElementById("sound").dataset.played === "1"`); err != nil {
		t.Errorf("the chime did not play for the knock: %v", err)
	}
	browsertest.Axe(hctx, t, "console, a guest knocking (domain, verdict)")
	browsertest.Axe(gctx, t, "waiting page after a real login")

	// Admitted from the keyboard: the guest's page reloads into the meeting.
	if err := chromedp.Do(hctx, chromedp.Focus(`#waiting button[aria-label^="Admit"]`), chromedp.KeyEvent("\r")); err != nil {
		t.Fatal(err)
	}
	if err := pageText(gctx, "connected"); err != nil {
		txt, _ := chromedp.Run(gctx, chromedp.Evaluate[string](`document.body.innerText`))
		t.Fatalf("the admitted guest's meeting page never connected: %v\n%s", err, txt)
	}
	if err := browsertest.EvalUntil(hctx, `document.querySelectorAll("#people li").length === 1`); err != nil {
		t.Fatalf("the guest never showed in the room list: %v", err)
	}

	// A role change on a generic upstream (the demo app reads the role from
	// each connection's assertion): the host makes the guest a participant
	// from the keyboard; her socket is closed with 4005 and her page
	// reconnects by itself as participant.
	if err := browsertest.EvalUntil(gctx, `[...document.querySelectorAll("#roster li")].some(li => li.textContent.includes("viewer"))`); err != nil {
		t.Fatalf("the guest's page does not list her as viewer: %v", err)
	}
	roleSel := `#people select[aria-label^="Role of"]`
	if err := chromedp.Do(hctx, chromedp.Focus(roleSel), chromedp.KeyEvent("p")); err != nil {
		t.Fatal(err)
	}
	if err := browsertest.EvalUntil(hctx, `document.querySelector(`+jsString(roleSel)+`).value === "participant"`); err != nil {
		t.Fatalf("typing p in the role select: %v", err)
	}
	if err := chromedp.Do(hctx, chromedp.KeyEvent("\t"), chromedp.KeyEvent("\r")); err != nil {
		t.Fatal(err)
	}
	if err := browsertest.EvalUntil(gctx, `[...document.querySelectorAll("#roster li")].some(li => li.textContent.includes("participant"))`); err != nil {
		txt, _ := chromedp.Run(gctx, chromedp.Evaluate[string](`document.body.innerText`))
		t.Fatalf("the guest's page never reconnected as participant: %v\n%s", err, txt)
	}
	if err := browsertest.EvalUntil(hctx, `document.getElementById("announce").textContent.includes(`+jsString(en.T("console.js.role_participant"))+`) &&
		document.querySelector("#people li").textContent.includes(`+jsString(en.T("console.js.role_participant"))+`)`); err != nil {
		t.Fatalf("the console never showed her new role: %v", err)
	}
	browsertest.Axe(hctx, t, "console after a role change, generic upstream")

	// Seats and the waiting room, from the keyboard.
	if err := chromedp.Do(hctx, chromedp.Focus(`#cap-input`), chromedp.SetValue(`#cap-input`, "7"), chromedp.KeyEvent("\r")); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(hctx, chromedp.Focus(`#lobby-toggle`), chromedp.KeyEvent("\r")); err != nil {
		t.Fatal(err)
	}
	if err := browsertest.EvalUntil(hctx, `document.getElementById("capstate").textContent.startsWith("7 ") &&
		document.getElementById("lobbystate").textContent === `+jsString(en.T("console.js.lobby_off"))); err != nil {
		t.Fatalf("seats and waiting room did not change: %v", err)
	}
	view := call(t, nil, http.MethodGet, n.apiURL(room), c.token(host("hanna")), nil).json(t)
	if view["capacity"] != float64(7) || view["lobby_enabled"] != false {
		t.Fatalf("room after the console's changes: capacity %v lobby %v", view["capacity"], view["lobby_enabled"])
	}
	if err := browsertest.EvalUntil(hctx, `[...document.querySelectorAll("#recent li")].some(li => li.textContent.includes("changed the room's settings"))`); err != nil {
		t.Fatalf("Recent events never showed the change: %v", err)
	}
	browsertest.Axe(hctx, t, "console, settings changed, recent events")
	browsertest.Screenshot(hctx, t, shots, "console-recent")

	// Remove and ban: the guest's live connection is cut and the page says so.
	if err := chromedp.Do(hctx, chromedp.Click(`#people button[aria-label^="Remove and ban"]`), chromedp.WaitVisible(`#reason`),
		chromedp.SetValue(`#reason`, "uninvited"), chromedp.Click(`#confirm-yes`)); err != nil {
		t.Fatal(err)
	}
	removed := en.T("removed.title")
	if err := pageText(gctx, removed); err != nil {
		t.Fatalf("the guest's page does not say she was removed: %v", err)
	}
	if err := chromedp.Do(gctx, chromedp.Navigate(n.URL+"/room/"+room)); err != nil {
		t.Fatal(err)
	}
	if err := pageText(gctx, removed); err != nil {
		t.Fatalf("reloading after the ban: %v", err)
	}
	browsertest.Axe(gctx, t, "removed page")
	if r := call(t, nil, http.MethodPost, n.apiURL(room+"/join"), "", nil, "Cookie", tabCookies(gctx, t), web.CSRFHeader, "1", "Origin", n.URL); r.Status != http.StatusForbidden {
		t.Fatalf("the banned guest asking to join again with her session: %d %s", r.Status, r.Body)
	}
	if err := browsertest.EvalUntil(hctx, `[...document.querySelectorAll("#recent li")].some(li => li.textContent.includes("banned") && li.textContent.includes("uninvited"))`); err != nil {
		t.Fatalf("Recent events never showed the ban with its reason: %v", err)
	}

	// The console in Vietnamese.
	if err := chromedp.Do(hctx, chromedp.Navigate(n.URL+web.ConsolePath(room)+"?lang=vi")); err != nil {
		t.Fatal(err)
	}
	vi := web.Default().Catalog().In("vi")
	if err := browsertest.EvalUntil(hctx, `document.documentElement.lang === "vi" && document.getElementById("conn").textContent === `+jsString(vi.T("console.js.live"))+
		` && document.getElementById("lobbystate").textContent === `+jsString(vi.T("console.js.lobby_off"))); err != nil {
		t.Fatalf("the Vietnamese console: %v", err)
	}
	browsertest.Axe(hctx, t, "console in Vietnamese")
	browsertest.Screenshot(hctx, t, shots, "console-vi")
}
