package e2eeapi

import (
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/meetguard/meetguard/crypto/e2ee"
	"github.com/meetguard/meetguard/crypto/e2ee/e2eehttp"
	"github.com/meetguard/meetguard/crypto/e2ee/e2eestore"
	"github.com/meetguard/meetguard/gateway/identity"
	"github.com/meetguard/meetguard/gateway/respond"
	"github.com/meetguard/meetguard/gateway/rooms"
	"github.com/meetguard/meetguard/gateway/web"
)

// Auditor writes to the tamper-evident audit log; an error means the record is not durable.
type Auditor interface {
	Record(ctx context.Context, event string, fields ...zap.Field) error
}

// Options configures a Handler.
type Options struct {
	// SigningKey is the e2ee authority key: clients verify every credential and roster with its public half.
	// Keep it apart from the audit and assertion keys. Required.
	SigningKey ed25519.PrivateKey
	Membership Membership // required
	Rooms      RoomState  // required
	Audit      Auditor    // required
	// Store holds every Authority's state. Default: an in-memory store, which ties each room to this process.
	Store e2eestore.Store
	// AllowClassicKEM says whether a room admits DHKEM(X25519) device keys (browsers without ML-KEM). It is
	// asked once per meeting instance, when its Authority starts. Default: never, X-Wing only.
	AllowClassicKEM func(ctx context.Context, room string) (bool, error)
	// MaxMembers caps each roster. Default 1000 (the rooms' default maximum capacity).
	MaxMembers int
	// MaxBundleBytes caps a posted commit (an epoch secret sealed to every member): about 1.2 kB per member with X-Wing. Default 4 MiB
	// (3 000 members). The gateway's limits.max_body_bytes must not be lower.
	MaxBundleBytes int64
	// MaxWait is the longest long-poll a client may ask for. Default 25 seconds.
	MaxWait time.Duration
	// NonceTTL and CredentialTTL are the Authority's (defaults 2 minutes and 24 hours).
	NonceTTL      time.Duration
	CredentialTTL time.Duration
	// PendingTTL is how long a key registered before its holder is admitted waits for the admission.
	// Default 10 minutes.
	PendingTTL time.Duration
	// SweepInterval is how often every meeting is reconciled with the rooms store, besides on each room event
	// (ends meetings of rooms that ended quietly, drops stale registrations). Default 1 minute.
	SweepInterval time.Duration
	// PublicOrigin is the gateway's public origin (scheme://host[:port]). Browser calls authenticated by the
	// session cookie must come from it: one naming another Origin, or a Sec-Fetch-Site other than same-origin,
	// is refused. Without it only Sec-Fetch-Site is checked. Bearer calls are exempt.
	PublicOrigin string
	// Meeting configures the meeting page (page.go); its zero value serves the page without a signalling path.
	Meeting MeetingPage
	// OnClientAlarm counts an alarm a client reported (alarm.go), once its audit record is durable: the
	// gateway's metric e2ee_alarms_total. Nil: recorded only.
	OnClientAlarm func(kind string)
	Clock         e2ee.Clock  // default e2ee.SystemClock
	Logger        *zap.Logger // default zap.NewNop()

	// stuckAfter is how long a reconcile runs before the log calls it stuck (default 30 s); tests shorten it.
	stuckAfter time.Duration
}

// Handler serves the e2ee endpoints of every room. Create it with New.
type Handler struct {
	opts Options
	pub  ed25519.PublicKey
	ctx  context.Context // ends long-polls and the room-event loop
	log  *zap.Logger

	mu       sync.Mutex
	meetings map[string]*meeting
	// reconciling is the reconcile the room-event follower is in, nil between two (watchFollower).
	reconciling atomic.Pointer[reconcileRun]
	alarms      alarmLimiter
	routes      *router
}

const (
	defaultMaxBundleBytes = 4 << 20
	// maxRegistrationBytes bounds a Registration: 1+32+32+2+2+1216+64 bytes with X-Wing.
	maxRegistrationBytes = 8 << 10
)

