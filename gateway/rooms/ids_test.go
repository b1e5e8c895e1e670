package rooms_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/meetguard/meetguard/gateway/rooms"
)

func TestValidateRoomID_HostileInputs(t *testing.T) {
	good := []string{"a", "standup-42", "Team.Sync_2026-1", "a.b", "a..b", strings.Repeat("x", 64)}
	bad := []string{"", ".", "..", "a/b", "../etc", "a b", "a%2fb", "a?b", "a#b", "{a}", "a\x00", "é",
		"a\nb", strings.Repeat("x", 65), "a;b", "*", "a~b", ".hidden", "...", strings.Repeat("x", 129)}
	for _, id := range good {
		if err := rooms.ValidateRoomID(id); err != nil {
			t.Errorf("ValidateRoomID(%q) = %v, want ok", id, err)
		}
	}
	for _, id := range bad {
		if err := rooms.ValidateRoomID(id); !errors.Is(err, rooms.ErrInvalid) {
			t.Errorf("ValidateRoomID(%q) = %v, want ErrInvalid", id, err)
		}
	}
}

func TestSubjectKey_Validate(t *testing.T) {
	for _, k := range []rooms.SubjectKey{"", "a\x00b", "a\nb", "\xff\xfe", rooms.SubjectKey(strings.Repeat("s", 513)), "a\u0085b"} {
		if err := k.Validate(); !errors.Is(err, rooms.ErrInvalid) {
			t.Errorf("Validate(%q) = %v, want ErrInvalid", k, err)
		}
	}
	if err := rooms.SubjectKey("https://accounts.example.com|1234567890 Ünïcode").Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestIDs_AreRandomAndValidateTheirShape(t *testing.T) {
	seen := map[rooms.ParticipantID]bool{}
	for range 1000 {
		id := rooms.NewParticipantID()
		if err := id.Validate(); err != nil || seen[id] {
			t.Fatalf("id %q: err %v, repeated %v", id, err, seen[id])
		}
		seen[id] = true
	}
	if err := rooms.NewWaitID().Validate(); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"", "AAAA", "AAAAAAAAAAAAAAAAAAAAAB", "AAAAAAAAAAAAAAAAAAAAA+", "AAAAAAAAAAAAAAAAAAAAAA=", strings.Repeat("A", 23)} {
		if rooms.ParticipantID(id).Validate() == nil || rooms.WaitID(id).Validate() == nil {
			t.Errorf("%q accepted as an id", id)
		}
	}
}

func TestDisplayName_DropsControlsAndCutsOnRuneBoundary(t *testing.T) {
	cases := map[string]string{
		"Ana Lima":               "Ana Lima",
		"evil\x1b[2J\x07name":    "evil[2Jname",
		"line\nbreak\r":          "linebreak",
		"\xff\xfebad utf8":       "bad utf8",
		strings.Repeat("é", 100): strings.Repeat("é", 64),
		strings.Repeat("a", 200): strings.Repeat("a", 128),
		"":                       "",
	}
	for in, want := range cases {
		got := rooms.DisplayName(in)
		if got != want {
			t.Errorf("DisplayName(%q) = %q, want %q", in, got, want)
		}
		a := rooms.Admission{Room: "r", Subject: "i|s", Role: rooms.RoleViewer, Name: got}
		if err := a.Validate(); err != nil {
			t.Errorf("DisplayName(%q) = %q is not a valid name: %v", in, got, err)
		}
	}
}

// A knock's email domain and verdict are shown to hosts: a crafted value
// must not pose as another domain list or another verdict.
func TestAdmission_ValidateKnockFacts(t *testing.T) {
	cases := []struct {
		domain  string
		verdict []string
		ok      bool
	}{
		{"example.com", []string{rooms.VerdictStaff, rooms.VerdictMFA}, true},
		{"", nil, true},
		{"xn--kit-ub7a.edu", []string{rooms.VerdictGuest, rooms.VerdictUnverified}, true},
		{"evil.example, example.com", nil, false},
		{"a@example.com", nil, false},
		{"line\nbreak", nil, false},
		{strings.Repeat("a", 254), nil, false},
		{"example.com", []string{"staff,mfa"}, false},
		{"example.com", []string{"admin"}, false},
		{"example.com", []string{""}, false},
	}
	for _, c := range cases {
		a := rooms.Admission{Room: "r", Subject: "i|s", Role: rooms.RoleViewer, EmailDomain: c.domain, Verdict: c.verdict}
		err := a.Validate()
		if (err == nil) != c.ok {
			t.Errorf("Validate(domain %q, verdict %q) = %v, want ok=%v", c.domain, c.verdict, err, c.ok)
		}
		if err != nil && !errors.Is(err, rooms.ErrInvalid) {
			t.Errorf("Validate(domain %q) = %v, want ErrInvalid", c.domain, err)
		}
	}
}
