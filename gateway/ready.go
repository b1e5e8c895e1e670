package gateway

import (
	"net/http"

	"github.com/meetguard/meetguard/gateway/respond"
)

// ReadyStatus reports every readiness check; nil errors are ready.
func (g *Gateway) ReadyStatus() map[string]error {
	st := map[string]error{
		"oidc":  g.opts.Auth.Ready(),
		"audit": g.opts.Audit.Ready(),
	}
	for name, c := range g.opts.Ready {
		st[name] = c.Ready()
	}
	return st
}

// serveReady answers a readiness probe: "ok" or "not ok" per check, and
// never why on the public listener, since an error can name policy files,
// quote Rego source or the store's address, which an outsider must not
// read. With detailed (the admin listener) a failing check says why; a
// check that passes says only "ok": a rejected policy reload leaves the
// policy ready (the last good revision serves) and its file, line and
// problem are shown on the security console's policy page, not here.
func (g *Gateway) serveReady(w http.ResponseWriter, detailed bool) {
	checks := map[string]string{}
	ok := true
	for name, err := range g.ReadyStatus() {
		switch {
		case err != nil:
			ok = false
			checks[name] = "not ok"
			if detailed {
				checks[name] = err.Error()
			}
		default:
			checks[name] = "ok"
		}
	}
	status := http.StatusOK
	if !ok {
		status = http.StatusServiceUnavailable
	}
	respond.JSON(w, status, map[string]any{"ready": ok, "checks": checks})
}
