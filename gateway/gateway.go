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
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/meetguard/meetguard/gateway/admission"
	"github.com/meetguard/meetguard/gateway/assertion"
	"github.com/meetguard/meetguard/gateway/audit"
	"github.com/meetguard/meetguard/gateway/auth"
	"github.com/meetguard/meetguard/gateway/config"
	"github.com/meetguard/meetguard/gateway/identity"
	"github.com/meetguard/meetguard/gateway/liveconn"
	"github.com/meetguard/meetguard/gateway/metrics"
	"github.com/meetguard/meetguard/gateway/reqpath"
	"github.com/meetguard/meetguard/gateway/request"
	"github.com/meetguard/meetguard/gateway/respond"
	"github.com/meetguard/meetguard/gateway/web"
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
	opts      Options
	trusted   []netip.Prefix
	upstreams []*upstream
	metrics   *httpMetrics
	origins   originGuard
	// originRefusals counts refused cross-origin requests into
	// origin.refused records.
	originRefusals *audit.Aggregator
	// authRejections counts refused bearer credentials into auth.rejected
	// records.
	authRejections *audit.Aggregator
}

type upstream struct {
	cfg   config.Upstream
	rooms config.RoomPattern
	proxy *httputil.ReverseProxy
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
	for _, c := range opts.Config.TrustedProxies {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			return nil, fmt.Errorf("trusted_proxies: %w", err)
		}
		g.trusted = append(g.trusted, p.Masked())
	}
	origins, err := newOriginGuard(opts.Config.PublicURL, opts.Config.AllowedOrigins)
	if err != nil {
		return nil, err
	}
	g.origins = origins
	g.originRefusals = audit.NewAggregator(audit.AggregatorOptions{Audit: opts.Audit, Event: audit.EventOriginRefused, Overflow: originOverflow, Logger: opts.Logger})
	g.authRejections = audit.NewAggregator(audit.AggregatorOptions{Audit: opts.Audit, Event: audit.EventAuthRejected, Overflow: authOverflow,
		MaxKeys: authRejectMaxKeys, Logger: opts.Logger})
	m, err := newMetrics(opts.Metrics, opts.Live)
	if err != nil {
		return nil, err
	}
	g.metrics = m
	transport := newTransport(opts.Config.Limits)
	for _, uc := range opts.Config.Upstreams {
		target, err := url.Parse(uc.URL)
		if err != nil {
			return nil, fmt.Errorf("upstream %s: %w", uc.Name, err)
		}
		rp, err := config.ParseRoomPattern(uc.Rooms.Path)
		if err != nil {
			return nil, fmt.Errorf("upstream %s: %w", uc.Name, err)
		}
		u := &upstream{cfg: uc, rooms: rp}
		u.proxy = &httputil.ReverseProxy{
			Rewrite:      func(pr *httputil.ProxyRequest) { g.rewrite(pr, target) },
			Transport:    transport,
			ErrorHandler: g.upstreamError,
		}
		g.upstreams = append(g.upstreams, u)
	}
	return g, nil
}

// Live is the registry of proxied long-lived connections.
func (g *Gateway) Live() *liveconn.Registry { return g.opts.Live }

func newTransport(l config.Limits) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = (&netDialer{timeout: l.UpstreamDialTimeout}).DialContext
	t.ResponseHeaderTimeout = l.UpstreamResponseTimeout
	t.TLSHandshakeTimeout = l.UpstreamDialTimeout
	t.MaxIdleConns = 1024
	t.MaxIdleConnsPerHost = 256
	t.IdleConnTimeout = 90 * time.Second
	t.MaxResponseHeaderBytes = 1 << 20
	return t
}

// ctxKey carries what the gateway decided about a request into Rewrite.
type ctxKey struct{}

type forwardInfo struct {
	adapter    admission.Adapter
	admitted   *admission.Participant
	adapterErr error
	id         identity.Identity
	upstream   string
	room       string
	role       string
	assertion  string
	trusted    bool
	path       string
}

