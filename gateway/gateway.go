// Package gateway is meetguard's HTTP edge: it proves who a caller is,
// asks the admission policy whether that caller may reach a meeting room,
// and only then proxies HTTP and WebSocket traffic to the meeting server
// with a signed assertion of who was admitted.
//
// The gateway fails closed: an error anywhere on the way to a decision
// (identity provider, policy, store, audit log) refuses the request with a
// clear message and never widens what a caller may reach.
package gateway

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/meetguard/meetguard/gateway/admission"
	"github.com/meetguard/meetguard/gateway/assertion"
	"github.com/meetguard/meetguard/gateway/audit"
	"github.com/meetguard/meetguard/gateway/config"
	"github.com/meetguard/meetguard/gateway/identity"
	"github.com/meetguard/meetguard/gateway/liveconn"
	"github.com/meetguard/meetguard/gateway/metrics"
)

// Authenticator proves who a request comes from.
type Authenticator interface {
	Authenticate(r *http.Request) (identity.Identity, error)
	Login(w http.ResponseWriter, r *http.Request)
	Callback(w http.ResponseWriter, r *http.Request)
	Logout(w http.ResponseWriter, r *http.Request)
	CookieName() string
	Ready() error
}

// Auditor writes security events to the tamper-evident audit log. Record
// returns only when the record is durable; an error means the event did
// not happen.
type Auditor interface {
	Record(ctx context.Context, event string, fields ...zap.Field) error
	Ready() error
}

// ReadyChecker is anything whose readiness gates /readyz.
type ReadyChecker interface {
	Ready() error
}

// Options configures a Gateway.
type Options struct {
	Config    *config.Config
	Auth      Authenticator
	Admitter  admission.Admitter
	Assertion *assertion.Signer
	Audit     Auditor
	Live      *liveconn.Registry
	Logger    *zap.Logger
	// Ready are extra readiness checks (policy engine, store), by name.
	Ready map[string]ReadyChecker
	// API mounts handlers under /.meetguard/api/ by path prefix (e.g.
	// "/.meetguard/api/v1/rooms/"). The gateway authenticates every API
	// request first and passes the identity in the context
	// (identity.From); unauthenticated requests never reach them.
	API map[string]http.Handler
	// Pages mounts signed-in pages under /.meetguard/ (outside
	// /.meetguard/api/) by path prefix, authenticated as API is: a browser
	// without a session is sent to sign in and comes back (the security
	// console).
	Pages map[string]http.Handler
	// Public mounts unauthenticated machine endpoints under
	// /.well-known/meetguard/ by path prefix (upstream webhooks, which
	// authenticate themselves, and key servers); longest prefix wins.
	Public map[string]http.Handler
	// Adapters are the upstream kinds' adapters by upstream name; an
	// upstream without one is generic.
	Adapters map[string]admission.Adapter
	// Metrics registers the gateway's metrics; nil makes a private registry.
	Metrics prometheus.Registerer
	// Security counts refused bearer tokens by reason; nil counts nothing.
	Security *metrics.Set
}

// Gateway is the public HTTP handler.
type Gateway struct {
	opts Options
	// routing is what a configuration reload replaces (Reload); read it
	// with g.now().
	routing atomic.Pointer[routing]
	metrics *httpMetrics
	// originRefusals counts refused cross-origin requests into
	// origin.refused records.
	originRefusals *audit.Aggregator
	// authRejections counts refused bearer credentials into auth.rejected
	// records.
	authRejections *audit.Aggregator
	// mux is the one router behind the edge (replaced only by Mount,
	// before serving).
	mux atomic.Pointer[http.ServeMux]
	// buffers are the proxy's body copy buffers, reused across requests:
	// without them httputil allocates (and the runtime zeroes) 32 KiB per
	// proxied response.
	buffers copyBuffers
}

// New builds a Gateway from a validated config.
func New(opts Options) (*Gateway, error) {
	if opts.Config == nil || opts.Auth == nil || opts.Admitter == nil || opts.Assertion == nil || opts.Audit == nil {
		return nil, errors.New("gateway: Config, Auth, Admitter, Assertion and Audit are required")
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.Live == nil {
		opts.Live = liveconn.NewRegistry()
	}
	if opts.Metrics == nil {
		opts.Metrics = prometheus.NewRegistry()
	}
	g := &Gateway{opts: opts}
	rt, err := g.newRouting(opts.Config)
	if err != nil {
		return nil, err
	}
	g.routing.Store(rt)
	g.originRefusals = audit.NewAggregator(audit.AggregatorOptions{Audit: opts.Audit, Event: audit.EventOriginRefused, Overflow: originOverflow, Logger: opts.Logger})
	g.authRejections = audit.NewAggregator(audit.AggregatorOptions{Audit: opts.Audit, Event: audit.EventAuthRejected, Overflow: authOverflow,
		MaxKeys: authRejectMaxKeys, Logger: opts.Logger})
	m, err := newMetrics(opts.Metrics, opts.Live)
	if err != nil {
		return nil, err
	}
	g.metrics = m
	if err := g.Mount(nil); err != nil {
		return nil, err
	}
	return g, nil
}

// Mount serves handlers beside the gateway's own routes by path prefix,
// behind the edge (canonical paths, request IDs, limits) but outside its
// authentication: meetguard dev mounts its identity provider here. The
// longest prefix wins. Call it before serving.
func (g *Gateway) Mount(handlers map[string]http.Handler) error {
	mux, err := g.routes(handlers)
	if err != nil {
		return err
	}
	g.mux.Store(mux)
	return nil
}

// Live is the registry of proxied long-lived connections.
func (g *Gateway) Live() *liveconn.Registry { return g.opts.Live }

// Close writes the audit records the gateway still aggregates (refusals
// counted per source and minute). Serve calls it on shutdown.
func (g *Gateway) Close(ctx context.Context) {
	g.originRefusals.Close(ctx)
	g.authRejections.Close(ctx)
}
