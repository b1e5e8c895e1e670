package e2eeapi_test

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/coder/websocket"

	"github.com/meetguard/meetguard/gateway/app"
	"github.com/meetguard/meetguard/gateway/audit"
	"github.com/meetguard/meetguard/gateway/config"
	"github.com/meetguard/meetguard/gateway/demoapp"
	"github.com/meetguard/meetguard/gateway/e2eeapi"
	"github.com/meetguard/meetguard/gateway/internal/gwtest"
	"github.com/meetguard/meetguard/gateway/roomsapi"
)

// relaySpy is a connection to the demo app's room that sees every event the app relays to the room's members:
// what the app holds of the chat.
type relaySpy struct {
	mu     sync.Mutex
	events []string
}

func spyOnRoom(t *testing.T, appURL, room string) *relaySpy {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	h := http.Header{demoapp.HeaderUser: {"Relay Log"}, demoapp.HeaderEmail: {"relay@example.com"}, demoapp.HeaderRole: {"viewer"}, demoapp.HeaderRoom: {room}}
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(appURL, "http")+"/room/"+room+"/ws", &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadLimit(1 << 20)
	s := &relaySpy{}
	go func() {
		for {
			_, b, err := c.Read(ctx)
			if err != nil {
				return
			}
			s.mu.Lock()
			s.events = append(s.events, string(b))
			s.mu.Unlock()
		}
	}()
	return s
}

// sealed returns the ciphertexts (base64url) the app relayed, in order.
func (s *relaySpy) sealed() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, e := range s.events {
		var ev struct{ Type, Data string }
		if json.Unmarshal([]byte(e), &ev) == nil && ev.Type == "sealed" {
			out = append(out, ev.Data)
		}
	}
	return out
}

func (s *relaySpy) contains(text string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.events {
		if strings.Contains(e, text) {
			return true
		}
	}
	return false
}

type chatStatus struct {
	Mode         string `json:"mode"`
	State        string `json:"state"`
	Epoch        uint64 `json:"epoch"`
	SecurityCode string `json:"securityCode"`
	Members      []struct {
		Credential string `json:"credential"`
		Self       bool   `json:"self"`
	} `json:"members"`
}

