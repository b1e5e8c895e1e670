package roomsapi_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/coder/websocket"

	"github.com/meetguard/meetguard/gateway/admission"
	"github.com/meetguard/meetguard/gateway/browsertest"
	"github.com/meetguard/meetguard/gateway/config"
	"github.com/meetguard/meetguard/gateway/roomsapi"
	"github.com/meetguard/meetguard/gateway/upstream/livekit"
	"github.com/meetguard/meetguard/gateway/upstream/livekit/livekittest"
	"github.com/meetguard/meetguard/gateway/web"
)

// TestConsole_LiveKitUpstream: the host console in front of a real
// livekit-server. A guest knocks; the host admits her from the console;
// her signalling connection through the gateway joins the LiveKit room;
// the host's Remove and ban closes her gateway connection (4003) and the
// LiveKit adapter removes her from the meeting server itself, so media
// stops too, not only the gateway's socket.
func TestConsole_LiveKitUpstream(t *testing.T) {
	browsertest.Path(t)
	srv := livekittest.Start(t, livekittest.Options{})
	ad, err := livekit.New(context.Background(), livekit.Options{Upstream: "demo", URL: srv.URL, RoomPath: "/room/{room}",
		APIKey: srv.APIKey, APISecret: srv.APISecret})
	if err != nil {
		t.Fatal(err)
	}
	c := newCluster(t, clusterOptions{
		upstreamURL: srv.URL, policyConfig: staffTestUser, policyTimeout: time.Minute,
		adapters: map[string]admission.Adapter{"demo": ad},
		configure: func(cfg *config.Config) {
			cfg.Upstreams[0].Kind = "livekit"
			cfg.Upstreams[0].LiveKit = &config.LiveKit{APIKey: srv.APIKey, APISecret: srv.APISecret}
		},
	})
	n := c.nodes[0]
	const room = "standup"
	bctx := hostInChromium(t, c, n, room, map[string]any{"lobby_enabled": true})
	ctx, cancel := context.WithTimeout(bctx, 3*time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(n.URL+web.ConsolePath(room))); err != nil {
		t.Fatal(err)
	}
	if err := browsertest.EvalUntil(ctx, `document.getElementById("conn").textContent === `+jsString(web.Default().Catalog().In("en").T("console.js.live"))); err != nil {
		t.Fatalf("console never went live: %v", err)
	}

	mallory := guest("mallory")
	mk := c.join(n, c.token(mallory), room, nil)
	if mk.Status != http.StatusAccepted {
		t.Fatalf("mallory's knock: %d %s", mk.Status, mk.Body)
	}
	if err := browsertest.EvalUntil(ctx, `document.querySelectorAll("#waiting li").length === 1`); err != nil {
		t.Fatalf("the knock never reached the console: %v", err)
	}
	if err := chromedp.Do(ctx, chromedp.Click(`#waiting button[aria-label^="Admit"]`)); err != nil {
		t.Fatal(err)
	}
	adm := call(t, nil, http.MethodGet, n.apiURL(room+"/wait/"+mk.str(t, "wait_id")), c.token(mallory), nil)
	if adm.Status != http.StatusOK || adm.str(t, "status") != "admitted" {
		t.Fatalf("mallory after the console's admit: %d %s", adm.Status, adm.Body)
	}

	// Her LiveKit signalling, through the gateway, with her ticket.
	dctx, dcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer dcancel()
	q := url.Values{"access_token": {"meetguard"}, "protocol": {"16"}, "sdk": {"js"}}
	ws, resp, err := websocket.Dial(dctx, "ws"+strings.TrimPrefix(n.URL, "http")+"/room/"+room+"/rtc?"+q.Encode(), &websocket.DialOptions{
		HTTPHeader: http.Header{"Authorization": {"Bearer " + c.token(mallory)}, roomsapi.TicketHeader: {adm.str(t, "ticket")}}})
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("mallory's signalling through the gateway: %v (%d)", err, status)
	}
	defer ws.CloseNow()
	_, msg, err := ws.Read(dctx)
	if err != nil {
		t.Fatal(err)
	}
	j, err := livekittest.ParseJoin(msg)
	if err != nil || j.Room != room || j.CanPublish {
		t.Fatalf("mallory joined %+v (%v); want room %s as a viewer", j, err, room)
	}
	if _, err := srv.WaitParticipants(dctx, room, func(ids []string) bool { return len(ids) == 1 }); err != nil {
		t.Fatalf("livekit-server never listed her: %v", err)
	}

	if err := chromedp.Do(ctx, chromedp.Click(`#people button[aria-label="Remove and ban mallory"]`), chromedp.WaitVisible(`#reason`),
		chromedp.SetValue(`#reason`, "disruptive"), chromedp.Click(`#confirm-yes`)); err != nil {
		t.Fatal(err)
	}
	if code, reason := readClose(t, ws); code != 4003 || reason != "banned" {
		t.Fatalf("mallory's signalling closed with %d %q, want 4003 banned", code, reason)
	}
	if ids, err := srv.WaitParticipants(dctx, room, func(ids []string) bool { return len(ids) == 0 }); err != nil {
		t.Fatalf("livekit-server still lists her after the ban: %v (%v)", ids, err)
	}
	browsertest.Axe(ctx, t, "console after a ban, LiveKit upstream")
}
