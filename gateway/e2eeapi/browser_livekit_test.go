package e2eeapi_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/meetguard/meetguard/crypto/e2ee"
	"github.com/meetguard/meetguard/gateway/browsertest"
	"github.com/meetguard/meetguard/gateway/e2eeapi"
	"github.com/meetguard/meetguard/gateway/rooms"
	"github.com/meetguard/meetguard/gateway/upstream/livekit/livekittest"
	"github.com/meetguard/meetguard/gateway/web"
)

// livekitToken mints a LiveKit access token as the gateway's adapter does (HS256, one room, person grants).
func livekitToken(t *testing.T, lk *livekittest.Server, identity, room string) string {
	t.Helper()
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: []byte(lk.APISecret)}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	claims := map[string]any{
		"iss": lk.APIKey, "sub": identity, "name": identity, "nbf": now.Add(-time.Minute).Unix(), "exp": now.Add(time.Hour).Unix(),
		"video": map[string]any{"roomJoin": true, "room": room, "canPublish": true, "canSubscribe": true, "canPublishData": true},
	}
	tok, err := jwt.Signed(sig).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// mediaBrowser starts headless Chromium with fake camera and microphone and loopback ICE.
func mediaBrowser(t *testing.T) context.Context {
	t.Helper()
	exe := browsertest.Path(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("use-fake-device-for-media-stream", true),
		chromedp.Flag("use-fake-ui-for-media-stream", true),
		chromedp.Flag("allow-loopback-in-peer-connection", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		chromedp.Flag("mute-audio", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	b, cancelB := chromedp.NewContext(actx)
	t.Cleanup(cancelB)
	if err := chromedp.Do(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// page is one participant's tab.
type page struct {
	name string
	ctx  context.Context
}

type pageStats struct {
	FramesDecoded    int    `json:"framesDecoded"`
	FramesReceived   int    `json:"framesReceived"`
	PacketsReceived  int    `json:"packetsReceived"`
	Mapped           int    `json:"mapped"`
	Received         int    `json:"received"`
	LastError        string `json:"lastError"`
	Announced        bool   `json:"announced"`
	EncryptionErrors int    `json:"encryptionErrors"`
	RemoteEncrypted  []bool `json:"remoteEncrypted"`
}

type pageStatus struct {
	State        string `json:"state"`
	Epoch        uint64 `json:"epoch"`
	Generation   uint8  `json:"generation"`
	SecurityCode string `json:"securityCode"`
	Members      []struct {
		Fingerprint string `json:"fingerprint"`
		Self        bool   `json:"self"`
	} `json:"members"`
}

// tryOpenPage is openPage that reports a page whose LiveKit connection failed as nil.
func (e *env) tryOpenPage(t *testing.T, browser context.Context, name string, cfg map[string]any) *page {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser)
	if err := chromedp.Do(ctx, e.navigateAs(cfg), chromedp.WaitReady(chromedp.CSS("#code"))); err != nil {
		cancel()
		t.Fatalf("%s: open the meeting page: %v", name, err)
	}
	b, _ := json.Marshal(cfg)
	sctx, cancelStart := context.WithTimeout(ctx, 2*time.Minute)
	defer cancelStart()
	if _, err := chromedp.Run(sctx, chromedp.Evaluate[any](fmt.Sprintf(`(async () => { await window.meetguardMeeting.start(%s); return true })()`, b), chromedp.EvalAwaitPromise)); err != nil {
		t.Logf("%s: join failed, retrying: %v", name, err)
		cancel()
		return nil
	}
	t.Cleanup(cancel)
	return &page{name: name, ctx: ctx}
}

// navigateAs opens the room's meeting page from the gateway with the credentials of cfg's headers (the
// user's bearer token and room ticket).
func (e *env) navigateAs(cfg map[string]any) chromedp.Action[chromedp.Void] {
	h := network.Headers{}
	for k, v := range cfg["headers"].(map[string]string) {
		h[k] = v
	}
	set := func(h network.Headers) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			_, err := chromedp.Call(ctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: h})
			return err
		})
	}
	// Only the page load: the key exchange sends the same headers itself, and LiveKit must not see them.
	return chromedp.Steps(set(h), chromedp.Navigate(e.URL+web.MeetingPath(cfg["room"].(string))), set(network.Headers{}))
}

