package app

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/zap"

	"github.com/meetguard/meetguard/gateway"
	"github.com/meetguard/meetguard/gateway/admission"
	"github.com/meetguard/meetguard/gateway/assertion"
	"github.com/meetguard/meetguard/gateway/audit"
	"github.com/meetguard/meetguard/gateway/auth"
	"github.com/meetguard/meetguard/gateway/config"
	"github.com/meetguard/meetguard/gateway/e2eeapi"
	"github.com/meetguard/meetguard/gateway/liveconn"
	"github.com/meetguard/meetguard/gateway/metrics"
	"github.com/meetguard/meetguard/gateway/rooms"
	"github.com/meetguard/meetguard/gateway/roomsapi"
	"github.com/meetguard/meetguard/gateway/securityconsole"
	"github.com/meetguard/meetguard/gateway/session"
	"github.com/meetguard/meetguard/gateway/upstream"
	"github.com/meetguard/meetguard/gateway/upstream/livekit"
	"github.com/meetguard/meetguard/policies"
	"github.com/meetguard/meetguard/policy"
)

// Deps are what a gateway needs beyond its config: where it logs and
// listens, and the parts a caller supplies instead of the ones New builds
// from the config. The zero value builds everything from the config, as
// `meetguard serve` does. An App never closes a part it was given.
type Deps struct {
	// Logger receives operational logs; default none.
	Logger *zap.Logger
	// Version is recorded in the gateway.started audit record.
	Version string
	// Listener, when set, is served instead of listening on listen
	// (meetguard dev and tests bind 127.0.0.1:0 first).
	Listener net.Listener
	// Started is called with the public address once listening.
	Started func(addr string)
	// HTTPClient talks to the identity provider; default a client with
	// oidc.http_timeout.
	HTTPClient *http.Client
	// Mount serves extra handlers beside the gateway, outside its
	// authentication, by path prefix (the dev identity provider).
	Mount map[string]http.Handler
	// StrictAudit refuses audit records that differ from the documented
	// schema (dev and tests), see audit.Options.StrictSchema.
	StrictAudit bool
	// AuditSync is the opened audit log's sync mode; default durable.
	AuditSync audit.SyncMode
	// Clock drives the authenticator's notion of now; default time.Now.
	Clock func() time.Time

	// Audit, when set, records every event instead of the log at
	// audit.path; the caller then records the gateway's start and stop.
	Audit gateway.Auditor
	// Policy, when set, decides instead of an engine loaded from policy.*.
	Policy *policy.Engine
	// Rooms, when set, is the room state instead of a store built from
	// store.*.
	Rooms rooms.Store
	// Sessions, when set, keeps sessions instead of the store chosen by
	// store.kind; SharedSessions says several nodes share it.
	Sessions       session.Store
	SharedSessions bool
	// Adapters, when set, are the upstream adapters by upstream name
	// instead of those built from upstreams[].kind.
	Adapters map[string]admission.Adapter
	// Admitter, when set, admits room requests instead of the rooms API,
	// and neither the rooms API nor the policy engine is built: tests of
	// the edge alone.
	Admitter admission.Admitter
	// RoomsAPI edits the rooms API's options before it is built; a holds
	// the parts built so far (stores, tickets, audit).
	RoomsAPI func(a *App, o *roomsapi.Options)
	// NoE2EE leaves the e2ee API out.
	NoE2EE bool
	// E2EE edits the e2ee API's options before it is built, as RoomsAPI
	// does; without the rooms API it must supply the Membership.
	E2EE func(a *App, o *e2eeapi.Options)
	// Gateway edits the gateway's options last (tests mount stand-ins).
	Gateway func(*gateway.Options)
}

