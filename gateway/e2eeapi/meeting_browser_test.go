package e2eeapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/meetguard/meetguard/crypto/e2ee"
	"github.com/meetguard/meetguard/crypto/e2ee/e2eehttp"
	"github.com/meetguard/meetguard/gateway/app"
	"github.com/meetguard/meetguard/gateway/audit"
	"github.com/meetguard/meetguard/gateway/config"
	"github.com/meetguard/meetguard/gateway/e2eeapi"
	"github.com/meetguard/meetguard/gateway/internal/gwtest"
	"github.com/meetguard/meetguard/gateway/roomsapi"
	"github.com/meetguard/meetguard/gateway/syncbuf"
	"github.com/meetguard/meetguard/gateway/upstream"
	"github.com/meetguard/meetguard/gateway/upstream/livekit"
	"github.com/meetguard/meetguard/gateway/upstream/livekit/livekittest"
	"github.com/meetguard/meetguard/gateway/web"
	"github.com/meetguard/meetguard/policies"
)

// staffPolicyDir writes the shipped policies with the test provider's mail domain as a staff domain, so its
// users join without a lobby.
func staffPolicyDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := policies.WriteTo(dir); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "data.json")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var data map[string]any
	if err := json.Unmarshal(b, &data); err != nil {
		t.Fatal(err)
	}
	cfg := data["meetguard"].(map[string]any)["config"].(map[string]any)
	cfg["staff_domains"] = append(cfg["staff_domains"].([]any), "zitadel.ch")
	if b, err = json.Marshal(data); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// signIn opens url in a fresh browser context (its own cookies) of browser, signs in on the provider's own
// login form as username, and waits for the meeting page the gateway sends it back to.
func signIn(t *testing.T, browser context.Context, name, url, username string) (p *page, close func()) {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	// The first action on a tab's own context opens it; a timeout context would close it when it ends.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatal(err)
	}
	lctx, cancelLogin := context.WithTimeout(ctx, 2*time.Minute)
	defer cancelLogin()
	if err := chromedp.Do(lctx, chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS("#username")),
		chromedp.SendKeys(chromedp.CSS("#username"), username), chromedp.SendKeys(chromedp.CSS("#password"), "verysecure"),
		chromedp.Click(chromedp.CSS(`button[type=submit]`)), chromedp.WaitReady(chromedp.CSS("#code"))); err != nil {
		t.Fatalf("%s: sign in and open the meeting page: %v", name, err)
	}
	// #code exists once the page is parsed, which may be before its script (at the end of the body) has run.
	if _, err := chromedp.Run(lctx, chromedp.Poll[bool](`window.meetguardMeeting !== undefined`)); err != nil {
		t.Fatalf("%s: the meeting page's script never ran: %v", name, err)
	}
	t.Logf("%s: signed in, the page joins by itself", name)
	return &page{name: name, ctx: ctx}, cancel
}

