package livekit_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/meetguard/meetguard/gateway/admission"
	"github.com/meetguard/meetguard/gateway/upstream/livekit"
)

const (
	testKey    = "APIkey1"
	testSecret = "0123456789abcdef0123456789abcdef-secret"
)

var fixedNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func offlineAdapter(t testing.TB, mutate func(*livekit.Options)) *livekit.Adapter {
	t.Helper()
	o := livekit.Options{
		Upstream: "lk", URL: "http://livekit.internal:7880", RoomPath: roomPath,
		APIKey: testKey, APISecret: testSecret, Clock: func() time.Time { return fixedNow },
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

// verifyIndependently parses a token with go-jose and the secret, as a
// LiveKit server would, and returns its claims as plain JSON values.
func verifyIndependently(t testing.TB, tok, secret string) (map[string]any, jose.Header) {
	t.Helper()
	parsed, err := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.HS256})
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	var claims map[string]any
	if err := parsed.Claims([]byte(secret), &claims); err != nil {
		t.Fatalf("verify: %v", err)
	}
	return claims, parsed.Headers[0]
}

func TestToken_ClaimsAreExactlyTheRoleGrant(t *testing.T) {
	a := offlineAdapter(t, nil)
	allSources := []any{"camera", "microphone", "screen_share", "screen_share_audio"}
	cases := []struct {
		role             string
		publish, data    bool
		sources          []any
		wantSourcesFound bool
	}{
		{"host", true, true, allSources, true},
		{"participant", true, true, allSources, true},
		{"viewer", false, false, nil, false},
	}
	for _, tc := range cases {
		t.Run(tc.role, func(t *testing.T) {
			p := person("alice", "standup", tc.role)
			claims, hdr := verifyIndependently(t, mint(t, a, p), testSecret)
			if hdr.Algorithm != "HS256" {
				t.Fatalf("alg %s", hdr.Algorithm)
			}
			if claims["iss"] != testKey || claims["sub"] != a.Identity(p) || claims["name"] != "Ada alice" {
				t.Fatalf("iss/sub/name: %v", claims)
			}
			if nbf, exp := claims["nbf"].(float64), claims["exp"].(float64); nbf != float64(fixedNow.Unix()) || exp-nbf != 300 {
				t.Fatalf("nbf %v exp %v, want a 5 minute token from now", nbf, exp)
			}
			v := claims["video"].(map[string]any)
			want := map[string]any{
				"roomJoin": true, "room": "standup", "canPublish": tc.publish, "canSubscribe": true,
				"canPublishData": tc.data, "canUpdateOwnMetadata": false,
			}
			if tc.wantSourcesFound {
				want["canPublishSources"] = tc.sources
			}
			if len(v) != len(want) {
				t.Fatalf("video grant %v, want exactly %v", v, want)
			}
			for k, w := range want {
				if ws, ok := w.([]any); ok {
					if !slices.Equal(ws, v[k].([]any)) {
						t.Fatalf("%s = %v, want %v", k, v[k], w)
					}
					continue
				}
				if v[k] != w {
					t.Fatalf("%s = %v, want %v", k, v[k], w)
				}
			}
			for _, k := range []string{"roomAdmin", "roomCreate", "roomList", "roomRecord", "hidden", "recorder", "agent", "ingressAdmin"} {
				if _, ok := v[k]; ok {
					t.Fatalf("person token carries %s", k)
				}
			}
			for _, k := range []string{"metadata", "attributes", "roomConfig", "sip", "kind"} {
				if _, ok := claims[k]; ok {
					t.Fatalf("person token carries %s", k)
				}
			}
		})
	}
}

func TestForward_UnknownRoleIsRefused(t *testing.T) {
	a := offlineAdapter(t, nil)
	for _, role := range []string{"", "admin", "Host", "roomAdmin"} {
		p := person("alice", "standup", role)
		err := forwardErr(a, &p, "/lk/room/standup/rtc")
		if !errors.Is(err, livekit.ErrUnknownRole) {
			t.Errorf("role %q: %v, want ErrUnknownRole", role, err)
		}
	}
}

func forwardErr(a admission.Adapter, p *admission.Participant, target string) error {
	in := httptest.NewRequest(http.MethodGet, "http://gateway.test/", nil)
	u, err := url.Parse("http://gateway.test" + target)
	if err != nil {
		return err
	}
	in.URL = u
	out := in.Clone(in.Context())
	return a.Forward(in.Context(), &httputil.ProxyRequest{In: in, Out: out}, p)
}

