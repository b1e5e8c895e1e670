package demoapp

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/meetguard/meetguard/gateway/browsertest"
)

// TestBrowser_LivePresenceAndChat opens one room in two real Chromium tabs,
// each behind its own stand-in gateway that sets a different identity. It
// proves what unit tests cannot: the CSP admits the inline script and style
// and the WebSocket, and the page shows presence and chat live.
func TestBrowser_LivePresenceAndChat(t *testing.T) {
	if testing.Short() {
		t.Skip("real-browser test skipped in -short mode")
	}
	browsertest.Path(t)
	app, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = app.Close() })
	gateway := func(user, email, role string) *httptest.Server {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			r.Header.Set(HeaderUser, user)
			r.Header.Set(HeaderEmail, email)
			r.Header.Set(HeaderRole, role)
			app.ServeHTTP(w, r)
		}))
		t.Cleanup(srv.Close)
		return srv
	}
	aliceGW := gateway("Alice Host", "alice@example.com", "host")
	bobGW := gateway("Bob Colleague", "bob@example.com", "participant")

	alice := browsertest.Start(t)
	ctx, cancel := context.WithTimeout(alice, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(aliceGW.URL+"/room/standup"), waitText("#status", "connected")); err != nil {
		t.Fatalf("alice's page never connected (CSP or WebSocket broken?): %v", err)
	}
	bob, cancelBob := chromedp.NewContext(alice) // a second tab in the same browser
	defer cancelBob()
	bctx, cancelB := context.WithTimeout(bob, 30*time.Second)
	defer cancelB()
	if err := chromedp.Do(bctx, chromedp.Navigate(bobGW.URL+"/room/standup"), waitText("#count", "2")); err != nil {
		t.Fatalf("bob's page: %v", err)
	}
	if err := chromedp.Do(ctx, waitText("#count", "2")); err != nil {
		t.Fatalf("alice never saw bob: %v", err)
	}
	roster, err := chromedp.Run(ctx, chromedp.Text("#roster"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(roster, "Bob Colleague") || !strings.Contains(roster, "Alice Host") {
		t.Fatalf("alice's roster = %q", roster)
	}
	if err := chromedp.Do(bctx, chromedp.SendKeys("#text", "hello from bob"), chromedp.Click("#chat button")); err != nil {
		t.Fatalf("bob chatting: %v", err)
	}
	if err := chromedp.Do(ctx, waitText("#log", "Bob Colleague: hello from bob")); err != nil {
		t.Fatalf("alice did not see bob's chat: %v", err)
	}
	cancelBob() // closing the tab closes its WebSocket
	if err := chromedp.Do(ctx, waitText("#count", "1")); err != nil {
		t.Fatalf("bob did not leave alice's roster: %v", err)
	}
}

// waitText polls until the element's text contains want.
func waitText(sel, want string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		for {
			if got, err := chromedp.Text(sel)(ctx, t); err == nil && strings.Contains(got, want) {
				return chromedp.Void{}, nil
			}
			select {
			case <-ctx.Done():
				return chromedp.Void{}, ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
}
