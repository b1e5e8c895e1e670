package identity

import (
	"strings"

	"golang.org/x/net/idna"
)

// ASCIIEmail is email with its domain in ASCII, the form the admission
// policy compares: an internationalised domain becomes its IDNA A-label
// ("bücher.example" → "xn--bcher-kva.example").
//
// The conversion is the strict IDNA2008 registration profile, which maps
// nothing: look-alikes that a lenient mapping (UTS #46, or lower-casing)
// would turn into ASCII letters, such as the Kelvin sign U+212A ("k"), the
// dotted capital I U+0130 ("i"), full-width letters or the ideographic full
// stop, are refused instead. A domain that cannot be converted is returned
// as it came, non-ASCII, and the policy treats its owner as nobody's staff.
func ASCIIEmail(email string) string {
	at := strings.LastIndexByte(email, '@')
	if at < 0 {
		return email
	}
	domain := email[at+1:]
	if isASCII(domain) {
		return email
	}
	a, err := idna.Registration.ToASCII(domain)
	if err != nil || !isASCII(a) {
		return email
	}
	return email[:at+1] + a
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
