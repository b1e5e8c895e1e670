package livekit_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/meetguard/meetguard/gateway/admission"
	"github.com/meetguard/meetguard/gateway/config"
	"github.com/meetguard/meetguard/gateway/identity"
	"github.com/meetguard/meetguard/gateway/internal/gwtest"
	"github.com/meetguard/meetguard/gateway/upstream/livekit"
	"github.com/meetguard/meetguard/gateway/upstream/livekit/livekittest"
)

const roomPath = "/lk/room/{room}"

func newAdapter(t testing.TB, srv *livekittest.Server, mutate func(*livekit.Options)) *livekit.Adapter {
	t.Helper()
	o := livekit.Options{
		Upstream: "lk", URL: srv.URL, RoomPath: roomPath,
		APIKey: srv.APIKey, APISecret: srv.APISecret,
	}
	if mutate != nil {
		mutate(&o)
	}
	a, err := livekit.New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// mint runs Forward the way the gateway does after admission and returns
// the token it put on the outbound request.
func mint(t testing.TB, a *livekit.Adapter, p admission.Participant) string {
	t.Helper()
	out := forward(t, a, &p, "/lk/room/"+p.Room+"/rtc/validate?access_token=client-sent")
	tok, ok := strings.CutPrefix(out.Header.Get("Authorization"), "Bearer ")
	if !ok {
		t.Fatalf("no bearer token on the outbound request: %v", out.Header)
	}
	return tok
}

func forward(t testing.TB, a admission.Adapter, p *admission.Participant, target string) *http.Request {
	t.Helper()
	in := httptest.NewRequest(http.MethodGet, "http://gateway.test"+target, nil)
	out := in.Clone(in.Context())
	out.URL, _ = url.Parse("http://upstream.test" + in.URL.RequestURI())
	if err := a.Forward(in.Context(), &httputil.ProxyRequest{In: in, Out: out}, p); err != nil {
		t.Fatalf("Forward(%s): %v", target, err)
	}
	return out
}

func person(sub, room, role string) admission.Participant {
	return admission.Participant{
		Identity: identity.Identity{Issuer: "https://idp.test", Subject: sub, Name: "Ada " + sub, SessionID: "s-" + sub},
		Upstream: "lk", Room: room, Role: role, ParticipantID: sub + "/" + room,
	}
}

func TestRealServer_MintedTokenPassesValidateAndForgeriesFail(t *testing.T) {
	srv := livekittest.Start(t, livekittest.Options{})
	a := newAdapter(t, srv, nil)
	good := mint(t, a, person("alice", "standup", "participant"))

	past := newAdapter(t, srv, func(o *livekit.Options) {
		o.Clock = func() time.Time { return time.Now().Add(-10 * time.Minute) }
	})
	otherSecret := newAdapter(t, srv, func(o *livekit.Options) {
		o.APISecret = strings.Repeat("x", 40)
	})
	otherKey := newAdapter(t, srv, func(o *livekit.Options) {
		o.APIKey = "someone-else"
	})
	cases := []struct {
		name  string
		token string
		ok    bool
	}{
		{"minted after admission", good, true},
		{"payload rewritten to another room", rewriteClaims(t, good, func(c map[string]any) {
			c["video"].(map[string]any)["room"] = "board-meeting"
		}), false},
		{"payload granted roomAdmin", rewriteClaims(t, good, func(c map[string]any) {
			c["video"].(map[string]any)["roomAdmin"] = true
		}), false},
		{"signature byte flipped", flipSignature(good), false},
		{"alg none", algNone(t, good), false},
		{"expired five minutes ago", mint(t, past, person("alice", "standup", "participant")), false},
		{"signed with another secret", mint(t, otherSecret, person("alice", "standup", "participant")), false},
		{"issued by an unknown key", mint(t, otherKey, person("alice", "standup", "participant")), false},
		{"client placeholder", "meetguard", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, body := srv.Validate(t, tc.token)
			if got := status == http.StatusOK && body == "success"; got != tc.ok {
				t.Fatalf("validate: %d %q, want ok=%v", status, body, tc.ok)
			}
		})
	}
}

