package bbb_test

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/meetguard/meetguard/gateway/admission"
	"github.com/meetguard/meetguard/gateway/identity"
	"github.com/meetguard/meetguard/gateway/upstream/bbb"
)

const secret = "bbb-shared-secret-0123456789abcdef0123456789"

// fakeBBB is a stand-in for bbb-web's API: it checks checksums the way
// ApiController does (over the raw query without the checksum parameter,
// with the algorithm the checksum's length names), refuses SHA-1 like a
// server with supportedChecksumAlgorithms=sha256,sha512, and answers with
// the documentation's example XML.
type fakeBBB struct {
	srv       *httptest.Server
	mu        sync.Mutex
	calls     []url.Values
	raw       []string
	meetings  map[string]string // meetingID -> createTime
	sessionTo string            // host of returned session URLs
	answer    func(call string, q url.Values) (int, string, bool)
}

func startFake(t testing.TB) *fakeBBB {
	t.Helper()
	f := &fakeBBB{meetings: map[string]string{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	f.sessionTo = strings.TrimPrefix(f.srv.URL, "http://")
	return f
}

func (f *fakeBBB) api() string { return f.srv.URL + "/bigbluebutton/api" }

func verifyChecksum(call, rawQuery string) bool {
	i := strings.LastIndex(rawQuery, "&checksum=")
	if i < 0 {
		return false
	}
	query, sum := rawQuery[:i], rawQuery[i+len("&checksum="):]
	var h func() hash.Hash
	switch len(sum) {
	case 64:
		h = sha256.New
	case 128:
		h = sha512.New
	default:
		return false // sha1 (40) is not supported by this server
	}
	m := h()
	m.Write([]byte(call + query + secret))
	return hex.EncodeToString(m.Sum(nil)) == sum
}

func (f *fakeBBB) serve(w http.ResponseWriter, r *http.Request) {
	call := strings.TrimPrefix(r.URL.Path, "/bigbluebutton/api/")
	q, _ := url.ParseQuery(r.URL.RawQuery)
	f.mu.Lock()
	f.calls = append(f.calls, q)
	f.raw = append(f.raw, r.URL.RawQuery)
	answer := f.answer
	f.mu.Unlock()
	if answer != nil {
		if status, body, ok := answer(call, q); ok {
			w.WriteHeader(status)
			fmt.Fprint(w, body)
			return
		}
	}
	w.Header().Set("Content-Type", "text/xml;charset=utf-8")
	if !verifyChecksum(call, r.URL.RawQuery) {
		fmt.Fprint(w, `<response><returncode>FAILED</returncode><messageKey>checksumError</messageKey><message>Checksums do not match</message></response>`)
		return
	}
	id := q.Get("meetingID")
	f.mu.Lock()
	defer f.mu.Unlock()
	switch call {
	case "create":
		ct, ok := f.meetings[id]
		if !ok {
			ct = fmt.Sprint(1531155809613 + len(f.meetings))
			f.meetings[id] = ct
		}
		fmt.Fprintf(w, `<response><returncode>SUCCESS</returncode><meetingID>%s</meetingID><createTime>%s</createTime></response>`, id, ct)
	case "join":
		ct, ok := f.meetings[id]
		if !ok || q.Get("createTime") != ct {
			fmt.Fprint(w, `<response><returncode>FAILED</returncode><messageKey>mismatchCreateTime</messageKey><message>The createTime parameter submitted mismatches with the current meeting.</message></response>`)
			return
		}
		fmt.Fprintf(w, `<response><returncode>SUCCESS</returncode><messageKey>successfullyJoined</messageKey><meeting_id>%s-%s</meeting_id>`+
			`<session_token>tok-%s</session_token><url>http://%s/html5client/join?sessionToken=tok-%s</url></response>`, id, ct, id, f.sessionTo, id)
	default:
		http.NotFound(w, r)
	}
}

func (f *fakeBBB) recorded() []url.Values {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]url.Values(nil), f.calls...)
}

