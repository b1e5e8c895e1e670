package web

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strings"
)

// Hash is the CSP hash source of an inline script or style: 'sha256-…'.
func Hash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}

// CSP is a page's Content-Security-Policy. Everything not named is
// refused (default-src 'none'): no other script or style runs even if
// markup is injected, the page cannot be framed (clickjacking a host into
// pressing "Admit"), and no <base> can redirect its relative URLs.
type CSP struct {
	// Scripts and Styles are hash sources ('sha256-…').
	Scripts, Styles []string
	// FormAction are the sources forms may submit to; none means 'none'.
	FormAction []string
	// AnyFormTarget leaves form-action out (see View.AnyFormTarget).
	AnyFormTarget bool
	// Workers are the worker-src sources (the meeting page's "blob:", for
	// a worker whose source the page carries); none means no workers.
	Workers []string
	// Connect are connect-src sources beyond 'self' (a media server the
	// page reaches directly rather than through the gateway).
	Connect []string
	// Media are the media-src sources (the meeting page's camera tiles).
	Media []string
}

// String is the header value. A page with script may connect back to its
// own origin only (fetch, EventSource, WebSocket).
func (c CSP) String() string {
	var b strings.Builder
	b.WriteString("default-src 'none'")
	if len(c.Scripts) > 0 {
		b.WriteString("; script-src " + strings.Join(c.Scripts, " "))
	}
	if len(c.Styles) > 0 {
		b.WriteString("; style-src " + strings.Join(c.Styles, " "))
	}
	if len(c.Scripts) > 0 {
		b.WriteString("; connect-src " + strings.Join(append([]string{"'self'"}, c.Connect...), " "))
		if len(c.Workers) > 0 {
			b.WriteString("; worker-src " + strings.Join(c.Workers, " "))
		}
	}
	if len(c.Media) > 0 {
		b.WriteString("; media-src " + strings.Join(c.Media, " "))
	}
	b.WriteString("; img-src 'none'; base-uri 'none'")
	switch {
	case c.AnyFormTarget:
	case len(c.FormAction) == 0:
		b.WriteString("; form-action 'none'")
	default:
		b.WriteString("; form-action " + strings.Join(c.FormAction, " "))
	}
	b.WriteString("; frame-ancestors 'none'")
	return b.String()
}

// SetPageHeaders sets the headers of every HTML page the gateway writes:
// its CSP, no caching (pages show who is signed in and room state), no
// MIME sniffing, no framing for browsers without frame-ancestors, and no
// Referer that would carry a room name to another site.
func SetPageHeaders(h http.Header, csp string) {
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", csp)
}

// SecureHeaders is the middleware form for handlers that write other
// responses (event streams, JSON) next to pages: every answer gets nosniff,
// no framing and no Referer, and a CSP that allows nothing, which a page
// rendered by Pages.Render replaces with its own.
func SecureHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Content-Security-Policy", CSP{}.String())
		next.ServeHTTP(w, r)
	})
}