func TestRealServer_TokenForRoomAJoinsOnlyRoomA(t *testing.T) {
	srv := livekittest.Start(t, livekittest.Options{})
	a := newAdapter(t, srv, nil)
	tokA := mint(t, a, person("mallory", "room-a", "participant"))
	// The client asks for room B in every way LiveKit's query could carry
	// it; the room comes from the token alone.
	q := url.Values{"access_token": {tokA}, "room": {"room-b"}, "protocol": {"16"}, "sdk": {"go"}}
	msg := dialFirst(t, srv.WSURL()+"/rtc?"+q.Encode(), nil)
	j, err := livekittest.ParseJoin(msg)
	if err != nil {
		t.Fatal(err)
	}
	if j.Room != "room-a" {
		t.Fatalf("joined %q with a token for room-a", j.Room)
	}
	ids, err := srv.Participants(context.Background(), "room-b")
	if err != nil && !strings.Contains(err.Error(), "not_found") {
		t.Fatal(err)
	}
	if len(ids) != 0 {
		t.Fatalf("room-b has participants %v", ids)
	}
}

// dialFirst opens a signalling WebSocket and returns its first message.
func dialFirst(t testing.TB, u string, hdr http.Header) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPHeader: hdr})
	if err != nil {
		body := ""
		if resp != nil && resp.Body != nil {
			b, _ := io.ReadAll(resp.Body)
			body = string(b)
		}
		t.Fatalf("dial %s: %v %s", redact(u), err, body)
	}
	defer c.CloseNow()
	_, msg, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return msg
}

func redact(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "?"
	}
	q := p.Query()
	if q.Has("access_token") {
		q.Set("access_token", "REDACTED")
	}
	p.RawQuery = q.Encode()
	return p.String()
}

type lkEnv struct {
	srv     *livekittest.Server
	adapter *livekit.Adapter
	gw      *gwtest.Gateway
}

func startLKGateway(t testing.TB, srvOpts livekittest.Options, adm admission.Admitter, mutate func(*livekit.Options)) *lkEnv {
	t.Helper()
	srv := livekittest.Start(t, srvOpts)
	e := &lkEnv{srv: srv}
	e.gw = gwtest.Start(t, gwtest.Options{
		Upstreams: []config.Upstream{{Name: "lk", URL: srv.URL, Kind: "livekit", Prefix: "/lk/", Rooms: config.UpstreamRooms{Path: roomPath},
			LiveKit: &config.LiveKit{APIKey: srv.APIKey, APISecret: srv.APISecret}}},
		Adapters: func(string) map[string]admission.Adapter {
			e.adapter = newAdapter(t, srv, mutate)
			return map[string]admission.Adapter{"lk": e.adapter}
		},
		Admitter: adm,
	})
	return e
}

// admitted is the participant the gateway admitted for the test subject.
func (e *lkEnv) admitted(sub, room, role string) admission.Participant {
	if sub == "" {
		sub = gwtest.Subject
	}
	return admission.Participant{
		Identity: identity.Identity{Issuer: e.gw.IdP.URL, Subject: sub},
		Upstream: "lk", Room: room, Role: role, ParticipantID: gwtest.ParticipantID(sub, room),
	}
}

func (e *lkEnv) rtcURL(room, endpoint string, extra url.Values) string {
	q := url.Values{"access_token": {"meetguard"}, "protocol": {"16"}, "sdk": {"js"}}
	for k, v := range extra {
		q[k] = v
	}
	return "ws" + strings.TrimPrefix(e.gw.URL, "http") + "/lk/room/" + room + endpoint + "?" + q.Encode()
}

func TestGateway_SignallingReachesJoinWithRoleGrants(t *testing.T) {
	e := startLKGateway(t, livekittest.Options{}, gwtest.RoomRoles{Roles: map[string]string{
		"hosts": "host", "talks": "participant", "webinar": "viewer",
	}}, nil)
	cases := []struct {
		room, role            string
		publish, data, listen bool
	}{
		{"hosts", "host", true, true, true},
		{"talks", "participant", true, true, true},
		{"webinar", "viewer", false, false, true},
	}
	for _, tc := range cases {
		t.Run(tc.role, func(t *testing.T) {
			hdr := http.Header{"Authorization": {"Bearer " + e.gw.Bearer(t, "")}}
			for _, endpoint := range []string{"/rtc"} {
				j, err := livekittest.ParseJoin(dialFirst(t, e.rtcURL(tc.room, endpoint, nil), hdr))
				if err != nil {
					t.Fatal(err)
				}
				want := e.adapter.Identity(e.admitted("", tc.room, tc.role))
				if j.Room != tc.room || j.Identity != want {
					t.Fatalf("joined room %q as %q, want %q as %q", j.Room, j.Identity, tc.room, want)
				}
				if j.CanPublish != tc.publish || j.CanPublishData != tc.data || j.CanSubscribe != tc.listen {
					t.Fatalf("permissions publish=%v data=%v subscribe=%v, want %v %v %v", j.CanPublish, j.CanPublishData, j.CanSubscribe, tc.publish, tc.data, tc.listen)
				}
				if j.Name != "Test User" {
					t.Fatalf("name %q", j.Name)
				}
			}
		})
	}
}

