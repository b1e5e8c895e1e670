package roomsapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/meetguard/meetguard/gateway/rooms"
)

var (
	validWait = string(rooms.NewWaitID())
	validPID  = string(rooms.NewParticipantID())
)

func TestParseRoute_MapsEndpointsAndRefusesTheRest(t *testing.T) {
	ok := []struct {
		method, path string
		op           op
	}{
		{"GET", Prefix + "standup", opGetRoom},
		{"HEAD", Prefix + "standup", opGetRoom},
		{"PUT", Prefix + "standup", opPutRoom},
		{"POST", Prefix + "standup/join", opJoin},
		{"POST", Prefix + "standup/leave", opLeave},
		{"GET", Prefix + "standup/wait/" + validWait, opWait},
		{"POST", Prefix + "standup/lobby/" + validWait + "/admit", opLobbyAdmit},
		{"POST", Prefix + "standup/lobby/" + validWait + "/deny", opLobbyDeny},
		{"POST", Prefix + "standup/lock", opLock},
		{"POST", Prefix + "standup/unlock", opUnlock},
		{"POST", Prefix + "standup/suspend", opSuspend},
		{"POST", Prefix + "standup/unban", opUnban},
		{"POST", Prefix + "standup/participants/" + validPID + "/remove", opRemove},
		{"POST", Prefix + "standup/participants/" + validPID + "/role", opRole},
	}
	for _, tc := range ok {
		rt, err := parseRoute(tc.method, tc.path)
		if err != nil || rt.op != tc.op || rt.room != "standup" {
			t.Errorf("%s %s = %+v, %v; want op %d", tc.method, tc.path, rt, err, tc.op)
		}
	}
	hostile := []struct {
		method, path string
		want         error
	}{
		{"GET", Prefix, errNoRoute},
		{"GET", "/.meetguard/api/v1/roomsx/standup", errNoRoute},
		{"POST", Prefix + "..", errBadRoom},
		{"POST", Prefix + ".hidden/join", errBadRoom},
		{"POST", Prefix + "a%2Fb/join", errBadRoom},
		{"POST", Prefix + strings.Repeat("a", 65) + "/join", errBadRoom},
		{"POST", Prefix + "room~1/join", errBadRoom},
		{"POST", Prefix + "standup/join/", errNoRoute},
		{"POST", Prefix + "standup//join", errNoRoute},
		{"POST", Prefix + "standup/JOIN", errNoRoute},
		{"GET", Prefix + "standup/wait/short", errNoRoute},
		{"GET", Prefix + "standup/wait/" + validWait + "x", errNoRoute},
		{"POST", Prefix + "standup/lobby/" + validWait + "/kick", errNoRoute},
		{"POST", Prefix + "standup/participants/../remove", errNoRoute},
		{"POST", Prefix + "standup/participants/" + validPID + "/remove/x", errNoRoute},
		{"GET", Prefix + "standup/join", errWrongMethod},
		{"POST", Prefix + "standup/wait/" + validWait, errWrongMethod},
		{"DELETE", Prefix + "standup", errWrongMethod},
		{"POST", Prefix + "standup", errWrongMethod},
	}
	for _, tc := range hostile {
		if rt, err := parseRoute(tc.method, tc.path); !errors.Is(err, tc.want) {
			t.Errorf("%s %s = %+v, %v; want %v", tc.method, tc.path, rt, err, tc.want)
		}
	}
}

func FuzzParseRoute(f *testing.F) {
	f.Add("POST", Prefix+"standup/join")
	f.Add("GET", Prefix+"standup/wait/"+validWait)
	f.Add("POST", Prefix+"standup/participants/"+validPID+"/remove")
	f.Add("POST", Prefix+"standup/participants/"+validPID+"/role")
	f.Add("PUT", Prefix+"a/b/c/d/e/f")
	f.Fuzz(func(t *testing.T, method, path string) {
		rt, err := parseRoute(method, path)
		if err != nil {
			return
		}
		if !strings.HasPrefix(path, Prefix+rt.room) || rooms.ValidateRoomID(rt.room) != nil {
			t.Fatalf("accepted %q with room %q", path, rt.room)
		}
		if rt.wait != "" && rt.wait.Validate() != nil {
			t.Fatalf("accepted malformed wait id %q", rt.wait)
		}
		if rt.participant != "" && rt.participant.Validate() != nil {
			t.Fatalf("accepted malformed participant id %q", rt.participant)
		}
	})
}