// App is a built gateway and its parts. The fields are read-only after
// New; a reload swaps what changes inside the parts themselves (policy
// revisions, certificates), never the fields.
type App struct {
	Config  *config.Config
	Gateway *gateway.Gateway
	Auth    *auth.Authenticator
	// Audit records every event; AuditLog is the log New opened (nil when
	// Deps.Audit was given).
	Audit    gateway.Auditor
	AuditLog *audit.Log
	// Policy is nil when Deps.Admitter replaced the rooms API.
	Policy   *policy.Engine
	Rooms    rooms.Store
	Sessions session.Store
	Live     *liveconn.Registry
	Tickets  *rooms.Tickets
	// RoomsAPI and E2EE are nil when left out (Deps.Admitter, Deps.NoE2EE).
	RoomsAPI *roomsapi.API
	E2EE     *e2eeapi.Handler
	Adapters map[string]admission.Adapter
	// SecurityConsole is nil without a policy engine and an audit log.
	SecurityConsole *securityconsole.Console
	TLS             *ListenerTLS
	Metrics         *prometheus.Registry
	// Security are the security metrics on Metrics.
	Security *metrics.Set

	deps    Deps
	log     *zap.Logger
	cancel  context.CancelFunc
	bg      sync.WaitGroup
	closers []func()

	mu         sync.Mutex
	stopReason string
	closed     bool
}

// New builds every part from a validated config (config.Complete has
// run). Background work (policy and certificate watches, the rooms event
// loop, session-end fan-out) runs until ctx ends or Close. On error,
// whatever was built is closed again.
func New(ctx context.Context, cfg *config.Config, deps Deps) (*App, error) {
	ctx, cancel := context.WithCancel(ctx)
	log := deps.Logger
	if log == nil {
		log = zap.NewNop()
	}
	a := &App{Config: cfg, deps: deps, log: log, cancel: cancel}
	if err := a.build(ctx); err != nil {
		a.mu.Lock()
		a.stopReason = err.Error()
		a.mu.Unlock()
		_ = a.Close(context.Background())
		return nil, err
	}
	return a, nil
}

