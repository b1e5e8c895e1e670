package roomsapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/meetguard/meetguard/gateway/admission"
	"github.com/meetguard/meetguard/gateway/audit"
	"github.com/meetguard/meetguard/gateway/identity"
	"github.com/meetguard/meetguard/gateway/liveconn"
	"github.com/meetguard/meetguard/gateway/metrics"
	"github.com/meetguard/meetguard/gateway/request"
	"github.com/meetguard/meetguard/gateway/respond"
	"github.com/meetguard/meetguard/gateway/rooms"
	"github.com/meetguard/meetguard/policy"
)

// Names the gateway and its clients agree on. Every cookie starts with
// "meetguard" and every header with "Meetguard-", so the gateway strips them
// before anything reaches an upstream.
const (
	// Prefix is where the API is mounted.
	Prefix = "/.meetguard/api/v1/rooms/"
	// TicketHeader carries an app's ticket on room-path requests and API
	// calls.
	TicketHeader = "Meetguard-Ticket"
	// CSRFHeader marks a browser's state-changing API call as coming from
	// script on the gateway's own origin (browsers do not let other sites
	// set it without a CORS preflight, which the gateway never grants).
	CSRFHeader = "Meetguard-CSRF"
	// TicketCookie holds a browser's ticket, scoped to the room path.
	TicketCookie = "meetguard-ticket"
	// APITicketCookiePrefix + room holds the same ticket for API calls
	// (scoped to /.meetguard/api/v1/).
	APITicketCookiePrefix = "meetguard-ticket-"
	// WaitCookie remembers a browser's place in a room's waiting list, so a
	// reload keeps it instead of knocking again.
	WaitCookie = "meetguard-wait"
	// DeniedMessage is all a refused caller is told, whatever the reason.
	DeniedMessage = respond.DeniedMessage
	// RemovedMessage heads the page a tab gets when it reloads after its
	// admission ended.
	RemovedMessage = "You were removed from this meeting"
	// EventRateLimited records a join refused by a rate limit or passcode
	// backoff before the policy was asked (so it is not an
	// admission.decision, which policy replay re-evaluates).
	EventRateLimited = audit.EventAdmissionRateLimited
)

const apiCookiePath = "/.meetguard/api/v1/"

// ErrNotMember is wrapped by Member and CanRegisterKey when the caller holds
// no live admission to the room (waiting-room clients included).
var ErrNotMember = errors.New("roomsapi: not a member of the room")

// errAudit marks a refusal because the audit log could not record.
var errAudit = errors.New("roomsapi: audit log unavailable")

// Decider is the admission policy: who may enter a room, and who may
// create one.
type Decider interface {
	Decide(ctx context.Context, in policy.Input) policy.Decision
	DecideCreate(ctx context.Context, in policy.Input) policy.Decision
}

// Auditor writes the tamper-evident audit log; an error means the event
// must not happen.
type Auditor interface {
	Record(ctx context.Context, event string, fields ...zap.Field) error
}

// Devices tells the policy about the caller's registered end-to-end key.
type Devices interface {
	DeviceFacts(ctx context.Context, room string, id identity.Identity) (policy.Device, error)
}