func chatState(t *testing.T, ctx context.Context) chatStatus {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify(window.meetguardChat.status())`))
	if err != nil {
		t.Fatalf("chat status: %v", err)
	}
	var st chatStatus
	_ = json.Unmarshal([]byte(s), &st)
	return st
}

func (st chatStatus) self() string {
	for _, m := range st.Members {
		if m.Self {
			return m.Credential
		}
	}
	return ""
}

// TestDemoChat_EncryptedEndToEndThroughTheGateway is the demo app's chat as people use it: Alice and Bob sign
// in on the provider's form in their own Chromium profiles and open a room of the demo app through the
// gateway; each page joins the room's key exchange, shows the same security code (so does a Go client in the
// room) and encrypts every chat line with SFrame. A message typed by one is shown decrypted by the other and
// opened by the Go client's own SFrame code, while everything the app relays (seen by a connection of its own
// to the room) holds no plaintext. Alice removes Bob while Bob's page ignores the removal (its key-exchange
// requests blocked, so it keeps its keys): what Alice says next, relayed to Bob anyway, does not open on his
// page, and the Go client still reads it.
func TestDemoChat_EncryptedEndToEndThroughTheGateway(t *testing.T) {
	browser := mediaBrowser(t)
	dapp, err := demoapp.New(demoapp.Options{OriginPatterns: []string{"127.0.0.1:*"}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(dapp)
	t.Cleanup(srv.Close)
	t.Cleanup(func() { _ = dapp.Close() })
	const room = "chat"
	aud := &gwtest.MemoryAudit{}
	g := gwtest.Start(t, gwtest.Options{
		Audit:     aud,
		Upstreams: []config.Upstream{{Name: "demo", URL: srv.URL}},
		Configure: func(c *config.Config) {
			c.Policy.Dir, c.Policy.Timeout = staffPolicyDir(t), 5*time.Second
			c.Rooms.Permanent = []config.PermanentRoom{{ID: room, Owner: "id1"}}
		},
		RoomsAPI: func(*app.App, *roomsapi.Options) {},
		E2EE:     func(*app.App, *e2eeapi.Options) {},
	})
	// open signs username in, in a browser profile of its own, and opens the demo room; prepare, if any, runs on
	// the new profile before it loads anything.
	open := func(name, username string, prepare ...func(context.Context)) context.Context {
		t.Helper()
		ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
		t.Cleanup(cancel)
		if err := chromedp.Do(ctx); err != nil {
			t.Fatal(err)
		}
		for _, p := range prepare {
			p(ctx)
		}
		lctx, cancelLogin := context.WithTimeout(ctx, 2*time.Minute)
		defer cancelLogin()
		if err := chromedp.Do(lctx, chromedp.Navigate(g.URL+"/room/"+room), chromedp.WaitVisible(chromedp.CSS("#username")),
			chromedp.SendKeys(chromedp.CSS("#username"), username), chromedp.SendKeys(chromedp.CSS("#password"), "verysecure"),
			chromedp.Click(chromedp.CSS(`button[type=submit]`)), chromedp.WaitReady(chromedp.CSS("#e2ee-state"))); err != nil {
			t.Fatalf("%s: sign in and open the demo room: %v", name, err)
		}
		if _, err := chromedp.Run(lctx, chromedp.Poll[bool](`window.meetguardChat !== undefined`)); err != nil {
			t.Fatalf("%s: the demo room's script never ran: %v", name, err)
		}
		return ctx
	}
	spy := spyOnRoom(t, srv.URL, room)
	start := time.Now()
	alice := open("alice", g.IdP.Username)
	bob := open("bob", "test-user2")
	carol := goMember(t, g, room, "carol")

	var a, b chatStatus
	pollUntil(t, "both pages and the Go client hold one epoch secret of three members", func() (bool, string) {
		c := carol.Status()
		a, b = chatState(t, alice), chatState(t, bob)
		return c.SecurityCode != "" && len(c.Members) == 3 && a.SecurityCode == c.SecurityCode && b.SecurityCode == c.SecurityCode,
			fmt.Sprintf("go %d %q, alice %+v, bob %+v", c.Epoch, c.SecurityCode, a, b)
	})
	t.Logf("figure: sign-in to the same security code on both demo pages and the Go client: %v", time.Since(start))
	for name, ctx := range map[string]context.Context{"alice": alice, "bob": bob} {
		if shown, err := chromedp.Run(ctx, chromedp.Text("#code")); err != nil || shown != a.SecurityCode {
			t.Fatalf("%s's panel shows %q, want %q (%v)", name, shown, a.SecurityCode, err)
		}
	}

	type opened struct{ Text, Sender string }
	openedOn := func(ctx context.Context) []opened {
		s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify(window.meetguardChat.opened)`))
		if err != nil {
			t.Fatal(err)
		}
		var out []opened
		_ = json.Unmarshal([]byte(s), &out)
		return out
	}
	say := func(ctx context.Context, text string) {
		t.Helper()
		if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS("#text"), text+"\r")); err != nil {
			t.Fatal(err)
		}
	}
	shownTo := func(ctx context.Context, name, text, sender string) {
		t.Helper()
		pollUntil(t, name+" reads "+text, func() (bool, string) {
			got := openedOn(ctx)
			for _, o := range got {
				if o.Text == text && o.Sender == sender {
					log, _ := chromedp.Run(ctx, chromedp.Text("#log"))
					return strings.Contains(log, text), log
				}
			}
			log, _ := chromedp.Run(ctx, chromedp.Text("#log"))
			return false, fmt.Sprintf("opened %v, log %q, relayed %d", got, log, len(spy.sealed()))
		})
	}
	const hello, reply = "the launch code is BANANA-42", "got it: MANGO-17"
	say(alice, hello)
	shownTo(bob, "bob", hello, a.self())
	say(bob, reply)
	shownTo(alice, "alice", reply, b.self())
	if spy.contains("BANANA") || spy.contains("MANGO") {
		t.Fatal("the demo app relayed chat text in the clear")
	}
	relayed := spy.sealed()
	if len(relayed) < 2 {
		t.Fatalf("the app relayed %d sealed messages, want 2", len(relayed))
	}
	metadata := []byte("meetguard/e2ee/v2 chat " + room)
	frame, _ := base64.RawURLEncoding.DecodeString(relayed[0])
	if pt, from, err := carol.Decrypt(metadata, frame); err != nil || string(pt) != hello || from.String() != a.self() {
		t.Fatalf("the Go client opens alice's message as %q from %s (%v), want %q from %s", pt, from, err, hello, a.self())
	}
	shots, _ := os.MkdirTemp("", "meetguard-demochat-")
	for _, p := range []*page{{name: "alice-demo-room", ctx: alice}, {name: "bob-demo-room", ctx: bob}} {
		axeCheck(t, p)
		p.screenshot(t, shots)
	}

	// Bob's page ignores its removal: none of its key-exchange requests reach the gateway any more.
	if _, err := chromedp.Call(bob, network.SetBlockedURLs, network.SetBlockedURLsParams{URLPatterns: []*network.BlockPattern{{URLPattern: "*://*:*/.meetguard/api/v1/rooms/*/e2ee/*", Block: true}}}); err != nil {
		t.Fatal(err)
	}
	before := chatState(t, bob)
	removed, err := chromedp.Run(alice, chromedp.Evaluate[string](`(async () => {
		const api = '/.meetguard/api/v1/rooms/`+room+`';
		const h = {'Content-Type': 'application/json', 'Accept': 'application/json', 'Meetguard-CSRF': '1'};
		const view = await (await fetch(api, {credentials: 'same-origin', headers: h})).json();
		const bob = (view.participants || []).find(p => (p.name || '').includes('User2'));
		if (!bob) return 'bob not in ' + JSON.stringify(view);
		const r = await fetch(api + '/participants/' + encodeURIComponent(bob.id) + '/remove', {method: 'POST', credentials: 'same-origin', headers: h, body: '{}'});
		return r.ok ? 'removed' : 'status ' + r.status;
	})()`, chromedp.EvalAwaitPromise))
	if err != nil || removed != "removed" {
		t.Fatalf("alice removes bob: %q %v", removed, err)
	}
	pollUntil(t, "alice's page and the Go client on a new epoch of two", func() (bool, string) {
		c := carol.Status()
		a = chatState(t, alice)
		return c.Epoch > before.Epoch && len(c.Members) == 2 && a.SecurityCode == c.SecurityCode && a.Epoch == c.Epoch,
			fmt.Sprintf("go %d/%d, alice %+v", c.Epoch, len(c.Members), a)
	})
	if s := chatState(t, bob); s.State != "member" || s.Epoch != before.Epoch {
		t.Fatalf("bob's page was meant to keep its keys: %+v", s)
	}
	const after = "now without Bob: ORANGE-7"
	n := len(spy.sealed())
	say(alice, after)
	pollUntil(t, "the app relays alice's next message", func() (bool, string) { return len(spy.sealed()) > n, "" })
	last := spy.sealed()[n]
	if spy.contains("ORANGE") {
		t.Fatal("the demo app relayed chat text in the clear")
	}
	frame, _ = base64.RawURLEncoding.DecodeString(last)
	if pt, _, err := carol.Decrypt(metadata, frame); err != nil || string(pt) != after {
		t.Fatalf("the Go client, still a member, opens %q (%v), want %q", pt, err, after)
	}
	res, err := chromedp.Run(bob, chromedp.Evaluate[string](`JSON.stringify(window.meetguardChat.open(`+jsQuote(last)+`))`))
	if err != nil || !strings.Contains(res, `"error"`) || strings.Contains(res, "ORANGE") {
		t.Fatalf("bob's page, holding its old keys, opens the message sent after his removal: %s %v", res, err)
	}
	t.Logf("bob's page on the message sent after his removal: %s", res)
	(&page{name: "bob-demo-room-removed", ctx: bob}).screenshot(t, shots)

	t.Run("the panel shows an alarm and reports it to the gateway, which audits it", func(t *testing.T) {
		// Bob comes back in another profile, whose every GET …/e2ee/authority is answered with another key (a
		// gateway that certifies him with a key it did not publish): his own credential fails to verify, which
		// is the alarm bad_signature. The page must show it and report it once; the gateway writes the record.
		other, _, _ := ed25519.GenerateKey(nil)
		tamper := func(ctx context.Context) {
			paused := make(chan fetch.RequestID, 16)
			if err := chromedp.Listen(ctx, func(ev any) {
				if e, ok := ev.(*fetch.EventRequestPaused); ok {
					select {
					case paused <- e.RequestID:
					default:
					}
				}
			}); err != nil {
				t.Fatal(err)
			}
			go func() {
				for {
					select {
					case <-ctx.Done():
						return
					case id := <-paused:
						_, _ = chromedp.Call(ctx, fetch.FulfillRequest, fetch.FulfillRequestParams{RequestID: id, ResponseCode: http.StatusOK,
							ResponseHeaders: []*fetch.HeaderEntry{{Name: "Content-Type", Value: "application/octet-stream"}}, Body: other})
					}
				}
			}()
			if _, err := chromedp.Call(ctx, fetch.Enable, fetch.EnableParams{Patterns: []*fetch.RequestPattern{{URLPattern: "*/e2ee/authority*"}}}); err != nil {
				t.Fatal(err)
			}
		}
		before := len(aud.Records(audit.EventE2EEClientAlarm))
		bob2 := open("bob-again", "test-user2", tamper)
		pollUntil(t, "bob's new page halts, shows the alarm and reports it", func() (bool, string) {
			reported, _ := chromedp.Run(bob2, chromedp.Evaluate[int](`window.meetguardChat.alarmReported()`))
			banner, _ := chromedp.Run(bob2, chromedp.Evaluate[string](`(e => e.hidden ? '' : e.textContent)(document.getElementById('e2ee-alarm'))`))
			return reported == http.StatusNoContent && strings.Contains(banner, "bad_signature"), fmt.Sprintf("reported %d, banner %q", reported, banner)
		})
		recs := aud.Records(audit.EventE2EEClientAlarm)[before:]
		if len(recs) != 1 {
			t.Fatalf("the gateway audited %d alarm reports of bob's page, want 1: %v", len(recs), recs)
		}
		r := recs[0]
		if r[audit.FieldKind] != "bad_signature" || r[audit.FieldRoom] != room || r[audit.FieldSubject] == nil || r[audit.FieldSubject] == "id1" ||
			!strings.Contains(fmt.Sprint(r[audit.FieldDetail]), "not signed by the authority key") {
			t.Fatalf("audit record of the reported alarm: %v", r)
		}
		axeCheck(t, &page{name: "bob-demo-room-alarm", ctx: bob2})
		(&page{name: "bob-demo-room-alarm", ctx: bob2}).screenshot(t, shots)
	})
}

func jsQuote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