func TestGateway_ValidateThroughGatewayNeverShowsSecretOrToken(t *testing.T) {
	e := startLKGateway(t, livekittest.Options{}, nil, nil)
	req, _ := http.NewRequest(http.MethodGet, strings.Replace(e.rtcURL("standup", "/rtc/validate", nil), "ws", "http", 1), nil)
	req.Header.Set("Authorization", "Bearer "+e.gw.Bearer(t, ""))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "success" {
		t.Fatalf("validate through gateway: %d %q", resp.StatusCode, body)
	}
	seen := string(body)
	for k, v := range resp.Header {
		seen += k + strings.Join(v, ",")
	}
	if strings.Contains(seen, e.srv.APISecret) || strings.Contains(seen, "eyJ") {
		t.Fatalf("client saw a secret or a JWT: %q", seen)
	}
}

func TestGateway_CrossRoomReplayIsRefused(t *testing.T) {
	e := startLKGateway(t, livekittest.Options{}, gwtest.RoomRoles{Deny: map[string]bool{"room-b": true}}, nil)
	bearer := e.gw.Bearer(t, "")
	tokA := mint(t, e.adapter, e.admitted("", "room-a", "participant"))
	// A stolen room-a token on room-b's path: the gateway denies room-b
	// before anything reaches LiveKit.
	req, _ := http.NewRequest(http.MethodGet, e.gw.URL+"/lk/room/room-b/rtc/validate?access_token="+url.QueryEscape(tokA), nil)
	req.Header.Set("Authorization", "Bearer "+bearer)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("room-b with a room-a token: %d, want 403", resp.StatusCode)
	}
	// A token for room-b (minted by someone else) sent on room-a's path is
	// replaced: the connection lands in room-a, as the admitted person.
	tokB := mint(t, e.adapter, e.admitted("other", "room-b", "host"))
	j, err := livekittest.ParseJoin(dialFirst(t, e.rtcURL("room-a", "/rtc", url.Values{"access_token": {tokB}}), http.Header{"Authorization": {"Bearer " + bearer}}))
	if err != nil {
		t.Fatal(err)
	}
	if want := e.adapter.Identity(e.admitted("", "room-a", "participant")); j.Room != "room-a" || j.Identity != want {
		t.Fatalf("joined %q as %q; want room-a as %q", j.Room, j.Identity, want)
	}
	if ids, _ := e.srv.Participants(context.Background(), "room-b"); len(ids) != 0 {
		t.Fatalf("room-b has participants %v", ids)
	}
}

func TestGateway_OutsideSignallingIsRefused(t *testing.T) {
	e := startLKGateway(t, livekittest.Options{}, nil, nil)
	bearer := e.gw.Bearer(t, "")
	for _, p := range []string{
		"/lk/twirp/livekit.RoomService/ListRooms",
		"/lk/room/standup/twirp/livekit.RoomService/ListRooms",
		"/lk/room/standup",
		"/lk/room/standup/debug/rooms",
		"/lk/",
		"/lk/rtc",
	} {
		req, _ := http.NewRequest(http.MethodPost, e.gw.URL+p, strings.NewReader("{}"))
		req.Header.Set("Authorization", "Bearer "+bearer)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode < 400 {
			t.Errorf("%s: %d, want a refusal", p, resp.StatusCode)
		}
	}
}

func TestRealServer_KickRemovesParticipantFromRoom(t *testing.T) {
	e := startLKGateway(t, livekittest.Options{}, nil, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, e.rtcURL("standup", "/rtc", nil), &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + e.gw.Bearer(t, "")}}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if _, msg, err := c.Read(ctx); err != nil {
		t.Fatal(err)
	} else if _, err := livekittest.ParseJoin(msg); err != nil {
		t.Fatal(err)
	}
	p := e.admitted("", "standup", "participant")
	ident := e.adapter.Identity(p)
	if _, err := e.srv.WaitParticipants(ctx, "standup", func(ids []string) bool { return slices.Contains(ids, ident) }); err != nil {
		t.Fatalf("participant never listed: %v", err)
	}
	if err := e.adapter.RemoveParticipant(ctx, p); err != nil {
		t.Fatal(err)
	}
	if ids, err := e.srv.WaitParticipants(ctx, "standup", func(ids []string) bool { return !slices.Contains(ids, ident) }); err != nil {
		t.Fatalf("still in the room after the kick: %v (%v)", ids, err)
	}
	// The server tells the client to leave (or just closes).
	for {
		_, msg, err := c.Read(ctx)
		if err != nil || livekittest.IsLeave(msg) {
			break
		}
	}
	// Removing again is not an error: the kick is idempotent.
	if err := e.adapter.RemoveParticipant(ctx, p); err != nil {
		t.Fatalf("second removal: %v", err)
	}
}