// Close writes the audit records the gateway still aggregates (refusals
// counted per source and minute). Serve calls it on shutdown.
func (g *Gateway) Close(ctx context.Context) {
	g.originRefusals.Close(ctx)
	g.authRejections.Close(ctx)
}

// ServeHTTP is the gateway's one entry point.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	ip, trusted := clientIP(r.RemoteAddr, r.Header.Values("X-Forwarded-For"), g.trusted)
	stripIncoming(r.Header, trusted)
	info := request.Info{ID: newRequestID(), ClientIP: ip.String()}
	r = r.WithContext(request.With(r.Context(), info))
	rec.Header().Set("X-Request-Id", info.ID)
	setHSTS(rec.Header(), g.opts.Config.PublicURL)

	kind := g.serve(rec, r, trusted)

	dur := time.Since(start)
	g.metrics.observe(kind, rec.status, dur)
	g.opts.Logger.Info("request",
		zap.String("request_id", info.ID),
		zap.String("client_ip", info.ClientIP),
		zap.String("method", r.Method),
		zap.String("path", r.URL.EscapedPath()),
		zap.Int("status", rec.status),
		zap.Int64("bytes", rec.bytes),
		zap.Duration("duration", dur),
		zap.String("route", kind),
		zap.String("subject", rec.subject),
	)
}

func (g *Gateway) serve(w *statusRecorder, r *http.Request, trusted bool) string {
	up := classifyUpgrade(r)
	if up == badUpgrade {
		// Before authentication and routing: nothing may tunnel past
		// the gateway's view of requests.
		w.Header().Set("Connection", "close")
		respond.JSONError(w, http.StatusBadRequest, "bad_upgrade", "Only WebSocket upgrades (GET with a complete handshake) are accepted.")
		return "bad_upgrade"
	}
	if up == notUpgrade {
		// Every request but a WebSocket handshake is bounded in time and
		// size, whatever it is routed to.
		g.boundBody(w, r)
	}
	path, err := reqpath.Canonical(r.URL.EscapedPath())
	if err != nil {
		respond.JSONError(w, http.StatusBadRequest, "bad_path", "The request path is not allowed.")
		return "bad_path"
	}
	if r.URL.RawPath != "" || r.URL.Path != path {
		// Hand everything after this the one canonical path.
		u := *r.URL
		p, _ := url.PathUnescape(path)
		u.Path, u.RawPath = p, path
		if u.Path == path {
			u.RawPath = ""
		}
		r.URL = &u
	}
	if strings.HasPrefix(path, "/.meetguard/") || strings.HasPrefix(path, "/.well-known/meetguard/") {
		return g.serveOwn(w, r, path)
	}
	return g.serveProxy(w, r, path, trusted, up == webSocketUpgrade)
}

func (g *Gateway) serveOwn(w *statusRecorder, r *http.Request, path string) string {
	switch path {
	case auth.LoginPath:
		g.opts.Auth.Login(w, r)
		return "login"
	case auth.CallbackPath:
		g.opts.Auth.Callback(w, r)
		return "callback"
	case auth.LogoutPath:
		g.opts.Auth.Logout(w, r)
		return "logout"
	case auth.LoggedOutPath:
		respond.Page(w, r, http.StatusOK, web.T("signedout.title"), web.Message{Text: web.T("signedout.text"), Link: &web.Link{Href: "/", Label: web.T("signin.again")}})
		return "logged_out"
	case "/.meetguard/healthz":
		respond.JSON(w, http.StatusOK, map[string]string{"status": "ok"})
		return "health"
	case "/.meetguard/readyz":
		g.serveReady(w, false)
		return "health"
	case assertion.JWKSPath:
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=300")
		_, _ = w.Write(g.opts.Assertion.JWKS())
		return "jwks"
	}
	if strings.HasPrefix(path, "/.well-known/meetguard/") {
		if h := longestPrefix(g.opts.Public, path); h != nil {
			h.ServeHTTP(w, r)
			return "public"
		}
	}
	if strings.HasPrefix(path, "/.meetguard/api/") {
		if h := longestPrefix(g.opts.API, path); h != nil {
			id, err := g.opts.Auth.Authenticate(r)
			if err != nil {
				g.unauthenticated(w, r, err)
				return "api"
			}
			w.subject = id.Subject
			if err := g.origins.checkAPI(r, id); err != nil {
				g.refuseForeignOrigin(w, r, id)
				return "foreign_origin"
			}
			// Handlers set tighter caps per endpoint; this is the ceiling.
			r.Body = http.MaxBytesReader(w, r.Body, g.opts.Config.Limits.MaxBodyBytes)
			h.ServeHTTP(w, r.WithContext(identity.With(r.Context(), id)))
			return "api"
		}
	}
	respond.JSONError(w, http.StatusNotFound, "not_found", "Not found.")
	return "not_found"
}

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

