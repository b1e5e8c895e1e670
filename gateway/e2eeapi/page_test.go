package e2eeapi_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/meetguard/meetguard/gateway/e2eeapi"
	"github.com/meetguard/meetguard/gateway/rooms"
	"github.com/meetguard/meetguard/gateway/web"
)

// TestMeetingPage_OnlyForThoseWhoMayHoldKeys: the meeting page (which carries the room's authority key and the
// caller's identity) is rendered for a member of the room, while an outsider, an unknown room, a room-id that
// is not one, and an anonymous caller all get the same refusal, which tells nothing about the room.
func TestMeetingPage_OnlyForThoseWhoMayHoldKeys(t *testing.T) {
	e := newEnv(t, envOptions{meeting: e2eeapi.MeetingPage{SignalPath: func(room string) string { return "/lk/room/" + room }}})
	alice, eve := e.user("alice"), e.user("eve")
	e.createRoom("standup", alice, rooms.SettingsChange{})
	e.admit(alice, "standup", rooms.RoleHost)
	get := func(u *user, path string) (int, string, http.Header) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, e.URL+path, nil)
		req.Header.Set("Accept", "text/html")
		if u != nil {
			_ = u.authorize("standup")(req)
		}
		resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header
	}
	status, body, h := get(alice, web.MeetingPath("standup"))
	if status != http.StatusOK || !strings.Contains(body, `data-room="standup"`) || !strings.Contains(body, `data-signal="/lk/room/standup"`) ||
		!strings.Contains(body, `data-subject="`+alice.id.Subject+`"`) || !strings.Contains(h.Get("Content-Security-Policy"), "worker-src blob:") {
		t.Fatalf("member: %d %s", status, h.Get("Content-Security-Policy"))
	}
	_, refused, _ := get(eve, web.MeetingPath("standup"))
	for _, tc := range []struct {
		name string
		u    *user
		path string
	}{
		{"outsider", eve, web.MeetingPath("standup")},
		{"unknown room", alice, web.MeetingPath("nowhere")},
		{"not a room id", alice, web.MeetingPath(".hidden")},
	} {
		status, body, _ := get(tc.u, tc.path)
		if status != http.StatusNotFound || body != refused || strings.Contains(body, "data-authority") {
			t.Errorf("%s: %d, same refusal %v", tc.name, status, body == refused)
		}
	}
	if status, body, h := get(nil, web.MeetingPath("standup")); status != http.StatusFound || !strings.HasPrefix(h.Get("Location"), "/.meetguard/login") || strings.Contains(body, "data-authority") {
		t.Errorf("anonymous caller: %d %s, want a redirect to sign in", status, h.Get("Location"))
	}
}