// goMember is a headless Go client in the room with a bearer token: it registers its key, then joins through
// the rooms API (the room requires e2ee, so the key comes first) and presents the ticket from then on.
func goMember(t *testing.T, g *gwtest.Gateway, room, sub string) *e2ee.Client {
	t.Helper()
	c := g.IdP.Claims(g.IdP.ClientID)
	c["sub"], c["name"], c["email"], c["email_verified"] = sub, "Carol", sub+"@zitadel.ch", true
	c["exp"] = time.Now().Add(time.Hour).Unix()
	tok := g.IdP.Sign(t, c, "")
	var ticket atomic.Value
	ticket.Store("")
	tr, err := e2eehttp.NewTransport(e2eehttp.Options{Gateway: g.URL, Room: room, MaxWait: 5 * time.Second, Authorize: func(r *http.Request) error {
		r.Header.Set("Authorization", "Bearer "+tok)
		if tk := ticket.Load().(string); tk != "" {
			r.Header.Set(e2eeapi.TicketHeader, tk)
		}
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	cl, err := e2ee.NewClient(ctx, e2ee.ClientOptions{Transport: tr, AuthorityKey: g.App.E2EE.PublicKey(), Room: room})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = cl.Run(ctx, nil) }()
	pollUntil(t, "the Go client registers its key", func() (bool, string) { return cl.Credential() != nil, fmt.Sprint(cl.Status().State) })
	req, _ := http.NewRequest(http.MethodPost, g.URL+"/.meetguard/api/v1/rooms/"+room+"/join", strings.NewReader("{}"))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct{ Status, Ticket string }
	_ = json.NewDecoder(resp.Body).Decode(&body)
	if resp.StatusCode != http.StatusOK || body.Status != "admitted" {
		t.Fatalf("the Go client's join: %d %+v", resp.StatusCode, body)
	}
	ticket.Store(body.Ticket)
	return cl
}

// TestMeeting_SignedInBrowsersThroughTheGateway is the proof as a person runs it: a gateway with the
// real rooms API and policy, the e2ee API and a LiveKit upstream in front of a real livekit-server, whose
// webhooks come back to the gateway. Alice and Bob sign in on the identity provider's form in their own
// Chromium profiles, open the room's meeting page, which registers a device key, joins, and signals LiveKit
// through the gateway, which mints each token (with the room's e2ee mark); a Go client joins headless. All
// three show one security code and the pages decode each other's video. A page that holds a valid LiveKit
// token but no keys decodes nothing, and LiveKit's webhooks report it as a participant the gateway did not
// admit, while every page the gateway admitted is reported as its own. Alice removes Bob with the rooms API
// from her page while Bob's page ignores the removal (its key-exchange requests are blocked, so it keeps its
// keys): she and the Go client move to a new epoch and Bob's page decodes no further frame; once it hears from
// the gateway again it shows it was removed.
func TestMeeting_SignedInBrowsersThroughTheGateway(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	public := "http://" + ln.Addr().String()
	lk := livekittest.Start(t, livekittest.Options{WebhookURL: public + upstream.WebhookPath("lk")})
	lkWS := "ws" + strings.TrimPrefix(lk.URL, "http")
	aud := &gwtest.MemoryAudit{}
	const room = "secret"
	policyDir := staffPolicyDir(t)
	// The gateway's key exchange log, shown if the kick never rotates.
	gwLogs := &syncbuf.Buffer{}
	gwLog := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), gwLogs, zap.InfoLevel)).Named("gw")
	g := gwtest.Start(t, gwtest.Options{
		Listener: ln, Audit: aud, Logger: gwLog,
		Upstreams: []config.Upstream{{Name: "lk", URL: lk.URL, Kind: "livekit", Prefix: "/lk/", Rooms: config.UpstreamRooms{Path: "/lk/room/{room}"},
			LiveKit: &config.LiveKit{APIKey: lk.APIKey, APISecret: lk.APISecret}}},
		Configure: func(c *config.Config) {
			c.Policy.Dir, c.Policy.Timeout = policyDir, 5*time.Second
			c.Rooms.Permanent = []config.PermanentRoom{{ID: room, Owner: "id1", E2EERequired: true}}
		},
		RoomsAPI: func(*app.App, *roomsapi.Options) {},
		// Mallory's page reaches livekit-server directly with a token the test mints.
		E2EE: func(_ *app.App, o *e2eeapi.Options) { o.Meeting.ConnectSrc = []string{lkWS, lk.URL} },
	})
	browser := mediaBrowser(t)
	shots, _ := os.MkdirTemp("", "meetguard-meeting-")
	start := time.Now()
	pa, _ := signIn(t, browser, "alice", g.URL+web.MeetingPath(room), g.IdP.Username)
	pb, _ := signIn(t, browser, "bob", g.URL+web.MeetingPath(room), "test-user2")
	carol := goMember(t, g, room, "carol")

	var st e2ee.Status
	pollUntil(t, "both pages and the Go client hold one epoch secret", func() (bool, string) {
		st = carol.Status()
		a, b := pa.status(t), pb.status(t)
		return st.SecurityCode != "" && len(st.Members) == 3 && a.SecurityCode == st.SecurityCode && b.SecurityCode == st.SecurityCode && a.Epoch == st.Epoch && b.Epoch == st.Epoch,
			fmt.Sprintf("go %d %q, alice %s %d %q, bob %s %d %q", st.Epoch, st.SecurityCode, a.State, a.Epoch, a.SecurityCode, b.State, b.Epoch, b.SecurityCode)
	})
	pollUntil(t, "each page decodes the other's video", func() (bool, string) {
		a, b := pa.stats(t), pb.stats(t)
		return a.FramesDecoded > 0 && b.FramesDecoded > 0, fmt.Sprintf("alice %+v, bob %+v", a, b)
	})
	t.Logf("figure: sign-in page load to first decrypted frame on both pages: %v", time.Since(start))
	for _, p := range []*page{pa, pb} {
		s := p.stats(t)
		if !s.E2EERequired {
			t.Fatalf("%s's LiveKit token (minted by the gateway) does not mark the room as requiring e2ee", p.name)
		}
		if len(s.RemoteEncrypted) == 0 || !s.RemoteEncrypted[0] || len(s.Clear) != 0 {
			t.Fatalf("%s's page receives video that is not end-to-end encrypted: %+v", p.name, s)
		}
		if shown, err := chromedp.Run(p.ctx, chromedp.Text("#code")); err != nil || shown != st.SecurityCode {
			t.Fatalf("%s's page shows the code %q, want %q (%v)", p.name, shown, st.SecurityCode, err)
		}
	}

	// Alice owns the room: her host console, opened in another tab of her browser after her meeting page, shows
	// the security code her meeting page shows (the page answers the console's ask on the same-origin
	// "meetguard-e2ee" channel; the gateway never knows the code).
	func() {
		cctx, cancel := chromedp.NewContext(pa.ctx)
		defer cancel()
		// Open the tab on its own context: a tab opened by a timeout context closes when that context ends.
		if err := chromedp.Do(cctx); err != nil {
			t.Fatal(err)
		}
		lctx, cancelLoad := context.WithTimeout(cctx, 2*time.Minute)
		defer cancelLoad()
		if err := chromedp.Do(lctx, chromedp.Navigate(g.URL+web.ConsolePath(room)), chromedp.WaitReady(chromedp.CSS("#e2ee-code"))); err != nil {
			t.Fatalf("alice's console: %v", err)
		}
		pollUntil(t, "alice's console shows her meeting page's security code", func() (bool, string) {
			ectx, cancelEval := context.WithTimeout(cctx, 10*time.Second)
			defer cancelEval()
			shown, err := chromedp.Run(ectx, chromedp.Evaluate[string](`document.getElementById("e2ee-code").textContent`))
			if err != nil {
				return false, err.Error()
			}
			return strings.HasPrefix(shown, st.SecurityCode+" · "), fmt.Sprintf("console shows %q, page %q", shown, st.SecurityCode)
		})
	}()

	t.Run("a page with a LiveKit token but without meetguard's keys decodes nothing and is reported", func(t *testing.T) {
		var pm *page
		for attempt := 1; pm == nil; attempt++ {
			pm = openManual(t, pa, "mallory", g.URL+web.MeetingPath(room)+"#manual", map[string]any{
				"room": room, "authorityKey": "00", "livekitURL": lkWS, "withoutKeys": true,
				"livekitToken": livekitToken(t, lk, "mallory", room),
			})
			if pm == nil && attempt == 3 {
				t.Fatal("mallory's page never connected to LiveKit")
			}
		}
		pollUntil(t, "mallory receives the encrypted video and reports decryption errors", func() (bool, string) {
			s := pm.stats(t)
			return s.PacketsReceived > 100 && s.EncryptionErrors > 0, fmt.Sprintf("%+v", s)
		})
		if s := pm.stats(t); s.FramesDecoded != 0 {
			t.Fatalf("a page without keys decoded %d frames", s.FramesDecoded)
		}
		pm.screenshot(t, shots)
		joined := func() (ours map[string]bool, foreign []string) {
			ours = map[string]bool{}
			for _, r := range aud.Records(audit.EventUpstreamParticipant) {
				if r[audit.FieldKind] != string(livekit.ParticipantJoined) || r[audit.FieldRoom] != room {
					continue
				}
				if p, _ := r[audit.FieldPerson].(string); p != "" {
					ours[p] = true
				} else {
					foreign = append(foreign, fmt.Sprint(r[audit.FieldIdentity]))
				}
			}
			return ours, foreign
		}
		pollUntil(t, "LiveKit reports both signed-in pages as the gateway's and mallory as nobody's", func() (bool, string) {
			ours, foreign := joined()
			return len(ours) == 2 && len(foreign) == 1 && foreign[0] == "mallory", fmt.Sprintf("ours %v, foreign %v", ours, foreign)
		})
	})

	t.Run("a client that ignores the e2ee mark and publishes in the clear is refused by the pages", func(t *testing.T) {
		// trudy's LiveKit identity (hers to choose) holds a no-break space: the pages' clear_media report names it,
		// and must still reach the audit log (the page sends it as a space; the gateway never refuses the text).
		const trudy = "tru\u00a0dy"
		var pt *page
		for attempt := 1; pt == nil; attempt++ {
			pt = openManual(t, pa, "trudy", g.URL+web.MeetingPath(room)+"#manual", map[string]any{
				"room": room, "authorityKey": "00", "livekitURL": lkWS, "withoutKeys": true, "clearMedia": true,
				"livekitToken": livekitToken(t, lk, trudy, room),
			})
			if pt == nil && attempt == 3 {
				t.Fatal("trudy's page never connected to LiveKit")
			}
		}
		for _, p := range []*page{pa, pb} {
			pollUntil(t, p.name+"'s page refuses trudy's clear tracks and says so", func() (bool, string) {
				s := p.stats(t)
				banner, _ := chromedp.Run(p.ctx, chromedp.Text("#clear"))
				return slices.Contains(s.Clear, trudy) && strings.Contains(strings.ReplaceAll(banner, "\u00a0", " "), "tru dy"), fmt.Sprintf("%+v %q", s, banner)
			})
		}
		// Each page reports what it shows as the alarm clear_media, once; the gateway audits each report.
		pollUntil(t, "the gateway audits both pages' reports of trudy's clear media", func() (bool, string) {
			by := map[string]int{}
			for _, r := range aud.Records(audit.EventE2EEClientAlarm) {
				if r[audit.FieldKind] == "clear_media" && r[audit.FieldRoom] == room && strings.HasSuffix(fmt.Sprint(r[audit.FieldDetail]), "LiveKit participant tru dy") {
					by[fmt.Sprint(r[audit.FieldSubject])]++
				}
			}
			return len(by) == 2 && by["id1"] == 1, fmt.Sprintf("reports by subject: %v", by)
		})
		pt.screenshot(t, shots)
	})

	t.Run("axe finds no accessibility violation on the meeting page", func(t *testing.T) {
		axeCheck(t, pa)
	})

	pa.screenshot(t, shots)
	pb.screenshot(t, shots)
	before := pa.status(t)
	// Bob's page ignores its removal: from here on none of its key-exchange requests reach the gateway, so
	// its client never learns it was removed and keeps every key it holds (what a bomber's modified page does).
	blockE2EE := func(block bool) {
		t.Helper()
		var patterns []*network.BlockPattern
		if block {
			patterns = []*network.BlockPattern{{URLPattern: "*://*:*/.meetguard/api/v1/rooms/*/e2ee/*", Block: true}}
		}
		if _, err := chromedp.Call(pb.ctx, network.SetBlockedURLs, network.SetBlockedURLsParams{URLPatterns: patterns}); err != nil {
			t.Fatalf("bob's page: block its key exchange: %v", err)
		}
	}
	blockE2EE(true)
	// The Go client's new key is noticed by a tight loop (the figure), the page's by the time it installed it.
	carolKeyed := make(chan time.Time, 1)
	go func() {
		for deadline := time.Now().Add(3 * time.Minute); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
			if c := carol.Status(); c.Epoch > before.Epoch && len(c.Members) == 2 && c.SecurityCode != "" {
				carolKeyed <- time.Now()
				return
			}
		}
	}()
	var kick struct {
		At    int64    `json:"at"`
		Error string   `json:"error"`
		Names []string `json:"names"`
	}
	res, err := chromedp.Run(pa.ctx, chromedp.Evaluate[string](`(async () => {
		const api = '/.meetguard/api/v1/rooms/`+room+`';
		const h = {'Content-Type': 'application/json', 'Accept': 'application/json', 'Meetguard-CSRF': '1'};
		const view = await (await fetch(api, {credentials: 'same-origin', headers: h})).json();
		const names = (view.participants || []).map(p => p.name || '');
		const bob = (view.participants || []).find(p => (p.name || '').includes('User2'));
		if (!bob) return JSON.stringify({error: 'bob not listed', names});
		const at = Date.now();
		const r = await fetch(api + '/participants/' + encodeURIComponent(bob.id) + '/remove', {method: 'POST', credentials: 'same-origin', headers: h, body: '{}'});
		return JSON.stringify(r.ok ? {at, names} : {error: 'status ' + r.status, names});
	})()`, chromedp.EvalAwaitPromise))
	if err == nil {
		err = json.Unmarshal([]byte(res), &kick)
	}
	if err != nil || kick.Error != "" {
		t.Fatalf("alice removes bob from her page: %+v %v", kick, err)
	}
	t.Logf("the room's participants as alice's host view listed them before the kick: %q", kick.Names)
	kicked := time.UnixMilli(kick.At)
	t.Run("kick: the others rotate; bob's page, ignoring its removal, decodes no new frame", func(t *testing.T) {
		// What the gateway itself holds, if the rotation never comes: whether the rooms store still lists bob,
		// the signed roster's head, and every epoch and key registration it audited.
		defer func() {
			if !t.Failed() {
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if rm, err := g.App.Rooms.Room(ctx, room); err == nil {
				for _, p := range rm.Participants {
					t.Logf("rooms store lists %s %q as %s", p.ID, p.Name, p.Role)
				}
			} else {
				t.Logf("rooms store: %v", err)
			}
			st, err := g.App.E2EE.RoomStatus(ctx, room)
			t.Logf("gateway's signed roster: %+v %v", st, err)
			for _, line := range strings.Split(string(gwLogs.Bytes()), "\n") {
				if strings.Contains(line, "e2ee") {
					t.Logf("gateway log: %s", line)
				}
			}
			for _, ev := range []string{audit.EventE2EEKeyRegistered, audit.EventE2EEEpoch} {
				for _, r := range aud.Records(ev) {
					t.Logf("audit %s: %v", ev, r)
				}
			}
			dumpGoroutines(t, shots)
		}()
		var a pageStatus
		pollUntil(t, "alice's page and the Go client on a new epoch without bob", func() (bool, string) {
			c := carol.Status()
			a = pa.status(t)
			return c.Epoch > before.Epoch && len(c.Members) == 2 && a.SecurityCode == c.SecurityCode && a.Epoch == c.Epoch && len(a.Members) == 2,
				fmt.Sprintf("go %d/%d %v, alice %d/%d %s", c.Epoch, len(c.Members), c.State, a.Epoch, len(a.Members), a.State)
		})
		alice := time.UnixMilli(int64(pa.stats(t).KeyedAt[fmt.Sprintf("%d.%d", a.Epoch, a.Generation)]))
		c := <-carolKeyed
		t.Logf("figure: kick (host's POST remove) to alice's page sending with the new key %v, to the Go client holding it %v; last %v",
			alice.Sub(kicked), c.Sub(kicked), max(alice.Sub(kicked), c.Sub(kicked)))
		if s := pb.status(t); s.State != "member" || s.Epoch != before.Epoch {
			t.Fatalf("bob's page was meant to keep its keys: %+v", s)
		}
		time.Sleep(3 * time.Second) // the old keys' grace period (2 s) and frames in flight
		s1 := pb.stats(t)
		time.Sleep(3 * time.Second)
		s2 := pb.stats(t)
		t.Logf("bob's page after the rotation, still holding the old keys: +%d packets, +%d frames received, +%d decoded, +%d decryption errors",
			s2.PacketsReceived-s1.PacketsReceived, s2.FramesReceived-s1.FramesReceived, s2.FramesDecoded-s1.FramesDecoded, s2.EncryptionErrors-s1.EncryptionErrors)
		if s2.FramesDecoded != s1.FramesDecoded {
			t.Fatalf("bob's page decoded %d frames after the rotation", s2.FramesDecoded-s1.FramesDecoded)
		}
		blockE2EE(false)
		pollUntil(t, "bob's page, once it hears again, shows it was removed", func() (bool, string) {
			s := pb.status(t)
			return s.State == "removed", s.State
		})
		pb.screenshot(t, shots)
	})

	t.Run("alice's other devices: one confirmed, one rejected, which is an alarm the page reports", func(t *testing.T) {
		// Another browser profile where alice signs in again is another device of her identity (another session,
		// another admission; two tabs of one session are one admission). A device that joins while a page
		// is in the meeting is shown to it as her new device; one that was there before a page joined is listed
		// as UNCONFIRMED on that page, with a button to confirm it and one to reject it (docs/e2ee.md 7.2).
		fp1 := selfFingerprint(pa.status(t))
		click := func(p *page, sel string) {
			t.Helper()
			ctx, cancel := context.WithTimeout(p.ctx, time.Minute)
			defer cancel()
			// Find and click in one step in the page: the roster is redrawn on every status change, so a node
			// found by one DevTools call may be gone by the next.
			q, _ := json.Marshal(sel)
			if _, err := chromedp.Run(ctx, chromedp.Poll[bool](fmt.Sprintf(`(() => { const b = document.querySelector(%s); if (!b) return false; b.click(); return true })()`, q))); err != nil {
				t.Fatalf("%s: click %s: %v", p.name, sel, err)
			}
		}
		unconfirmedOn := func(p *page, fp string) {
			t.Helper()
			pollUntil(t, p.name+" lists alice's first device as unconfirmed", func() (bool, string) {
				s := p.status(t)
				return slices.Contains(s.Unconfirmed, fp), fmt.Sprintf("%s %v", s.State, s.Unconfirmed)
			})
		}
		pa2, closeSecond := signIn(t, browser, "alice-device-2", g.URL+web.MeetingPath(room), g.IdP.Username)
		unconfirmedOn(pa2, fp1)
		click(pa2, `button.confirm-device[data-fingerprint="`+fp1+`"]`)
		if s := pa2.status(t); slices.Contains(s.Unconfirmed, fp1) || s.Alarm != nil {
			t.Fatalf("after confirming, the second device still lists %v (alarm %v)", s.Unconfirmed, s.Alarm)
		}
		closeSecond()

		pa3, _ := signIn(t, browser, "alice-device-3", g.URL+web.MeetingPath(room), g.IdP.Username)
		unconfirmedOn(pa3, fp1)
		axeCheck(t, pa3) // with the device buttons shown
		before, _ := gatherCounter(t, g, "clone", "impersonation", "other")
		click(pa3, `button.reject-device[data-fingerprint="`+fp1+`"]`)
		pollUntil(t, "the third device halts, shows the alarm and reports it", func() (bool, string) {
			s := pa3.status(t)
			reported, _ := chromedp.Run(pa3.ctx, chromedp.Evaluate[int](`window.meetguardMeeting.alarmReported()`))
			return s.Alarm != nil && s.State == "halted" && reported == http.StatusNoContent, fmt.Sprintf("%s %v reported %d", s.State, s.Alarm, reported)
		})
		if banner, err := chromedp.Run(pa3.ctx, chromedp.Text("#alarm")); err != nil || !strings.Contains(banner, "impersonation") {
			t.Fatalf("alarm banner %q (%v)", banner, err)
		}
		var rec map[string]any
		for _, r := range aud.Records(audit.EventE2EEClientAlarm) {
			rec = r
		}
		if rec == nil || rec[audit.FieldKind] != "impersonation" || rec[audit.FieldSubject] != "id1" || rec[audit.FieldMember] == nil {
			t.Fatalf("audit record of the reported alarm: %v", rec)
		}
		if after, _ := gatherCounter(t, g, "clone", "impersonation", "other"); after != before+1 {
			t.Fatalf("meetguard_e2ee_alarms_total went from %v to %v", before, after)
		}
		pa3.screenshot(t, shots)
	})
}