func (g *Gateway) route(path string) *upstream {
	var best *upstream
	for _, u := range g.upstreams {
		p := u.cfg.Prefix
		if path == strings.TrimSuffix(p, "/") || strings.HasPrefix(path, p) || p == "/" {
			if best == nil || len(p) > len(best.cfg.Prefix) {
				best = u
			}
		}
	}
	return best
}

func (g *Gateway) serveProxy(w *statusRecorder, r *http.Request, path string, trusted, webSocket bool) string {
	ctx := r.Context()
	up := g.route(path)
	if up == nil {
		respond.JSONError(w, http.StatusNotFound, "not_found", "Not found.")
		return "not_found"
	}
	id, err := g.opts.Auth.Authenticate(r)
	if err != nil {
		g.unauthenticated(w, r, err)
		return "unauthenticated"
	}
	w.subject = id.Subject
	if err := g.origins.check(r, id); err != nil {
		g.refuseForeignOrigin(w, r, id)
		return "foreign_origin"
	}
	fi := &forwardInfo{id: id, upstream: up.cfg.Name, trusted: trusted, path: path, adapter: g.opts.Adapters[up.cfg.Name]}
	meta := liveconn.Meta{SessionID: id.SessionID, SubjectKey: id.Key(), Upstream: up.cfg.Name}
	kind := "proxy"
	if room, ok := up.rooms.Room(path); ok {
		kind = "room"
		adm, err := g.opts.Admitter.AdmitRequest(ctx, admission.Request{Identity: id, Upstream: up.cfg.Name, Room: room, HTTP: r})
		if err != nil {
			g.opts.Logger.Error("admission failed closed", zap.String("room", room), zap.Error(err))
			g.refuse(w, r, http.StatusServiceUnavailable, "unavailable", "The meeting cannot be reached right now. Please try again shortly.")
			return kind
		}
		switch {
		case adm.Outcome == admission.Admitted:
			for _, c := range adm.Cookies {
				http.SetCookie(w, c)
			}
		case adm.Respond != nil:
			adm.Respond(w, r)
			return kind
		case adm.Outcome == admission.Waiting:
			g.waiting(w, r, room, adm)
			return kind
		default:
			g.deny(w, r, adm.UserMessage)
			return kind
		}
		fi.room, fi.role = room, adm.Role
		meta.Room, meta.ParticipantID = room, adm.ParticipantID
		fi.admitted = &admission.Participant{Identity: id, Upstream: up.cfg.Name, Room: room, Role: adm.Role, ParticipantID: adm.ParticipantID}
		if jr, ok := g.opts.Adapters[up.cfg.Name].(admission.JoinRedirector); ok && wantsHTML(r) {
			target, err := jr.JoinURL(ctx, *fi.admitted)
			if err != nil {
				g.opts.Logger.Error("adapter join failed closed", zap.String("upstream", up.cfg.Name), zap.String("room", room), zap.Error(err))
				g.refuse(w, r, http.StatusServiceUnavailable, "unavailable", "The meeting cannot be reached right now. Please try again shortly.")
				return kind
			}
			w.Header().Set("Cache-Control", "no-store")
			http.Redirect(w, r, target, http.StatusFound)
			return kind
		}
	} else if up.rooms.Owns(path) {
		// Below the room prefix but not a valid room ID: never forward
		// something that might be read as a room by the upstream.
		respond.JSONError(w, http.StatusNotFound, "not_found", "Not found.")
		return kind
	}
	tok, err := g.opts.Assertion.For(id, up.cfg.Name, fi.room, fi.role)
	if err != nil {
		g.opts.Logger.Error("sign assertion", zap.Error(err))
		g.refuse(w, r, http.StatusServiceUnavailable, "unavailable", "The meeting cannot be reached right now.")
		return kind
	}
	fi.assertion = tok
	var out http.ResponseWriter = w
	if webSocket {
		// Long-lived: no read deadline (serve set none), but tracked so
		// it can be cut.
		meta.WebSocket = true
		out = g.opts.Live.TrackChecked(w, meta, g.admissionCheck(ctx, fi.admitted))
		kind += "_upgrade"
	}
	up.proxy.ServeHTTP(out, r.WithContext(context.WithValue(ctx, ctxKey{}, fi)))
	return kind
}