// Options configure an API.
type Options struct {
	// Store, Tickets, Passcodes, Policy and Audit are required.
	Store     rooms.Store
	Tickets   *rooms.Tickets
	Passcodes *rooms.Passcodes
	Policy    Decider
	Audit     Auditor
	// Live is this node's registry of proxied connections; kicks close
	// them. Required.
	Live *liveconn.Registry
	// PublicURL is the gateway's public URL: it decides Secure cookies and
	// the origin that browser API calls must come from. Required.
	PublicURL *url.URL
	// RoomPaths maps upstream names to their room path pattern
	// (/room/{room}); ticket cookies are scoped to those paths.
	RoomPaths map[string]string
	// Rooms is the configuration the store was built with (leases, caps).
	Rooms rooms.Config
	// LobbyByDefault enables the waiting room of rooms created without
	// saying.
	LobbyByDefault bool
	// StoreKind names the store in store.failure records ("memory",
	// "redis").
	StoreKind string
	// Adapters are the upstreams' adapters by name; those implementing
	// admission.ParticipantRemover are told about kicks and bans.
	Adapters map[string]admission.Adapter
	// Devices fills the policy input's device object; nil means no
	// registered key.
	Devices Devices
	// AuditReader reads the audit log back for the host console's Recent
	// events; nil shows none.
	AuditReader AuditReader
	// E2EE reports rooms' end-to-end meetings to the host console; nil
	// shows none.
	E2EE   E2EEStatus
	Logger *zap.Logger
	// Metrics counts what only the rooms API sees (wrong passcodes); nil
	// counts nothing.
	Metrics *metrics.Set
	// WaitTimeout is the longest a long-poll on a waiting entry lasts.
	// Default 25s.
	WaitTimeout time.Duration
	// SweepInterval is how often the event loop looks at this node's live
	// connections (leases, leaves). Default 1s.
	SweepInterval time.Duration
	// MaxConcurrentDecisions bounds the joins (from counting the attempt
	// to the policy's answer) and other policy evaluations running at
	// once. The policy's deadline is wall time: in a join storm, more work
	// than there are CPUs only slows every evaluation past it (and fails
	// closed), so excess joins queue first. Default 2×GOMAXPROCS.
	MaxConcurrentDecisions int
	// LeaveGrace is how long a participant may have no live connection on
	// this node before it is taken to have left (a page reload reconnects
	// within it). Default 5s.
	LeaveGrace time.Duration
}

// API serves the rooms API, admits room-path requests for the gateway, and
// runs the node's event loop (Run).
type API struct {
	o         Options
	cfg       rooms.Config
	origin    string
	secure    bool
	dummyHash string
	routes    *router
	pages     *pages
	log       *zap.Logger
	failures  failureThrottle
	conns     *tracker
	consoles  *consoles
	decisions chan struct{}
}

