package gateway

import (
	"strings"
	"testing"
)

// FuzzUnverifiedIssuerKID: whatever an attacker puts in an Authorization
// header, reading the claimed issuer and kid for the audit record never
// panics and never returns more than 128 printable ASCII bytes each.
func FuzzUnverifiedIssuerKID(f *testing.F) {
	for _, s := range []string{
		"Bearer eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.eyJpc3MiOiJodHRwczovL2lkcC5leGFtcGxlIn0.c2ln",
		"Bearer a.b.c", "Bearer ...", "Basic dXNlcjpwYXNz", "Bearer", "",
		"Bearer eyJraWQiOjF9.eyJpc3MiOltdfQ.x", "Bearer eyJraWQiOiJcdTAwMDAifQ.e30.x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		iss, kid := unverifiedIssuerKID(h)
		for _, v := range []string{iss, kid} {
			if len(v) > 128 || strings.IndexFunc(v, func(r rune) bool { return r < 0x20 || r >= 0x7f }) >= 0 {
				t.Fatalf("unverifiedIssuerKID(%q) = %q, %q", h, iss, kid)
			}
		}
	})
}
