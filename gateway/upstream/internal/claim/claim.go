// Package claim makes the values an adapter asserts about an admitted person
// to a meeting server: the display name others in the room will see, and a
// fresh ID for each token it mints.
//
// It never reads or decides admission, and never returns a display name
// longer than MaxNameBytes or with invalid UTF-8, whatever the identity
// provider sent.
package claim

import (
	"crypto/rand"
	"encoding/base64"
	"unicode/utf8"
)

// MaxNameBytes bounds a display name: enough for any real name, small
// enough that a hostile one cannot bloat tokens, URLs or rosters.
const MaxNameBytes = 128

// DisplayName is s cut at a rune boundary to at most MaxNameBytes of valid
// UTF-8; invalid bytes become U+FFFD.
func DisplayName(s string) string {
	if len(s) <= MaxNameBytes && utf8.ValidString(s) {
		return s
	}
	b := make([]byte, 0, MaxNameBytes)
	for _, r := range s {
		if len(b)+utf8.RuneLen(r) > MaxNameBytes {
			break
		}
		b = utf8.AppendRune(b, r)
	}
	return string(b)
}

// NewTokenID is a random token ID (jti) with 96 bits of entropy.
func NewTokenID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b) // crypto/rand.Read never fails; it crashes instead
	return base64.RawURLEncoding.EncodeToString(b)
}