func TestForward_OnlyTheAdmittedRoomsSignallingGoesThrough(t *testing.T) {
	a := offlineAdapter(t, func(o *livekit.Options) { o.URL = "http://livekit.internal:7880/base/" })
	p := person("alice", "standup", "participant")
	cases := []struct {
		name, target string
		p            *admission.Participant
		want         error
		wantPath     string
	}{
		{"rtc", "/lk/room/standup/rtc?protocol=16", &p, nil, "/base/rtc"},
		{"rtc v1", "/lk/room/standup/rtc/v1", &p, nil, "/base/rtc/v1"},
		{"validate", "/lk/room/standup/rtc/validate", &p, nil, "/base/rtc/validate"},
		{"v1 validate", "/lk/room/standup/rtc/v1/validate", &p, nil, "/base/rtc/v1/validate"},
		{"no admission", "/lk/room/standup/rtc", nil, livekit.ErrOutsideRoom, ""},
		{"outside any room", "/lk/rtc", &p, livekit.ErrOutsideRoom, ""},
		{"another room's path", "/lk/room/board/rtc", &p, livekit.ErrOutsideRoom, ""},
		{"room name extended", "/lk/room/standup2/rtc", &p, livekit.ErrOutsideRoom, ""},
		{"room page", "/lk/room/standup", &p, livekit.ErrNotSignalling, ""},
		{"trailing slash", "/lk/room/standup/rtc/", &p, livekit.ErrNotSignalling, ""},
		{"room service", "/lk/room/standup/twirp/livekit.RoomService/ListRooms", &p, livekit.ErrNotSignalling, ""},
		{"debug", "/lk/room/standup/debug/rooms", &p, livekit.ErrNotSignalling, ""},
		{"whip", "/lk/room/standup/w/whip", &p, livekit.ErrNotSignalling, ""},
		{"rtc prefix", "/lk/room/standup/rtcx", &p, livekit.ErrNotSignalling, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.want != nil {
				if err := forwardErr(a, tc.p, tc.target); !errors.Is(err, tc.want) {
					t.Fatalf("got %v, want %v", err, tc.want)
				}
				return
			}
			out := forward(t, a, tc.p, tc.target)
			if out.URL.Path != tc.wantPath || out.URL.RawPath != "" {
				t.Fatalf("forwarded to %q (raw %q), want %q", out.URL.Path, out.URL.RawPath, tc.wantPath)
			}
		})
	}
}

func TestForward_ClientTokensAreReplaced(t *testing.T) {
	a := offlineAdapter(t, nil)
	p := person("alice", "standup", "viewer")
	stolen := mint(t, a, person("bob", "standup", "host"))
	out := forward(t, a, &p, "/lk/room/standup/rtc?access_token="+stolen+"&ACCESS_TOKEN=x&access_token=y&protocol=16&sdk=js")
	q := out.URL.Query()
	if q.Has("access_token") {
		t.Fatalf("client access_token forwarded: %v", q)
	}
	if q.Get("protocol") != "16" || q.Get("sdk") != "js" {
		t.Fatalf("other parameters lost: %v", q)
	}
	tok := strings.TrimPrefix(out.Header.Get("Authorization"), "Bearer ")
	claims, _ := verifyIndependently(t, tok, testSecret)
	if claims["sub"] != a.Identity(p) || claims["video"].(map[string]any)["canPublish"] != false {
		t.Fatalf("forwarded token is not the admitted viewer's: %v", claims)
	}
	// A client Authorization header is replaced too.
	in := httptest.NewRequest(http.MethodGet, "http://gateway.test/lk/room/standup/rtc", nil)
	in.Header.Set("Authorization", "Bearer "+stolen)
	o := in.Clone(in.Context())
	if err := a.Forward(in.Context(), &httputil.ProxyRequest{In: in, Out: o}, &p); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(o.Header.Get("Authorization"), stolen) {
		t.Fatal("client Authorization forwarded")
	}
}

func TestForward_MalformedQueryIsRefused(t *testing.T) {
	a := offlineAdapter(t, nil)
	p := person("alice", "standup", "participant")
	in := httptest.NewRequest(http.MethodGet, "http://gateway.test/lk/room/standup/rtc", nil)
	in.URL.RawQuery = "access_token=%zz&protocol=16"
	out := in.Clone(in.Context())
	if err := a.Forward(in.Context(), &httputil.ProxyRequest{In: in, Out: out}, &p); err == nil {
		t.Fatal("malformed query forwarded")
	}
}

func TestIdentity_StablePerDeviceUnlinkableAcrossPeopleAndSecrets(t *testing.T) {
	a := offlineAdapter(t, nil)
	b := offlineAdapter(t, func(o *livekit.Options) { o.APISecret = strings.Repeat("z", 40) })
	alice := person("alice", "standup", "participant")
	aliceLaptop := alice
	aliceLaptop.ParticipantID = "alice/standup/laptop"
	aliceOtherRole := alice
	aliceOtherRole.Role = "host"
	bob := person("bob", "standup", "participant")
	// Another node (or a restart) with the same secret derives the same
	// identity; a role change keeps it.
	if a.Identity(alice) != offlineAdapter(t, nil).Identity(alice) || a.Identity(alice) != a.Identity(aliceOtherRole) {
		t.Fatal("identity is not stable for one admission")
	}
	distinct := []string{a.Identity(alice), a.Identity(aliceLaptop), a.Identity(bob), b.Identity(alice)}
	for i := range distinct {
		for j := i + 1; j < len(distinct); j++ {
			if distinct[i] == distinct[j] {
				t.Fatalf("identities %d and %d collide: %s", i, j, distinct[i])
			}
		}
	}
	if !strings.HasPrefix(a.Identity(aliceLaptop), "mg."+a.Person(alice.Identity)+".") {
		t.Fatal("a device's identity does not start with its person")
	}
	for _, id := range distinct {
		if strings.Contains(id, "alice") || strings.Contains(id, "idp.test") {
			t.Fatalf("identity %s leaks the subject", id)
		}
	}
}

