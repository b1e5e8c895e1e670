package roomsapi

import (
	"net/http"
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
