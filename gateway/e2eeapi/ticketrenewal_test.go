package e2eeapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meetguard/meetguard/crypto/e2ee"
	"github.com/meetguard/meetguard/crypto/e2ee/e2eehttp"
	"github.com/meetguard/meetguard/gateway/app"
	"github.com/meetguard/meetguard/gateway/auth"
	"github.com/meetguard/meetguard/gateway/browsertest"
	"github.com/meetguard/meetguard/gateway/config"
	"github.com/meetguard/meetguard/gateway/e2eeapi"
	"github.com/meetguard/meetguard/gateway/internal/gwtest"
	"github.com/meetguard/meetguard/gateway/roomsapi"
	"github.com/meetguard/meetguard/gateway/syncbuf"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// The rooms API renews the tickets the key exchange is called with.
var _ e2eeapi.TicketRenewer = (*roomsapi.API)(nil)

// joinBody is the rooms API's answer to POST …/join.
type joinBody struct {
	Status        string `json:"status"`
	ParticipantID string `json:"participant_id"`
	Ticket        string `json:"ticket"`
}

// postJoin joins room through the rooms API with cl, which authorize signs in (a bearer token, or the session
// cookie in cl's jar with the header every cookie-authenticated change needs).
func postJoin(t *testing.T, g *gwtest.Gateway, cl *http.Client, room string, authorize func(*http.Request)) joinBody {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, g.URL+"/.meetguard/api/v1/rooms/"+room+"/join", strings.NewReader("{}"))
	req.Header.Set("Content-Type", "application/json")
	authorize(req)
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body joinBody
	_ = json.NewDecoder(resp.Body).Decode(&body)
	if resp.StatusCode != http.StatusOK || body.Status != "admitted" {
		t.Fatalf("join: %d %+v", resp.StatusCode, body)
	}
	return body
}

