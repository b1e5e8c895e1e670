package roomsapi_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/meetguard/meetguard/gateway/audit"
	"github.com/meetguard/meetguard/gateway/browsertest"
	"github.com/meetguard/meetguard/gateway/demoapp"
	"github.com/meetguard/meetguard/gateway/rooms"
)

// staffTestUser makes the provider's test user staff in the shipped policy.
func staffTestUser(cfg map[string]any) {
	cfg["staff_domains"] = append(cfg["staff_domains"].([]any), "zitadel.ch")
}

// chromiumSignedIn starts Chromium carrying the session of a browser the
// provider logged in to node n.
func chromiumSignedIn(t *testing.T, c *cluster, n *node) context.Context {
	t.Helper()
	b := c.login(n)
	return browsertest.StartSignedIn(t, b, n.URL)
}

// pageText polls the tab until its body text contains want.
func pageText(ctx context.Context, want string) error {
	for {
		got, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
		if err == nil && strings.Contains(got, want) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// TestBrowser_RemovedDemoTabSaysSoAndNeverKnocks: the demo meeting app in
// real Chromium behind a real gateway. A host removes the person: the page
// says "You were removed from this meeting" instead of reconnecting (close
// code 4001), reloading shows the gateway's removed page, and only the
// "Ask to join again" button runs a join. Before the fix the page
// reconnected and the reconnect joined again by itself.
func TestBrowser_RemovedDemoTabSaysSoAndNeverKnocks(t *testing.T) {
	browsertest.Path(t)
	app, err := demoapp.New(demoapp.Options{OriginPatterns: []string{"127.0.0.1:*"}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(app)
	t.Cleanup(srv.Close)
	t.Cleanup(func() { _ = app.Close() })
	c := newCluster(t, clusterOptions{upstreamURL: srv.URL, policyConfig: staffTestUser, policyTimeout: time.Minute})
	n := c.nodes[0]
	h := host("hanna")
	c.createRoom(n, h, "standup", map[string]any{"lobby_enabled": false})
	bctx := chromiumSignedIn(t, c, n)
	ctx, cancel := context.WithTimeout(bctx, 30*time.Second)
	defer cancel()

	if err := chromedp.Do(ctx, chromedp.Navigate(n.URL+"/room/standup")); err != nil {
		t.Fatal(err)
	}
	if err := pageText(ctx, "connected"); err != nil {
		t.Fatalf("the demo page never connected through the gateway: %v", err)
	}
	room := call(t, nil, http.MethodGet, n.apiURL("standup"), c.token(h), nil).json(t)
	ps := room["participants"].([]any)
	if len(ps) != 1 {
		t.Fatalf("participants %v", ps)
	}
	pid := ps[0].(map[string]any)["id"].(string)
	sub := ps[0].(map[string]any)["subject"].(string)
	sub = sub[strings.LastIndex(sub, "|")+1:]
	decisions := c.countEvents(audit.EventAdmissionDecision, "standup", sub)

	if r := call(t, nil, http.MethodPost, n.apiURL("standup/participants/"+pid+"/remove"), c.token(h), map[string]any{"ban": false}); r.Status != http.StatusOK {
		t.Fatalf("remove: %d %s", r.Status, r.Body)
	}
	if err := pageText(ctx, "You were removed from this meeting"); err != nil {
		html, _ := chromedp.Run(bctx, chromedp.Evaluate[string](`document.body.innerText`))
		t.Fatalf("the removed page does not say so: %v\n%s", err, html)
	}
	status, err := chromedp.Run(ctx, chromedp.Text("#status"))
	if err != nil || strings.Contains(status, "reconnecting") {
		t.Fatalf("status %q (%v)", status, err)
	}

	// A reload is the gateway's removed page, not a join.
	if err := chromedp.Do(ctx, chromedp.Navigate(n.URL+"/room/standup")); err != nil {
		t.Fatal(err)
	}
	if err := pageText(ctx, "You were removed from this meeting"); err != nil {
		t.Fatalf("reload: %v", err)
	}
	if d := c.countEvents(audit.EventAdmissionDecision, "standup", sub); d != decisions {
		t.Fatalf("the removed tab ran %d joins by itself", d-decisions)
	}
	if got := call(t, nil, http.MethodGet, n.apiURL("standup"), c.token(h), nil).json(t)["participants"].([]any); len(got) != 0 {
		t.Fatalf("the removed tab is back in: %v", got)
	}

	// The person asks: the button joins, and the meeting loads again.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#again`))); err != nil {
		t.Fatal(err)
	}
	if err := pageText(ctx, "connected"); err != nil {
		t.Fatalf("joining again by the button: %v", err)
	}
}

// TestBrowser_ClosedWaitingPageLeavesTheLobby is issue 10's stale knock in
// real Chromium, on each store: while the waiting page is open its poll
// keeps the knock (longer than knock_ttl); once the tab is closed the entry
// leaves the lobby (the test's knock_ttl is 4 s; the default 45 s); a new
// tab knocks again and the host sees one entry, with device and age.
// Before the fix the closed tab's entry stayed for wait_ttl (10 min).
func TestBrowser_ClosedWaitingPageLeavesTheLobby(t *testing.T) {
	browsertest.Path(t)
	for _, tc := range []struct {
		name  string
		redis bool
	}{{"memory", false}, {"redis", true}} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(t, clusterOptions{redis: tc.redis, rooms: func(cfg *rooms.Config) {
				cfg.KnockTTL, cfg.KnockHeartbeat = 4*time.Second, 500*time.Millisecond
			}})
			n := c.nodes[0]
			h := host("hanna")
			c.createRoom(n, h, "townhall", map[string]any{"lobby_enabled": true})
			bctx := chromiumSignedIn(t, c, n)

			tab1, closeTab1 := chromedp.NewContext(bctx)
			defer closeTab1()
			ctx1, cancel1 := context.WithTimeout(tab1, 30*time.Second)
			defer cancel1()
			if err := chromedp.Do(ctx1, chromedp.Navigate(n.URL+"/room/townhall"), chromedp.WaitVisible(chromedp.CSS(`#mg[data-state=waiting]`))); err != nil {
				t.Fatalf("waiting page: %v", err)
			}
			first := c.waiting(n, h, "townhall")
			if len(first) != 1 || !strings.HasPrefix(first[0]["device"].(string), "Chrome") || first[0]["age_seconds"] == nil {
				t.Fatalf("lobby %v, want one entry with its device and age", first)
			}
			// The open page's poll keeps it past knock_ttl.
			time.Sleep(6 * time.Second)
			if got := c.waiting(n, h, "townhall"); len(got) != 1 || got[0]["id"] != first[0]["id"] {
				t.Fatalf("lobby while the page is open: %v", got)
			}

			closeTab1()
			closed := time.Now()
			for len(c.waiting(n, h, "townhall")) != 0 {
				if time.Since(closed) > 45*time.Second {
					t.Fatal("the closed tab's knock is still in the lobby after 45 s")
				}
				time.Sleep(200 * time.Millisecond)
			}
			t.Logf("closed waiting page left the lobby after %v (knock_ttl 4s)", time.Since(closed).Round(100*time.Millisecond))

			tab2, closeTab2 := chromedp.NewContext(bctx)
			defer closeTab2()
			ctx2, cancel2 := context.WithTimeout(tab2, 30*time.Second)
			defer cancel2()
			if err := chromedp.Do(ctx2, chromedp.Navigate(n.URL+"/room/townhall"), chromedp.WaitVisible(chromedp.CSS(`#mg[data-state=waiting]`))); err != nil {
				t.Fatalf("waiting page in a new tab: %v", err)
			}
			tab3, closeTab3 := chromedp.NewContext(bctx)
			defer closeTab3()
			ctx3, cancel3 := context.WithTimeout(tab3, 30*time.Second)
			defer cancel3()
			if err := chromedp.Do(ctx3, chromedp.Navigate(n.URL+"/room/townhall"), chromedp.WaitVisible(chromedp.CSS(`#mg[data-state=waiting]`))); err != nil {
				t.Fatalf("waiting page in a third tab: %v", err)
			}
			if got := c.waiting(n, h, "townhall"); len(got) != 1 || got[0]["id"] == first[0]["id"] {
				t.Fatalf("lobby after re-knocking from new tabs: %v, want one new entry", got)
			}
		})
	}
}
