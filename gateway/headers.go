package gateway

import (
	"net/http"
	"net/netip"
	"strings"
)

// normHeader folds case and '_' so that X_Meetguard_User, x-meetguard-user
// and X-MEETGUARD_USER are one name: some upstreams (nginx with
// underscores_in_headers, CGI-style frameworks) read them as one.
func normHeader(k string) string {
	return strings.ReplaceAll(strings.ToLower(k), "_", "-")
}

// forwardingHeaders change how a request's origin or target is read. They
// are honoured only from trusted proxies; the two URL overrides never are.
var forwardingHeaders = map[string]bool{
	"forwarded":          true,
	"x-forwarded-for":    true,
	"x-forwarded-host":   true,
	"x-forwarded-proto":  true,
	"x-forwarded-port":   true,
	"x-forwarded-prefix": true,
	"x-forwarded-server": true,
	"x-real-ip":          true,
	"x-client-ip":        true,
	"true-client-ip":     true,
	"x-original-url":     true,
	"x-rewrite-url":      true,
	"x-original-uri":     true,
}

// stripIncoming removes every header a client could use to impersonate
// what the gateway asserts, before any code reads the request.
func stripIncoming(h http.Header, trusted bool) {
	for k := range h {
		if !mayBeSensitive(k) {
			continue
		}
		n := normHeader(k)
		switch {
		case strings.HasPrefix(n, "x-meetguard-"):
			delete(h, k)
		case forwardingHeaders[n]:
			if !trusted || n == "x-original-url" || n == "x-rewrite-url" || n == "x-original-uri" || strings.Contains(k, "_") {
				delete(h, k)
			}
		}
	}
}

// mayBeSensitive is a cheap pre-filter so the common headers (Accept,
// Cookie, User-Agent, ...) are not lower-cased on every request: every
// stripped name starts with x, f or t.
func mayBeSensitive(k string) bool {
	if k == "" {
		return false
	}
	switch k[0] | 0x20 {
	case 'x', 'f', 't':
		return true
	}
	return false
}

// clientIP returns the peer, or when the peer is a trusted proxy the
// right-most X-Forwarded-For address that is not itself a trusted proxy.
func clientIP(remoteAddr string, xff []string, trusted []netip.Prefix) (ip netip.Addr, peerTrusted bool) {
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		a, _ := netip.ParseAddr(remoteAddr)
		ap = netip.AddrPortFrom(a, 0)
	}
	peer := ap.Addr().Unmap()
	if !inAny(peer, trusted) {
		return peer, false
	}
	ip = peer
	var hops []string
	for _, v := range xff {
		hops = append(hops, strings.Split(v, ",")...)
	}
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break
		}
		ip = a.Unmap()
		if !inAny(ip, trusted) {
			break
		}
	}
	return ip, true
}

func inAny(ip netip.Addr, prefixes []netip.Prefix) bool {
	for _, p := range prefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// isGatewayCookie matches every cookie the gateway sets (session, login
// state, room tickets), with or without the __Host- prefix.
func isGatewayCookie(name string) bool {
	return strings.HasPrefix(strings.TrimPrefix(name, "__Host-"), "meetguard")
}

// stripCookies removes the gateway's own cookies from what goes upstream,
// so an upstream (or anything logging there) never sees a session handle
// or a ticket.
func stripCookies(h http.Header) {
	cookies := h.Values("Cookie")
	if len(cookies) == 0 {
		return
	}
	var kept []string
	for _, line := range cookies {
		for part := range strings.SplitSeq(line, ";") {
			name, _, _ := strings.Cut(strings.TrimSpace(part), "=")
			if !isGatewayCookie(name) && strings.TrimSpace(part) != "" {
				kept = append(kept, strings.TrimSpace(part))
			}
		}
	}
	h.Del("Cookie")
	if len(kept) > 0 {
		h.Set("Cookie", strings.Join(kept, "; "))
	}
}

func wantsHTML(r *http.Request) bool {
	return (r.Method == http.MethodGet || r.Method == http.MethodHead) && strings.Contains(r.Header.Get("Accept"), "text/html")
}
