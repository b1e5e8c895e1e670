package e2eeapi

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
)

// isE2EEPath reports whether the router gives path to the e2ee endpoints (to serve or to refuse).
func isE2EEPath(p string) bool {
	rt, _ := newRouter().resolve(context.Background(), http.MethodGet, p)
	return rt.dest == destEndpoint
}

// parsePath returns the room and endpoint the router finds for path under the endpoint's own method.
func parsePath(p string) (room, name string, err error) {
	rr := newRouter()
	for _, m := range []string{http.MethodGet, http.MethodPost} {
		rt, err := rr.resolve(context.Background(), m, p)
		if err == nil && rt.dest == destEndpoint {
			return rt.room, rt.name, nil
		}
	}
	return "", "", errNoRoute
}

// sameAnswer fails unless the router and the hand-written routing give the same destination, room and
// endpoint, or the same refusal (and the same Allow header and message for a 405).
func sameAnswer(t *testing.T, rr *router, method, path string) {
	t.Helper()
	got, gerr := rr.resolve(context.Background(), method, path)
	want, werr := handWrittenRoute(method, path)
	var gme, wme *methodError
	switch {
	case got != want:
		t.Errorf("%s %q = %+v, %v; hand-written %+v, %v", method, path, got, gerr, want, werr)
	case errors.As(werr, &wme):
		if !errors.As(gerr, &gme) || *gme != *wme {
			t.Errorf("%s %q = %v; hand-written 405 %+v", method, path, gerr, *wme)
		}
	case !errors.Is(gerr, werr) || (werr == nil) != (gerr == nil):
		t.Errorf("%s %q = %+v, %v; hand-written %v", method, path, got, gerr, werr)
	}
}

// TestRouter_EveryRouteAndMethodAnswersAsBefore: every endpoint and the meeting page, with good and hostile
// room ids, odd segments and every method, get the answer the hand-written routing gave (endpoint, meeting
// page, 404, 405 with the same Allow, or the wrapped handler).
func TestRouter_EveryRouteAndMethodAnswersAsBefore(t *testing.T) {
	rr := newRouter()
	roomIDs := []string{"standup", "a", "a.b_c-d", "e2ee", "meeting", strings.Repeat("r", 64), strings.Repeat("r", 65), strings.Repeat("r", 129),
		".hidden", "..", ".", "", "a%2Fb", "a%2fb", "%2E%2E", "%2e", "a%20b", "a b", "room~1", "%", "%zz", "ROOM", "a\x00b"}
	names := []string{"nope", "", ".", "..", "E2EE", "meeting", "%72oster", "roster%2F"}
	for name := range endpoints {
		names = append(names, name, strings.ToUpper(name))
	}
	var paths []string
	for _, room := range roomIDs {
		base := roomsPrefix + room
		paths = append(paths, base, base+"/", base+"//", base+"/.", base+"/..",
			base+"/e2ee", base+"/e2ee/", base+"/e2ee//", base+"/e2eex", base+"/e2eex/roster", base+"//e2ee/roster",
			base+"/meeting", base+"/meeting/", base+"/meeting/x", base+"//meeting", base+"/x/meeting", base+"/e2ee/meeting",
			base+"/join", base+"/x/e2ee/roster")
		for _, name := range names {
			e := base + "/e2ee/" + name
			paths = append(paths, e, e+"/", e+"/x", e+"//", e+"/.", e+"/..", base+"/./e2ee/"+name, base+"/../e2ee/"+name)
		}
	}
	paths = append(paths, roomsPrefix, strings.TrimSuffix(roomsPrefix, "/"), roomsPrefix+"/", roomsPrefix+"e2ee", roomsPrefix+"meeting",
		"/.meetguard/api/v1/roomsx/standup/e2ee/roster", "/.meetguard/api/v2/rooms/standup/e2ee/roster", "/", "", "standup/e2ee/roster",
		roomsPrefix+"a/b/c/d/e/f", roomsPrefix+"standup/e2ee/roster?x=1", roomsPrefix+"standup/e2ee/roster#x")
	methods := []string{"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE", "get", "post", "FOO", ""}
	for _, p := range paths {
		for _, m := range methods {
			sameAnswer(t, rr, m, p)
		}
	}
}

func FuzzRouter_SameAsHandWritten(f *testing.F) {
	f.Add("GET", roomsPrefix+"standup/e2ee/roster")
	f.Add("HEAD", roomsPrefix+"standup/e2ee/keys")
	f.Add("DELETE", roomsPrefix+"standup/e2ee/keypackages")
	f.Add("POST", roomsPrefix+"standup/meeting")
	f.Add("GET", roomsPrefix+"a%2Fb/e2ee/nonce")
	f.Add("PUT", roomsPrefix+"../e2ee/../meeting")
	rr := newRouter()
	f.Fuzz(func(t *testing.T, method, path string) {
		sameAnswer(t, rr, method, path)
	})
}