// rewrite builds the outbound request. It runs after ReverseProxy removed
// hop-by-hop headers (including any named in Connection), so the identity
// headers set here cannot be stripped by a client's Connection header.
func (g *Gateway) rewrite(pr *httputil.ProxyRequest, target *url.URL) {
	fi, _ := pr.In.Context().Value(ctxKey{}).(*forwardInfo)
	pr.SetURL(target)
	if fi == nil {
		return // never happens: serveProxy always sets it
	}
	out := pr.Out
	// SetURL joins target and inbound paths; pin the canonical one.
	out.URL.Path, out.URL.RawPath = joinPath(target, pr.In.URL)
	out.Host = target.Host
	if fi.trusted {
		for _, h := range []string{"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto"} {
			if v := pr.In.Header.Values(h); len(v) > 0 {
				out.Header[h] = v
			}
		}
	}
	pr.SetXForwarded()
	if fi.id.Via == identity.ViaBearer {
		out.Header.Del("Authorization")
	}
	stripCookies(out.Header)
	for k := range out.Header {
		// Gateway-bound credentials such as Meetguard-Ticket stay here.
		if k != "" && (k[0]|0x20) == 'm' && strings.HasPrefix(normHeader(k), "meetguard-") {
			delete(out.Header, k)
		}
	}
	out.Header.Set("X-Meetguard-Assertion", fi.assertion)
	out.Header.Set("X-Meetguard-User", fi.id.Subject)
	if fi.id.Email != "" {
		out.Header.Set("X-Meetguard-Email", fi.id.Email)
	}
	if fi.id.Name != "" {
		out.Header.Set("X-Meetguard-Name", headerSafe(fi.id.Name))
	}
	if fi.room != "" {
		out.Header.Set("X-Meetguard-Room", fi.room)
		out.Header.Set("X-Meetguard-Role", fi.role)
	}
	out.Header.Set("X-Request-Id", request.From(pr.In.Context()).ID)
	if fi.adapter != nil {
		if err := fi.adapter.Forward(pr.In.Context(), pr, fi.admitted); err != nil {
			// Rewrite cannot fail, so a cancelled request carries the
			// refusal to the error handler: nothing is sent upstream.
			fi.adapterErr = err
			ctx, cancel := context.WithCancel(pr.Out.Context())
			cancel()
			pr.Out = pr.Out.WithContext(ctx)
		}
	}
}

func joinPath(target, in *url.URL) (string, string) {
	base := strings.TrimSuffix(target.EscapedPath(), "/")
	esc := base + in.EscapedPath()
	p, err := url.PathUnescape(esc)
	if err != nil || p == esc {
		return esc, ""
	}
	return p, esc
}

// headerSafe keeps a display name printable ASCII so it cannot split or
// smuggle a header; the assertion carries the exact name.
func headerSafe(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c < 0x20 || c >= 0x7f {
			b[i] = '?'
		}
	}
	return string(b)
}

