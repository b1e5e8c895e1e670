package e2eeapi

import (
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestParsePath_OnlyE2EEEndpointsOfValidRooms(t *testing.T) {
	cases := []struct {
		path       string
		room, name string
		ok         bool
	}{
		{"/.meetguard/api/v1/rooms/standup/e2ee/roster", "standup", "roster", true},
		{"/.meetguard/api/v1/rooms/a.b_c-d/e2ee/nonce", "a.b_c-d", "nonce", true},
		{"/.meetguard/api/v1/rooms/a~b/e2ee/nonce", "", "", false},
		{"/.meetguard/api/v1/rooms/.hidden/e2ee/nonce", "", "", false},
		{"/.meetguard/api/v1/rooms/" + strings.Repeat("r", 64) + "/e2ee/roster", strings.Repeat("r", 64), "roster", true},
		{"/.meetguard/api/v1/rooms/" + strings.Repeat("r", 65) + "/e2ee/roster", "", "", false},
		{"/.meetguard/api/v1/rooms/standup/e2ee/", "", "", false},
		{"/.meetguard/api/v1/rooms/standup/e2ee", "", "", false},
		{"/.meetguard/api/v1/rooms/standup/e2ee/roster/", "", "", false},
		{"/.meetguard/api/v1/rooms/standup/e2ee/roster/x", "", "", false},
		{"/.meetguard/api/v1/rooms/standup/e2eex/roster", "", "", false},
		{"/.meetguard/api/v1/rooms/stand%20up/e2ee/roster", "", "", false},
		{"/.meetguard/api/v1/rooms/../e2ee/roster", "", "", false},
		{"/.meetguard/api/v1/rooms//e2ee/roster", "", "", false},
		{"/.meetguard/api/v1/rooms/" + strings.Repeat("r", 129) + "/e2ee/roster", "", "", false},
		{"/.meetguard/api/v2/rooms/standup/e2ee/roster", "", "", false},
	}
	for _, tc := range cases {
		room, name, err := parsePath(tc.path)
		if (err == nil) != tc.ok || room != tc.room || name != tc.name {
			t.Errorf("parsePath(%q) = %q, %q, %v", tc.path, room, name, err)
		}
	}
	for path, want := range map[string]bool{
		"/.meetguard/api/v1/rooms/standup/e2ee/roster": true,
		"/.meetguard/api/v1/rooms/standup/e2ee":        true,
		"/.meetguard/api/v1/rooms/bad%20room/e2ee/x":   true, // ours to refuse
		"/.meetguard/api/v1/rooms/standup/join":        false,
		"/.meetguard/api/v1/rooms/standup/e2eex":       false,
		"/.meetguard/api/v1/rooms/":                    false,
		"/.meetguard/api/v1/rooms/e2ee":                false,
	} {
		if isE2EEPath(path) != want {
			t.Errorf("isE2EEPath(%q) = %v", path, !want)
		}
	}
}

func TestParseQuery_StrictPerEndpoint(t *testing.T) {
	cases := []struct {
		name, raw string
		ok        bool
		want      query
	}{
		{"roster", "", true, query{}},
		{"roster", "since=7", true, query{since: 7}},
		{"roster", "since=7&after=3&wait=2s", true, query{since: 7, after: 3, wait: 2 * time.Second}},
		{"roster", "since=18446744073709551615", true, query{since: 1<<64 - 1}},
		{"roster", "since=18446744073709551616", false, query{}},
		{"roster", "since=+7", false, query{}},
		{"roster", "since=07", false, query{}},
		{"roster", "since=", false, query{}},
		{"roster", "since=7;after=1", false, query{}},
		{"roster", "epoch=1", false, query{}},
		{"roster", "wait=1s", false, query{}},
		{"keys", "epoch=3", true, query{epoch: 3}},
		{"keys", "", false, query{}},
		{"keys", "epoch=3&epoch=3", false, query{}},
		{"wait", "after=0", true, query{}},
		{"wait", "after=0&wait=-1s", false, query{}},
		{"wait", "after=0&wait=1e9", false, query{}},
		{"nonce", "x=1", false, query{}},
		{"commits", "epoch=%31", true, query{epoch: 1}},
	}
	for _, tc := range cases {
		q, err := parseQuery(tc.name, tc.raw)
		if (err == nil) != tc.ok {
			t.Errorf("parseQuery(%s, %q): %v", tc.name, tc.raw, err)
			continue
		}
		if tc.ok && (q.since != tc.want.since || q.after != tc.want.after || q.epoch != tc.want.epoch || q.wait != tc.want.wait) {
			t.Errorf("parseQuery(%s, %q) = %+v", tc.name, tc.raw, q)
		}
		if !tc.ok && err != nil && !strings.Contains(err.Error(), "query") {
			t.Errorf("error does not name the query: %v", err)
		}
	}
}

// FuzzParseRequest feeds client-chosen paths and queries to the request parsers: they never panic, and what
// they accept means one thing (numbers re-encode to the same digits, the room is a valid room id).
func FuzzParseRequest(f *testing.F) {
	f.Add("/.meetguard/api/v1/rooms/standup/e2ee/roster", "since=3&after=10&wait=25s")
	f.Add("/.meetguard/api/v1/rooms/standup/e2ee/keys", "epoch=3")
	f.Add("/.meetguard/api/v1/rooms/standup/e2ee/wait", "after=18446744073709551615&wait=0s")
	f.Fuzz(func(t *testing.T, path, raw string) {
		_ = isE2EEPath(path)
		room, name, err := parsePath(path)
		if err != nil {
			return
		}
		if !isE2EEPath(path) || room == "" || strings.ContainsAny(room, "/%") {
			t.Fatalf("accepted %q as room %q endpoint %q", path, room, name)
		}
		q, err := parseQuery(name, raw)
		if err != nil {
			return
		}
		vals, _ := url.ParseQuery(raw)
		for key, got := range map[string]uint64{"since": q.since, "after": q.after, "epoch": q.epoch} {
			if q.has[key] && vals.Get(key) != strconv.FormatUint(got, 10) {
				t.Fatalf("%s=%q parsed as %d", key, vals.Get(key), got)
			}
		}
		if q.wait < 0 {
			t.Fatalf("negative wait %v", q.wait)
		}
	})
}