func newAdapter(t testing.TB, f *fakeBBB, mutate func(*bbb.Options)) *bbb.Adapter {
	t.Helper()
	o := bbb.Options{Upstream: "bbb", APIURL: f.api(), Secret: secret, RedirectHosts: []string{f.sessionTo}}
	if mutate != nil {
		mutate(&o)
	}
	a, err := bbb.New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func person(sub, room, role string) admission.Participant {
	return admission.Participant{
		Identity: identity.Identity{Issuer: "https://idp.test", Subject: sub, Name: "Grace Hopper"},
		Upstream: "bbb", Room: room, Role: role, ParticipantID: sub + "/" + room,
	}
}

func TestJoinURL_CreatesJoinsAndReturnsTheSessionURL(t *testing.T) {
	f := startFake(t)
	a := newAdapter(t, f, func(o *bbb.Options) {
		o.Lock = bbb.Lock{DisableCam: true, DisablePrivateChat: true}
		o.Room = func(_ context.Context, room string) (bbb.Settings, error) { return bbb.Settings{Capacity: 25}, nil }
	})
	cases := []struct {
		role, wantRole string
		fromLobby      bool
		listenOnly     bool
	}{
		{"host", "MODERATOR", false, false},
		{"participant", "VIEWER", true, false},
		{"viewer", "VIEWER", false, true},
	}
	for _, tc := range cases {
		t.Run(tc.role, func(t *testing.T) {
			p := person("grace", "standup", tc.role)
			p.FromLobby = tc.fromLobby
			before := len(f.recorded())
			got, err := a.JoinURL(context.Background(), p)
			if err != nil {
				t.Fatal(err)
			}
			if want := "http://" + f.sessionTo + "/html5client/join?sessionToken=tok-standup"; got != want {
				t.Fatalf("session URL %q, want %q", got, want)
			}
			calls := f.recorded()[before:]
			if len(calls) != 2 {
				t.Fatalf("%d API calls, want create and join", len(calls))
			}
			create, join := calls[0], calls[1]
			for k, v := range map[string]string{
				"meetingID": "standup", "name": "standup", "guestPolicy": "ALWAYS_ACCEPT", "maxParticipants": "25",
				"lockSettingsDisableCam": "true", "lockSettingsDisablePrivateChat": "true", "lockSettingsLockOnJoin": "true",
			} {
				if create.Get(k) != v {
					t.Fatalf("create %s=%q, want %q (%v)", k, create.Get(k), v, create)
				}
			}
			if create.Has("lockSettingsDisableMic") {
				t.Fatal("unset lock sent")
			}
			f.mu.Lock()
			ct := f.meetings["standup"]
			f.mu.Unlock()
			for k, v := range map[string]string{
				"meetingID": "standup", "fullName": "Grace Hopper", "role": tc.wantRole, "createTime": ct,
				"redirect": "false", "userID": a.UserID(p),
			} {
				if join.Get(k) != v {
					t.Fatalf("join %s=%q, want %q", k, join.Get(k), v)
				}
			}
			if join.Has("guest") != tc.fromLobby || join.Has("userdata-bbb_force_listen_only") != tc.listenOnly {
				t.Fatalf("join guest/listen-only: %v", join)
			}
			if strings.Contains(a.UserID(p), "grace") || !strings.HasPrefix(a.UserID(p), "mg-") {
				t.Fatalf("userID %q is not a pseudonym", a.UserID(p))
			}
			if join.Has("password") || create.Has("moderatorPW") || create.Has("attendeePW") {
				t.Fatal("passwords sent")
			}
		})
	}
}

func TestJoinURL_MalformedAnswersNeverAdmit(t *testing.T) {
	big := "<response><returncode>SUCCESS</returncode><message>" + strings.Repeat("x", 1<<20) + "</message></response>"
	cases := []struct {
		name   string
		call   string // which call misbehaves
		status int
		body   string
		want   error
	}{
		{"create 500", "create", 500, "Internal Server Error", bbb.ErrAPI},
		{"create 404 html", "create", 404, "<html><body>Not Found</body></html>", bbb.ErrAPI},
		{"create html page", "create", 200, "<!DOCTYPE html><html><head><title>Welcome to nginx!</title></head></html>", bbb.ErrResponse},
		{"create garbage", "create", 200, "\x00\xff\xfegarbage", bbb.ErrResponse},
		{"create json", "create", 200, `{"returncode":"SUCCESS","createTime":1}`, bbb.ErrResponse},
		{"create empty", "create", 200, "", bbb.ErrResponse},
		{"create truncated", "create", 200, "<response><returncode>SUCCESS</returncode><createTime>15311", bbb.ErrResponse},
		{"create other root", "create", 200, "<error><returncode>SUCCESS</returncode></error>", bbb.ErrResponse},
		{"create failed", "create", 200, "<response><returncode>FAILED</returncode><messageKey>checksumError</messageKey><message>Checksums do not match</message></response>", bbb.ErrFailed},
		{"create odd returncode", "create", 200, "<response><returncode>MAYBE</returncode><createTime>1</createTime></response>", bbb.ErrResponse},
		{"create without createTime", "create", 200, "<response><returncode>SUCCESS</returncode></response>", bbb.ErrResponse},
		{"create createTime not a number", "create", 200, "<response><returncode>SUCCESS</returncode><createTime>1&amp;role=MODERATOR</createTime></response>", bbb.ErrResponse},
		{"create entity expansion", "create", 200, `<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "SUCCESS">]><response><returncode>&a;</returncode><createTime>1</createTime></response>`, bbb.ErrResponse},
		{"create two documents", "create", 200, "<response><returncode>SUCCESS</returncode><createTime>1</createTime></response><response><returncode>FAILED</returncode></response>", bbb.ErrResponse},
		{"create trailing text", "create", 200, "<response><returncode>SUCCESS</returncode><createTime>1</createTime></response>ok", bbb.ErrResponse},
		{"create oversized", "create", 200, big, bbb.ErrResponse},
		{"create redirect", "create", 302, "", bbb.ErrAPI},
		{"join failed", "join", 200, "<response><returncode>FAILED</returncode><messageKey>maxParticipantsReached</messageKey><message>full</message></response>", bbb.ErrFailed},
		{"join without url", "join", 200, "<response><returncode>SUCCESS</returncode></response>", bbb.ErrJoinURL},
		{"join javascript url", "join", 200, "<response><returncode>SUCCESS</returncode><url>javascript:alert(1)</url></response>", bbb.ErrJoinURL},
		{"join relative url", "join", 200, "<response><returncode>SUCCESS</returncode><url>/client?sessionToken=x</url></response>", bbb.ErrJoinURL},
		{"join foreign host", "join", 200, "<response><returncode>SUCCESS</returncode><url>https://evil.example/phish?sessionToken=x</url></response>", bbb.ErrJoinURL},
		{"join http off loopback", "join", 200, "<response><returncode>SUCCESS</returncode><url>http://bbb.example.org/client</url></response>", bbb.ErrJoinURL},
		{"join userinfo trick", "join", 200, "<response><returncode>SUCCESS</returncode><url>https://bbb.example.org@evil.example/x</url></response>", bbb.ErrJoinURL},
		{"join html", "join", 502, "<html>Bad Gateway</html>", bbb.ErrAPI},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := startFake(t)
			f.answer = func(call string, _ url.Values) (int, string, bool) {
				if call != tc.call {
					return 0, "", false
				}
				if tc.status == 302 {
					return 302, "", true
				}
				return tc.status, tc.body, true
			}
			a := newAdapter(t, f, func(o *bbb.Options) { o.RedirectHosts = append(o.RedirectHosts, "bbb.example.org") })
			got, err := a.JoinURL(context.Background(), person("grace", "standup", "participant"))
			if err == nil || got != "" {
				t.Fatalf("admitted with %q", got)
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
			if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "checksum=") {
				t.Fatalf("error leaks the secret or a checksum: %v", err)
			}
		})
	}
}

