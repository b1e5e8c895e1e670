package roomsapi_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/meetguard/meetguard/gateway/browsertest"
	"github.com/meetguard/meetguard/gateway/rooms"
	"github.com/meetguard/meetguard/gateway/roomsapi"
)

func TestJoin_TicketOpensOnlyItsRoomForItsHolder(t *testing.T) {
	c := newCluster(t, clusterOptions{})
	n := c.nodes[0]
	h, bob, carol := host("hanna"), staff("bob"), staff("carol")
	c.createRoom(n, h, "standup", map[string]any{"lobby_enabled": false})
	c.createRoom(n, h, "other", nil)

	bobTok := c.token(bob)
	r := c.join(n, bobTok, "standup", nil)
	if r.Status != http.StatusOK || r.str(t, "status") != "admitted" || r.str(t, "role") != "participant" {
		t.Fatalf("staff join: %d %s", r.Status, r.Body)
	}
	ticket := r.str(t, "ticket")
	if exp, err := time.Parse(time.RFC3339, r.str(t, "expires_at")); err != nil || time.Until(exp) <= 0 {
		t.Fatalf("expires_at %q: %v", r.str(t, "expires_at"), err)
	}
	if r.Header.Get("Set-Cookie") != "" {
		t.Errorf("bearer join set a cookie: %q", r.Header.Get("Set-Cookie"))
	}

	got := call(t, nil, http.MethodGet, n.URL+"/room/standup/page", bobTok, nil, roomsapi.TicketHeader, ticket)
	if got.Status != http.StatusOK || !strings.HasPrefix(string(got.Body), "upstream:/room/standup/page:bob") {
		t.Fatalf("room path with ticket: %d %s", got.Status, got.Body)
	}
	for _, req := range c.up.requestsBy("bob") {
		if req.Header.Get(roomsapi.TicketHeader) != "" || req.Header.Get("X-Meetguard-Room") != "standup" || req.Header.Get("X-Meetguard-Role") != "participant" {
			t.Errorf("upstream saw ticket %q room %q role %q", req.Header.Get(roomsapi.TicketHeader), req.Header.Get("X-Meetguard-Room"), req.Header.Get("X-Meetguard-Role"))
		}
	}

	tampered := []byte(ticket)
	tampered[len(tampered)/2] ^= 1
	cases := []struct {
		name, room, token, ticket string
	}{
		{"another room", "other", bobTok, ticket},
		{"another person's token", "standup", c.token(carol), ticket},
		{"tampered", "standup", bobTok, string(tampered)},
		{"garbage", "standup", bobTok, "not-a-ticket"},
		{"oversized", "standup", bobTok, strings.Repeat("A", 4000)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := len(c.up.requestsBy("bob")) + len(c.up.requestsBy("carol"))
			r := call(t, nil, http.MethodGet, n.URL+"/room/"+tc.room+"/page", tc.token, nil, roomsapi.TicketHeader, tc.ticket)
			if r.Status != http.StatusForbidden || r.str(t, "status") != "denied" || r.str(t, "message") != roomsapi.DeniedMessage {
				t.Errorf("got %d %s, want the one 403 refusal", r.Status, r.Body)
			}
			if after := len(c.up.requestsBy("bob")) + len(c.up.requestsBy("carol")); after != before {
				t.Errorf("a refused request reached the upstream")
			}
		})
	}

	// A new token of the same person keeps the ticket (bound to the subject
	// for apps), and leaving ends it everywhere.
	fresh := c.token(bob)
	if r := call(t, nil, http.MethodGet, n.URL+"/room/standup/x", fresh, nil, roomsapi.TicketHeader, ticket); r.Status != http.StatusOK {
		t.Fatalf("same person, new token: %d %s", r.Status, r.Body)
	}
	if r := call(t, nil, http.MethodPost, n.apiURL("standup/leave"), fresh, nil, roomsapi.TicketHeader, ticket); r.Status != http.StatusNoContent {
		t.Fatalf("leave: %d %s", r.Status, r.Body)
	}
	if r := call(t, nil, http.MethodGet, n.URL+"/room/standup/x", fresh, nil, roomsapi.TicketHeader, ticket); r.Status != http.StatusForbidden {
		t.Fatalf("after leave: %d %s", r.Status, r.Body)
	}
}

