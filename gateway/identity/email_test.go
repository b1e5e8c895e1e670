package identity_test

import (
	"strings"
	"testing"

	"github.com/meetguard/meetguard/gateway/identity"
)

func TestASCIIEmail_ConvertsIDNAndRefusesConfusables(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"alice@example.com", "alice@example.com"},
		{"Alice@EXAMPLE.com", "Alice@EXAMPLE.com"}, // ASCII: the policy lower-cases it
		{"jörg@bücher.example", "jörg@xn--bcher-kva.example"},
		{"a@xn--bcher-kva.example", "a@xn--bcher-kva.example"},
		// Look-alikes a lenient mapping would turn into ASCII letters stay
		// non-ASCII, so no staff domain can match them.
		{"mallory@\u212Ait.edu", "mallory@\u212Ait.edu"},           // KELVIN SIGN
		{"mallory@\u0130example.com", "mallory@\u0130example.com"}, // CAPITAL I WITH DOT ABOVE
		{"mallory@\uff45xample.com", "mallory@\uff45xample.com"},   // FULLWIDTH e
		{"mallory@example\u3002com", "mallory@example\u3002com"},   // IDEOGRAPHIC FULL STOP
		{"mallory@ex\u00adample.com", "mallory@ex\u00adample.com"}, // SOFT HYPHEN
		{"mallory@B\u00dcCHER.example", "mallory@B\u00dcCHER.example"},
		// A Cyrillic look-alike is a real, different domain.
		{"mallory@exampl\u0435.com", "mallory@xn--exampl-8of.com"},
		{"no-at-sign", "no-at-sign"},
		{"", ""},
	} {
		if got := identity.ASCIIEmail(tc.in); got != tc.want {
			t.Errorf("ASCIIEmail(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// FuzzASCIIEmail: whatever the claim holds, only the domain changes, and
// only into ASCII; the seeds are in testdata/fuzz/FuzzASCIIEmail.
func FuzzASCIIEmail(f *testing.F) {
	f.Fuzz(func(t *testing.T, email string) {
		got := identity.ASCIIEmail(email)
		if got == email {
			return
		}
		at := strings.LastIndexByte(email, '@')
		if at < 0 || !strings.HasPrefix(got, email[:at+1]) {
			t.Fatalf("ASCIIEmail(%q) = %q changed the local part", email, got)
		}
		for i := at + 1; i < len(got); i++ {
			if got[i] >= 0x80 {
				t.Fatalf("ASCIIEmail(%q) = %q: converted domain is not ASCII", email, got)
			}
		}
	})
}
