package e2eeapi_test

import (
	"context"
	"encoding/hex"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/meetguard/meetguard/crypto/e2ee"
	"github.com/meetguard/meetguard/crypto/e2ee/e2eehttp"
	"github.com/meetguard/meetguard/gateway/app"
	"github.com/meetguard/meetguard/gateway/config"
	"github.com/meetguard/meetguard/gateway/e2eeapi"
	"github.com/meetguard/meetguard/gateway/internal/gwtest"
	"github.com/meetguard/meetguard/gateway/roomsapi"
)

// TestWebClient_AppTicketOutlivesItsLifetime is TestMeeting_MembersKeepTheirKeysPastTheTicketLifetime for the web
// client used by an app: its HTTPTransport's headers() send the ticket join gave, set once, and the gateway renews
// it in the Meetguard-Ticket answer header. Before the web transport sent the renewal, the app's first ticket
// expired after one lifetime, the next roster request was 403 not_member and the web client took it as its
// removal. Here tickets last 8 s; the web client (under Node, real gateway and rooms API over HTTP) must still
// be a member after three lifetimes and follow carol's join to the next epoch.
func TestWebClient_AppTicketOutlivesItsLifetime(t *testing.T) {
	const room, ttl = "longwebmeeting", 8 * time.Second
	webDir(t) // skips without Node or web/node_modules
	g := gwtest.Start(t, gwtest.Options{
		Upstreams: []config.Upstream{{Name: "demo", URL: "http://127.0.0.1:9", Rooms: config.UpstreamRooms{Path: "/room/{room}"}}},
		Configure: func(c *config.Config) {
			c.Policy.Dir, c.Policy.Timeout = staffPolicyDir(t), 5*time.Second
			c.Rooms.Permanent = []config.PermanentRoom{{ID: room, Owner: "id1"}}
			c.Rooms.TicketTTL = ttl
		},
		RoomsAPI: func(*app.App, *roomsapi.Options) {},
		E2EE:     func(*app.App, *e2eeapi.Options) {},
	})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	join := func(sub string) (token, ticket string) {
		t.Helper()
		token = g.IdP.Sign(t, appClaims(g, sub), "")
		j := postJoin(t, g, http.DefaultClient, room, func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) })
		return token, j.Ticket
	}
	goApp := func(sub string) *e2ee.Client {
		t.Helper()
		token, ticket := join(sub)
		tr, err := e2eehttp.NewTransport(e2eehttp.Options{Gateway: g.URL, Room: room, MaxWait: time.Second,
			Authorize: func(r *http.Request) error {
				r.Header.Set("Authorization", "Bearer "+token)
				r.Header.Set(e2eeapi.TicketHeader, ticket)
				return nil
			}})
		if err != nil {
			t.Fatal(err)
		}
		c, err := e2ee.NewClient(ctx, e2ee.ClientOptions{Transport: tr, AuthorityKey: g.App.E2EE.PublicKey(), Room: room})
		if err != nil {
			t.Fatal(err)
		}
		go func() { _ = c.Run(ctx, nil) }()
		return c
	}

	bob := goApp("bob")
	token, ticket := join("dave")
	// join.mjs sets the ticket once in headers() and long-polls at most 2 s: well within half a ticket's life.
	web := startJoinMJS(t, ctx, "MG_GATEWAY="+g.URL, "MG_ROOM="+room, "MG_TOKEN="+token, "MG_TICKET="+ticket,
		"MG_AUTHORITY="+hex.EncodeToString(g.App.E2EE.PublicKey()))
	sameEpoch := func(members int) {
		t.Helper()
		var st e2ee.Status
		pollUntil(t, fmt.Sprintf("bob with %d members", members), func() (bool, string) {
			s, err := settled([]*e2ee.Client{bob}, members)
			st = s
			return err == nil, fmt.Sprint(err)
		})
		web.waitFor(t, fmt.Sprintf("epoch %d with %d members and bob's code", st.Epoch, members), func(l webLine) bool {
			return l.State == "member" && l.Epoch == st.Epoch && len(l.Members) == members && l.Code == st.SecurityCode
		})
	}
	sameEpoch(2)

	// Three ticket lifetimes: the ticket the app set has long expired.
	time.Sleep(3 * ttl)
	web.mu.Lock()
	for _, l := range web.lines {
		if l.State != "member" && l.State != "waiting" || l.Exit != "" {
			web.mu.Unlock()
			t.Fatalf("the web client left the meeting after its first ticket's lifetime, nobody removed it: %+v", l)
		}
	}
	web.mu.Unlock()

	goApp("carol")
	sameEpoch(3)
}