func selfFingerprint(s pageStatus) string {
	for _, m := range s.Members {
		if m.Self {
			return m.Fingerprint
		}
	}
	return ""
}

// gatherCounter sums meetguard_e2ee_alarms_total over the given kinds.
func gatherCounter(t *testing.T, g *gwtest.Gateway, kinds ...string) (float64, error) {
	t.Helper()
	mfs, err := g.App.Metrics.Gather()
	if err != nil {
		return 0, err
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != "meetguard_e2ee_alarms_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "kind" && slices.Contains(kinds, l.GetValue()) {
					sum += m.GetCounter().GetValue()
				}
			}
		}
	}
	return sum, nil
}

// openManual opens the meeting page in a new tab of like's browser context (its cookies) without letting it
// start by itself, then starts it with cfg; nil when its LiveKit connection failed (a loaded machine).
func openManual(t *testing.T, like *page, name, url string, cfg map[string]any) *page {
	t.Helper()
	ctx, cancel := chromedp.NewContext(like.ctx)
	if err := chromedp.Do(ctx); err != nil {
		cancel()
		t.Fatal(err)
	}
	lctx, cancelLoad := context.WithTimeout(ctx, 2*time.Minute)
	defer cancelLoad()
	if err := chromedp.Do(lctx, chromedp.Navigate(url), chromedp.WaitReady(chromedp.CSS("#code"))); err != nil {
		cancel()
		t.Fatalf("open the page: %v", err)
	}
	b, _ := json.Marshal(cfg)
	sctx, cancelStart := context.WithTimeout(ctx, 2*time.Minute)
	defer cancelStart()
	if _, err := chromedp.Run(sctx, chromedp.Evaluate[any](fmt.Sprintf(`(async () => { await window.meetguardMeeting.start(%s); return true })()`, b), chromedp.EvalAwaitPromise)); err != nil {
		t.Logf("join failed, retrying: %v", err)
		cancel()
		return nil
	}
	t.Cleanup(cancel)
	return &page{name: name, ctx: ctx}
}

// axeCheck runs axe-core (from web/node_modules, never shipped) on the page and fails on any violation.
func axeCheck(t *testing.T, p *page) {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("..", "..", "web", "node_modules", "axe-core", "axe.min.js"))
	if err != nil {
		t.Skip("axe-core is not installed in web/node_modules: run `npm ci` in web/")
	}
	if _, err := chromedp.Run(p.ctx, chromedp.Evaluate[any](string(src))); err != nil {
		t.Fatal(err)
	}
	res, err := chromedp.Run(p.ctx, chromedp.Evaluate[string](`axe.run(document, {resultTypes: ['violations']}).then(r => JSON.stringify(r.violations.map(v => v.id + ': ' + v.help + ' ' + v.nodes.map(n => n.target.join(' ')).join(', '))))`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	if res != "[]" {
		t.Fatalf("axe violations on %s's page: %s", p.name, res)
	}
}
