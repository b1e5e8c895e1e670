package roomsapi

import (
	"errors"
	"net/http"
)

var errCrossSite = errors.New("cross-site request refused")

// checkCSRF guards state-changing calls that a browser authenticates with
// its session cookie (bearer calls carry their credential explicitly and
// are exempt). Any sign of another origin refuses; otherwise the call must
// prove it comes from this origin: an Origin header equal to ours,
// Sec-Fetch-Site: same-origin, or the Meetguard-CSRF header, which no other
// site can add without a CORS preflight the gateway never grants.
func (a *API) checkCSRF(r *http.Request) error {
	origin := r.Header.Get("Origin")
	site := r.Header.Get("Sec-Fetch-Site")
	if origin != "" && origin != a.origin {
		return errCrossSite
	}
	if site != "" && site != "same-origin" {
		return errCrossSite
	}
	if origin == a.origin || site == "same-origin" || r.Header.Get(CSRFHeader) != "" {
		return nil
	}
	return errCrossSite
}
