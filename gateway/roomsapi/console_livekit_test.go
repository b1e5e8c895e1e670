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
	"github.com/meetguard/meetguard/gateway/audit"
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
// the host makes her a participant and a viewer again from the keyboard,
// and livekit-server itself reports her canPublish true, then false, on
// the connection she already has (RoomService UpdateParticipant);
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

	// The host makes her a participant from the keyboard (type-ahead in the
	// role select, Tab to the button, Enter): livekit-server itself says she
	// may publish now, on the connection she already has; then a viewer
	// again, and she may not.
	ids, err := srv.Participants(dctx, room)
	if err != nil || len(ids) != 1 {
		t.Fatalf("livekit-server lists %v (%v)", ids, err)
	}
	if p, err := srv.Permission(dctx, room, ids[0]); err != nil || p.CanPublish {
		t.Fatalf("before the change livekit-server says %+v (%v); want no publishing", p, err)
	}
	for _, step := range []struct {
		key, role string
		publish   bool
	}{{"p", "participant", true}, {"v", "viewer", false}} {
		sel := `#people select[aria-label="Role of mallory"]`
		if err := chromedp.Do(ctx, chromedp.Focus(sel), chromedp.KeyEvent(step.key)); err != nil {
			t.Fatal(err)
		}
		if err := browsertest.EvalUntil(ctx, `document.querySelector(`+jsString(sel)+`).value === `+jsString(step.role)); err != nil {
			t.Fatalf("typing %q in the role select: %v", step.key, err)
		}
		if err := chromedp.Do(ctx, chromedp.KeyEvent("\t"), chromedp.KeyEvent("\r")); err != nil {
			t.Fatal(err)
		}
		p, err := srv.WaitPermission(dctx, room, ids[0], func(p livekittest.Permission) bool { return p.CanPublish == step.publish })
		if err != nil {
			t.Fatalf("after the console made her %s livekit-server says %+v (%v)", step.role, p, err)
		}
		if err := browsertest.EvalUntil(ctx, `document.getElementById("announce").textContent.includes(`+jsString("mallory is now")+`) &&
			document.querySelector("#people li").textContent.includes("1 device")`); err != nil {
			t.Fatalf("the console never said the role changed: %v", err)
		}
		browsertest.Axe(ctx, t, "console after a role change to "+step.role+", LiveKit upstream")
	}
	if got := roleRecordsOf(c, "mallory"); len(got) != 2 || got[0].Str(audit.FieldTo) != "participant" || got[1].Str(audit.FieldTo) != "viewer" {
		t.Fatalf("room.role records about mallory: %v", got)
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
