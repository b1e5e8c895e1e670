// Package gwtest runs the real gateway for tests, built by app.New as
// `meetguard serve` builds it (the real OpenID Connect authenticator
// against the test identity provider in testidp), served on a loopback
// listener until the test ends.
// It also holds the stand-ins those tests put around it: a recording
// upstream, an in-memory audit log and a simple room admitter.
//
// It is for tests only: it never listens beyond 127.0.0.1, keeps no state
// outside the values it returns, and must never be imported by production
// code.
package gwtest

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/meetguard/meetguard/gateway"
	"github.com/meetguard/meetguard/gateway/admission"
	"github.com/meetguard/meetguard/gateway/app"
	"github.com/meetguard/meetguard/gateway/auth"
	"github.com/meetguard/meetguard/gateway/config"
	"github.com/meetguard/meetguard/gateway/e2eeapi"
	"github.com/meetguard/meetguard/gateway/internal/testidp"
	"github.com/meetguard/meetguard/gateway/rooms"
	"github.com/meetguard/meetguard/gateway/roomsapi"
	"github.com/meetguard/meetguard/gateway/session"
	"github.com/meetguard/meetguard/policy"
)

// Auditor receives the audit events of both the authenticator and the
// gateway.
type Auditor interface {
	Record(ctx context.Context, event string, fields ...zap.Field) error
	Ready() error
}

// Options configures one gateway under test.
type Options struct {
	// Listener is where the gateway serves; default a new listener on
	// 127.0.0.1:0. Pass one when the provider must know the callback
	// URLs of several gateways before any of them starts.
	Listener net.Listener
	// IdP is the OpenID provider; default a new one that accepts this
	// gateway's callback URL.
	IdP *testidp.IdP
	// Upstreams are the configured upstreams.
	Upstreams []config.Upstream
	// Configure edits the config before config.Complete fills in the
	// defaults.
	Configure func(*config.Config)
	// Admitter decides admission; default RoomRoles{} (everyone a
	// participant). Unused when RoomsAPI is set.
	Admitter admission.Admitter
	// RoomsAPI, when set, has the real rooms API (with Policy and Rooms)
	// admit and serve the rooms API, its options edited by RoomsAPI.
	RoomsAPI func(a *app.App, o *roomsapi.Options)
	// E2EE serves the end-to-end key API and the meeting page beside the
	// rooms API, as `meetguard serve` does; its options edited by E2EE.
	E2EE func(a *app.App, o *e2eeapi.Options)
	// Policy is the rooms API's policy engine; default the shipped
	// policies.
	Policy *policy.Engine
	// Rooms is the room state; default a new memory store.
	Rooms rooms.Store
	// Adapters builds the upstream adapters once the public URL is known.
	Adapters func(publicURL string) map[string]admission.Adapter
	// Audit records the authenticator's and the gateway's events; default
	// one that discards them.
	Audit Auditor
	// Logger is the gateway's operational logger; default none.
	Logger *zap.Logger
	// Clock drives the authenticator's notion of now; default time.Now.
	Clock func() time.Time
	// PublicURL is the gateway's public URL; default http:// and the
	// listener's address. Nodes of one cluster share it (tests put a
	// balancer in front that sends each request to the node they pick).
	PublicURL string
	// Sessions is the session store; default a new memory store. Pass a
	// shared (Redis) store to run nodes of one cluster; a store that is a
	// session.EndWatcher also has its announced logouts cut this node's
	// live connections, as the meetguard binary wires it.
	Sessions session.Store
	// SharedSessions says Sessions is shared by several nodes (Redis).
	SharedSessions bool
	// Wire, when set, edits the gateway's options last, with the config
	// complete: the place to build parts that need the config, such as
	// an API the gateway mounts.
	Wire func(cfg *config.Config, gw *gateway.Options)
}

// Gateway is a gateway serving on loopback until the test ends.
type Gateway struct {
	// URL is the gateway's public URL, http://127.0.0.1:port.
	URL     string
	IdP     *testidp.IdP
	Gateway *gateway.Gateway
	Config  *config.Config
	Auth    *auth.Authenticator
	// Sessions is the memory store when Options.Sessions was not set.
	Sessions *session.MemoryStore
	// Store is the session store in use.
	Store session.Store
	// App is the whole built gateway and its parts.
	App *app.App
}

// Start runs a gateway until the test ends, and returns once its provider
// is ready. Logging out closes the session's live connections, as the
// meetguard binary wires it.
func Start(t testing.TB, o Options) *Gateway {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ln := o.Listener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
	}
	public := "http://" + ln.Addr().String()
	if o.PublicURL != "" {
		public = o.PublicURL
	}
	idp := o.IdP
	if idp == nil {
		idp = testidp.Start(t, public+auth.CallbackPath)
	}
	cfg := &config.Config{
		Listen:    ln.Addr().String(),
		PublicURL: public,
		OIDC: config.OIDC{
			Issuer: idp.URL, ClientID: idp.ClientID, ClientSecret: idp.ClientSecret,
			KeyRefetchInterval: time.Hour,
		},
		Session:   config.Session{Secret: strings.Repeat("s", 32)},
		Upstreams: o.Upstreams,
	}
	if o.Configure != nil {
		o.Configure(cfg)
	}
	if err := config.Complete(cfg); err != nil {
		t.Fatal(err)
	}
	deps := app.Deps{
		Listener: ln, Logger: o.Logger, HTTPClient: &http.Client{Timeout: 5 * time.Second}, Clock: o.Clock,
		Audit: o.Audit, Sessions: o.Sessions, SharedSessions: o.SharedSessions, Policy: o.Policy, Rooms: o.Rooms,
		Admitter: o.Admitter, RoomsAPI: o.RoomsAPI, NoE2EE: o.E2EE == nil, E2EE: o.E2EE,
		Gateway: func(gw *gateway.Options) {
			if o.Wire != nil {
				o.Wire(cfg, gw)
			}
		},
	}
	if deps.Audit == nil {
		deps.Audit = nopAudit{}
	}
	if o.RoomsAPI != nil {
		deps.Admitter = nil
	} else if deps.Admitter == nil {
		deps.Admitter = RoomRoles{}
	}
	if o.Adapters != nil {
		deps.Adapters = o.Adapters(public)
	}
	a, err := app.New(ctx, cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = a.Serve(ctx)
	}()
	t.Cleanup(func() { cancel(); <-served; _ = a.Close(context.Background()) })
	deadline := time.Now().Add(10 * time.Second)
	for a.Auth.Ready() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("provider never became ready: %v", a.Auth.Ready())
		}
		time.Sleep(10 * time.Millisecond)
	}
	sessions, _ := a.Sessions.(*session.MemoryStore)
	if o.Sessions != nil {
		sessions = nil
	}
	return &Gateway{URL: public, IdP: idp, Gateway: a.Gateway, Config: cfg, Auth: a.Auth, Sessions: sessions, Store: a.Sessions, App: a}
}

// Subject is the subject of the tokens Bearer signs, by default.
const Subject = "id1"

// Bearer is an ID token for the gateway's client from the test provider,
// for subject (default Subject).
func (g *Gateway) Bearer(t testing.TB, subject string) string {
	t.Helper()
	c := g.IdP.Claims(g.IdP.ClientID)
	if subject != "" {
		c["sub"] = subject
	}
	return g.IdP.Sign(t, c, "")
}