func TestNew_RefusesWeakOrMissingSettings(t *testing.T) {
	cases := map[string]func(*livekit.Options){
		"short secret":  func(o *livekit.Options) { o.APISecret = "short" },
		"no key":        func(o *livekit.Options) { o.APIKey = "" },
		"bad room path": func(o *livekit.Options) { o.RoomPath = "/lk/{room}/x" },
		"bad api url":   func(o *livekit.Options) { o.APIURL = "ftp://x" },
		"no url":        func(o *livekit.Options) { o.URL = "" },
	}
	for name, mutate := range cases {
		o := livekit.Options{URL: "http://lk:7880", RoomPath: roomPath, APIKey: testKey, APISecret: testSecret}
		mutate(&o)
		if _, err := livekit.New(context.Background(), o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestRemoveParticipant_HostileRoomServiceAnswers(t *testing.T) {
	var redirected atomic.Int32
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			redirected.Add(1)
		}
	}))
	defer elsewhere.Close()
	cases := []struct {
		name    string
		handler http.HandlerFunc
		ok      bool
	}{
		{"removed", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("{}")) }, true},
		{"already gone", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"code":"not_found","msg":"participant not found"}`))
		}, true},
		{"permission denied", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"code":"unauthenticated","msg":"no"}`))
		}, false},
		{"html error page", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusBadGateway)
			_, _ = w.Write([]byte("<html>bad gateway</html>"))
		}, false},
		{"redirect", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, elsewhere.URL+"/twirp/livekit.RoomService/RemoveParticipant", http.StatusTemporaryRedirect)
		}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got struct {
				path, auth, body string
			}
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b := make([]byte, 1024)
				n, _ := r.Body.Read(b)
				got.path, got.auth, got.body = r.URL.Path, r.Header.Get("Authorization"), string(b[:n])
				tc.handler(w, r)
			}))
			defer srv.Close()
			a := offlineAdapter(t, func(o *livekit.Options) { o.APIURL = srv.URL; o.Clock = time.Now })
			p := person("alice", "standup", "participant")
			err := a.RemoveParticipant(context.Background(), p)
			if (err == nil) != tc.ok {
				t.Fatalf("err %v, want ok=%v", err, tc.ok)
			}
			if !tc.ok && !errors.Is(err, livekit.ErrRoomService) {
				t.Fatalf("error does not wrap ErrRoomService: %v", err)
			}
			if got.path != "/twirp/livekit.RoomService/RemoveParticipant" || !strings.Contains(got.body, a.Identity(p)) {
				t.Fatalf("call %s %s", got.path, got.body)
			}
			claims, _ := verifyIndependently(t, strings.TrimPrefix(got.auth, "Bearer "), testSecret)
			v := claims["video"].(map[string]any)
			if v["roomAdmin"] != true || v["room"] != "standup" || len(v) != 2 {
				t.Fatalf("admin token grant %v, want roomAdmin for standup only", v)
			}
		})
	}
	if redirected.Load() != 0 {
		t.Fatal("the admin token followed a redirect")
	}
}

// TestToken_E2EERoomsAreMarkedAndAnUnknownSettingRefuses: a token for a room that requires end-to-end
// encryption carries exactly the e2ee attribute (the meeting page refuses to publish without it), other rooms'
// tokens carry no attributes, and when the setting cannot be read nothing is forwarded.
func TestToken_E2EERoomsAreMarkedAndAnUnknownSettingRefuses(t *testing.T) {
	storeDown := errors.New("rooms store down")
	a := offlineAdapter(t, func(o *livekit.Options) {
		o.E2EERequired = func(_ context.Context, room string) (bool, error) {
			switch room {
			case "secret":
				return true, nil
			case "broken":
				return false, storeDown
			}
			return false, nil
		}
	})
	claims, _ := verifyIndependently(t, mint(t, a, person("alice", "secret", "participant")), testSecret)
	attrs, _ := claims["attributes"].(map[string]any)
	if len(attrs) != 1 || attrs[livekit.E2EEAttribute] != "required" {
		t.Fatalf("attributes of an e2ee room's token: %v", claims["attributes"])
	}
	claims, _ = verifyIndependently(t, mint(t, a, person("alice", "standup", "participant")), testSecret)
	if _, ok := claims["attributes"]; ok {
		t.Fatalf("a room without e2ee got attributes %v", claims["attributes"])
	}
	p := person("alice", "broken", "participant")
	if err := forwardErr(a, &p, "/lk/room/broken/rtc"); !errors.Is(err, storeDown) {
		t.Fatalf("Forward with an unreadable setting: %v, want the store's error", err)
	}
}
