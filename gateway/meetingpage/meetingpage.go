// Package meetingpage serves the meeting page for LiveKit rooms: the browser side of meetguard's end-to-end
// keys (docs/e2ee.md), built from web/src by esbuild (`cd web && node build.mjs`) into static/ and embedded.
// The page's key exchange talks to the gateway's e2ee API (same origin) and drives LiveKit's E2EE worker.
//
// It is a temporary home until the gateway's web package (templates, static assets, CSP) owns the page.
package meetingpage

import (
	"embed"
	"io/fs"
	"net/http"
	"path"
	"strings"
)

//go:embed static
var static embed.FS

// Files are the embedded page and bundles.
func Files() fs.FS {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded directory exists by construction
	}
	return sub
}

// Options configures the handler.
type Options struct {
	// Prefix is the path the handler is mounted at, ending in "/".
	Prefix string
	// ConnectSrc are the extra origins the page may connect to (the LiveKit signalling URL when it is not
	// the gateway's own origin), e.g. "ws://127.0.0.1:7880".
	ConnectSrc []string
}

var types = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
}

// Handler serves the page at Prefix and its assets below it, with a strict CSP: scripts, workers and styles
// from this origin only, no inline code, no framing.
func Handler(o Options) http.Handler {
	files := Files()
	connect := append([]string{"'self'"}, o.ConnectSrc...)
	csp := "default-src 'none'; script-src 'self'; worker-src 'self'; style-src 'self'; img-src 'self' data:; media-src 'self' blob: mediastream:; connect-src " +
		strings.Join(connect, " ") + "; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		name := strings.TrimPrefix(r.URL.Path, o.Prefix)
		if name == "" {
			name = "meeting.html"
		}
		name = path.Clean(name)
		typ, ok := types[path.Ext(name)]
		if !ok || strings.Contains(name, "/") {
			http.NotFound(w, r)
			return
		}
		b, err := fs.ReadFile(files, name)
		if err != nil {
			http.NotFound(w, r)
			return
		}
		h := w.Header()
		h.Set("Content-Type", typ)
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		_, _ = w.Write(b)
	})
}