func TestReadJSON_HostileBodies(t *testing.T) {
	cases := []struct {
		name, ctype, body string
		status            int
	}{
		{"empty", "", "", 0},
		{"whitespace", "", "  \n", 0},
		{"passcode", "application/json", `{"passcode":"1234"}`, 0},
		{"charset param", "application/json; charset=utf-8", `{}`, 0},
		{"no content type", "", `{"passcode":"1"}`, http.StatusUnsupportedMediaType},
		{"form", "application/x-www-form-urlencoded", `passcode=1`, http.StatusUnsupportedMediaType},
		{"text/plain JSON", "text/plain", `{"passcode":"1"}`, http.StatusUnsupportedMediaType},
		{"unknown field", "application/json", `{"passcode":"1","admin":true}`, http.StatusBadRequest},
		{"wrong type", "application/json", `{"passcode":1}`, http.StatusBadRequest},
		{"array", "application/json", `[]`, http.StatusBadRequest},
		{"two values", "application/json", `{}{}`, http.StatusBadRequest},
		{"trailing garbage", "application/json", `{} x`, http.StatusBadRequest},
		{"truncated", "application/json", `{"passcode":"1`, http.StatusBadRequest},
		{"too large", "application/json", `{"passcode":"` + strings.Repeat("a", maxBody) + `"}`, http.StatusRequestEntityTooLarge},
	}
	for _, tc := range cases {
		r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(tc.body))
		if tc.ctype != "" {
			r.Header.Set("Content-Type", tc.ctype)
		}
		var b joinBody
		err := readJSON(r, &b)
		var be *bodyError
		switch {
		case tc.status == 0 && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.status != 0 && (!errors.As(err, &be) || be.Status != tc.status):
			t.Errorf("%s: %v, want status %d", tc.name, err, tc.status)
		}
	}
}

func FuzzSettingsBody(f *testing.F) {
	f.Add([]byte(`{"capacity":12,"lobby_enabled":true,"passcode":"1234","e2ee_required":false,"tags":["a"],"locked":true}`))
	f.Add([]byte(`{"tags":null}`))
	f.Add([]byte(`{"capacity":-1}`))
	cfg := rooms.Config{}.WithDefaults()
	f.Fuzz(func(t *testing.T, data []byte) {
		var b settingsBody
		if err := decodeStrict(data, &b); err != nil {
			var be *bodyError
			if !errors.As(err, &be) || be.Status != http.StatusBadRequest {
				t.Fatalf("decode error %v is not a 400", err)
			}
			return
		}
		ch, err := b.change(cfg)
		if err != nil {
			return
		}
		if ch.PasscodeHash != nil {
			t.Fatal("change carries a passcode hash before hashing")
		}
		if err := ch.Validate(cfg); err != nil {
			t.Fatalf("accepted change fails the store's validation: %v", err)
		}
		if b.Passcode != nil && len(*b.Passcode) > rooms.MaxPasscodeLen {
			t.Fatal("accepted an oversized passcode")
		}
	})
}