func (a *App) build(ctx context.Context) error {
	cfg, deps, log := a.Config, a.deps, a.log
	a.Metrics = prometheus.NewRegistry()
	a.Metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	sec, err := metrics.New(metrics.Options{Registerer: a.Metrics})
	if err != nil {
		return err
	}
	a.Security = sec

	// Audit first: nothing may happen unrecorded.
	if err := a.openAudit(ctx); err != nil {
		return err
	}
	if deps.Admitter == nil {
		if err := a.openPolicy(ctx); err != nil {
			return err
		}
	}
	lt, err := NewListenerTLS(ctx, cfg, log, TLSOptions{Audit: a.Audit})
	if err != nil {
		return err
	}
	a.TLS = lt

	codec, err := session.NewCodec([]byte(cfg.Session.Secret))
	if err != nil {
		return err
	}
	a.Rooms = deps.Rooms
	if a.Rooms == nil {
		var seeded bool
		if a.Rooms, seeded, err = openRoomStore(ctx, cfg, log.Named("rooms"), sec); err != nil {
			return err
		}
		st := a.Rooms
		a.closers = append(a.closers, func() { _ = st.Close() })
		seeds := cfg.Rooms.Seeds(cfg.OIDC.Issuer)
		// a.Audit was set by openAudit above, before this goroutine
		// starts, and never changes after: the keeper reads it race-free.
		rec := a.Audit
		a.background(ctx, func(ctx context.Context) { keepPermanentRooms(ctx, st, seeds, seeded, rec, log.Named("rooms")) })
	}
	waitTTL := cfg.Rooms.State().WithDefaults().WaitTTL
	a.background(ctx, func(ctx context.Context) { sec.FollowLobby(ctx, a.Rooms, waitTTL) })
	a.Live = liveconn.NewRegistry()
	a.Sessions = deps.Sessions
	if a.Sessions == nil {
		if a.Sessions, err = openSessionStore(ctx, cfg, a.Rooms); err != nil {
			return err
		}
	}
	if w, ok := a.Sessions.(session.EndWatcher); ok {
		// A logout on another node cuts this node's live connections.
		a.background(ctx, func(ctx context.Context) { a.Live.FollowEnded(ctx, w, a.Sessions, log.Named("session")) })
	}
	pub, err := url.Parse(cfg.PublicURL)
	if err != nil {
		return fmt.Errorf("public_url: %w", err)
	}
	for _, w := range config.Warnings(cfg) {
		log.Warn("configuration warning", zap.String("warning", w))
	}
	if a.Auth, err = auth.New(ctx, a.authOptions(pub, codec)); err != nil {
		return err
	}
	assertionKey, err := loadAssertionKey(cfg.Assertion.KeyFile)
	if err != nil {
		return err
	}
	signer, err := assertion.New(assertion.Options{Key: assertionKey, Issuer: cfg.PublicURL, TTL: cfg.Assertion.TTL})
	if err != nil {
		return err
	}
	if err := a.buildAdapters(ctx); err != nil {
		return err
	}
	public := map[string]http.Handler{}
	for name, ad := range a.Adapters {
		for path, h := range upstream.Endpoints(name, ad) {
			public[path] = h
		}
	}
	if a.Tickets, err = a.newTickets(); err != nil {
		return err
	}

	gwOpts := gateway.Options{
		Config: cfg, Auth: a.Auth, Admitter: deps.Admitter, Assertion: signer, Audit: a.Audit, Live: a.Live,
		Adapters: a.Adapters, Public: public, Logger: log.Named("access"), Metrics: a.Metrics, Security: sec,
		Ready: map[string]gateway.ReadyChecker{},
	}
	var devices *e2eeDevices
	var api http.Handler = http.NotFoundHandler()
	if deps.Admitter == nil {
		if !deps.NoE2EE {
			devices = &e2eeDevices{}
		}
		if a.RoomsAPI, err = a.newRoomsAPI(ctx, pub, devices); err != nil {
			return err
		}
		gwOpts.Admitter, api = a.RoomsAPI, a.RoomsAPI
		gwOpts.Ready["policy"], gwOpts.Ready["rooms"] = policyReady{a.Policy}, a.RoomsAPI
	}
	if !deps.NoE2EE {
		if a.E2EE, err = a.newE2EE(ctx, pub); err != nil {
			return err
		}
		if devices != nil {
			devices.h.Store(a.E2EE)
		}
		api = a.E2EE.Wrap(api)
	}
	if a.RoomsAPI != nil || a.E2EE != nil {
		gwOpts.API = map[string]http.Handler{roomsapi.Prefix: api}
	}
	if a.RoomsAPI != nil {
		a.background(ctx, func(ctx context.Context) {
			if err := a.RoomsAPI.Run(ctx); err != nil {
				log.Error("room event loop stopped", zap.Error(err))
			}
		})
	}
	if a.Policy != nil && a.AuditLog != nil {
		if err := a.newSecurityConsole(ctx, &gwOpts); err != nil {
			return err
		}
	}
	if deps.Gateway != nil {
		deps.Gateway(&gwOpts)
	}
	a.Gateway, err = gateway.New(gwOpts)
	return err
}

// openAudit opens the audit log at audit.path, unless Deps.Audit is given.
func (a *App) openAudit(ctx context.Context) error {
	// Every writer records through the counting auditor, which counts
	// what became durable (the security metrics) and how long it took.
	if a.deps.Audit != nil {
		a.Audit = a.Security.Audit(a.deps.Audit)
		return nil
	}
	cfg := a.Config
	key, err := audit.LoadOrCreateKey(cfg.Audit.KeyFile)
	if err != nil {
		return err // "audit key FILE: …" already
	}
	var mirror io.Writer
	if cfg.Audit.Stdout {
		mirror = os.Stdout
	}
	var trusted []ed25519.PublicKey
	for _, f := range cfg.Audit.TrustedKeyFiles {
		keys, err := audit.LoadPublicKeys(f)
		if err != nil {
			return fmt.Errorf("audit.trusted_key_files: %w", err)
		}
		trusted = append(trusted, keys...)
	}
	l, err := audit.Open(ctx, audit.Options{Path: cfg.Audit.Path, Node: cfg.Node.ID, SigningKey: key, TrustedKeys: trusted, Sync: a.deps.AuditSync,
		Mirror: mirror, Logger: a.log.Named("audit"), StrictSchema: a.deps.StrictAudit})
	if err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	a.AuditLog = l
	a.Audit = a.Security.Audit(l)
	return a.Security.AuditQueue(l.QueueDepth)
}

