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

// serveReady answers a readiness probe. The public one says only "ok" or
// "not ok" per check: a check's detail can name policy files, quote Rego
// source or an error from the store, which an outsider must not read. With
// detail (the admin listener) it says why; the parts that fail also write
// their details to the operational log.
func (g *Gateway) serveReady(w http.ResponseWriter, detailed bool) {
	checks := map[string]string{}
	ok := true
	for name, err := range g.ReadyStatus() {
		d, hasDetail := g.opts.Ready[name].(interface{ ReadyDetail() string })
		switch {
		case err != nil:
			ok = false
			checks[name] = "not ok"
			if detailed {
				checks[name] = err.Error()
			}
		case detailed && hasDetail:
			checks[name] = d.ReadyDetail()
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