// TestRealServer_RoleChangeIsLive: a connected viewer made participant can
// publish at once, as livekit-server itself reports, and made viewer again
// cannot; an admission not connected is not an error.
func TestRealServer_RoleChangeIsLive(t *testing.T) {
	srv := livekittest.Start(t, livekittest.Options{})
	a := newAdapter(t, srv, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p := person("vera", "standup", "viewer")
	q := url.Values{"access_token": {mint(t, a, p)}, "protocol": {"16"}, "sdk": {"go"}}
	c, _, err := websocket.Dial(ctx, srv.WSURL()+"/rtc?"+q.Encode(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	go func() { // keep reading, as a client does
		for {
			if _, _, err := c.Read(ctx); err != nil {
				return
			}
		}
	}()
	ident := a.Identity(p)
	if perm, err := srv.WaitPermission(ctx, "standup", ident, func(livekittest.Permission) bool { return true }); err != nil || perm.CanPublish || !perm.CanSubscribe {
		t.Fatalf("viewer's permission %+v (%v); want subscribe only", perm, err)
	}
	for _, step := range []struct {
		role    string
		publish bool
	}{{"participant", true}, {"viewer", false}, {"host", true}} {
		p.Role = step.role
		if err := a.UpdateRole(ctx, p); err != nil {
			t.Fatalf("UpdateRole(%s): %v", step.role, err)
		}
		perm, err := srv.WaitPermission(ctx, "standup", ident, func(perm livekittest.Permission) bool { return perm.CanPublish == step.publish })
		if err != nil || !perm.CanSubscribe || perm.CanPublishData != step.publish {
			t.Fatalf("after UpdateRole(%s) the server says %+v (%v); want canPublish %v", step.role, perm, err, step.publish)
		}
	}
	absent := person("nobody", "standup", "participant")
	if err := a.UpdateRole(ctx, absent); err != nil {
		t.Fatalf("UpdateRole of an admission not on the server: %v", err)
	}
	p.Role = "admin"
	if err := a.UpdateRole(ctx, p); !errors.Is(err, livekit.ErrUnknownRole) {
		t.Fatalf("UpdateRole(admin) = %v, want ErrUnknownRole", err)
	}
}

func TestRealServer_BanRemovesEveryDeviceOfThePersonOnly(t *testing.T) {
	srv := livekittest.Start(t, livekittest.Options{})
	a := newAdapter(t, srv, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	phone := person("bob", "standup", "participant")
	laptop := phone
	laptop.ParticipantID = "bob/standup/laptop"
	other := person("carol", "standup", "participant")
	for _, p := range []admission.Participant{phone, laptop, other} {
		q := url.Values{"access_token": {mint(t, a, p)}, "protocol": {"16"}, "sdk": {"go"}}
		c, _, err := websocket.Dial(ctx, srv.WSURL()+"/rtc?"+q.Encode(), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		if _, _, err := c.Read(ctx); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{a.Identity(phone), a.Identity(laptop), a.Identity(other)}
	if _, err := srv.WaitParticipants(ctx, "standup", func(ids []string) bool {
		return slices.Contains(ids, want[0]) && slices.Contains(ids, want[1]) && slices.Contains(ids, want[2])
	}); err != nil {
		t.Fatal(err)
	}
	ban := admission.Participant{Identity: identity.Identity{Issuer: phone.Identity.Issuer, Subject: "bob"}, Room: "standup"}
	if err := a.RemoveParticipant(ctx, ban); err != nil {
		t.Fatal(err)
	}
	ids, err := srv.WaitParticipants(ctx, "standup", func(ids []string) bool { return len(ids) == 1 })
	if err != nil || ids[0] != want[2] {
		t.Fatalf("after banning bob: %v (%v), want only %s", ids, err, want[2])
	}
}

// capturedHook is one webhook delivery from the real server and the
// adapter's answer to it.
type capturedHook struct {
	auth   string
	body   []byte
	status int
}

func TestRealServer_WebhooksAreVerifiedAndBecomeParticipantEvents(t *testing.T) {
	var (
		mu     sync.Mutex
		events []livekit.Event
		hooks  []capturedHook
		got    = make(chan struct{}, 64)
	)
	var a *livekit.Adapter
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		rec := httptest.NewRecorder()
		a.Webhook().ServeHTTP(rec, r)
		mu.Lock()
		hooks = append(hooks, capturedHook{auth: r.Header.Get("Authorization"), body: body, status: rec.Code})
		mu.Unlock()
		// The event is reported inside ServeHTTP, before its delivery is
		// captured here: wake the waiter again once it is.
		select {
		case got <- struct{}{}:
		default:
		}
		w.WriteHeader(rec.Code)
	}))
	defer hook.Close()
	srv := livekittest.Start(t, livekittest.Options{WebhookURL: hook.URL})
	a = newAdapter(t, srv, func(o *livekit.Options) {
		o.OnEvent = func(_ context.Context, ev livekit.Event) error {
			mu.Lock()
			events = append(events, ev)
			mu.Unlock()
			got <- struct{}{}
			return nil
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p := person("dave", "standup", "participant")
	q := url.Values{"access_token": {mint(t, a, p)}, "protocol": {"16"}, "sdk": {"go"}}
	c, _, err := websocket.Dial(ctx, srv.WSURL()+"/rtc?"+q.Encode(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if _, _, err := c.Read(ctx); err != nil {
		t.Fatal(err)
	}
	// Without media (no ICE), LiveKit never sends participant_joined; the
	// kick makes it report the participant as gone.
	if err := a.RemoveParticipant(ctx, p); err != nil {
		t.Fatal(err)
	}
	var (
		gone livekit.Event
		real capturedHook
	)
wait:
	for {
		mu.Lock()
		for _, ev := range events {
			if ev.Kind == livekit.ParticipantLeft || ev.Kind == livekit.ParticipantConnectionAborted {
				gone = ev
			}
		}
		for _, h := range hooks {
			if gone.ID != "" && strings.Contains(string(h.body), gone.ID) {
				real = h
			}
		}
		mu.Unlock()
		if real.body != nil {
			break
		}
		select {
		case <-got:
		case <-ctx.Done():
			break wait
		}
	}
	if gone.ID == "" || real.body == nil {
		t.Fatalf("no participant left/aborted webhook captured; server log:\n%s", srv.Log())
	}
	if gone.Room != "standup" || gone.Identity != a.Identity(p) || gone.Person != a.Person(p.Identity) || gone.Upstream != "lk" || gone.At.IsZero() {
		t.Fatalf("event %+v", gone)
	}
	mu.Lock()
	captured := append([]capturedHook(nil), hooks...)
	reported := len(events)
	mu.Unlock()
	for _, h := range captured {
		if h.status != http.StatusOK {
			t.Fatalf("a real webhook was refused with %d: %s", h.status, h.body)
		}
	}
	// Replays of what the real server sent: verbatim is acknowledged but
	// not reported twice; any change is refused.
	replay := func(auth string, body []byte) int {
		req := httptest.NewRequest(http.MethodPost, "/hook", strings.NewReader(string(body)))
		req.Header.Set("Authorization", auth)
		rec := httptest.NewRecorder()
		a.Webhook().ServeHTTP(rec, req)
		return rec.Code
	}
	if code := replay(real.auth, real.body); code != http.StatusOK {
		t.Fatalf("verbatim replay: %d", code)
	}
	other := captured[0]
	if other.auth == real.auth {
		other = captured[len(captured)-1]
	}
	cases := []struct {
		name string
		auth string
		body []byte
	}{
		{"room renamed in body", real.auth, []byte(strings.Replace(string(real.body), `"standup"`, `"board"`, 1))},
		{"another event's token", other.auth, real.body},
		{"no token", "", real.body},
		{"token with a flipped signature", flipSignature(real.auth), real.body},
	}
	for _, tc := range cases {
		if code := replay(tc.auth, tc.body); code != http.StatusUnauthorized {
			t.Errorf("%s: %d, want 401", tc.name, code)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(events) != reported {
		t.Fatalf("replays reported %d more events", len(events)-reported)
	}
}

// rewriteClaims changes a token's payload and keeps its signature.
func rewriteClaims(t testing.TB, tok string, f func(map[string]any)) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	f(c)
	b, _ := json.Marshal(c)
	parts[1] = base64.RawURLEncoding.EncodeToString(b)
	return strings.Join(parts, ".")
}

func flipSignature(tok string) string {
	i := strings.LastIndexByte(tok, '.') + 1
	b := []byte(tok)
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}

func algNone(t testing.TB, tok string) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	parts[0] = base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`))
	return parts[0] + "." + parts[1] + "."
}
