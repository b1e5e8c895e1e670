package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/meetguard/meetguard/crypto/e2ee/e2eestore"
	"github.com/meetguard/meetguard/gateway"
	"github.com/meetguard/meetguard/gateway/admission"
	"github.com/meetguard/meetguard/gateway/assertion"
	"github.com/meetguard/meetguard/gateway/audit"
	"github.com/meetguard/meetguard/gateway/auth"
	"github.com/meetguard/meetguard/gateway/config"
	"github.com/meetguard/meetguard/gateway/e2eeapi"
	"github.com/meetguard/meetguard/gateway/identity"
	"github.com/meetguard/meetguard/gateway/liveconn"
	"github.com/meetguard/meetguard/gateway/metrics"
	"github.com/meetguard/meetguard/gateway/reload"
	"github.com/meetguard/meetguard/gateway/rooms"
	"github.com/meetguard/meetguard/gateway/rooms/memstore"
	"github.com/meetguard/meetguard/gateway/rooms/redisstore"
	"github.com/meetguard/meetguard/gateway/roomsapi"
	"github.com/meetguard/meetguard/gateway/session"
	"github.com/meetguard/meetguard/gateway/upstream"
	"github.com/meetguard/meetguard/gateway/upstream/livekit"
	"github.com/meetguard/meetguard/policies"
	"github.com/meetguard/meetguard/policy"
)

func runServe(ctx context.Context, args []string, _, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "config file (YAML)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *path == "" {
		fmt.Fprintln(stderr, "meetguard serve: --config is required")
		return 2
	}
	cfg, err := config.LoadFile(*path, os.LookupEnv)
	if err != nil {
		// The same report as `config validate`, so an operator fixes the
		// config in one pass whichever command found it.
		printConfigProblems(stderr, "serve", *path, err)
		return 2
	}
	logger, err := newLogger(cfg.Log, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "meetguard serve: %v\n", err)
		return 2
	}
	defer func() { _ = logger.Sync() }()
	if err := runGateway(ctx, cfg, runtime{logger: logger, configPath: *path}); err != nil {
		logger.Error("gateway stopped", zap.Error(err))
		return 1
	}
	return 0
}

// runConfig is `meetguard config validate --config FILE`.
func runConfig(_ context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "validate" {
		fmt.Fprintln(stderr, "usage: meetguard config validate --config FILE")
		return 2
	}
	fs := flag.NewFlagSet("config validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "config file (YAML)")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if *path == "" {
		fmt.Fprintln(stderr, "meetguard config validate: --config is required")
		return 2
	}
	cfg, err := config.LoadFile(*path, os.LookupEnv)
	if err != nil {
		printConfigProblems(stderr, "config validate", *path, err)
		return 1
	}
	for _, w := range config.Warnings(cfg) {
		fmt.Fprintf(stderr, "%s: warning: %s\n", *path, w)
	}
	fmt.Fprintf(stdout, "%s: ok\n", *path)
	return 0
}

// printConfigProblems writes every problem of a config that did not load,
// one a line as FILE:line N: field: problem, then how many; or the one
// reason the file could not be read.
func printConfigProblems(w io.Writer, cmd, path string, err error) {
	var errs config.Errors
	if !errors.As(err, &errs) {
		fmt.Fprintf(w, "meetguard %s: %v\n", cmd, err)
		return
	}
	for _, e := range errs {
		fmt.Fprintf(w, "%s:%s\n", path, e.Error())
	}
	fmt.Fprintf(w, "%d problem(s)\n", len(errs))
}

func newLogger(c config.Log, w io.Writer) (*zap.Logger, error) {
	level, err := zapcore.ParseLevel(c.Level)
	if err != nil {
		return nil, fmt.Errorf("log.level: %w", err)
	}
	encCfg := zap.NewProductionEncoderConfig()
	encCfg.EncodeTime = zapcore.ISO8601TimeEncoder
	enc := zapcore.NewJSONEncoder(encCfg)
	if c.Format == "console" {
		dev := zap.NewDevelopmentEncoderConfig()
		dev.EncodeTime = zapcore.TimeEncoderOfLayout("15:04:05")
		enc = zapcore.NewConsoleEncoder(dev)
	}
	return zap.New(zapcore.NewCore(enc, zapcore.Lock(zapcore.AddSync(w)), level)), nil
}