// openPolicy loads the policy engine from policy.* (the shipped policies
// when neither a directory nor a bundle is configured) and watches a
// directory for changes, unless Deps.Policy is given.
func (a *App) openPolicy(ctx context.Context) error {
	if a.deps.Policy != nil {
		a.Policy = a.deps.Policy
		return nil
	}
	cfg, log := a.Config, a.log
	dir := cfg.Policy.Dir
	if dir == "" && cfg.Policy.Bundle == "" {
		tmp, err := os.MkdirTemp("", "meetguard-policies-")
		if err != nil {
			return fmt.Errorf("policy: %w", err)
		}
		a.closers = append(a.closers, func() { _ = os.RemoveAll(tmp) })
		if err := policies.WriteTo(tmp); err != nil {
			return fmt.Errorf("policy: unpack shipped policies: %w", err)
		}
		dir = tmp
	}
	engine, err := policy.New(ctx, policy.Options{
		Dir:                   dir,
		Bundle:                cfg.Policy.Bundle,
		BundleVerificationKey: cfg.Policy.BundleVerification.KeyFile,
		Query:                 cfg.Policy.Query,
		Timeout:               cfg.Policy.Timeout,
		ShadowDir:             cfg.Policy.ShadowDir,
		MaskFields:            cfg.Policy.MaskFields,
		Logger:                log.Named("policy"),
		OnReload: func(ev policy.ReloadEvent) {
			var fact audit.Fact
			switch {
			case !ev.OK:
				fact = audit.PolicyReloadRejected(ev.NewRevision, ev.OldRevision, ev.Error, ev.Trigger, ev.Shadow)
			case ev.Changed:
				fact = audit.PolicyReloaded(ev.NewRevision, ev.OldRevision, ev.Trigger, ev.Shadow)
			default:
				return // the same revision again: nothing changed
			}
			if err := audit.Write(context.Background(), a.Audit, fact); err != nil {
				log.Error("audit policy reload", zap.Error(err))
			}
		},
		// A shadow disagreement is put on the record, where the security
		// console's policy page reads it; agreements are not.
		OnShadow: func(rec policy.ShadowRecord) {
			if rec.Agree {
				return
			}
			fact := audit.PolicyShadowDisagreement(rec.DecisionID, rec.Input.Room.ID, rec.Input.Identity.Sub, rec.LiveRevision, rec.ShadowRevision,
				rec.Live.Outcome(), rec.Live.Reasons, rec.Shadow.Outcome(), rec.Shadow.Reasons)
			if err := audit.Write(context.Background(), a.Audit, fact); err != nil {
				log.Error("audit shadow disagreement", zap.Error(err))
			}
		},
	})
	if err != nil {
		return fmt.Errorf("policy: %w", err)
	}
	a.Policy = engine
	if cfg.Policy.Dir != "" {
		a.background(ctx, func(ctx context.Context) {
			if err := engine.Watch(ctx); err != nil && ctx.Err() == nil {
				log.Error("policy watch stopped", zap.Error(err))
			}
		})
	}
	return nil
}

// authOptions is the one place the authenticator's options come from the
// config.
func (a *App) authOptions(pub *url.URL, codec *session.Codec) auth.Options {
	cfg := a.Config
	client := a.deps.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: cfg.OIDC.HTTPTimeout}
	}
	live := a.Live
	return auth.Options{
		Issuer: cfg.OIDC.Issuer, ClientID: cfg.OIDC.ClientID, ClientSecret: cfg.OIDC.ClientSecret,
		Scopes: cfg.OIDC.Scopes, Audiences: cfg.OIDC.Audiences, AccessTokenType: cfg.OIDC.AccessTokenType, GroupsClaim: cfg.OIDC.GroupsClaim,
		SubjectClaim: cfg.OIDC.SubjectClaim, BearerClients: cfg.OIDC.BearerClients,
		PublicURL: pub, HTTPClient: client, KeyRefetchInterval: cfg.OIDC.KeyRefetchInterval,
		SessionTTL: cfg.Session.TTL, MaxClaimAge: cfg.Session.MaxClaimAge,
		Store: a.Sessions, SharedStore: a.deps.SharedSessions || cfg.Store.Kind == "redis",
		Codec: codec, Logger: a.log.Named("auth"), Audit: a.Audit, Clock: a.deps.Clock, OnProviderFailure: a.Security.OIDCFailure,
		OnLogout: func(sessionID string) {
			live.Close(func(m liveconn.Meta) bool { return m.SessionID == sessionID })
		},
	}
}