// New checks opts, starts following the rooms store's events until ctx ends, and returns the Handler.
func New(ctx context.Context, opts Options) (*Handler, error) {
	switch {
	case len(opts.SigningKey) != ed25519.PrivateKeySize:
		return nil, errors.New("e2eeapi: SigningKey must be an Ed25519 private key")
	case opts.Membership == nil, opts.Rooms == nil, opts.Audit == nil:
		return nil, errors.New("e2eeapi: Membership, Rooms and Audit are required")
	case opts.MaxMembers < 0, opts.MaxBundleBytes < 0, opts.MaxWait < 0, opts.PendingTTL < 0, opts.SweepInterval < 0:
		return nil, errors.New("e2eeapi: limits and durations must not be negative")
	}
	if opts.Clock == nil {
		opts.Clock = e2ee.SystemClock{}
	}
	if opts.Store == nil {
		opts.Store = e2eestore.NewMemory(opts.Clock)
	}
	if opts.MaxBundleBytes == 0 {
		opts.MaxBundleBytes = defaultMaxBundleBytes
	}
	if opts.MaxWait == 0 {
		opts.MaxWait = 25 * time.Second
	}
	if opts.PendingTTL == 0 {
		opts.PendingTTL = 10 * time.Minute
	}
	if opts.SweepInterval == 0 {
		opts.SweepInterval = time.Minute
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	opts.PublicOrigin = strings.TrimSuffix(opts.PublicOrigin, "/")
	h := &Handler{
		opts:     opts,
		pub:      opts.SigningKey.Public().(ed25519.PublicKey),
		ctx:      ctx,
		log:      opts.Logger,
		meetings: map[string]*meeting{},
		routes:   newRouter(),
	}
	go h.follow(ctx)
	return h, nil
}

// PublicKey is the authority key clients verify credentials and rosters with; publish it to clients out of
// band where possible (GET .../e2ee/authority serves it too, which is trust on first use).
func (h *Handler) PublicKey() ed25519.PublicKey { return h.pub }

// Wrap returns a handler that serves the e2ee endpoints and the meeting page (web.MeetingPath) and passes
// every other request to next. Mount it where the rooms API is mounted ("/.meetguard/api/v1/rooms/"): the room
// sits in the middle of the e2ee paths, so no longer fixed prefix can route them.
func (h *Handler) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rt, err := h.routes.resolve(r.Context(), r.Method, r.URL.EscapedPath())
		switch rt.dest {
		case destEndpoint:
			h.serveEndpoint(w, r, rt, err)
		case destMeeting:
			h.serveMeeting(w, r, rt, err)
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// ErrRoleChanged: a key registered before admission named another role than the caller was admitted with. A
// credential's role cannot change, so the key is dropped and its holder must register again.
var ErrRoleChanged = errors.New("e2eeapi: admitted with another role than the key was registered for")

// Errors of this layer, mapped to statuses by fail.
var (
	errNotAdmitted   = errors.New("e2eeapi: not a member of the room")
	errUnavailable   = errors.New("e2eeapi: unavailable")
	errBadRequest    = errors.New("e2eeapi: bad request")
	errUnauthorized  = errors.New("e2eeapi: no verified identity")
	errMediaType     = errors.New("e2eeapi: content type must be " + e2eehttp.ContentType)
	errMediaTypeJSON = errors.New("e2eeapi: content type must be application/json")
	errCrossSite     = errors.New("e2eeapi: cross-site request refused")
	errNotRegistered = errors.New("e2eeapi: no registered key for this admission")
)

// ServeHTTP serves /.meetguard/api/v1/rooms/{room}/e2ee/{endpoint}. The gateway has authenticated the caller
// (identity.From); every endpoint then checks the caller's room admission before the room's Authority sees
// anything.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rt, err := h.routes.resolve(r.Context(), r.Method, r.URL.EscapedPath())
	if rt.dest != destEndpoint {
		rt, err = route{dest: destEndpoint}, errNoRoute
	}
	h.serveEndpoint(w, r, rt, err)
}

// serveEndpoint answers a request the router sent to an e2ee endpoint, or its refusal (errNoRoute, or a
// *methodError).
func (h *Handler) serveEndpoint(w http.ResponseWriter, r *http.Request, rt route, err error) {
	w.Header().Set("Cache-Control", "no-store")
	var me *methodError
	switch {
	case errors.As(err, &me):
		w.Header().Set("Allow", me.allow)
		respond.JSONError(w, http.StatusMethodNotAllowed, "method_not_allowed", "Use "+me.use+".")
		return
	case err != nil:
		respond.JSONError(w, http.StatusNotFound, "not_found", "Not found.")
		return
	}
	room, name := rt.room, rt.name
	q, err := parseQuery(name, r.URL.RawQuery)
	if err != nil {
		h.fail(w, r, room, name, fmt.Errorf("%w: %w", errBadRequest, err))
		return
	}
	if r.Method == http.MethodPost && name == endpointAlarms {
		// JSON, not a form type: browsers preflight it cross-site.
		if !isJSON(r) {
			h.fail(w, r, room, name, errMediaTypeJSON)
			return
		}
	} else if r.Method == http.MethodPost {
		// A non-form media type also makes browsers preflight cross-site posts.
		if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != e2eehttp.ContentType {
			h.fail(w, r, room, name, errMediaType)
			return
		}
	}
	id, ok := identity.From(r.Context())
	if !ok || id.Issuer == "" || id.Subject == "" {
		h.fail(w, r, room, name, errUnauthorized)
		return
	}
	if id.Via != identity.ViaBearer && h.crossSite(r) {
		h.fail(w, r, room, name, errCrossSite)
		return
	}
	switch name {
	case e2eehttp.EndpointAuthority:
		err = h.serveAuthority(w, r, room)
	case e2eehttp.EndpointNonce:
		err = h.serveNonce(w, r, room, id)
	case e2eehttp.EndpointRegister:
		err = h.serveRegister(w, r, room, id)
	case e2eehttp.EndpointRoster:
		err = h.serveRoster(w, r, room, q)
	case e2eehttp.EndpointKeyPackages:
		err = h.serveKeyPackages(w, r, room, id, q)
	case e2eehttp.EndpointCommits:
		err = h.serveCommits(w, r, room, id, q)
	case e2eehttp.EndpointKeys:
		err = h.serveKeys(w, r, room, q)
	case e2eehttp.EndpointWait:
		err = h.serveWait(w, r, room, q)
	case endpointAlarms:
		err = h.serveAlarm(w, r, room, id)
	}
	if err != nil {
		h.fail(w, r, room, name, err)
	}
}

// crossSite reports whether a cookie-authenticated request shows signs of coming from another site. The
// binary media type already makes browsers preflight cross-site posts (which the gateway never grants); this
// also keeps other sites from driving the GETs with a member's cookie.
func (h *Handler) crossSite(r *http.Request) bool { return web.CrossSite(r, h.opts.PublicOrigin) }

// fail answers an error: protocol refusals with the status of docs/e2ee.md section 11 and the error text
// (which describes the caller's own message, never a secret), everything else with a fixed message.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, room, name string, err error) {
	status, code, msg := http.StatusInternalServerError, "internal", "The key exchange failed."
	var mbe *http.MaxBytesError
	switch {
	case errors.Is(err, errUnauthorized):
		status, code, msg = http.StatusUnauthorized, "unauthenticated", "Sign in to continue."
	case errors.Is(err, errCrossSite):
		status, code, msg = http.StatusForbidden, "cross_site", "Cross-site requests are refused."
	case errors.Is(err, errNotAdmitted):
		status, code, msg = http.StatusForbidden, "not_member", "You are not a member of this room."
	case errors.Is(err, errNotRegistered):
		status, code, msg = http.StatusForbidden, "not_member", "No device key is registered for this admission."
	case errors.Is(err, ErrRoleChanged):
		status, code, msg = http.StatusConflict, "role_changed", "Your role changed since your key was registered: register again."
	case errors.Is(err, errUnavailable), errors.Is(err, rooms.ErrStoreUnavailable):
		status, code, msg = http.StatusServiceUnavailable, "unavailable", "The key exchange is unavailable right now. Please try again shortly."
	case errors.As(err, &mbe):
		status, code, msg = http.StatusRequestEntityTooLarge, "body_too_large", fmt.Sprintf("The request body is larger than %d bytes.", mbe.Limit)
	case errors.Is(err, errMediaType), errors.Is(err, errMediaTypeJSON):
		status, code, msg = http.StatusUnsupportedMediaType, "unsupported_media_type", err.Error()
	case errors.Is(err, errRateLimited):
		w.Header().Set("Retry-After", "60")
		status, code, msg = http.StatusTooManyRequests, "rate_limited", "Too many alarm reports."
	case errors.Is(err, errBadRequest):
		status, code, msg = http.StatusBadRequest, "bad_request", err.Error()
	default:
		status, code = e2eehttp.ErrorStatus(err)
		if status < 500 {
			msg = err.Error()
		} else if status == http.StatusServiceUnavailable {
			msg = "The key exchange is unavailable right now. Please try again shortly."
		}
	}
	if r.Context().Err() != nil {
		return // the caller is gone
	}
	lvl := zap.DebugLevel
	if status >= 500 {
		lvl = zap.ErrorLevel
	}
	h.log.Log(lvl, "e2ee request refused", zap.String("room", room), zap.String("endpoint", name),
		zap.Int("status", status), zap.String("code", code), zap.Error(err))
	respond.JSONError(w, status, code, msg)
}