// runtime carries what differs between serve and dev.
type runtime struct {
	logger   *zap.Logger
	listener net.Listener
	started  func(addr string)
	// httpClient talks to the identity provider; default has timeouts.
	httpClient *http.Client
	// mount serves extra handlers beside the gateway (the dev provider).
	mount map[string]http.Handler
	// strictAudit refuses audit records that differ from the documented
	// schema (dev and tests), see audit.Options.StrictSchema.
	strictAudit bool
	// configPath is the file SIGHUP reloads (serve); "" reloads only the
	// policy (dev).
	configPath string
}

// runGateway builds every part from a validated config and serves until
// ctx ends.
func runGateway(ctx context.Context, cfg *config.Config, rt runtime) (runErr error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	log := rt.logger
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	sec, err := metrics.New(metrics.Options{Registerer: reg})
	if err != nil {
		return err
	}

	// Audit first: nothing may happen unrecorded.
	auditKey, err := audit.LoadOrCreateKey(cfg.Audit.KeyFile)
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
	auditLog, err := audit.Open(ctx, audit.Options{Path: cfg.Audit.Path, SigningKey: auditKey, TrustedKeys: trusted,
		Mirror: mirror, Logger: log.Named("audit"), StrictSchema: rt.strictAudit})
	if err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	// Every writer records through aud, which counts what became durable
	// (the security metrics) and how long it took.
	aud := sec.Audit(auditLog)
	if err := sec.AuditQueue(auditLog.QueueDepth); err != nil {
		return err
	}
	defer func() {
		reason := "shutdown"
		if runErr != nil {
			reason = runErr.Error()
		}
		_ = audit.Write(context.Background(), auditLog, audit.GatewayStopped(reason))
		_ = auditLog.Close()
	}()

	policyDir := cfg.Policy.Dir
	if policyDir == "" && cfg.Policy.Bundle == "" {
		dir, err := os.MkdirTemp("", "meetguard-policies-")
		if err != nil {
			return fmt.Errorf("policy: %w", err)
		}
		defer os.RemoveAll(dir)
		if err := policies.WriteTo(dir); err != nil {
			return fmt.Errorf("policy: unpack shipped policies: %w", err)
		}
		policyDir = dir
	}
	engine, err := policy.New(ctx, policy.Options{
		Dir:                   policyDir,
		Bundle:                cfg.Policy.Bundle,
		BundleVerificationKey: cfg.Policy.BundleVerification.KeyFile,
		Query:                 cfg.Policy.Query,
		Timeout:               cfg.Policy.Timeout,
		ShadowDir:             cfg.Policy.ShadowDir,
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
			if err := audit.Write(context.Background(), aud, fact); err != nil {
				log.Error("audit policy reload", zap.Error(err))
			}
		},
	})
	if err != nil {
		return fmt.Errorf("policy: %w", err)
	}
	if cfg.Policy.Dir != "" {
		go func() {
			if err := engine.Watch(ctx); err != nil && ctx.Err() == nil {
				log.Error("policy watch stopped", zap.Error(err))
			}
		}()
	}
	listenerTLS, err := newListenerTLS(ctx, cfg, log, tlsOptions{})
	if err != nil {
		return err
	}
	codec, err := session.NewCodec([]byte(cfg.Session.Secret))
	if err != nil {
		return err
	}
	roomStore, err := openRoomStore(ctx, cfg, log.Named("rooms"), sec)
	if err != nil {
		return err
	}
	defer roomStore.Close()
	go sec.FollowLobby(ctx, roomStore, cfg.Rooms.State().WithDefaults().WaitTTL)
	live := liveconn.NewRegistry()
	store, err := openSessionStore(ctx, cfg, roomStore, live, log.Named("session"))
	if err != nil {
		return err
	}
	pub, err := url.Parse(cfg.PublicURL)
	if err != nil {
		return fmt.Errorf("public_url: %w", err)
	}
	client := rt.httpClient
	if client == nil {
		client = &http.Client{Timeout: cfg.OIDC.HTTPTimeout}
	}
	for _, w := range config.Warnings(cfg) {
		log.Warn("configuration warning", zap.String("warning", w))
	}
	authn, err := auth.New(ctx, auth.Options{
		Issuer: cfg.OIDC.Issuer, ClientID: cfg.OIDC.ClientID, ClientSecret: cfg.OIDC.ClientSecret,
		Scopes: cfg.OIDC.Scopes, Audiences: cfg.OIDC.Audiences, AccessTokenType: cfg.OIDC.AccessTokenType, GroupsClaim: cfg.OIDC.GroupsClaim,
		SubjectClaim: cfg.OIDC.SubjectClaim, BearerClients: cfg.OIDC.BearerClients,
		PublicURL: pub, HTTPClient: client, KeyRefetchInterval: cfg.OIDC.KeyRefetchInterval,
		SessionTTL: cfg.Session.TTL, MaxClaimAge: cfg.Session.MaxClaimAge, Store: store, SharedStore: cfg.Store.Kind == "redis",
		Codec: codec, Logger: log.Named("auth"), Audit: aud, OnProviderFailure: sec.OIDCFailure,
		OnLogout: func(sessionID string) {
			live.Close(func(m liveconn.Meta) bool { return m.SessionID == sessionID })
		},
	})
	if err != nil {
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
	// Upstream adapters: each meeting server's own credential, minted only
	// after admission (generic upstreams have none).
	adapters := map[string]admission.Adapter{}
	public := map[string]http.Handler{}
	for _, u := range cfg.Upstreams {
		a, err := upstream.New(ctx, u, upstream.Options{
			Logger: log.Named("upstream"), DefaultCapacity: cfg.Rooms.DefaultCapacity,
			OnLiveKitEvent: func(ctx context.Context, ev livekit.Event) error {
				if ev.Person == "" {
					log.Warn("meeting server reports a participant the gateway did not admit", zap.String("upstream", ev.Upstream), zap.String("room", ev.Room), zap.String("identity", ev.Identity))
				}
				return audit.Write(ctx, aud, audit.UpstreamParticipant(ev.Upstream, ev.Room, string(ev.Kind), ev.Person, ev.Identity, ev.ID))
			},
		})
		if err != nil {
			return err
		}
		if a != nil {
			adapters[u.Name] = a
			for path, h := range upstream.Endpoints(u.Name, a) {
				public[path] = h
			}
		}
	}
	devices := &e2eeDevices{}
	roomsAPI, err := newRoomsAPI(ctx, cfg, roomStore, engine, aud, sec, live, adapters, devices, log.Named("rooms"))
	if err != nil {
		return err
	}
	e2eeKey, err := audit.LoadOrCreateKey(cfg.E2EE.KeyFile)
	if err != nil {
		return fmt.Errorf("e2ee.key_file: %w", err)
	}
	e2eeAPI, err := e2eeapi.New(ctx, e2eeapi.Options{
		SigningKey: e2eeKey, Membership: roomsAPI, Rooms: roomStore, Audit: aud, Store: e2eeStore(roomStore),
		PublicOrigin:    pub.Scheme + "://" + pub.Host,
		AllowClassicKEM: func(context.Context, string) (bool, error) { return cfg.E2EE.AllowClassicKEM, nil },
		Logger:          log.Named("e2ee"),
	})
	if err != nil {
		return fmt.Errorf("e2ee: %w", err)
	}
	devices.h.Store(e2eeAPI)
	go func() {
		if err := roomsAPI.Run(ctx); err != nil {
			log.Error("room event loop stopped", zap.Error(err))
		}
	}()
	gw, err := gateway.New(gateway.Options{
		Adapters: adapters,
		Public:   public,
		Config:   cfg, Auth: authn, Admitter: roomsAPI, Assertion: signer, Audit: aud, Live: live,
		Logger: log.Named("access"), Metrics: reg, Security: sec,
		Ready: map[string]gateway.ReadyChecker{"policy": policyReady{engine}, "rooms": roomsAPI},
		API:   map[string]http.Handler{roomsapi.Prefix: e2eeAPI.Wrap(roomsAPI)},
	})
	if err != nil {
		return err
	}
	// SIGHUP: the configuration file again (request-path settings,
	// upstreams, limits) and the policy; certificate files reload on
	// their own handler (tls.go). meetguard dev has no file: policy only.
	reloadConfig := func(ctx context.Context) error { return engine.Reload(ctx) }
	if rt.configPath != "" {
		rl, err := reload.New(reload.Options{Path: rt.configPath, Lookup: os.LookupEnv, Config: cfg, Gateway: gw, Policy: engine,
			Audit: aud, Logger: log.Named("reload")})
		if err != nil {
			return err
		}
		reloadConfig = func(ctx context.Context) error { _, err := rl.Reload(ctx); return err }
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				// Each part logs and audits its own outcome.
				_ = reloadConfig(ctx)
			}
		}
	}()
	if err := audit.Write(ctx, aud, audit.GatewayStarted(version, cfg.PublicURL, engine.Revision())); err != nil {
		return fmt.Errorf("audit gateway start: %w", err)
	}
	return gateway.Serve(ctx, gateway.ServerOptions{Config: cfg, Gateway: gw, Listener: rt.listener, Metrics: reg, Logger: log, Started: rt.started, Mount: rt.mount,
		TLS: listenerTLS.config, PlainListen: listenerTLS.plainListen, PlainHandler: listenerTLS.plain})
}