// buildAdapters builds each upstream's adapter: the meeting server's own
// credential, minted only after admission (generic upstreams have none).
func (a *App) buildAdapters(ctx context.Context) error {
	if a.deps.Adapters != nil {
		a.Adapters = a.deps.Adapters
		return nil
	}
	cfg, log := a.Config, a.log
	a.Adapters = map[string]admission.Adapter{}
	for _, u := range cfg.Upstreams {
		ad, err := upstream.New(ctx, u, upstream.Options{
			Logger: log.Named("upstream"), DefaultCapacity: cfg.Rooms.DefaultCapacity,
			OnLiveKitEvent: func(ctx context.Context, ev livekit.Event) error {
				if ev.Person == "" {
					log.Warn("meeting server reports a participant the gateway did not admit", zap.String("upstream", ev.Upstream), zap.String("room", ev.Room), zap.String("identity", ev.Identity))
				}
				return audit.Write(ctx, a.Audit, audit.UpstreamParticipant(ev.Upstream, ev.Room, string(ev.Kind), ev.Person, ev.Identity, ev.ID))
			},
			LiveKitE2EE: func(ctx context.Context, room string) (bool, error) {
				r, err := a.Rooms.Room(ctx, room)
				if err != nil {
					return false, err
				}
				return r.Settings.E2EERequired, nil
			},
		})
		if err != nil {
			return err
		}
		if ad != nil {
			a.Adapters[u.Name] = ad
		}
	}
	return nil
}

// newTickets builds the room ticket signer from rooms.ticket_key.
func (a *App) newTickets() (*rooms.Tickets, error) {
	key := []byte(a.Config.Rooms.TicketKey)
	if len(key) == 0 {
		// One node with the memory store: tickets need only verify here,
		// and only until restart (which ends every admission anyway).
		key = make([]byte, 32)
		_, _ = rand.Read(key)
		a.log.Named("rooms").Info("rooms.ticket_key not set: signing room tickets with a fresh random key")
	}
	t, err := rooms.NewTickets(rooms.TicketOptions{Key: key, TTL: a.Config.Rooms.TicketTTL})
	if err != nil {
		return nil, fmt.Errorf("rooms tickets: %w", err)
	}
	return t, nil
}

// newRoomsAPI builds the rooms API, which is also the gateway's admitter.
func (a *App) newRoomsAPI(ctx context.Context, pub *url.URL, devices *e2eeDevices) (*roomsapi.API, error) {
	cfg := a.Config
	passcodes, err := rooms.NewPasscodes(rooms.PasscodeOptions{})
	if err != nil {
		return nil, fmt.Errorf("rooms passcodes: %w", err)
	}
	paths := map[string]string{}
	for _, u := range cfg.Upstreams {
		paths[u.Name] = u.Rooms.Path
	}
	o := roomsapi.Options{
		Store: a.Rooms, Tickets: a.Tickets, Passcodes: passcodes, Policy: a.Security.Policy(a.Policy), Audit: a.Audit, Live: a.Live, Metrics: a.Security,
		PublicURL: pub, RoomPaths: paths, Rooms: cfg.Rooms.State(), LobbyByDefault: *cfg.Rooms.LobbyByDefault,
		StoreKind: cfg.Store.Kind, Adapters: a.Adapters, Logger: a.log.Named("rooms"),
	}
	if devices != nil {
		o.Devices, o.E2EE = devices, devices
	}
	// The console's Recent events read the log back: the one opened here,
	// or one given in Deps that can.
	if r, ok := a.deps.Audit.(roomsapi.AuditReader); ok {
		o.AuditReader = r
	}
	if a.AuditLog != nil {
		o.AuditReader = a.AuditLog
	}
	if a.deps.RoomsAPI != nil {
		a.deps.RoomsAPI(a, &o)
	}
	return roomsapi.New(ctx, o)
}

