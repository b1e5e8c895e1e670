package roomsapi_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/meetguard/meetguard/gateway/roomsapi"
)

// TestCredentials_PresentedCredentialThatFailsRefuses is issue 10's third
// hole and the one rule that closes it: a request is judged on the
// credential it presents in a header (Authorization, Meetguard-Ticket); if
// that fails the request is refused, and the matching cookie (session,
// ticket) is never tried instead. Before the fix a forged Meetguard-Ticket
// beside a good ticket cookie was admitted on the cookie.
func TestCredentials_PresentedCredentialThatFailsRefuses(t *testing.T) {
	c := newCluster(t, clusterOptions{})
	n := c.nodes[0]
	hanna, bob := host("hanna"), staff("bob")
	c.createRoom(n, hanna, "standup", map[string]any{"lobby_enabled": false})
	bobTok := c.token(bob)
	ticket, pid := c.mustJoin(n, bob, "standup")
	hannaTicket, _ := c.mustJoin(n, hanna, "standup")
	const forged = "v1.Zm9yZ2Vk.Zm9yZ2Vk"
	roomCookie := roomsapi.TicketCookie + "=" + ticket
	apiCookie := roomsapi.APITicketCookiePrefix + "standup=" + ticket

	cases := []struct {
		name       string
		method     string
		url        string
		token      string
		hdr        []string
		wantStatus int
		wantBody   string
	}{
		{"forged ticket header beside a good ticket cookie", http.MethodGet, n.URL + "/room/standup/a", bobTok,
			[]string{roomsapi.TicketHeader, forged, "Cookie", roomCookie}, http.StatusForbidden, roomsapi.DeniedMessage},
		{"empty ticket header beside a good ticket cookie", http.MethodGet, n.URL + "/room/standup/b", bobTok,
			[]string{roomsapi.TicketHeader, " ", "Cookie", roomCookie}, http.StatusForbidden, roomsapi.DeniedMessage},
		{"a good and a forged ticket in the header", http.MethodGet, n.URL + "/room/standup/c", bobTok,
			[]string{roomsapi.TicketHeader, ticket + ", " + forged}, http.StatusForbidden, roomsapi.DeniedMessage},
		{"someone else's ticket header beside a good cookie", http.MethodGet, n.URL + "/room/standup/d", bobTok,
			[]string{roomsapi.TicketHeader, hannaTicket, "Cookie", roomCookie}, http.StatusForbidden, roomsapi.DeniedMessage},
		{"leave with a forged ticket header beside the API cookie", http.MethodPost, n.apiURL("standup/leave"), bobTok,
			[]string{roomsapi.TicketHeader, forged, "Cookie", apiCookie}, http.StatusNotFound, "not_found"},
		{"host action with a forged ticket header (policy host)", http.MethodPost, n.apiURL("standup/lock"), c.token(hanna),
			[]string{roomsapi.TicketHeader, forged}, http.StatusNotFound, "not_found"},
		{"forged bearer beside a good ticket cookie", http.MethodGet, n.URL + "/room/standup/e", "forged.bearer.token",
			[]string{"Cookie", roomCookie}, http.StatusUnauthorized, ""},
		// The header wins in both directions: a good header with a stale
		// cookie beside it is fine.
		{"good ticket header beside a forged cookie", http.MethodGet, n.URL + "/room/standup/f", bobTok,
			[]string{roomsapi.TicketHeader, ticket, "Cookie", roomsapi.TicketCookie + "=" + forged}, http.StatusOK, "upstream:/room/standup/f"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := call(t, nil, tc.method, tc.url, tc.token, nil, tc.hdr...)
			if r.Status != tc.wantStatus || !strings.Contains(string(r.Body), tc.wantBody) {
				t.Fatalf("%d %s, want %d with %q", r.Status, r.Body, tc.wantStatus, tc.wantBody)
			}
		})
	}
	for _, path := range []string{"/room/standup/a", "/room/standup/b", "/room/standup/c", "/room/standup/d", "/room/standup/e"} {
		for _, req := range c.up.Requests() {
			if req.URL.Path == path {
				t.Errorf("a refused request reached the upstream: %s", path)
			}
		}
	}
	room := call(t, nil, http.MethodGet, n.apiURL("standup"), c.token(hanna), nil).json(t)
	if room["locked"] != false {
		t.Error("a host action with a forged ticket locked the room")
	}
	found := false
	for _, p := range room["participants"].([]any) {
		found = found || p.(map[string]any)["id"] == pid
	}
	if !found {
		t.Error("a leave with a forged ticket header ended bob's admission on his cookie")
	}
}

// TestLeave_BrowserDropsItsTicketCookies: a browser that leaves drops its
// ticket cookies, so that under the no-fallback rule its next page load is
// a fresh join and not the "removed" page.
func TestLeave_BrowserDropsItsTicketCookies(t *testing.T) {
	c := newCluster(t, clusterOptions{policyConfig: staffTestUser})
	n := c.nodes[0]
	c.createRoom(n, host("hanna"), "standup", map[string]any{"lobby_enabled": false})
	b := c.login(n)
	if r := call(t, b, http.MethodPost, n.apiURL("standup/join"), "", map[string]any{}, roomsapi.CSRFHeader, "1"); r.Status != http.StatusOK {
		t.Fatalf("join: %d %s", r.Status, r.Body)
	}
	if r := call(t, b, http.MethodPost, n.apiURL("standup/leave"), "", nil, roomsapi.CSRFHeader, "1"); r.Status != http.StatusNoContent {
		t.Fatalf("leave: %d %s", r.Status, r.Body)
	}
	for _, path := range []string{"/room/standup", roomsapi.Prefix + "standup"} {
		u, _ := url.Parse(n.URL + path)
		for _, ck := range b.Jar.Cookies(u) {
			if strings.HasPrefix(ck.Name, roomsapi.TicketCookie) {
				t.Errorf("cookie %s still sent to %s after leaving", ck.Name, path)
			}
		}
	}
	nav := []string{"Accept", "text/html", "Sec-Fetch-Mode", "navigate", "Sec-Fetch-Dest", "document"}
	if r := call(t, b, http.MethodGet, n.URL+"/room/standup", "", nil, nav...); r.Status != http.StatusOK {
		t.Fatalf("page load after leaving: %d, want a fresh join", r.Status)
	}
}
