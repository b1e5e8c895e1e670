package roompath

import "testing"

func TestRest_OnlyInsideTheNamedRoom(t *testing.T) {
	p, err := Parse("/lk/room/{room}")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		path, room, rest string
		ok               bool
	}{
		{"/lk/room/standup", "standup", "", true},
		{"/lk/room/standup/rtc", "standup", "/rtc", true},
		{"/lk/room/standup/rtc/v1/validate", "standup", "/rtc/v1/validate", true},
		{"/lk/room/standup2/rtc", "standup", "", false},
		{"/lk/room/board/rtc", "standup", "", false},
		{"/lk/room/", "", "", false},
		{"/lk/rtc", "standup", "", false},
		{"/other/room/standup/rtc", "standup", "", false},
	}
	for _, tc := range cases {
		rest, ok := p.Rest(tc.path, tc.room)
		if rest != tc.rest || ok != tc.ok {
			t.Errorf("Rest(%q, %q) = %q, %v; want %q, %v", tc.path, tc.room, rest, ok, tc.rest, tc.ok)
		}
	}
}

func TestParse_RefusesPatternsTheGatewayRefuses(t *testing.T) {
	for _, s := range []string{"", "room/{room}", "/room/{room}/x", "/{room}/{room}", "/room/{id}"} {
		if _, err := Parse(s); err == nil {
			t.Errorf("Parse(%q) accepted", s)
		}
	}
}
