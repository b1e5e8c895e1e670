package web

import (
	"errors"
	"net/http"
)

// CSRFHeader marks a browser's state-changing call as coming from script on
// the gateway's own origin: browsers do not let another site set it
// without a CORS preflight, which the gateway never grants.
const CSRFHeader = "Meetguard-CSRF"

// ErrCrossSite refuses a request a browser sent on behalf of another site.
var ErrCrossSite = errors.New("cross-site request refused")

// CrossSite reports signs that a browser sent r on behalf of another site:
// an Origin header naming another origin than own (or "null"), or
// Sec-Fetch-Site other than same-origin (for a GET, "none", a person typing
// the URL, is allowed). With own empty only Sec-Fetch-Site is looked at.
func CrossSite(r *http.Request, own string) bool {
	if origin := r.Header.Get("Origin"); origin != "" && own != "" && origin != own {
		return true
	}
	site := r.Header.Get("Sec-Fetch-Site")
	if site == "none" && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		return false
	}
	return site != "" && site != "same-origin"
}

// CheckCSRF is the one rule for a state-changing request a browser
// authenticates with a cookie (bearer calls carry their credential
// explicitly and need no check). Any sign of another site refuses; then
// the request must prove it comes from own: Origin equal to own,
// Sec-Fetch-Site: same-origin, or the CSRFHeader. SameSite=Lax cookies
// alone do not stop a sibling subdomain or another port of the same host.
func CheckCSRF(r *http.Request, own string) error {
	if CrossSite(r, own) {
		return ErrCrossSite
	}
	if r.Header.Get("Sec-Fetch-Site") == "none" {
		return ErrCrossSite
	}
	origin := r.Header.Get("Origin")
	if own != "" && origin == own || r.Header.Get("Sec-Fetch-Site") == "same-origin" || r.Header.Get(CSRFHeader) != "" {
		return nil
	}
	return ErrCrossSite
}
