package claim

import (
	"encoding/base64"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestDisplayName_BoundedValidUTF8(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"plain name kept", "Ada Lovelace", "Ada Lovelace"},
		{"empty kept", "", ""},
		{"exactly the limit kept", strings.Repeat("a", 128), strings.Repeat("a", 128)},
		{"one byte over cut", strings.Repeat("a", 129), strings.Repeat("a", 128)},
		{"multibyte at the limit kept", strings.Repeat("é", 64), strings.Repeat("é", 64)},
		{"multibyte over cut", strings.Repeat("é", 65), strings.Repeat("é", 64)},
		{"never splits a rune", "a" + strings.Repeat("€", 43), "a" + strings.Repeat("€", 42)},
		{"invalid byte replaced", "bad\xffname", "bad\uFFFDname"},
		{"invalid flood bounded after replacement", strings.Repeat("\xff", 200), strings.Repeat("\uFFFD", 42)},
		{"control characters pass through", "tab\there", "tab\there"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := DisplayName(tt.in); got != tt.want {
				t.Errorf("DisplayName(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func FuzzDisplayName(f *testing.F) {
	f.Add("Ada Lovelace")
	f.Add(strings.Repeat("€", 50))
	f.Add("\xff\xfe" + strings.Repeat("x", 200))
	f.Fuzz(func(t *testing.T, s string) {
		got := DisplayName(s)
		if len(got) > MaxNameBytes || !utf8.ValidString(got) {
			t.Fatalf("DisplayName(%q) = %q: %d bytes, valid UTF-8 %v", s, got, len(got), utf8.ValidString(got))
		}
		if utf8.ValidString(s) && !strings.HasPrefix(s, got) {
			t.Fatalf("DisplayName(%q) = %q is not a prefix of valid input", s, got)
		}
		if len(s) <= MaxNameBytes && utf8.ValidString(s) && got != s {
			t.Fatalf("DisplayName(%q) = %q changed a name that fits", s, got)
		}
	})
}

func TestNewTokenID_RandomAndURLSafe(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := NewTokenID()
		raw, err := base64.RawURLEncoding.DecodeString(id)
		if err != nil || len(raw) != 12 {
			t.Fatalf("NewTokenID() = %q: want 12 bytes of unpadded base64url (err %v, %d bytes)", id, err, len(raw))
		}
		if seen[id] {
			t.Fatalf("NewTokenID() repeated %q", id)
		}
		seen[id] = true
	}
}

func BenchmarkDisplayName(b *testing.B) {
	long := strings.Repeat("Lovelace ", 40)
	b.ReportAllocs()
	for b.Loop() {
		_ = DisplayName(long)
	}
}