// liveKitSignalPath is where the meeting page signals a room's LiveKit: the
// room's path on the first LiveKit upstream, whose adapter mints the token
// after admission; nil without a LiveKit upstream.
func liveKitSignalPath(ups []config.Upstream) func(room string) string {
	for _, u := range ups {
		if u.Kind == "livekit" && u.Rooms.Path != "" {
			pattern := u.Rooms.Path
			return func(room string) string { return strings.Replace(pattern, "{room}", room, 1) }
		}
	}
	return nil
}

// newE2EE builds the e2ee API with the key at e2ee.key_file (a fresh one
// when none is configured, which only a config without audit.path has).
func (a *App) newE2EE(ctx context.Context, pub *url.URL) (*e2eeapi.Handler, error) {
	cfg := a.Config
	var key ed25519.PrivateKey
	if cfg.E2EE.KeyFile != "" {
		var err error
		if key, err = audit.LoadOrCreateKey(cfg.E2EE.KeyFile); err != nil {
			return nil, fmt.Errorf("e2ee.key_file: %w", err)
		}
	} else if _, k, err := ed25519.GenerateKey(rand.Reader); err != nil {
		return nil, fmt.Errorf("e2ee key: %w", err)
	} else {
		key = k
	}
	o := e2eeapi.Options{
		SigningKey: key, Rooms: a.Rooms, Audit: a.Audit, Store: e2eeStore(a.Rooms),
		PublicOrigin:    pub.Scheme + "://" + pub.Host,
		AllowClassicKEM: func(context.Context, string) (bool, error) { return cfg.E2EE.AllowClassicKEM, nil },
		Logger:          a.log.Named("e2ee"),
	}
	if a.RoomsAPI != nil {
		o.Membership = a.RoomsAPI
	}
	if a.Tickets != nil {
		o.MaxWait = e2eeMaxWait(a.Tickets.TTL())
	}
	o.Meeting.SignalPath = liveKitSignalPath(cfg.Upstreams)
	o.OnClientAlarm = a.Security.E2EEAlarm
	if a.deps.E2EE != nil {
		a.deps.E2EE(a, &o)
	}
	h, err := e2eeapi.New(ctx, o)
	if err != nil {
		return nil, fmt.Errorf("e2ee: %w", err)
	}
	return h, nil
}

// e2eeMaxWait is the longest key-exchange long-poll for room tickets of
// life ttl: at most a quarter of it (and 25 s, the handler's default). The
// key exchange renews a member's ticket once half its life is gone, but
// only on a request that starts: a poll as long as the ticket would let it
// expire in between, and every later request of that member would be
// refused for good.
func e2eeMaxWait(ttl time.Duration) time.Duration {
	return max(min(25*time.Second, ttl/4), 100*time.Millisecond)
}