// policyReady adapts the engine's status to a readiness check.
type policyReady struct{ e *policy.Engine }

func (p policyReady) Ready() error {
	st := p.e.Status()
	if !st.Loaded {
		return errors.New("no policy revision loaded")
	}
	return nil
}

// ReadyDetail shows a rejected reload while the last good revision serves.
func (p policyReady) ReadyDetail() string {
	st := p.e.Status()
	if st.LastReloadError != "" {
		return "serving " + st.Revision + "; last reload rejected: " + st.LastReloadError
	}
	return "serving " + st.Revision
}

// loadAssertionKey reads a PKCS#8 Ed25519 key, or returns nil so that a
// fresh key is drawn (upstreams fetch it from the JWKS endpoint).
func loadAssertionKey(path string) (ed25519.PrivateKey, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("assertion.key_file: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("assertion.key_file: %s is not PEM", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("assertion.key_file: %w", err)
	}
	ek, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("assertion.key_file: %s is not an Ed25519 key", path)
	}
	return ek, nil
}

// openSessionStore keeps sessions where the rooms are: in Redis with
// store.kind redis, so every node reads every session and a logout on one
// node cuts the session's live connections on all of them; in this
// process's memory otherwise (meetguard dev, one node).
func openSessionStore(ctx context.Context, cfg *config.Config, roomStore rooms.Store, live *liveconn.Registry, log *zap.Logger) (session.Store, error) {
	rs, ok := roomStore.(*redisstore.Store)
	if !ok {
		return session.NewMemory(ctx, session.MemoryOptions{}), nil
	}
	sealer, err := session.NewSealer([]byte(cfg.Session.Secret))
	if err != nil {
		return nil, fmt.Errorf("session.secret: %w", err)
	}
	st := rs.Sessions(sealer)
	go live.FollowEnded(ctx, st, st, log)
	return st, nil
}