func (e *env) openPage(t *testing.T, browser context.Context, name string, cfg map[string]any) *page {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx, e.navigateAs(cfg), chromedp.WaitReady(chromedp.CSS("#code"))); err != nil {
		t.Fatalf("%s: open the meeting page: %v", name, err)
	}
	b, _ := json.Marshal(cfg)
	t.Logf("%s: page loaded, joining", name)
	sctx, cancelStart := context.WithTimeout(ctx, 2*time.Minute)
	defer cancelStart()
	if _, err := chromedp.Run(sctx, chromedp.Evaluate[any](fmt.Sprintf(`(async () => { await window.meetguardMeeting.start(%s); return true })()`, b), chromedp.EvalAwaitPromise)); err != nil {
		log, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById('state').textContent`))
		t.Fatalf("%s: start: %v (page says %q)", name, err, log)
	}
	t.Logf("%s: joined", name)
	return &page{name: name, ctx: ctx}
}

func (p *page) status(t *testing.T) pageStatus {
	t.Helper()
	s, err := chromedp.Run(p.ctx, chromedp.Evaluate[string](`JSON.stringify(window.meetguardMeeting.status() ?? {})`))
	if err != nil {
		t.Fatalf("%s: status: %v", p.name, err)
	}
	var st pageStatus
	_ = json.Unmarshal([]byte(s), &st)
	return st
}

func (p *page) stats(t *testing.T) pageStats {
	t.Helper()
	s, err := chromedp.Run(p.ctx, chromedp.Evaluate[string](`window.meetguardMeeting.stats().then(JSON.stringify)`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("%s: stats: %v", p.name, err)
	}
	var st pageStats
	_ = json.Unmarshal([]byte(s), &st)
	return st
}

// pollUntil polls cond every 100 ms for up to 2 min (a loaded machine: the limit is a hang guard, not a
// measurement).
func pollUntil(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("never: %s (last: %s)", what, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (p *page) screenshot(t *testing.T, dir string) {
	if shot, err := chromedp.Run(p.ctx, chromedp.FullScreenshot(90)); err == nil {
		path := filepath.Join(dir, p.name+".png")
		if os.WriteFile(path, shot, 0o644) == nil {
			t.Logf("screenshot of %s's page: %s", p.name, path)
		}
	}
}

// TestBrowser_LiveKitMeetingIsEncryptedEndToEnd is the proof in real Chromium against a real
// livekit-server, with the keys from a real gateway: alice's and bob's pages (and a headless Go client) agree
// on the epoch and the security code and decode each other's video; a page with a valid LiveKit token but
// without meetguard's keys receives the tracks and decodes nothing; when bob is kicked, the others move to a
// new epoch and bob's page, still connected to LiveKit, decodes no new frame.
func TestBrowser_LiveKitMeetingIsEncryptedEndToEnd(t *testing.T) {
	lk := livekittest.Start(t, livekittest.Options{})
	lkWS := "ws" + strings.TrimPrefix(lk.URL, "http")
	e := newEnv(t, envOptions{meeting: e2eeapi.MeetingPage{ConnectSrc: []string{lkWS, lk.URL}}})
	browser := mediaBrowser(t)
	const room = "e2ee-meeting"
	alice, bob, carol, mallory := e.user("alice"), e.user("bob"), e.user("carol"), e.user("mallory")
	e.createRoom(room, alice, rooms.SettingsChange{})
	e.admit(alice, room, rooms.RoleHost)
	bobPID := e.admit(bob, room, rooms.RoleParticipant).ID
	e.admit(carol, room, rooms.RoleParticipant)
	goClient := e.client(carol, room, 0)
	e.run(goClient)

	config := func(u *user, withoutKeys bool) map[string]any {
		u.mu.Lock()
		ticket := u.tickets[room]
		u.mu.Unlock()
		return map[string]any{
			"room": room, "authorityKey": hex.EncodeToString(e.api.PublicKey()), "livekitURL": lkWS,
			"livekitToken": livekitToken(t, lk, u.name, room), "expectSubject": u.id.Subject, "withoutKeys": withoutKeys,
			"headers": map[string]string{"Authorization": "Bearer " + u.token, e2eeapi.TicketHeader: ticket},
		}
	}
	start := time.Now()
	pa := e.openPage(t, browser, "alice", config(alice, false))
	pb := e.openPage(t, browser, "bob", config(bob, false))
	shots, _ := os.MkdirTemp("", "meetguard-e2ee-browser-")

	var st e2ee.Status
	pollUntil(t, "both pages and the Go client hold one epoch secret", func() (bool, string) {
		st = goClient.Status()
		a, b := pa.status(t), pb.status(t)
		return st.SecurityCode != "" && len(st.Members) == 3 && a.SecurityCode == st.SecurityCode && b.SecurityCode == st.SecurityCode && a.Epoch == st.Epoch && b.Epoch == st.Epoch,
			fmt.Sprintf("go %d %q, alice %d %q, bob %d %q", st.Epoch, st.SecurityCode, a.Epoch, a.SecurityCode, b.Epoch, b.SecurityCode)
	})
	pollUntil(t, "each page decodes the other's video", func() (bool, string) {
		a, b := pa.stats(t), pb.stats(t)
		return a.FramesDecoded > 0 && b.FramesDecoded > 0, fmt.Sprintf("alice %+v, bob %+v", a, b)
	})
	t.Logf("figure: page load to first decrypted frame on both pages: %v", time.Since(start))
	for _, p := range []*page{pa, pb} {
		if s := p.stats(t); len(s.RemoteEncrypted) == 0 || !s.RemoteEncrypted[0] {
			t.Fatalf("%s's page receives video that is not end-to-end encrypted: %+v", p.name, s)
		}
	}

	t.Run("a page with a LiveKit token but without meetguard's keys decodes nothing", func(t *testing.T) {
		// Three media pages nearly fill this machine's two cores; a LiveKit connection that times out under that
		// load is retried (the page joins again), which says nothing about keys.
		var pm *page
		for attempt := 1; pm == nil; attempt++ {
			// The page is only code: mallory's tab loads it with alice's credentials, then joins LiveKit with
			// her own token and no key exchange at all.
			cfg := config(mallory, true)
			cfg["headers"] = config(alice, false)["headers"]
			pm = e.tryOpenPage(t, browser, "mallory", cfg)
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
	})

	t.Run("axe finds no accessibility violation on the meeting page", func(t *testing.T) {
		src, err := os.ReadFile(filepath.Join("..", "..", "web", "node_modules", "axe-core", "axe.min.js"))
		if err != nil {
			t.Skip("axe-core is not installed in web/node_modules: run `npm ci` in web/")
		}
		if _, err := chromedp.Run(pa.ctx, chromedp.Evaluate[any](string(src))); err != nil {
			t.Fatal(err)
		}
		res, err := chromedp.Run(pa.ctx, chromedp.Evaluate[string](`axe.run(document, {resultTypes: ['violations']}).then(r => JSON.stringify(r.violations.map(v => v.id + ': ' + v.help + ' ' + v.nodes.map(n => n.target.join(' ')).join(', '))))`, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatal(err)
		}
		if res != "[]" {
			t.Fatalf("axe violations: %s", res)
		}
	})

	pa.screenshot(t, shots)
	pb.screenshot(t, shots)
	before := pa.status(t)
	kicked := time.Now()
	if _, err := e.rooms.Remove(e.ctx, room, bobPID, false); err != nil {
		t.Fatal(err)
	}
	t.Run("kick: the others rotate, bob's page drops its keys and decodes no new frame", func(t *testing.T) {
		pollUntil(t, "alice's page and the Go client on a new epoch without bob", func() (bool, string) {
			g, a := goClient.Status(), pa.status(t)
			return g.Epoch > before.Epoch && len(g.Members) == 2 && a.SecurityCode == g.SecurityCode && a.Epoch == g.Epoch && len(a.Members) == 2,
				fmt.Sprintf("go %d/%d, alice %d/%d", g.Epoch, len(g.Members), a.Epoch, len(a.Members))
		})
		t.Logf("figure: kick to the remaining members' new key: %v", time.Since(kicked))
		pollUntil(t, "bob's page shows it was removed", func() (bool, string) {
			s := pb.status(t)
			return s.State == "removed", s.State
		})
		// Bob's page ignores nothing here, yet it stays connected to LiveKit: frames keep arriving and none
		// decodes. Two samples a few seconds apart bound the frames it decoded after its keys were dropped.
		time.Sleep(3 * time.Second) // the grace period of the old keys (2 s) and frames in flight
		s1 := pb.stats(t)
		pollUntil(t, "more frames reach bob's page", func() (bool, string) {
			s := pb.stats(t)
			return s.PacketsReceived > s1.PacketsReceived+100, fmt.Sprintf("%+v then %+v", s1, s)
		})
		if s2 := pb.stats(t); s2.FramesDecoded != s1.FramesDecoded {
			t.Fatalf("bob's page decoded %d frames after its removal", s2.FramesDecoded-s1.FramesDecoded)
		}
		pb.screenshot(t, shots)
	})
}
