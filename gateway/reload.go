package gateway

import (
	"fmt"
	"net/http"
	"net/netip"
	"net/url"

	"github.com/meetguard/meetguard/gateway/config"
	"github.com/meetguard/meetguard/gateway/web"
)

// routing is the part of the gateway a configuration reload replaces as a
// whole: the config the request path reads (limits, public URL), trusted
// proxies, allowed origins and the upstream table. Requests already
// running keep the routing they started with, and proxied WebSockets keep
// their connections: a reload never drops one.
type routing struct {
	cfg       *config.Config
	trusted   []netip.Prefix
	origins   web.Origins
	upstreams []*upstream
	transport *http.Transport
}

// now is the routing in force.
func (g *Gateway) now() *routing { return g.routing.Load() }

func (g *Gateway) newRouting(cfg *config.Config) (*routing, error) {
	rt := &routing{cfg: cfg}
	for _, c := range cfg.TrustedProxies {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			return nil, fmt.Errorf("trusted_proxies: %w", err)
		}
		rt.trusted = append(rt.trusted, p.Masked())
	}
	origins, err := web.NewOrigins(cfg.PublicURL, cfg.AllowedOrigins)
	if err != nil {
		return nil, err
	}
	rt.origins = origins
	rt.transport = newTransport(cfg.Limits)
	for _, uc := range cfg.Upstreams {
		target, err := url.Parse(uc.URL)
		if err != nil {
			return nil, fmt.Errorf("upstream %s: %w", uc.Name, err)
		}
		rp, err := config.ParseRoomPattern(uc.Rooms.Path)
		if err != nil {
			return nil, fmt.Errorf("upstream %s: %w", uc.Name, err)
		}
		rt.upstreams = append(rt.upstreams, &upstream{cfg: uc, rooms: rp, target: target, transport: rt.transport})
	}
	return rt, nil
}

// Reload puts a new configuration's request-path settings in force:
// trusted_proxies, allowed_origins, the upstream list and each upstream's
// url, prefix and timeouts, and limits.max_body_bytes, read_timeout and
// the upstream timeouts. cfg must be complete and valid (config.Load).
// What the gateway built once at start stays as it was: the listener and
// its server timeouts, public_url (cookies, assertion issuer), the
// authenticator, the upstream adapters and the stores; the caller decides
// whether a change there needs a restart. On error nothing changes.
func (g *Gateway) Reload(cfg *config.Config) error {
	old := g.now()
	keep := *cfg
	// public_url names cookies and signs assertions built at start.
	keep.PublicURL = old.cfg.PublicURL
	rt, err := g.newRouting(&keep)
	if err != nil {
		return err
	}
	g.routing.Store(rt)
	// Idle pooled connections to the upstreams go; requests and
	// WebSockets in flight keep theirs until they end.
	old.transport.CloseIdleConnections()
	return nil
}
