package roomsapi

import (
	"net/http"

	"github.com/meetguard/meetguard/gateway/web"
)

// checkCSRF guards state-changing calls that a browser authenticates with
// its session cookie (bearer calls carry their credential explicitly and
// are exempt) with the gateway's one rule, web.CheckCSRF.
func (a *API) checkCSRF(r *http.Request) error { return web.CheckCSRF(r, a.origin) }
