package gateway_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/meetguard/meetguard/gateway/auth"
)

func postLogout(t *testing.T, c *http.Client, base string, hdr map[string]string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+auth.LogoutPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	nc := *c
	nc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := nc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// TestLogout_CrossSiteCannotEndTheSession: another site can make a
// browser navigate to, or post a form to, the logout URL. None of that
// may end the session or cut the person's meeting connection; only a
// same-origin POST does.
func TestLogout_CrossSiteCannotEndTheSession(t *testing.T) {
	e := newEnv(t, envOptions{})
	c, resp := e.login("/app")
	resp.Body.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, strings.Replace(e.URL, "http://", "ws://", 1)+"/room/r1/ws", &websocket.DialOptions{HTTPClient: c, HTTPHeader: http.Header{"Origin": {e.URL}}})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer ws.CloseNow()
	stillIn := func(t *testing.T, when string) {
		t.Helper()
		nc := &http.Client{Jar: c.Jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp := get(t, nc, e.URL+"/app", map[string]string{"Accept": "application/json"})
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: session ended (%d)", when, resp.StatusCode)
		}
		if err := ws.Write(ctx, websocket.MessageText, []byte("ping")); err != nil {
			t.Fatalf("%s: websocket cut: %v", when, err)
		}
		if _, msg, err := ws.Read(ctx); err != nil || string(msg) != "ping" {
			t.Fatalf("%s: websocket cut: %q %v", when, msg, err)
		}
	}

	// A top-level navigation (link, redirect, window.open) is a GET.
	nav := get(t, c, e.URL+auth.LogoutPath, map[string]string{"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"})
	body := readAll(t, nav)
	if nav.StatusCode != http.StatusOK || !strings.Contains(body, `method="post"`) {
		t.Fatalf("GET logout: %d, want the confirmation page with its form\n%s", nav.StatusCode, body)
	}
	stillIn(t, "after a cross-site GET")

	for _, tc := range []struct {
		name string
		hdr  map[string]string
		want int
	}{
		{"form post from another site", map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		{"Origin of another site only", map[string]string{"Origin": "https://evil.example"}, http.StatusForbidden},
		{"Sec-Fetch-Site cross-site only", map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		{"same-site sibling", map[string]string{"Sec-Fetch-Site": "same-site"}, http.StatusForbidden},
		{"opaque Origin (sandboxed frame)", map[string]string{"Origin": "null"}, http.StatusForbidden},
		{"our Origin but cross-site fetch metadata", map[string]string{"Origin": e.URL, "Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		{"no proof of origin", nil, http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := postLogout(t, c, e.URL, tc.hdr)
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("%d, want %d", resp.StatusCode, tc.want)
			}
			stillIn(t, tc.name)
		})
	}
	if e.audit.Has("logout") {
		t.Fatal("a refused logout was recorded as a logout")
	}

	resp = postLogout(t, c, e.URL, map[string]string{"Origin": e.URL, "Sec-Fetch-Site": "same-origin"})
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("same-origin logout: %d, want 303", resp.StatusCode)
	}
	if !e.audit.Has("logout") {
		t.Fatal("no logout record")
	}
	readCtx, readCancel := context.WithTimeout(ctx, 5*time.Second)
	defer readCancel()
	if _, _, err := ws.Read(readCtx); err == nil || readCtx.Err() != nil {
		t.Fatalf("websocket still open after logout (err=%v)", err)
	}
}
