package web

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// CSRFHeader marks a browser's state-changing call as coming from script on
// the gateway's own origin: browsers do not let another site set it
// without a CORS preflight, which the gateway never grants.
const CSRFHeader = "Meetguard-CSRF"

// ErrCrossSite refuses a request a browser sent on behalf of another site.
var ErrCrossSite = errors.New("cross-site request refused")

// Origins is the gateway's one rule for proving where a browser's request
// comes from (cross-site request forgery, cross-site WebSocket hijacking).
// A browser attaches the session and ticket cookies to a request any page
// starts, WebSocket handshakes included (no CORS preflight guards those),
// and SameSite=Lax does not stop a sibling subdomain or another port of the
// same host, which are "same-site". The edge checks with the gateway's own
// origin and allowed_origins (Check); the APIs behind it that know only the
// own origin use CheckCSRF, the same rule plus stricter Sec-Fetch-Site
// refusals.
type Origins struct {
	allowed map[string]bool // canonical "scheme://host[:port]"
}

// NewOrigins allows own's origin and each of extra (validated by config:
// scheme and host only).
func NewOrigins(own string, extra []string) (Origins, error) {
	o := Origins{allowed: map[string]bool{}}
	for i, s := range append([]string{own}, extra...) {
		c, ok := CanonicalOrigin(s, i > 0)
		if !ok {
			return Origins{}, fmt.Errorf("allowed_origins: %q is not an origin (scheme://host[:port])", s)
		}
		o.allowed[c] = true
	}
	return o, nil
}

// CanonicalOrigin lower-cases scheme and host and drops a default port, so
// "HTTPS://Meet.Example:443" and "https://meet.example" compare equal. With
// strict, anything beyond an origin (path, query, user) is refused.
func CanonicalOrigin(s string, strict bool) (string, bool) {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.User != nil || u.Opaque != "" {
		return "", false
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" {
		return "", false
	}
	if strict && (u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.Fragment != "") {
		return "", false
	}
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if scheme == "http" && port == "80" || scheme == "https" && port == "443" {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		host += ":" + port
	}
	return scheme + "://" + host, true
}

// Caller is how a request is authenticated and what it is, as far as the
// origin rule cares.
type Caller struct {
	// Upgrade is a WebSocket (any) upgrade.
	Upgrade bool
	// Session: authenticated by the session cookie, which a browser
	// attaches on its own.
	Session bool
	// Bearer: authenticated by a bearer token, which a browser cannot set
	// on a WebSocket handshake.
	Bearer bool
	// HeaderProof accepts CSRFHeader without Origin: the gateway's own API,
	// for which the gateway answers no CORS preflight (an upstream behind
	// the proxy might, so proxied paths do not accept it).
	HeaderProof bool
}

// Check refuses r when it must prove its origin and does not:
//   - a WebSocket upgrade: an Origin, when present, must be allowed
//     ("null", another port, a sibling subdomain are not); without Origin
//     only a bearer client passes: every browser sends Origin on a
//     handshake, and a browser cannot set Authorization on one;
//   - a state-changing request authenticated by the session cookie: Origin
//     allowed, or without Origin, Sec-Fetch-Site: same-origin (or, with
//     HeaderProof, CSRFHeader and no cross-site Sec-Fetch-Site).
//
// Other requests (reads, bearer calls) carry no browser-attached authority
// and pass.
func (o Origins) Check(r *http.Request, c Caller) error {
	if !c.Upgrade && (safeMethod(r.Method) || !c.Session) {
		return nil
	}
	return o.prove(r, c)
}

func (o Origins) prove(r *http.Request, c Caller) error {
	// Without an own origin (CheckCSRF's own == ""), Origin proves nothing
	// and only Sec-Fetch-Site and the header are looked at.
	if v := r.Header.Values("Origin"); len(v) > 0 && len(o.allowed) > 0 {
		if len(v) == 1 {
			if co, ok := CanonicalOrigin(v[0], true); ok && o.allowed[co] {
				return nil
			}
		}
		return ErrCrossSite
	}
	site := r.Header.Get("Sec-Fetch-Site")
	switch {
	case site == "same-origin" && !c.Upgrade:
		return nil
	case c.HeaderProof && !c.Upgrade && r.Header.Get(CSRFHeader) != "" && (site == "" || site == "same-origin"):
		return nil
	case c.Upgrade && c.Bearer && site == "":
		return nil
	}
	return ErrCrossSite
}

// safeMethod reports a method that must not change state.
func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

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

// CheckCSRF is the origin rule for a state-changing request a browser
// authenticates with a cookie, for a handler that knows only the gateway's
// own origin (bearer calls carry their credential explicitly and need no
// check). It is Origins.Check with own alone allowed and the API's header
// proof, whatever the method, and stricter: any sign of another site
// (CrossSite) or Sec-Fetch-Site: none refuses first.
func CheckCSRF(r *http.Request, own string) error {
	if CrossSite(r, own) || r.Header.Get("Sec-Fetch-Site") == "none" {
		return ErrCrossSite
	}
	var o Origins
	if own != "" {
		var err error
		if o, err = NewOrigins(own, nil); err != nil {
			return ErrCrossSite
		}
	}
	return o.prove(r, Caller{Session: true, HeaderProof: true})
}
