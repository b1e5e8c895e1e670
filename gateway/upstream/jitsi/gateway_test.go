package jitsi_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/meetguard/meetguard/gateway/admission"
	"github.com/meetguard/meetguard/gateway/config"
	"github.com/meetguard/meetguard/gateway/internal/gwtest"
	"github.com/meetguard/meetguard/gateway/upstream/jitsi"
)

// TestGateway_TokenReachesProsodyOnlyOnTheAdmittedConnection runs the real
// gateway in front of a stand-in for Jitsi's web server, which checks the
// token the way Prosody does (signature, iss, aud, sub, room).
func TestGateway_TokenReachesProsodyOnlyOnTheAdmittedConnection(t *testing.T) {
	var rec gwtest.Recorder
	jitsiWeb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.Record(r)
		w.WriteHeader(http.StatusOK)
	}))
	defer jitsiWeb.Close()
	var a *jitsi.Adapter
	env := gwtest.Start(t, gwtest.Options{
		Upstreams: []config.Upstream{{Name: "meet", URL: jitsiWeb.URL, Kind: "jitsi", Rooms: config.UpstreamRooms{Path: roomPath},
			Jitsi: &config.Jitsi{AppID: "meetguard", Subject: "meet.example.org", AppSecret: appSecret}}},
		Adapters: func(string) map[string]admission.Adapter {
			a = hsAdapter(t, func(o *jitsi.Options) { o.URL = jitsiWeb.URL; o.Clock = nil })
			return map[string]admission.Adapter{"meet": a}
		},
		Admitter: gwtest.RoomRoles{Roles: map[string]string{"standup": "host"}, Deny: map[string]bool{"board": true}},
	})
	bearer := env.Bearer(t, "")
	get := func(path string) int {
		req, _ := http.NewRequest(http.MethodGet, env.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+bearer)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get("/meet/standup/http-bind?room=board&token=forged"); code != http.StatusOK {
		t.Fatalf("admitted BOSH: %d", code)
	}
	for path, want := range map[string]int{
		"/meet/board/http-bind":                   http.StatusForbidden,
		"/http-bind?room=standup&token=forged":    http.StatusServiceUnavailable,
		"/xmpp-websocket?room=standup":            http.StatusServiceUnavailable,
		"/meet/Standup/http-bind":                 http.StatusServiceUnavailable,
		"/meet/standup/colibri-ws/jvb1/x?pwd=abc": http.StatusServiceUnavailable,
	} {
		if code := get(path); code != want {
			t.Errorf("%s: %d, want %d", path, code, want)
		}
	}
	reqs := rec.Requests()
	if len(reqs) != 1 {
		t.Fatalf("Jitsi saw %d requests, want only the admitted connection", len(reqs))
	}
	r := reqs[0]
	q := r.URL.Query()
	if r.URL.Path != "/http-bind" || q.Get("room") != "standup" || len(q["token"]) != 1 {
		t.Fatalf("Jitsi got %s", r.URL)
	}
	tok, err := jwt.ParseSigned(q.Get("token"), []jose.SignatureAlgorithm{jose.HS256})
	if err != nil {
		t.Fatal(err)
	}
	var c jitsi.Claims
	if err := tok.Claims([]byte(appSecret), &c); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(jwt.Expected{Issuer: "meetguard", AnyAudience: jwt.Audience{"jitsi"}, Subject: "meet.example.org"}); err != nil {
		t.Fatal(err)
	}
	if c.Room != "standup" || c.Context.User.Moderator != "true" || c.Context.User.Name != "Test User" || c.Context.User.ID == gwtest.Subject {
		t.Fatalf("claims %+v", c)
	}
}