// TestMeeting_MembersKeepTheirKeysPastTheTicketLifetime is the kick that never rotated in the loaded browser
// run: room tickets last rooms.ticket_ttl (5 minutes by default) and a meeting lasts longer. Nothing renewed the
// ticket a member's key exchange presents — a page's API ticket cookie, an app's Meetguard-Ticket — so once it
// expired every e2ee request of every member was 403 not_member (a page took that as its removal, a Go client
// kept retrying on its old epoch), and the epoch the gateway signed for a kick reached nobody, as the failing
// run showed. Here tickets last 16 s; alice (a signed-in browser: session and ticket cookies) and bob and carol
// (apps: bearer tokens and the ticket header, set once at join) keep their keys for two ticket lifetimes without
// one refused request, with the clients' default 25 s long-polls (the gateway must cut them to a quarter of a
// ticket's life, or a quiet member's ticket expires during one), and then alice, the room's owner, removes bob:
// alice and carol must move to an epoch without him, and bob's newest ticket, still within its life, must be
// refused and not renewed.
func TestMeeting_MembersKeepTheirKeysPastTheTicketLifetime(t *testing.T) {
	const room, ttl = "longmeeting", 16 * time.Second
	policyDir := staffPolicyDir(t)
	logs := &syncbuf.Buffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("gateway log:\n%s", logs.Bytes())
		}
	})
	g := gwtest.Start(t, gwtest.Options{
		Logger:    zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), logs, zap.DebugLevel)),
		Upstreams: []config.Upstream{{Name: "demo", URL: "http://127.0.0.1:9", Rooms: config.UpstreamRooms{Path: "/room/{room}"}}},
		Configure: func(c *config.Config) {
			c.Policy.Dir, c.Policy.Timeout = policyDir, 5*time.Second
			c.Rooms.Permanent = []config.PermanentRoom{{ID: room, Owner: "id1", E2EERequired: true}}
			c.Rooms.TicketTTL = ttl
		},
		RoomsAPI: func(*app.App, *roomsapi.Options) {},
		E2EE:     func(*app.App, *e2eeapi.Options) {},
	})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	newClient := func(name string, opts e2eehttp.Options) *e2ee.Client {
		t.Helper()
		// The clients' default long-polls (25 s): the gateway's own cap is what keeps requests coming.
		opts.Gateway, opts.Room, opts.MaxWait = g.URL, room, 25*time.Second
		tr, err := e2eehttp.NewTransport(opts)
		if err != nil {
			t.Fatal(err)
		}
		cl, err := e2ee.NewClient(ctx, e2ee.ClientOptions{Transport: tr, AuthorityKey: g.App.E2EE.PublicKey(), Room: room})
		if err != nil {
			t.Fatal(err)
		}
		var runErr atomic.Value
		go func() {
			if err := cl.Run(ctx, nil); err != nil {
				runErr.Store(err)
			}
		}()
		pollUntil(t, name+" registers its key", func() (bool, string) {
			return cl.Credential() != nil, fmt.Sprint(cl.Status().State, " ", runErr.Load())
		})
		return cl
	}

	// alice signs in on the provider's form; her cookies (session, then the ticket cookies join sets) are all the
	// key exchange sees of her, as of a meeting page.
	browser := browsertest.Client(t)
	g.IdP.BrowserLogin(t, browser, g.URL+auth.LoginPath+"?rd=/").Body.Close()
	aliceSeen := &lastTicket{next: http.DefaultTransport}
	browser.Transport = aliceSeen
	browser.Timeout = 0 // longer than any long-poll
	alice := newClient("alice", e2eehttp.Options{HTTPClient: browser, Authorize: func(r *http.Request) error {
		r.Header.Set("Meetguard-CSRF", "1") // what a page's fetch sends on every cookie-authenticated change
		return nil
	}})
	postJoin(t, g, browser, room, func(r *http.Request) { r.Header.Set("Meetguard-CSRF", "1") })

	renewed := map[string]*lastTicket{}
	app := func(sub string) (*e2ee.Client, string) {
		t.Helper()
		tok := g.IdP.Sign(t, appClaims(g, sub), "")
		var ticket atomic.Value
		ticket.Store("")
		renewed[sub] = &lastTicket{next: http.DefaultTransport}
		cl := newClient(sub, e2eehttp.Options{HTTPClient: &http.Client{Transport: renewed[sub]}, Authorize: func(r *http.Request) error {
			r.Header.Set("Authorization", "Bearer "+tok)
			if tk := ticket.Load().(string); tk != "" {
				r.Header.Set(e2eeapi.TicketHeader, tk) // the ticket join gave, never refreshed by the app
			}
			return nil
		}})
		j := postJoin(t, g, http.DefaultClient, room, func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) })
		ticket.Store(j.Ticket)
		return cl, j.ParticipantID
	}
	bob, bobPID := app("bob")
	carol, _ := app("carol")

	members := []*e2ee.Client{alice, bob, carol}
	var before e2ee.Status
	pollUntil(t, "all three hold one epoch secret", func() (bool, string) {
		st, err := settled(members, 3)
		before = st
		return err == nil, fmt.Sprint(err)
	})

	// Two ticket lifetimes: every ticket presented at join has long expired. A Go client retries a refused
	// roster quietly, so the refusals are counted where they happen, on the wire.
	// (Before its join a client's waits are refused: it registers its key first.)
	seen := map[string]*lastTicket{"alice": aliceSeen, "bob": renewed["bob"], "carol": renewed["carol"]}
	for _, l := range seen {
		l.forget()
	}
	for end := time.Now().Add(2 * ttl); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		for i, c := range members {
			if st := c.Status(); st.State != e2ee.StateMember {
				t.Fatalf("member %d left the meeting after its first ticket's lifetime, nobody removed it: %v (%v)", i, st.State, st.Err)
			}
		}
		for name, l := range seen {
			if n, last := l.refusals(); n > 0 {
				t.Fatalf("%s's key requests were refused %d times after its first ticket's lifetime (last: %s)", name, n, last)
			}
		}
	}

	// bob's newest ticket works now (a request past half its life renews it again): the one to try after his removal.
	bobKey := g.IdP.Sign(t, appClaims(g, "bob"), "")
	tk := renewed["bob"].get()
	if tk == "" {
		t.Fatal("bob's app never got a renewed ticket")
	}
	keyRequest := func(tk string) *http.Response {
		req, _ := http.NewRequest(http.MethodGet, g.URL+e2eehttp.APIPath(room)+"wait?after=0&wait=1ms", nil)
		req.Header.Set("Authorization", "Bearer "+bobKey)
		req.Header.Set(e2eeapi.TicketHeader, tk)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if resp := keyRequest(tk); resp.StatusCode/100 != 2 {
		t.Fatalf("bob's newest ticket before his removal: %d", resp.StatusCode)
	} else if next := resp.Header.Get(e2eeapi.TicketHeader); next != "" {
		tk = next
	}

	// alice owns the room: she removes bob with her cookies.
	req, _ := http.NewRequest(http.MethodPost, g.URL+"/.meetguard/api/v1/rooms/"+room+"/participants/"+bobPID+"/remove", strings.NewReader("{}"))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Meetguard-CSRF", "1")
	resp, err := browser.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("alice removes bob: %d", resp.StatusCode)
	}
	// The renewal is for members only: bob's newest ticket, still within its life, is refused and not renewed.
	if resp := keyRequest(tk); resp.StatusCode != http.StatusForbidden || resp.Header.Get(e2eeapi.TicketHeader) != "" {
		t.Fatalf("a removed member's key request: %d, renewed ticket %q", resp.StatusCode, resp.Header.Get(e2eeapi.TicketHeader))
	}
	pollUntil(t, "alice and carol on a new epoch without bob", func() (bool, string) {
		st, err := settled([]*e2ee.Client{alice, carol}, 2)
		gw, _ := g.App.E2EE.RoomStatus(ctx, room)
		return err == nil && st.Epoch > before.Epoch, fmt.Sprintf("%v (alice %v %v, carol %v %v; the gateway's roster %+v)", err,
			alice.Status().State, alice.Status().Err, carol.Status().State, carol.Status().Err, gw)
	})
	if st := bob.Status(); st.State == e2ee.StateMember && st.Epoch > before.Epoch {
		t.Fatalf("bob reached epoch %d after his removal", st.Epoch)
	}

}

