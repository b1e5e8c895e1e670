package securityconsole_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/meetguard/meetguard/gateway/auth"
	"github.com/meetguard/meetguard/gateway/browsertest"
	"github.com/meetguard/meetguard/gateway/config"
	"github.com/meetguard/meetguard/gateway/web"
)

// auditorInChromium signs the provider's test user (an auditor by data.json)
// in and starts Chromium carrying that session.
func auditorInChromium(t *testing.T, e *env) context.Context {
	t.Helper()
	cl := browsertest.Client(t)
	e.idp.BrowserLogin(t, cl, e.URL+auth.LoginPath+"?rd=/").Body.Close()
	return browsertest.StartSignedIn(t, cl, e.URL)
}

type shownRow struct {
	Subject, Person, Outcome, Reasons, Datetime, TimeText string
}

// rowsJS reads the decisions table as the auditor sees it.
const rowsJS = `JSON.stringify([...document.querySelectorAll("#decisions tbody tr")].map(tr => ({
 Subject: tr.dataset.subject, Person: tr.querySelector("td.person").innerText, Outcome: tr.dataset.outcome,
 Reasons: tr.querySelector("td.reasons").innerText, Datetime: tr.querySelector("time").getAttribute("datetime"),
 TimeText: tr.querySelector("time").innerText})))`