// e2eeStore keeps the end-to-end key exchange's state where the rooms are:
// in Redis with store.kind redis, so any node serves any member and a kick
// on one node cuts keys on all of them; in this process's memory otherwise.
func e2eeStore(roomStore rooms.Store) e2eestore.Store {
	if rs, ok := roomStore.(*redisstore.Store); ok {
		return rs.E2EE()
	}
	return e2eestore.NewMemory(nil)
}

// openRoomStore builds the room state store from store.kind and seeds the
// permanent rooms. A Redis that is down at start does not stop the node:
// rooms fail closed (503) until it is back, and seeding is retried.
func openRoomStore(ctx context.Context, cfg *config.Config, log *zap.Logger, sec *metrics.Set) (rooms.Store, error) {
	var st rooms.Store
	switch cfg.Store.Kind {
	case "redis":
		r := cfg.Store.Redis
		rs, err := redisstore.New(ctx, redisstore.Options{Server: &redisstore.ClientOptions{
			Addr: r.Addr, Password: r.Password, DB: r.DB,
			SentinelMaster: r.Sentinel.Master, SentinelAddrs: r.Sentinel.Addrs, SentinelPassword: r.Sentinel.Password,
		}, Rooms: cfg.Rooms.State(), Logger: log, Hooks: []redis.Hook{sec.RedisHook()}})
		if err != nil {
			return nil, fmt.Errorf("store.redis: %w", err)
		}
		st = rs
	default:
		ms, err := memstore.New(ctx, memstore.Options{Rooms: cfg.Rooms.State(), Logger: log})
		if err != nil {
			return nil, fmt.Errorf("rooms: %w", err)
		}
		st = ms
	}
	seeds := cfg.Rooms.Seeds(cfg.OIDC.Issuer)
	err := rooms.Seed(ctx, st, seeds)
	switch {
	case err == nil:
	case errors.Is(err, rooms.ErrStoreUnavailable):
		log.Warn("room store unavailable at start; permanent rooms will be seeded when it is back", zap.Error(err))
		go func() {
			for ctx.Err() == nil {
				select {
				case <-ctx.Done():
					return
				case <-time.After(2 * time.Second):
				}
				if err := rooms.Seed(ctx, st, seeds); err == nil {
					log.Info("permanent rooms seeded")
					return
				}
			}
		}()
	default:
		_ = st.Close()
		return nil, fmt.Errorf("rooms.permanent: %w", err)
	}
	return st, nil
}