// appClaims are the ID token claims of an app signed in as sub (a staff address: admitted without a lobby).
func appClaims(g *gwtest.Gateway, sub string) map[string]any {
	c := g.IdP.Claims(g.IdP.ClientID)
	c["sub"], c["name"], c["email"], c["email_verified"] = sub, sub, sub+"@zitadel.ch", true
	c["exp"] = time.Now().Add(time.Hour).Unix()
	return c
}

// lastTicket is an app's HTTP transport that notes the newest ticket renewal the gateway sent it.
type lastTicket struct {
	next    http.RoundTripper
	mu      sync.Mutex
	tk      string
	refused int    // key-exchange answers 403
	last    string // the last refused request
}

func (l *lastTicket) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := l.next.RoundTrip(r)
	if err != nil {
		return resp, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if tk := resp.Header.Get(e2eeapi.TicketHeader); tk != "" {
		l.tk = tk
	}
	if resp.StatusCode == http.StatusForbidden && strings.Contains(r.URL.Path, "/e2ee/") {
		l.refused++
		l.last = r.Method + " " + r.URL.Path
	}
	return resp, nil
}

func (l *lastTicket) forget() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.refused, l.last = 0, ""
}

func (l *lastTicket) refusals() (int, string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.refused, l.last
}

func (l *lastTicket) get() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.tk
}