// readBody reads a request body of at most limit bytes.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: read body: %w", errBadRequest, err)
	}
	return b, nil
}

func writeBinary(w http.ResponseWriter, b []byte) {
	w.Header().Set("Content-Type", e2eehttp.ContentType)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

// member returns the caller's admission, or errNotAdmitted (errUnavailable when the rooms store is down), and
// renews the caller's ticket on w (TicketRenewer) when w is not nil.
func (h *Handler) member(w http.ResponseWriter, r *http.Request, room string) (participant, error) {
	p, err := h.opts.Membership.Member(r, room)
	if err != nil {
		if errors.Is(err, rooms.ErrStoreUnavailable) {
			return participant{}, fmt.Errorf("%w: %w", errUnavailable, err)
		}
		return participant{}, fmt.Errorf("%w: %w", errNotAdmitted, err)
	}
	if p.ParticipantID == "" {
		return participant{}, fmt.Errorf("%w: admission without a participant id", errNotAdmitted)
	}
	// The ticket outlives no meeting by itself; w is nil for a second look within one request.
	if rn, ok := h.opts.Membership.(TicketRenewer); ok && w != nil {
		rn.RenewTicket(w, r, room, p)
	}
	return participant{id: p.ParticipantID, role: p.Role, session: sessionKey(p.Identity)}, nil
}

// mayRegister checks that the caller may register a key (or fetch what registration needs).
func (h *Handler) mayRegister(r *http.Request, room string) error {
	if err := h.opts.Membership.CanRegisterKey(r, room); err != nil {
		if errors.Is(err, rooms.ErrStoreUnavailable) {
			return fmt.Errorf("%w: %w", errUnavailable, err)
		}
		return fmt.Errorf("%w: %w", errNotAdmitted, err)
	}
	return nil
}

func (h *Handler) serveAuthority(w http.ResponseWriter, r *http.Request, room string) error {
	if err := h.mayRegister(r, room); err != nil {
		return err
	}
	writeBinary(w, h.pub)
	return nil
}

func (h *Handler) serveNonce(w http.ResponseWriter, r *http.Request, room string, id identity.Identity) error {
	ctx := r.Context()
	if b, err := readBody(w, r, 0); err != nil || len(b) != 0 {
		return fmt.Errorf("%w: nonce takes no body", errBadRequest)
	}
	if err := h.mayRegister(r, room); err != nil {
		h.auditRefusal(ctx, room, id, "nonce", err)
		return err
	}
	a, err := h.authority(ctx, room)
	if err != nil {
		return err
	}
	ch, err := a.IssueNonce(ctx, e2eeIdentity(id))
	if err != nil {
		return err
	}
	b, err := ch.Marshal()
	if err != nil {
		return err
	}
	writeBinary(w, b)
	return nil
}

func (h *Handler) serveRegister(w http.ResponseWriter, r *http.Request, room string, id identity.Identity) error {
	ctx := r.Context()
	body, err := readBody(w, r, maxRegistrationBytes)
	if err != nil {
		return err
	}
	// Outsiders are turned away before anything is parsed or any state is made for the room.
	if err := h.mayRegister(r, room); err != nil {
		h.auditRefusal(ctx, room, id, "register", err)
		return err
	}
	reg, err := e2ee.ParseRegistration(body)
	if err != nil {
		h.auditRefusal(ctx, room, id, "register", err)
		return err
	}
	cred, err := h.register(ctx, w, r, room, id, reg)
	if err != nil {
		return err
	}
	writeBinary(w, cred.Bytes())
	return nil
}

func (h *Handler) serveRoster(w http.ResponseWriter, r *http.Request, room string, q query) error {
	ctx := r.Context()
	a, me, err := h.caller(ctx, w, r, room)
	if err != nil {
		return err
	}
	if q.has["after"] {
		h.wait(ctx, a, q.after, h.waitFor(q))
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	b, err := a.Roster(ctx, me, q.since)
	if err != nil {
		return err
	}
	writeBinary(w, b)
	return nil
}

// maxKeyPackageBytes bounds a posted KeyPackage: about 1.4 kB with X-Wing.
const maxKeyPackageBytes = 4 << 10

func (h *Handler) serveKeyPackages(w http.ResponseWriter, r *http.Request, room string, id identity.Identity, q query) error {
	ctx := r.Context()
	a, me, err := h.caller(ctx, w, r, room)
	if err != nil {
		if r.Method == http.MethodPost && (errors.Is(err, errNotAdmitted) || errors.Is(err, errNotRegistered)) {
			h.auditRefusal(ctx, room, id, "post_key_package", err)
		}
		return err
	}
	if r.Method == http.MethodGet {
		if !q.has["epoch"] {
			return fmt.Errorf("%w: query: parameter \"epoch\" is required on GET keypackages", errBadRequest)
		}
		b, err := a.KeyPackages(ctx, me, q.epoch)
		if err != nil {
			return err
		}
		writeBinary(w, b)
		return nil
	}
	if q.has["epoch"] {
		return fmt.Errorf("%w: query: parameter \"epoch\" not allowed on POST keypackages", errBadRequest)
	}
	body, err := readBody(w, r, maxKeyPackageBytes)
	if err != nil {
		return err
	}
	if err := a.PostKeyPackage(ctx, me, body); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *Handler) serveCommits(w http.ResponseWriter, r *http.Request, room string, id identity.Identity, q query) error {
	ctx := r.Context()
	a, me, err := h.caller(ctx, w, r, room)
	if err != nil {
		if errors.Is(err, errNotAdmitted) || errors.Is(err, errNotRegistered) {
			h.auditRefusal(ctx, room, id, "post_commit", err)
		}
		return err
	}
	body, err := readBody(w, r, h.opts.MaxBundleBytes)
	if err != nil {
		return err
	}
	if err := a.PostCommit(ctx, me, q.epoch, body); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *Handler) serveKeys(w http.ResponseWriter, r *http.Request, room string, q query) error {
	ctx := r.Context()
	a, me, err := h.caller(ctx, w, r, room)
	if err != nil {
		return err
	}
	b, err := a.SealedFor(ctx, me, q.epoch)
	if err != nil {
		return err
	}
	writeBinary(w, b)
	return nil
}

func (h *Handler) serveWait(w http.ResponseWriter, r *http.Request, room string, q query) error {
	ctx := r.Context()
	a, _, err := h.caller(ctx, w, r, room)
	if err != nil {
		return err
	}
	v, changed := h.wait(ctx, a, q.after, h.waitFor(q))
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if !changed {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	writeBinary(w, binary.BigEndian.AppendUint64(nil, v))
	return nil
}

func (h *Handler) waitFor(q query) time.Duration {
	if !q.has["wait"] {
		return h.opts.MaxWait
	}
	return min(q.wait, h.opts.MaxWait)
}

// wait blocks until a's change counter exceeds after, d passes, the request ends or the Handler stops.
func (h *Handler) wait(ctx context.Context, a *e2ee.Authority, after uint64, d time.Duration) (uint64, bool) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	stop := context.AfterFunc(h.ctx, cancel)
	defer stop()
	v, err := a.Wait(ctx, after)
	return v, err == nil
}

// sessionKey names one login of one person: the key a registration made before admission waits under.
func sessionKey(id identity.Identity) string {
	return id.Key() + "\n" + id.SessionID
}

func e2eeIdentity(id identity.Identity) e2ee.Identity {
	return e2ee.Identity{Issuer: id.Issuer, Subject: id.Subject}
}

// displayName is what other members see in their roster view.
func displayName(id identity.Identity) string {
	return strings.TrimSpace(rooms.DisplayName(id.DisplayName()))
}
