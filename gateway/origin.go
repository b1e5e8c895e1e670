package gateway

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"go.uber.org/zap"

	"github.com/meetguard/meetguard/gateway/audit"
	"github.com/meetguard/meetguard/gateway/identity"
	"github.com/meetguard/meetguard/gateway/request"
)

// errForeignOrigin refuses a request a browser sent on behalf of another
// site.
var errForeignOrigin = errors.New("request from a foreign origin refused")

// originGuard stops cross-site request forgery and cross-site WebSocket
// hijacking on the proxy. A browser attaches the session and ticket
// cookies to a request any page starts, WebSocket handshakes included (no
// CORS preflight guards those), and SameSite=Lax does not stop a sibling
// subdomain or another port of the same host, which are "same-site". So
// every WebSocket upgrade and every state-changing request a browser
// authenticates with its session cookie must come from the gateway's own
// origin or one listed in allowed_origins.
type originGuard struct {
	allowed map[string]bool // canonical "scheme://host[:port]"
}

// newOriginGuard allows publicURL's origin and each of extra (validated by
// config: scheme and host only).
func newOriginGuard(publicURL string, extra []string) (originGuard, error) {
	g := originGuard{allowed: map[string]bool{}}
	for i, s := range append([]string{publicURL}, extra...) {
		o, ok := canonicalOrigin(s, i > 0)
		if !ok {
			return originGuard{}, fmt.Errorf("allowed_origins: %q is not an origin (scheme://host[:port])", s)
		}
		g.allowed[o] = true
	}
	return g, nil
}

// canonicalOrigin lower-cases scheme and host and drops a default port, so
// "HTTPS://Meet.Example:443" and "https://meet.example" compare equal. With
// strict, anything beyond an origin (path, query, user) is refused.
func canonicalOrigin(s string, strict bool) (string, bool) {
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

// safeMethod reports a method that must not change state.
func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// check refuses r when it must prove its origin and does not:
//   - a WebSocket (any) upgrade: an Origin, when present, must be allowed
//     ("null", another port, a sibling subdomain are not); without Origin
//     only a bearer client passes: every browser sends Origin on a
//     handshake, and a browser cannot set Authorization on one;
//   - a state-changing request authenticated by the session cookie: Origin
//     allowed, or without Origin, Sec-Fetch-Site: same-origin.
//
// Other requests (reads, bearer calls) carry no browser-attached authority
// and pass.
func (g originGuard) check(r *http.Request, id identity.Identity) error {
	return g.checkWith(r, id, false)
}

// checkAPI is check for the gateway's own API, which also accepts the
// Meetguard-CSRF header without Origin: a page can send a custom header
// only after a CORS preflight, and the gateway answers none (an upstream
// behind the proxy might, so proxied paths do not accept it).
func (g originGuard) checkAPI(r *http.Request, id identity.Identity) error {
	return g.checkWith(r, id, true)
}

// csrfHeader is the rooms API's proof-of-origin header.
const csrfHeader = "Meetguard-CSRF"

func (g originGuard) checkWith(r *http.Request, id identity.Identity, api bool) error {
	upgrade := isUpgrade(r)
	if !upgrade && (safeMethod(r.Method) || id.Via != identity.ViaSession) {
		return nil
	}
	if o := r.Header.Values("Origin"); len(o) > 0 {
		if len(o) == 1 {
			if c, ok := canonicalOrigin(o[0], true); ok && g.allowed[c] {
				return nil
			}
		}
		return errForeignOrigin
	}
	site := r.Header.Get("Sec-Fetch-Site")
	switch {
	case site == "same-origin" && !upgrade:
		return nil
	case api && !upgrade && r.Header.Get(csrfHeader) != "" && (site == "" || site == "same-origin"):
		return nil
	case upgrade && id.Via == identity.ViaBearer && r.Header.Get("Sec-Fetch-Site") == "":
		return nil
	}
	return errForeignOrigin
}

// refuseForeignOrigin answers 403 {"error":"csrf"} (as the rooms API does)
// and records the attempt: someone's browser was made to reach the gateway
// from another site.
func (g *Gateway) refuseForeignOrigin(w http.ResponseWriter, r *http.Request, id identity.Identity) {
	g.noteForeignOrigin(r, id)
	g.refuse(w, r, http.StatusForbidden, "csrf", "Cross-site request refused.")
}

// noteForeignOrigin writes the log line and counts the audit record of a
// refused cross-origin request.
func (g *Gateway) noteForeignOrigin(r *http.Request, id identity.Identity) {
	g.opts.Logger.Info("request from a foreign origin refused", zap.String("origin", r.Header.Get("Origin")),
		zap.String("path", r.URL.EscapedPath()), zap.Bool("upgrade", isUpgrade(r)))
	g.auditOriginRefused(r, id)
}

// auditOriginRefused counts the refusal; the audit log gets one
// origin.refused record per caller, origin and minute (a page that retries
// in a loop cannot flood it).
func (g *Gateway) auditOriginRefused(r *http.Request, id identity.Identity) {
	ip, origin := request.ClientIP(r), clip(r.Header.Get("Origin"), 256)
	method, path, upgrade := r.Method, clip(r.URL.EscapedPath(), 256), isUpgrade(r)
	g.originRefusals.Add(ip+"\x00"+origin+"\x00"+id.Key(), func() []zap.Field {
		return []zap.Field{
			zap.String(audit.FieldSubject, id.Subject), zap.String(audit.FieldClientIP, ip), zap.String(audit.FieldOrigin, origin),
			zap.String(audit.FieldMethod, method), zap.String(audit.FieldPath, path), zap.Bool(audit.FieldUpgrade, upgrade),
		}
	})
}

// originOverflow are the members of the record that counts refusals beyond
// the aggregator's memory bound.
var originOverflow = []zap.Field{
	zap.String(audit.FieldSubject, "*"), zap.String(audit.FieldClientIP, "*"), zap.String(audit.FieldOrigin, "*"),
	zap.String(audit.FieldMethod, "*"), zap.String(audit.FieldPath, "*"), zap.Bool(audit.FieldUpgrade, false),
}

// clip bounds what an outsider chose before it is kept or written.
func clip(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
