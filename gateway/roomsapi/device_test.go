package roomsapi

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/meetguard/meetguard/gateway/identity"
	"github.com/meetguard/meetguard/gateway/rooms"
)

func TestDeviceLabel(t *testing.T) {
	cases := []struct {
		ua   string
		via  identity.Via
		want string
	}{
		{"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0", identity.ViaSession, "Firefox on Linux"},
		{"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", identity.ViaSession, "Chrome on Linux"},
		{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0", identity.ViaSession, "Edge on Windows"},
		{"Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1", identity.ViaSession, "Safari on iPhone"},
		{"Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36", identity.ViaSession, "Chrome on Android"},
		{"curl/8.5.0", identity.ViaBearer, "API client"},
		{"", identity.ViaSession, "Unknown browser"},
		{"\x00\x01<script>", identity.ViaSession, "Unknown browser"},
	}
	for _, tc := range cases {
		r, _ := http.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("User-Agent", tc.ua)
		if got := deviceLabel(r, identity.Identity{Via: tc.via}); got != tc.want {
			t.Errorf("deviceLabel(%q) = %q, want %q", tc.ua, got, tc.want)
		}
	}
}

// FuzzDeviceLabel: whatever a client sends as its User-Agent, the label is
// a valid knock device (printable, short), so Knock never refuses it.
func FuzzDeviceLabel(f *testing.F) {
	f.Add("Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0")
	f.Add("curl/8.5.0")
	f.Add("\xff\xfe Chrome/ \n Windows")
	f.Fuzz(func(t *testing.T, ua string) {
		r, _ := http.NewRequest(http.MethodGet, "/", nil)
		r.Header["User-Agent"] = []string{ua}
		got := deviceLabel(r, identity.Identity{Via: identity.ViaSession})
		if !utf8.ValidString(got) || len(got) > rooms.MaxNameLen {
			t.Fatalf("label %q", got)
		}
		a := rooms.Admission{Room: "r", Subject: "https://idp.test|u", Role: rooms.RoleParticipant, Device: got}
		if err := a.Validate(); err != nil {
			t.Fatalf("label %q refused: %v", got, err)
		}
	})
}

func TestKnockFacts(t *testing.T) {
	cases := []struct {
		name    string
		id      identity.Identity
		member  bool
		domain  string
		verdict []string
	}{
		{"staff with mfa", identity.Identity{Email: "bob@Example.COM", EmailVerified: true, AMR: []string{"pwd", "otp"}}, true,
			"example.com", []string{rooms.VerdictStaff, rooms.VerdictMFA}},
		{"guest says mfa", identity.Identity{Email: "eve@outside.example", EmailVerified: true, AMR: []string{"mfa"}}, false,
			"outside.example", []string{rooms.VerdictGuest, rooms.VerdictMFA}},
		{"password only", identity.Identity{Email: "eve@outside.example", EmailVerified: true, AMR: []string{"pwd"}}, false,
			"outside.example", []string{rooms.VerdictGuest}},
		{"two possession factors are not two kinds", identity.Identity{Email: "e@o.example", EmailVerified: true, AMR: []string{"otp", "hwk"}}, false,
			"o.example", []string{rooms.VerdictGuest}},
		{"unverified address", identity.Identity{Email: "mallory@example.com"}, false,
			"example.com", []string{rooms.VerdictGuest, rooms.VerdictUnverified}},
		// A Kelvin sign K: a look-alike of kit.edu is shown in its ASCII form.
		{"look-alike domain", identity.Identity{Email: "m@\u212Ait.edu", EmailVerified: true}, false,
			"kit.edu", []string{rooms.VerdictGuest}},
		{"no email", identity.Identity{}, false, "", []string{rooms.VerdictGuest}},
		{"list smuggled in the domain", identity.Identity{Email: "m@evil.example, example.com", EmailVerified: true}, false,
			"evil.example??example.com", []string{rooms.VerdictGuest}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d, v := knockFacts(c.id, c.member)
			if d != c.domain || !slices.Equal(v, c.verdict) {
				t.Fatalf("knockFacts = %q %q, want %q %q", d, v, c.domain, c.verdict)
			}
		})
	}
}

// FuzzKnockFacts: whatever email an identity provider sends, the knock's
// domain and verdict are valid (Knock never refuses them) and the domain
// holds nothing but the letters of a domain name.
func FuzzKnockFacts(f *testing.F) {
	f.Add("eve@outside.example", true)
	f.Add("m@\u212Ait.edu", false)
	f.Add("a@b@\xff, c d", true)
	f.Fuzz(func(t *testing.T, email string, verified bool) {
		d, v := knockFacts(identity.Identity{Email: email, EmailVerified: verified, AMR: []string{"mfa"}}, false)
		a := rooms.Admission{Room: "r", Subject: "https://idp.test|u", Role: rooms.RoleViewer, EmailDomain: d, Verdict: v}
		if err := a.Validate(); err != nil {
			t.Fatalf("email %q gave domain %q verdict %q, refused: %v", email, d, v, err)
		}
		if strings.ContainsAny(d, " ,@") {
			t.Fatalf("email %q gave domain %q", email, d)
		}
	})
}