// newSecurityConsole mounts the read-only security console over the audit
// log New opened. The policy decides who may open it (nobody by default).
func (a *App) newSecurityConsole(ctx context.Context, o *gateway.Options) error {
	path, peers := a.Config.Audit.Path, a.Config.Audit.PeerFiles
	origin := ""
	if u, err := url.Parse(a.Config.PublicURL); err == nil {
		origin = u.Scheme + "://" + u.Host
	}
	// The integrity page checks signatures with this node's key, the
	// earlier keys the log trusts, and the keys other nodes' logs carry
	// beside them (FILE.pub) when the console starts.
	keys := []ed25519.PublicKey{a.AuditLog.PublicKey()}
	for _, f := range a.Config.Audit.TrustedKeyFiles {
		k, err := audit.LoadPublicKeys(f)
		if err != nil {
			return fmt.Errorf("audit.trusted_key_files: %w", err)
		}
		keys = append(keys, k...)
	}
	for _, g := range peers {
		matches, _ := filepath.Glob(g)
		for _, m := range matches {
			if k, err := audit.LoadPublicKeys(m + ".pub"); err == nil {
				keys = append(keys, k...)
			}
		}
	}
	c, err := securityconsole.New(securityconsole.Options{
		Gate: policy.NewConsoleGate(a.Policy), Audit: a.Audit, Logger: a.log.Named("security"),
		Files:  func() ([]string, error) { return securityconsole.LogFiles(path, peers) },
		Policy: a.Policy, Origin: origin,
		Explain: func(ctx context.Context, in policy.Input) (*policy.Explanation, error) {
			return a.Policy.Explain(ctx, "decision", in, false)
		},
		Serving: a.Policy,
		Keys:    keys,
	})
	if err != nil {
		return err
	}
	a.SecurityConsole = c
	o.Pages = map[string]http.Handler{securityconsole.Prefix: c}
	// The first page view should not pay for reading the whole log.
	a.background(ctx, func(ctx context.Context) {
		if err := c.Index(ctx); err != nil && ctx.Err() == nil {
			a.log.Warn("security console: initial index failed", zap.Error(err))
		}
		// The policy page shows the bundle's own tests and coverage.
		c.TestPolicy(ctx)
		// The integrity page's first pass reads the whole log.
		c.CheckIntegrity(ctx)
	})
	return nil
}

// background runs f until ctx ends; Close waits for it.
func (a *App) background(ctx context.Context, f func(context.Context)) {
	a.bg.Add(1)
	go func() {
		defer a.bg.Done()
		f(ctx)
	}()
}

// Handler is the gateway's public HTTP handler.
func (a *App) Handler() http.Handler { return a.Gateway }

// Serve records the start and serves the public (and admin) listener until
// ctx ends, then drains.
func (a *App) Serve(ctx context.Context) error {
	err := a.serve(ctx)
	if err != nil {
		a.mu.Lock()
		a.stopReason = err.Error()
		a.mu.Unlock()
	}
	return err
}

func (a *App) serve(ctx context.Context) error {
	if a.AuditLog != nil {
		revision := ""
		if a.Policy != nil {
			revision = a.Policy.Revision()
		}
		if err := audit.Write(ctx, a.Audit, audit.GatewayStarted(a.deps.Version, a.Config.PublicURL, revision)); err != nil {
			return fmt.Errorf("audit gateway start: %w", err)
		}
	}
	return gateway.Serve(ctx, gateway.ServerOptions{Config: a.Config, Gateway: a.Gateway, Listener: a.deps.Listener,
		Metrics: a.Metrics, Logger: a.log, Started: a.deps.Started, Mount: a.deps.Mount,
		TLS: a.TLS.Config, PlainListen: a.TLS.PlainListen, PlainHandler: a.TLS.Plain})
}

// Reload reads the policy and the certificate files again, as SIGHUP asks.
// A rejected policy keeps the last good revision serving.
func (a *App) Reload(ctx context.Context) error {
	a.TLS.Reload("signal")
	if a.Policy == nil || a.deps.Policy != nil {
		return nil
	}
	return a.Policy.Reload(ctx)
}

// Close stops the background work, records the stop in the audit log New
// opened, and closes what New opened. It is safe to call more than once.
func (a *App) Close(context.Context) error {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return nil
	}
	a.closed = true
	reason := a.stopReason
	a.mu.Unlock()
	a.cancel()
	a.bg.Wait()
	var err error
	if a.AuditLog != nil {
		err = audit.Write(context.Background(), a.AuditLog, audit.GatewayStopped(cmp.Or(reason, "shutdown")))
	}
	for i := len(a.closers) - 1; i >= 0; i-- {
		a.closers[i]()
	}
	if a.AuditLog != nil {
		err = errors.Join(err, a.AuditLog.Close())
	}
	return err
}