// New checks the options and prepares the API.
func New(ctx context.Context, o Options) (*API, error) {
	var missing []string
	for name, nilp := range map[string]bool{
		"Store": o.Store == nil, "Tickets": o.Tickets == nil, "Passcodes": o.Passcodes == nil,
		"Policy": o.Policy == nil, "Audit": o.Audit == nil, "Live": o.Live == nil, "PublicURL": o.PublicURL == nil,
	} {
		if nilp {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return nil, fmt.Errorf("roomsapi: missing options: %s", strings.Join(missing, ", "))
	}
	if o.PublicURL.Scheme != "http" && o.PublicURL.Scheme != "https" || o.PublicURL.Host == "" {
		return nil, fmt.Errorf("roomsapi: PublicURL %q must be an absolute http(s) URL", o.PublicURL)
	}
	for up, p := range o.RoomPaths {
		if !strings.HasPrefix(p, "/") || strings.Count(p, "{room}") != 1 || !strings.HasSuffix(p, "{room}") {
			return nil, fmt.Errorf("roomsapi: RoomPaths[%s] = %q: want a path ending in {room}", up, p)
		}
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.WaitTimeout <= 0 {
		o.WaitTimeout = 25 * time.Second
	}
	if o.SweepInterval <= 0 {
		o.SweepInterval = time.Second
	}
	if o.LeaveGrace <= 0 {
		o.LeaveGrace = 5 * time.Second
	}
	if o.MaxConcurrentDecisions <= 0 {
		o.MaxConcurrentDecisions = 2 * runtime.GOMAXPROCS(0)
	}
	if o.StoreKind == "" {
		o.StoreKind = "rooms"
	}
	cfg := o.Rooms.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("roomsapi: %w", err)
	}
	// A random passcode nobody knows: rooms without a passcode are checked
	// against it, so a guess costs the same whether the room exists or not.
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	dummy, err := o.Passcodes.Hash(ctx, hex.EncodeToString(b))
	if err != nil {
		return nil, fmt.Errorf("roomsapi: passcode hashing: %w", err)
	}
	pg, err := newPages()
	if err != nil {
		return nil, err
	}
	a := &API{
		o: o, cfg: cfg, origin: o.PublicURL.Scheme + "://" + o.PublicURL.Host, secure: o.PublicURL.Scheme == "https",
		dummyHash: dummy, pages: pg, log: o.Logger, routes: newRouter(),
		failures: failureThrottle{last: map[string]time.Time{}},
	}
	a.conns = newTracker()
	a.consoles = newConsoles()
	a.decisions = make(chan struct{}, o.MaxConcurrentDecisions)
	return a, nil
}

// slot waits for one of the MaxConcurrentDecisions slots; release it when
// the policy has answered.
func (a *API) slot(ctx context.Context) (release func(), ok bool) {
	select {
	case a.decisions <- struct{}{}:
		return func() { <-a.decisions }, true
	case <-ctx.Done():
		return nil, false
	}
}

// failClosed is the decision for a caller that gave up before the policy
// could be asked.
var failClosed = policy.Decision{Reasons: []string{policy.ReasonPolicyError}, UserMessage: DeniedMessage}

// decide asks the admission policy once a slot is free.
func (a *API) decide(ctx context.Context, in policy.Input) policy.Decision {
	release, ok := a.slot(ctx)
	if !ok {
		return failClosed
	}
	defer release()
	return a.o.Policy.Decide(ctx, in)
}

// decideCreate asks the room-creation policy once a slot is free.
func (a *API) decideCreate(ctx context.Context, in policy.Input) policy.Decision {
	release, ok := a.slot(ctx)
	if !ok {
		return failClosed
	}
	defer release()
	return a.o.Policy.DecideCreate(ctx, in)
}

// Ready reports whether the room state can be read, for /readyz.
func (a *API) Ready() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := a.o.Store.Facts(ctx, "meetguard-readyz", ""); err != nil {
		return fmt.Errorf("%s store: %w", a.o.StoreKind, err)
	}
	return nil
}

// --- identities ---------------------------------------------------------------

func subjectKey(id identity.Identity) rooms.SubjectKey { return rooms.SubjectKey(id.Key()) }

// binding is what a ticket is bound to: the browser session, or for apps
// the token's subject, so that refreshing an access token keeps the ticket
// while a ticket copied to anyone else's session or token is useless.
func binding(id identity.Identity) string {
	if id.Via == identity.ViaSession && id.SessionID != "" {
		return "session:" + id.SessionID
	}
	return "subject:" + id.Key()
}

// splitKey undoes identity.Key: issuers are URLs, which cannot hold a bare
// '|', so the first one separates issuer from subject.
func splitKey(k rooms.SubjectKey) (issuer, subject string) {
	iss, sub, ok := strings.Cut(string(k), "|")
	if !ok {
		return "", string(k)
	}
	return iss, sub
}

func policyIdentity(id identity.Identity) policy.Identity {
	pi := policy.Identity{
		Iss: id.Issuer, Sub: id.Subject, Email: identity.ASCIIEmail(id.Email), EmailVerified: id.EmailVerified,
		Name: id.Name, Groups: id.Groups, ACR: id.ACR, AMR: id.AMR, Via: string(id.Via),
	}
	if !id.AuthTime.IsZero() {
		pi.AuthTime = id.AuthTime.Unix()
	}
	return pi
}

func policyRoom(room string, f rooms.Facts, id identity.Identity, passcodeOK bool) policy.Room {
	owner := ""
	if iss, sub := splitKey(f.Owner); iss != "" && iss == id.Issuer {
		owner = sub
	}
	tags := f.Tags
	if tags == nil {
		tags = []string{}
	}
	return policy.Room{
		ID: room, Exists: f.Exists, Owner: owner, Capacity: f.Capacity, Occupancy: f.Occupancy,
		Locked: f.Locked, LobbyEnabled: f.LobbyEnabled, HostPresent: f.HostPresent,
		PasscodeRequired: f.PasscodeRequired, PasscodeOK: passcodeOK && f.PasscodeRequired,
		E2EERequired: f.E2EERequired, Tags: tags, Banned: f.Banned,
	}
}

