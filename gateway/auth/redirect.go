package auth

import (
	"net/url"
	"strings"

	"github.com/meetguard/meetguard/gateway/reqpath"
)

// SafeRedirect returns rd if, and only if, every browser would read it as a
// path on this origin; otherwise ok is false. Browsers treat //host, /\host
// and paths with tabs or newlines stripped out as other origins, so anything
// but a plain absolute path (with an optional query) is refused.
func SafeRedirect(rd string) (string, bool) {
	if rd == "" || len(rd) > 2048 || rd[0] != '/' {
		return "", false
	}
	if len(rd) > 1 && (rd[1] == '/' || rd[1] == '\\') {
		return "", false
	}
	for i := 0; i < len(rd); i++ {
		if c := rd[i]; c <= 0x20 || c == 0x7f || c == '\\' || c >= 0x80 {
			return "", false
		}
	}
	u, err := url.Parse(rd)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" || u.Fragment != "" {
		return "", false
	}
	path, err := reqpath.Canonical(u.EscapedPath())
	if err != nil || strings.HasPrefix(path, "//") {
		return "", false
	}
	out := path
	if u.RawQuery != "" {
		out += "?" + u.RawQuery
	}
	// A last check on the result: it must resolve against our own origin to
	// our own origin.
	base := &url.URL{Scheme: "https", Host: "gateway.invalid"}
	if r, err := base.Parse(out); err != nil || r.Host != base.Host {
		return "", false
	}
	return out, true
}
