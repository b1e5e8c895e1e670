package gateway

import (
	"net/http"
	"strings"
)

// hstsValue pins browsers to https for a year. Without includeSubDomains:
// meetguard speaks only for its own host, not for sibling services.
const hstsValue = "max-age=31536000"

// setHSTS adds Strict-Transport-Security when users reach the gateway over
// https (public_url), so that a network attacker cannot downgrade a later
// visit to plain HTTP and read the session cookie (sslstrip). It is set
// even when a front proxy terminates TLS: public_url is what browsers see.
// On a plain-HTTP public_url it is left out, as browsers ignore it there.
func setHSTS(h http.Header, publicURL string) {
	if strings.HasPrefix(publicURL, "https://") {
		h.Set("Strict-Transport-Security", hstsValue)
	}
}