func TestJoin_ProxyWithoutTicketJoinsAndSetsRoomCookie(t *testing.T) {
	c := newCluster(t, clusterOptions{})
	n := c.nodes[0]
	c.createRoom(n, host("hanna"), "standup", nil)
	tok := c.token(staff("bob"))
	cl := browsertest.NoFollow(browsertest.Client(t))
	r := call(t, cl, http.MethodGet, n.URL+"/room/standup", tok, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("first request: %d %s", r.Status, r.Body)
	}
	var roomCookie, apiCookie *http.Cookie
	for _, ck := range (&http.Response{Header: r.Header}).Cookies() {
		switch ck.Name {
		case roomsapi.TicketCookie:
			roomCookie = ck
		case roomsapi.APITicketCookiePrefix + "standup":
			apiCookie = ck
		}
	}
	if roomCookie == nil || apiCookie == nil {
		t.Fatalf("ticket cookies not set: %v", r.Header.Values("Set-Cookie"))
	}
	if roomCookie.Path != "/room/standup" || !roomCookie.HttpOnly || roomCookie.SameSite != http.SameSiteLaxMode || roomCookie.Secure {
		t.Errorf("room cookie %+v: want Path=/room/standup HttpOnly SameSite=Lax, not Secure on http", roomCookie)
	}
	if apiCookie.Path != "/.meetguard/api/v1/" {
		t.Errorf("api cookie path %q", apiCookie.Path)
	}
	// The next request rides on the cookie: no second admission.
	before := c.admissions(t, "standup")
	if r := call(t, cl, http.MethodGet, n.URL+"/room/standup/next", tok, nil); r.Status != http.StatusOK {
		t.Fatalf("second request: %d %s", r.Status, r.Body)
	}
	if after := c.admissions(t, "standup"); after != before {
		t.Errorf("second request made a new admission: %d → %d", before, after)
	}
}

// admissions counts the participants admitted to room, as its host sees.
func (c *cluster) admissions(t testing.TB, room string) int {
	t.Helper()
	r := call(t, nil, http.MethodGet, c.nodes[0].apiURL(room), c.token(host("hanna")), nil)
	if r.Status != http.StatusOK {
		t.Fatalf("room view: %d %s", r.Status, r.Body)
	}
	ps, _ := r.json(t)["participants"].([]any)
	return len(ps)
}

func TestRun_LastConnectionClosedLeavesAndLiveSocketKeepsLease(t *testing.T) {
	c := newCluster(t, clusterOptions{
		leaveGrace: 200 * time.Millisecond, sweep: 50 * time.Millisecond,
		rooms: func(cfg *rooms.Config) { cfg.ParticipantLease = 900 * time.Millisecond },
	})
	n := c.nodes[0]
	c.createRoom(n, host("hanna"), "standup", nil)
	bob := staff("bob")
	tok := c.token(bob)
	ticket, _ := c.mustJoin(n, bob, "standup")
	ws := dialRoom(t, n, "standup", tok, ticket)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Three leases long: only the loop's Touch keeps the seat.
	for end := time.Now().Add(2700 * time.Millisecond); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if err := echo(ctx, ws, "hi"); err != nil {
			t.Fatalf("socket died while live: %v", err)
		}
	}
	if got := c.admissions(t, "standup"); got != 1 {
		t.Fatalf("live socket's admission lapsed: %d participants", got)
	}
	ws.CloseNow()
	deadline := time.Now().Add(3 * time.Second)
	for c.admissions(t, "standup") != 0 {
		if time.Now().After(deadline) {
			t.Fatal("participant still admitted after its last connection closed")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