func policyHistory(h rooms.History) policy.History {
	return policy.History{
		WindowSeconds: h.WindowSeconds,
		Identity:      policy.Counters{JoinAttempts: h.Identity.JoinAttempts, JoinFailures: h.Identity.JoinFailures, PasscodeFailures: h.Identity.PasscodeFailures},
		IP: policy.AddressCounters{
			Counters: policy.Counters{JoinAttempts: h.IP.JoinAttempts, JoinFailures: h.IP.JoinFailures, PasscodeFailures: h.IP.PasscodeFailures},
			Trusted:  h.IP.Trusted, Limited: h.IP.Limited,
		},
		Room: policy.RoomCounters{PasscodeFailures: h.Room.PasscodeFailures, PasscodeAttack: h.Room.PasscodeAttack},
	}
}

func policyRequest(r *http.Request) policy.Request {
	return policy.Request{
		Time: time.Now().UTC(), IP: clientAddr(r).String(), UserAgent: r.UserAgent(),
		Method: r.Method, Path: r.URL.EscapedPath(), Origin: r.Header.Get("Origin"),
	}
}

// clientAddr is the client IP the gateway established (trusted proxies
// applied), or the peer address for requests that did not pass through it.
func clientAddr(r *http.Request) netip.Addr {
	if ip, err := netip.ParseAddr(request.From(r.Context()).ClientIP); err == nil {
		return ip.Unmap()
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return ip.Unmap()
	}
	return netip.IPv4Unspecified()
}

func (a *API) device(ctx context.Context, room string, id identity.Identity) (policy.Device, error) {
	if a.o.Devices == nil {
		return policy.Device{}, nil
	}
	d, err := a.o.Devices.DeviceFacts(ctx, room, id)
	if err != nil {
		return policy.Device{}, fmt.Errorf("device facts: %w", err)
	}
	return d, nil
}

// --- audit and failures ---------------------------------------------------------

func (a *API) record(ctx context.Context, event string, fields ...zap.Field) error {
	if err := a.o.Audit.Record(ctx, event, fields...); err != nil {
		a.log.Error("audit record failed; refusing", zap.String("event", event), zap.Error(err))
		return fmt.Errorf("%w: %w", errAudit, err)
	}
	return nil
}

// failureThrottle keeps a Redis outage from writing one store.failure
// record per request: one per operation per second is enough to see it.
type failureThrottle struct {
	mu         sync.Mutex
	last       map[string]time.Time
	suppressed map[string]int
}

// storeFailure records that the store failed and returns err for the
// caller to turn into 503.
func (a *API) storeFailure(ctx context.Context, op string, err error) error {
	if !errors.Is(err, rooms.ErrStoreUnavailable) {
		err = fmt.Errorf("%w: %w", rooms.ErrStoreUnavailable, err)
	}
	now := time.Now()
	t := &a.failures
	t.mu.Lock()
	if t.suppressed == nil {
		t.suppressed = map[string]int{}
	}
	due := now.Sub(t.last[op]) >= time.Second
	suppressed := t.suppressed[op]
	if due {
		t.last[op] = now
		t.suppressed[op] = 0
	} else {
		t.suppressed[op]++
	}
	t.mu.Unlock()
	a.log.Error("room store failed; failing closed", zap.String("op", op), zap.Error(err))
	if due {
		if rerr := a.o.Audit.Record(context.WithoutCancel(ctx), audit.EventStoreFailure,
			zap.String(audit.FieldStore, a.o.StoreKind), zap.String(audit.FieldOp, "rooms."+op), zap.String(audit.FieldError, err.Error()),
			zap.Int(audit.FieldSuppressed, suppressed)); rerr != nil {
			a.log.Error("audit store failure", zap.Error(rerr))
		}
	}
	return err
}