func FuzzJoinBody(f *testing.F) {
	f.Add([]byte(`{"passcode":"271828"}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"passcode":"\u0000"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var b joinBody
		if err := decodeStrict(data, &b); err != nil {
			return
		}
		if err := parseJoin(b); err == nil && len(b.Passcode) > rooms.MaxPasscodeLen {
			t.Fatal("accepted an oversized passcode")
		}
	})
}

// FuzzRoleBody: a role change body the API accepts names only a role a
// host may give, and a reason code; anything else is a 400.
func FuzzRoleBody(f *testing.F) {
	f.Add([]byte(`{"role":"participant","reason":"presenting"}`))
	f.Add([]byte(`{"role":"host"}`))
	f.Add([]byte(`{"role":"viewer","reason":"A B"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var b roleBody
		if err := decodeStrict(data, &b); err != nil {
			return
		}
		role, err := parseRole(b)
		if err != nil {
			var be *bodyError
			if !errors.As(err, &be) || be.Status != http.StatusBadRequest || be.Field == "" {
				t.Fatalf("refusal %v is not a 400 naming its field", err)
			}
			return
		}
		if role != rooms.RoleParticipant && role != rooms.RoleViewer {
			t.Fatalf("accepted role %q", role)
		}
		if b.Reason != "" && !reasonCode.MatchString(b.Reason) {
			t.Fatalf("accepted reason %q", b.Reason)
		}
	})
}

// TestParseRole names the field of every refusal.
func TestParseRole(t *testing.T) {
	for _, tc := range []struct {
		body  roleBody
		field string
	}{
		{roleBody{Role: "participant"}, ""},
		{roleBody{Role: "viewer", Reason: "too_loud"}, ""},
		{roleBody{Role: "host"}, "role"},
		{roleBody{Role: "HOST"}, "role"},
		{roleBody{Role: ""}, "role"},
		{roleBody{Role: "viewer\x00"}, "role"},
		{roleBody{Role: "viewer", Reason: "Too Loud"}, "reason"},
		{roleBody{Role: "viewer", Reason: strings.Repeat("a", 65)}, "reason"},
	} {
		_, err := parseRole(tc.body)
		var be *bodyError
		switch {
		case tc.field == "" && err != nil:
			t.Errorf("%+v: %v, want accepted", tc.body, err)
		case tc.field != "" && (!errors.As(err, &be) || be.Field != tc.field || be.Status != http.StatusBadRequest):
			t.Errorf("%+v: %v, want a 400 naming %s", tc.body, err, tc.field)
		}
	}
}

func TestCheckCSRF_Headers(t *testing.T) {
	a := &API{origin: "https://meet.example.com"}
	cases := []struct {
		name string
		hdr  map[string]string
		ok   bool
	}{
		{"same origin", map[string]string{"Origin": "https://meet.example.com"}, true},
		{"fetch metadata", map[string]string{"Sec-Fetch-Site": "same-origin"}, true},
		{"custom header", map[string]string{CSRFHeader: "1"}, true},
		{"nothing", nil, false},
		{"http downgrade origin", map[string]string{"Origin": "http://meet.example.com"}, false},
		{"port", map[string]string{"Origin": "https://meet.example.com:8443"}, false},
		{"suffix", map[string]string{"Origin": "https://meet.example.com.evil"}, false},
		{"null", map[string]string{"Origin": "null"}, false},
		{"cross-site", map[string]string{"Sec-Fetch-Site": "cross-site", CSRFHeader: "1"}, false},
		{"same-site", map[string]string{"Sec-Fetch-Site": "same-site"}, false},
		{"empty custom header", map[string]string{CSRFHeader: ""}, false},
	}
	for _, tc := range cases {
		r := httptest.NewRequest(http.MethodPost, "/", nil)
		for k, v := range tc.hdr {
			r.Header.Set(k, v)
		}
		if err := a.checkCSRF(r); (err == nil) != tc.ok {
			t.Errorf("%s: %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}

var (
	scriptRe = regexp.MustCompile(`(?s)<script>(.*?)</script>`)
	styleRe  = regexp.MustCompile(`(?s)<style>(.*?)</style>`)
)

// TestPages_InlineScriptAndStyleMatchTheirCSPHashes: the page runs only
// because the hashes in its CSP are those of what it serves.
func TestPages_InlineScriptAndStyleMatchTheirCSPHashes(t *testing.T) {
	pg, err := newPages()
	if err != nil {
		t.Fatal(err)
	}
	a := &API{pages: pg}
	for _, h := range []http.HandlerFunc{
		a.deniedPage(`evil"><script>alert(1)</script>`),
		a.waitingPage("standup", rooms.NewWaitID(), "", `<img src=x onerror=alert(1)>`, &http.Cookie{Name: WaitCookie, Value: "x"}),
	} {
		rec := httptest.NewRecorder()
		h(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		body := rec.Body.Bytes()
		csp := rec.Header().Get("Content-Security-Policy")
		scripts, styles := scriptRe.FindAllSubmatch(body, -1), styleRe.FindAllSubmatch(body, -1)
		if len(scripts) != 1 || len(styles) != 1 {
			t.Fatalf("%d scripts and %d styles (injection?): %s", len(scripts), len(styles), body)
		}
		for _, m := range [][]byte{scripts[0][1], styles[0][1]} {
			sum := sha256.Sum256(m)
			if !strings.Contains(csp, "'sha256-"+base64.StdEncoding.EncodeToString(sum[:])+"'") {
				t.Errorf("CSP %q lacks the hash of %.40q", csp, m)
			}
		}
		if bytes.Contains(body, []byte("<img")) || strings.Contains(csp, "unsafe") {
			t.Errorf("page not safe: CSP %q body %s", csp, body)
		}
	}
}

// parseRoute routes method and path through the API's router.
func parseRoute(method, path string) (route, error) {
	return newRouter().resolve(context.Background(), method, path)
}

// sameAnswer fails unless the router and the hand-written parser give the
// same route, or the same refusal (and the same Allow header for a 405).
func sameAnswer(t *testing.T, rr *router, method, path string) {
	t.Helper()
	got, gerr := rr.resolve(context.Background(), method, path)
	want, werr := handWrittenRoute(method, path)
	var gme, wme *methodError
	switch {
	case werr == nil && (gerr != nil || got != want):
		t.Errorf("%s %q = %+v, %v; hand-written %+v", method, path, got, gerr, want)
	case errors.As(werr, &wme):
		if !errors.As(gerr, &gme) || gme.allow != wme.allow {
			t.Errorf("%s %q = %v; hand-written 405 Allow %q", method, path, gerr, wme.allow)
		}
	case werr != nil && !errors.Is(gerr, werr):
		t.Errorf("%s %q = %+v, %v; hand-written %v", method, path, got, gerr, werr)
	}
}

// TestRouter_EveryRouteAndMethodAnswersAsBefore: every documented route,
// with good and hostile ids and every method, gets the answer the
// hand-written parser gave (route, 400, 404, or 405 with the same Allow).
func TestRouter_EveryRouteAndMethodAnswersAsBefore(t *testing.T) {
	rr := newRouter()
	rooms := []string{"standup", "a", strings.Repeat("r", 64), strings.Repeat("r", 65), ".hidden", "..", ".", "a%2Fb", "a b", "room~1", ""}
	ids := []string{validWait, validPID, "short", validWait + "x", "..", ".", "", "%2E"}
	var paths []string
	for _, room := range rooms {
		base := Prefix + room
		paths = append(paths, base, base+"/", base+"//", base+"/.", base+"/..")
		for _, suffix := range []string{"join", "leave", "lock", "unlock", "suspend", "unban", "console", "events", "activity", "JOIN", "kick", "wait", "lobby", "participants"} {
			paths = append(paths, base+"/"+suffix, base+"/"+suffix+"/", base+"//"+suffix, base+"/"+suffix+"/x")
		}
		for _, id := range ids {
			paths = append(paths,
				base+"/wait/"+id, base+"/wait/"+id+"/",
				base+"/lobby/"+id+"/admit", base+"/lobby/"+id+"/deny", base+"/lobby/"+id+"/kick",
				base+"/participants/"+id+"/remove", base+"/participants/"+id+"/remove/x",
				base+"/participants/"+id+"/role", base+"/participants/"+id+"/role/x",
				base+"/lobby/"+id+"/admit/x/y")
		}
	}
	paths = append(paths, Prefix, strings.TrimSuffix(Prefix, "/"), "/.meetguard/api/v1/roomsx/standup", "/", "", "standup", Prefix+"a/b/c/d/e/f")
	methods := []string{"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE", "get", "FOO", ""}
	for _, p := range paths {
		for _, m := range methods {
			sameAnswer(t, rr, m, p)
		}
	}
}

func FuzzRouter_SameAsHandWritten(f *testing.F) {
	f.Add("POST", Prefix+"standup/join")
	f.Add("HEAD", Prefix+"standup/console")
	f.Add("POST", Prefix+"standup/wait/"+validWait)
	f.Add("DELETE", Prefix+"standup/lobby/"+validWait+"/admit")
	f.Add("GET", Prefix+"standup/participants/../remove")
	f.Add("PUT", Prefix+"a/b/c/d/e/f")
	rr := newRouter()
	f.Fuzz(func(t *testing.T, method, path string) {
		sameAnswer(t, rr, method, path)
	})
}