// TestBrowser_AuditorFindsEveryRefusedPerson: a meeting of 300 joins and
// 40 refusals; in real Chromium, under the console's strict CSP, the
// auditor filters the decisions to the room's refusals and finds every
// refused person with name, email, reason and a time in the browser's
// zone, opens one decision in full, reads the meeting's story on the rooms
// page, and the Vietnamese pages render. A colleague without a console
// role gets the one refusal. axe-core finds no serious or critical
// violation on any page.
func TestBrowser_AuditorFindsEveryRefusedPerson(t *testing.T) {
	browsertest.Path(t)
	e := newEnv(t)
	refused, reasons := e.meeting("board", 300, 40)
	e.meeting("retro", 20, 5) // another room's refusals must not show
	bctx := auditorInChromium(t, e)
	ctx, cancel := context.WithTimeout(bctx, 2*time.Minute)
	defer cancel()
	shots := t.TempDir()

	// The filter form, as a person fills it in.
	err := chromedp.Do(ctx,
		chromedp.Navigate(e.URL+"/.meetguard/security/decisions"),
		chromedp.WaitVisible(`#f-room`),
		chromedp.SendKeys(`#f-room`, "board"),
		chromedp.SetValue(`#f-outcome`, "deny"),
		chromedp.Click(`form.filters button[type=submit]`),
	)
	if err == nil {
		err = browsertest.EvalUntil(ctx, `location.search.includes("outcome=deny") && document.readyState === "complete" && !!document.getElementById("decisions")`)
	}
	if err != nil {
		html, _ := chromedp.Run(bctx, chromedp.Evaluate[string](`document.documentElement.outerHTML`))
		t.Fatalf("filtering: %v\n%s", err, html)
	}
	browsertest.Axe(ctx, t, "decisions, refusals of one room")
	browsertest.Screenshot(ctx, t, shots, "security-decisions")
	out, err := chromedp.Run(ctx, chromedp.Evaluate[string](rowsJS))
	if err != nil {
		t.Fatal(err)
	}
	var rows []shownRow
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatal(err)
	}
	if len(rows) != len(refused) {
		href, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href`))
		t.Fatalf("%d rows shown at %s, want the %d refused people", len(rows), href, len(refused))
	}
	seen := map[string]bool{}
	for _, r := range rows {
		p, ok := refused[r.Subject]
		switch {
		case !ok || r.Outcome != "deny":
			t.Errorf("row %+v is not one of the room's refusals", r)
		case !strings.Contains(r.Person, p.name) || !strings.Contains(r.Person, p.email):
			t.Errorf("row for %s shows %q, want name %q and email %q", r.Subject, r.Person, p.name, p.email)
		case r.Reasons != reasons[r.Subject]:
			t.Errorf("row for %s gives reason %q, want %q", r.Subject, r.Reasons, reasons[r.Subject])
		case r.Datetime == "" || r.TimeText == "" || strings.HasSuffix(r.TimeText, " UTC") && !strings.Contains(r.TimeText, ","):
			t.Errorf("row for %s: time %q shown as %q, want it in the browser's zone", r.Subject, r.Datetime, r.TimeText)
		}
		seen[r.Subject] = true
	}
	if len(seen) != len(refused) {
		t.Errorf("%d distinct people shown, want %d", len(seen), len(refused))
	}
	if hot, err := chromedp.Run(ctx, chromedp.Text(`#h-hot`)); err != nil || hot == "" {
		t.Fatalf("hot spots: %q %v", hot, err)
	}

	// One decision in full.
	href, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector("#decisions tbody tr a").href`))
	if err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(href)); err != nil {
		t.Fatal(err)
	}
	if err := browsertest.EvalUntil(ctx, `!!document.querySelector("dl.facts")`); err != nil {
		html, _ := chromedp.Run(bctx, chromedp.Evaluate[string](`document.body.innerText`))
		t.Fatalf("decision %s: %v\n%s", href, err, html)
	}
	input, err := chromedp.Run(ctx, chromedp.Text(`#h-in + pre`))
	if err != nil || !strings.Contains(input, `"email": "crasher`) {
		t.Fatalf("decision input shown: %q %v", input, err)
	}
	why, err := chromedp.Run(ctx, chromedp.Text(`#why`))
	if err != nil || !strings.Contains(why, `"deny"`) {
		t.Fatalf("why: %q %v", why, err)
	}
	browsertest.Axe(ctx, t, "one decision")

	// The meeting's story.
	if err := chromedp.Do(ctx, chromedp.Navigate(e.URL+"/.meetguard/security/rooms?room=board"), chromedp.WaitVisible(`#refused`)); err != nil {
		t.Fatal(err)
	}
	n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#refused tbody tr").length`))
	if err != nil || n != len(refused) {
		t.Fatalf("rooms page lists %d refusals (%v), want %d", n, err, len(refused))
	}
	adm, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#admitted tbody tr").length`))
	if err != nil || adm != 300 {
		t.Fatalf("rooms page lists %d admissions (%v), want 300", adm, err)
	}
	browsertest.Axe(ctx, t, "rooms")

	// Vietnamese.
	vi := web.Default().Catalog().In("vi")
	if err := chromedp.Do(ctx, chromedp.Navigate(e.URL+"/.meetguard/security/decisions?room=board&outcome=deny&lang=vi"), chromedp.WaitVisible(`#decisions`)); err != nil {
		t.Fatal(err)
	}
	h1, err := chromedp.Run(ctx, chromedp.Text(`h1`))
	lang, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.documentElement.lang`))
	if err != nil || h1 != vi.T("security.decisions_title") || lang != "vi" {
		t.Fatalf("Vietnamese page: h1 %q lang %q (%v)", h1, lang, err)
	}
	browsertest.Axe(ctx, t, "decisions, Vietnamese")

	// A colleague without a role, in another browser.
	other := browsertest.Start(t)
	octx, ocancel := context.WithTimeout(other, time.Minute)
	defer ocancel()
	if err := chromedp.Do(octx); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(octx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(octx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Authorization": "Bearer " + e.bearer("bob")}}); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(octx, chromedp.Navigate(e.URL+"/.meetguard/security/decisions?room=board")); err != nil {
		t.Fatal(err)
	}
	body, err := chromedp.Run(octx, chromedp.Text(`body`))
	if err != nil || !strings.Contains(body, web.Default().Catalog().In("en").T("security.refusal")) || strings.Contains(body, "crasher") {
		t.Fatalf("non-auditor sees %q (%v)", body, err)
	}
	browsertest.Axe(octx, t, "refusal")
}

// TestBrowser_SecurityEngineerSeesWhoMFAWouldDeny: in real Chromium a
// security engineer picks a candidate policy's files (the shipped policy
// with MFA required in every room) in the what-if form and sees exactly
// the staff who signed in without MFA as newly refused, with their
// inputs; nothing is activated; axe finds no serious or critical
// violation; the page renders in Vietnamese.
func TestBrowser_SecurityEngineerSeesWhoMFAWouldDeny(t *testing.T) {
	browsertest.Path(t)
	e := newEnv(t, func(_ *config.Config, data map[string]any) {
		if data != nil {
			data["console_roles"].(map[string]any)["security"].(map[string]any)["emails"] = []string{"test-user@zitadel.ch"}
		}
	})
	if e.idp.Email != "test-user@zitadel.ch" {
		t.Fatalf("the provider's user is %s", e.idp.Email)
	}
	noMFA := e.mfaFixture(8, 5, 3)
	before := e.app.Policy.Revision()
	files := candidateFiles(t, candidateDir(t, mfaRule))
	bctx := auditorInChromium(t, e)
	ctx, cancel := context.WithTimeout(bctx, 2*time.Minute)
	defer cancel()

	err := chromedp.Do(ctx,
		chromedp.Navigate(e.URL+"/.meetguard/security/whatif"),
		chromedp.WaitVisible(`#w-files`),
	)
	if err != nil {
		t.Fatal(err)
	}
	browsertest.Axe(ctx, t, "what-if form")
	err = chromedp.Do(ctx,
		chromedp.SetUploadFiles(`#w-files`, files),
		chromedp.SetValue(`#w-n`, "500"),
		chromedp.Click(`form.whatif button[type=submit]`),
	)
	if err == nil {
		err = browsertest.EvalUntil(ctx, `!!document.getElementById("whatif-result") || !!document.getElementById("refused-candidate") || !!document.querySelector("p.warn[role=alert]")`)
	}
	if err != nil {
		state, _ := chromedp.Run(bctx, chromedp.Evaluate[string](`location.href + "\n" + document.body.innerText`))
		t.Fatalf("running the what-if: %v\n%s", err, state)
	}
	out, err := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify([...document.querySelectorAll('section.change-group[data-kind="newly_denied"] tbody tr')].map(tr => tr.dataset.subject))`))
	if err != nil {
		t.Fatal(err)
	}
	var shown []string
	if err := json.Unmarshal([]byte(out), &shown); err != nil {
		t.Fatal(err)
	}
	slices.Sort(shown)
	if want := keys(noMFA); !slices.Equal(shown, want) {
		text, _ := chromedp.Run(ctx, chromedp.Text(`main`))
		t.Fatalf("newly refused shown: %v, want exactly %v\n%s", shown, want, text)
	}
	// Each shows who it is and the input it was decided on.
	person, err := chromedp.Run(ctx, chromedp.Text(`section.change-group[data-kind="newly_denied"] tbody tr td.person`))
	if err != nil || !strings.Contains(person, "Password Only") || !strings.Contains(person, "@example.com") {
		t.Fatalf("person: %q %v", person, err)
	}
	input, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('section.change-group[data-kind="newly_denied"] details pre').textContent`))
	if err != nil || !strings.Contains(input, `"amr"`) || !strings.Contains(input, `"pwd"`) {
		t.Fatalf("input: %q %v", input, err)
	}
	browsertest.Axe(ctx, t, "what-if result")
	browsertest.Screenshot(ctx, t, t.TempDir(), "security-whatif")
	if e.app.Policy.Revision() != before {
		t.Fatal("the what-if changed the serving revision")
	}

	vi := web.Default().Catalog().In("vi")
	if err := chromedp.Do(ctx, chromedp.Navigate(e.URL+"/.meetguard/security/whatif?lang=vi"), chromedp.WaitVisible(`#w-files`)); err != nil {
		t.Fatal(err)
	}
	h1, err := chromedp.Run(ctx, chromedp.Text(`h1`))
	button, _ := chromedp.Run(ctx, chromedp.Text(`form.whatif button`))
	if err != nil || h1 != vi.T("security.whatif.title") || button != vi.T("security.whatif.run") {
		t.Fatalf("Vietnamese: h1 %q button %q (%v)", h1, button, err)
	}
	browsertest.Axe(ctx, t, "what-if, Vietnamese")
}