func TestJoinURL_UnknownRoleAndUnreachableServer(t *testing.T) {
	f := startFake(t)
	a := newAdapter(t, f, nil)
	if _, err := a.JoinURL(context.Background(), person("g", "standup", "admin")); !errors.Is(err, bbb.ErrUnknownRole) {
		t.Fatalf("role admin: %v", err)
	}
	if len(f.recorded()) != 0 {
		t.Fatal("API called for an unknown role")
	}
	f.srv.Close()
	_, err := a.JoinURL(context.Background(), person("g", "standup", "host"))
	if !errors.Is(err, bbb.ErrAPI) || strings.Contains(err.Error(), "checksum") {
		t.Fatalf("unreachable: %v", err)
	}
}

func TestJoinURL_CrossRoomReplayFailsTheChecksum(t *testing.T) {
	f := startFake(t)
	a := newAdapter(t, f, nil)
	if _, err := a.JoinURL(context.Background(), person("grace", "room-a", "participant")); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	f.meetings["room-b"] = "1531155809999"
	raws := append([]string(nil), f.raw...)
	f.mu.Unlock()
	var join string
	for _, raw := range raws {
		q, _ := url.ParseQuery(raw)
		if q.Get("meetingID") != "room-a" {
			t.Fatalf("a call for room-a named %q", q.Get("meetingID"))
		}
		if q.Has("fullName") {
			join = raw
		}
	}
	replay := func(raw string) string {
		t.Helper()
		resp, err := http.Get(f.api() + "/join?" + raw)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	// Control: the signed join, replayed byte for byte, is accepted (the
	// stand-in really checks checksums over the raw query).
	if got := replay(join); !strings.Contains(got, "SUCCESS") {
		t.Fatalf("verbatim replay refused: %s", got)
	}
	f.mu.Lock()
	ct := f.meetings["room-a"]
	f.mu.Unlock()
	for name, tampered := range map[string]string{
		"meeting swapped": strings.Replace(strings.Replace(join, "meetingID=room-a", "meetingID=room-b", 1), "createTime="+ct, "createTime=1531155809999", 1),
		"role raised":     strings.Replace(join, "role=VIEWER", "role=MODERATOR", 1),
	} {
		if tampered == join {
			t.Fatalf("%s: tampering changed nothing", name)
		}
		if got := replay(tampered); !strings.Contains(got, "checksumError") {
			t.Fatalf("%s: accepted: %s", name, got)
		}
	}
}

func TestFakeServer_RefusesSHA1LikeAHardenedServer(t *testing.T) {
	// The adapter cannot be made to sign with SHA-1 (see the config and
	// New tests); this shows the stand-in server would refuse it too, so
	// the other tests are not passing because the server checks nothing.
	q := "meetingID=x"
	m := sha1.New()
	m.Write([]byte("create" + q + secret))
	if verifyChecksum("create", q+"&checksum="+hex.EncodeToString(m.Sum(nil))) {
		t.Fatal("SHA-1 checksum accepted")
	}
}

// BenchmarkJoinURL is one admission against a local stand-in server:
// sign and call create and join, parse both answers, check the URL.
func BenchmarkJoinURL(b *testing.B) {
	f := startFake(b)
	a := newAdapter(b, f, nil)
	p := person("grace", "standup", "participant")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.JoinURL(context.Background(), p); err != nil {
			b.Fatal(err)
		}
	}
}