func (g *Gateway) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	if fi, _ := r.Context().Value(ctxKey{}).(*forwardInfo); fi != nil && fi.adapterErr != nil {
		g.opts.Logger.Error("adapter refused request", zap.String("upstream", fi.upstream), zap.Error(fi.adapterErr))
		respond.JSONError(w, http.StatusServiceUnavailable, "unavailable", "The meeting cannot be reached right now.")
		return
	}
	g.opts.Logger.Warn("upstream error", zap.String("request_id", request.From(r.Context()).ID), zap.Error(err))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		respond.JSONError(w, http.StatusRequestEntityTooLarge, "body_too_large", "The request body is too large.")
		return
	}
	respond.JSONError(w, http.StatusBadGateway, "upstream_unavailable", "The meeting server did not answer.")
}

func (g *Gateway) unauthenticated(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, auth.ErrProviderUnavailable) {
		g.refuse(w, r, http.StatusServiceUnavailable, "unavailable", "Sign-in is unavailable right now. Please try again shortly.")
		return
	}
	if !errors.Is(err, auth.ErrNoCredentials) && !errors.Is(err, auth.ErrSessionEnded) && !errors.Is(err, auth.ErrInvalidToken) {
		g.opts.Logger.Error("authentication failed closed", zap.Error(err))
		g.refuse(w, r, http.StatusServiceUnavailable, "unavailable", "Sign-in is unavailable right now. Please try again shortly.")
		return
	}
	g.auditAuthRejected(r, err)
	if wantsHTML(r) && r.Header.Get("Authorization") == "" {
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, auth.LoginURL(r.URL.RequestURI()), http.StatusFound)
		return
	}
	challenge := `Bearer realm="meetguard"`
	if errors.Is(err, auth.ErrInvalidToken) {
		challenge += `, error="invalid_token"`
	}
	w.Header().Set("WWW-Authenticate", challenge)
	respond.JSONError(w, http.StatusUnauthorized, "unauthenticated", "Sign in to continue.")
}

func (g *Gateway) refuse(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	if msg == "" {
		msg = "You cannot join this meeting."
	}
	if wantsHTML(r) {
		respond.Page(w, r, status, web.T("refusal.title"), web.Message{Text: web.Literal(msg)})
		return
	}
	respond.JSONError(w, status, code, msg)
}

// deny answers a refused room request: a page for a browser, else the one
// JSON refusal every door gives (respond.Denied).
func (g *Gateway) deny(w http.ResponseWriter, r *http.Request, msg string) {
	if wantsHTML(r) {
		g.refuse(w, r, http.StatusForbidden, "denied", msg)
		return
	}
	respond.Denied(w, msg)
}

func (g *Gateway) waiting(w http.ResponseWriter, r *http.Request, room string, adm admission.Result) {
	msg := adm.UserMessage
	if msg == "" {
		msg = "Please wait: a host will let you in."
	}
	if wantsHTML(r) {
		respond.Page(w, r, http.StatusAccepted, web.T("waiting.title"), web.Message{Text: web.Literal(msg)})
		return
	}
	respond.JSON(w, http.StatusAccepted, map[string]string{"status": "waiting", "wait_id": adm.WaitID, "message": msg})
}

func newRequestID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// statusRecorder remembers what was answered, for the access log.
type statusRecorder struct {
	http.ResponseWriter
	status  int
	bytes   int64
	wrote   bool
	subject string
}

func (s *statusRecorder) WriteHeader(code int) {
	if !s.wrote {
		s.status, s.wrote = code, true
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	s.wrote = true
	n, err := s.ResponseWriter.Write(b)
	s.bytes += int64(n)
	return n, err
}

func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach Hijack and deadlines.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func longestPrefix(m map[string]http.Handler, path string) http.Handler {
	var h http.Handler
	best := ""
	for prefix, cand := range m {
		if strings.HasPrefix(path, prefix) && len(prefix) > len(best) {
			h, best = cand, prefix
		}
	}
	return h
}