// newRoomsAPI builds the rooms API, which is also the gateway's admitter.
func newRoomsAPI(ctx context.Context, cfg *config.Config, st rooms.Store, engine *policy.Engine, auditLog roomsapi.Auditor, sec *metrics.Set, live *liveconn.Registry, adapters map[string]admission.Adapter, devices roomsapi.Devices, log *zap.Logger) (*roomsapi.API, error) {
	key := []byte(cfg.Rooms.TicketKey)
	if len(key) == 0 {
		// One node with the memory store: tickets need only verify here,
		// and only until restart (which ends every admission anyway).
		key = make([]byte, 32)
		_, _ = rand.Read(key)
		log.Info("rooms.ticket_key not set: signing room tickets with a fresh random key")
	}
	tickets, err := rooms.NewTickets(rooms.TicketOptions{Key: key, TTL: cfg.Rooms.TicketTTL})
	if err != nil {
		return nil, fmt.Errorf("rooms tickets: %w", err)
	}
	passcodes, err := rooms.NewPasscodes(rooms.PasscodeOptions{})
	if err != nil {
		return nil, fmt.Errorf("rooms passcodes: %w", err)
	}
	pub, err := url.Parse(cfg.PublicURL)
	if err != nil {
		return nil, fmt.Errorf("public_url: %w", err)
	}
	paths := map[string]string{}
	for _, u := range cfg.Upstreams {
		paths[u.Name] = u.Rooms.Path
	}
	return roomsapi.New(ctx, roomsapi.Options{
		Store: st, Tickets: tickets, Passcodes: passcodes, Policy: sec.Policy(engine), Audit: auditLog, Live: live, Metrics: sec,
		PublicURL: pub, RoomPaths: paths, Rooms: cfg.Rooms.State(), LobbyByDefault: *cfg.Rooms.LobbyByDefault,
		StoreKind: cfg.Store.Kind, Adapters: adapters, Devices: devices, Logger: log,
	})
}

// e2eeDevices breaks the construction cycle: the rooms API asks the e2ee
// API for device facts, the e2ee API asks the rooms API who is a member.
type e2eeDevices struct {
	h atomic.Pointer[e2eeapi.Handler]
}

func (d *e2eeDevices) DeviceFacts(ctx context.Context, room string, id identity.Identity) (policy.Device, error) {
	if h := d.h.Load(); h != nil {
		return h.DeviceFacts(ctx, room, id)
	}
	return policy.Device{}, nil
}
