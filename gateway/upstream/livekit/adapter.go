package livekit

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"go.uber.org/zap"

	"github.com/meetguard/meetguard/gateway/admission"
	"github.com/meetguard/meetguard/gateway/identity"
	"github.com/meetguard/meetguard/gateway/upstream/internal/pseudonym"
	"github.com/meetguard/meetguard/gateway/upstream/internal/roompath"
)

// Errors Forward refuses a request with; the gateway answers 503 and never
// forwards it.
var (
	// ErrOutsideRoom: the request is not inside an admitted room.
	ErrOutsideRoom = errors.New("livekit: request is outside an admitted room")
	// ErrNotSignalling: the path inside the room is not a signalling
	// endpoint.
	ErrNotSignalling = errors.New("livekit: path is not a LiveKit signalling endpoint")
	// ErrUnknownRole: the policy's role has no LiveKit grant mapping.
	ErrUnknownRole = errors.New("livekit: unknown role")
)

// MinSecretBytes is the shortest API secret accepted; LiveKit itself asks
// for 32 characters.
const MinSecretBytes = 32

// signalling are the endpoints forwarded inside a room; every other path
// is refused so that a client cannot reach the room service or debug
// endpoints through the gateway.
var signalling = map[string]bool{
	"/rtc":             true,
	"/rtc/v1":          true,
	"/rtc/validate":    true,
	"/rtc/v1/validate": true,
}

// Options configures an Adapter.
type Options struct {
	// Upstream is the upstream's name, for logs and events.
	Upstream string
	// URL is the LiveKit server the gateway proxies to (upstreams[].url).
	URL string
	// RoomPath is the upstream's rooms.path pattern.
	RoomPath string
	// APIKey and APISecret are the LiveKit key pair.
	APIKey    string
	APISecret string
	// APIURL is where the room service is called. Default URL.
	APIURL string
	// TokenTTL is the life of a minted access token. Default 5m.
	TokenTTL time.Duration
	// HTTPClient calls the room service. Default: 10s timeout. Redirects
	// are never followed, so the admin token goes nowhere else.
	HTTPClient *http.Client
	// OnEvent receives verified, de-duplicated participant_joined and
	// participant_left webhooks. An error answers 500 so that LiveKit
	// retries. Nil drops them after verification.
	OnEvent func(ctx context.Context, e Event) error
	// E2EERequired reports whether a room requires end-to-end encryption;
	// a token minted for such a room carries the participant attribute
	// E2EEAttribute = "required", which meetguard's meeting page checks
	// before it publishes, so a client cannot take the room for one that
	// may be joined in the clear. An error refuses the request (fail
	// closed). Nil: no room requires it.
	E2EERequired func(ctx context.Context, room string) (bool, error)
	Logger       *zap.Logger
	Clock        func() time.Time
}

// Adapter is a LiveKit upstream.
type Adapter struct {
	opts     Options
	base     string // the upstream URL's path, without trailing slash
	apiURL   string
	rooms    roompath.Pattern
	signer   jose.Signer
	people   *pseudonym.Deriver
	devices  *pseudonym.Deriver
	webhooks *seenEvents
}

var (
	_ admission.Adapter            = (*Adapter)(nil)
	_ admission.ParticipantRemover = (*Adapter)(nil)
)

// New returns an Adapter. It does not contact the server: a LiveKit that
// is down must not stop the gateway from starting.
func New(_ context.Context, opts Options) (*Adapter, error) {
	if opts.APIKey == "" {
		return nil, errors.New("livekit: api_key is required")
	}
	if len(opts.APISecret) < MinSecretBytes {
		return nil, fmt.Errorf("livekit: api_secret must be at least %d bytes", MinSecretBytes)
	}
	target, err := url.Parse(opts.URL)
	if err != nil || target.Host == "" {
		return nil, fmt.Errorf("livekit: bad upstream url %q", opts.URL)
	}
	if opts.APIURL == "" {
		opts.APIURL = opts.URL
	}
	if u, err := url.Parse(opts.APIURL); err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("livekit: bad api_url %q", opts.APIURL)
	}
	rooms, err := roompath.Parse(opts.RoomPath)
	if err != nil {
		return nil, fmt.Errorf("livekit: %w", err)
	}
	if opts.TokenTTL == 0 {
		opts.TokenTTL = 5 * time.Minute
	}
	if opts.TokenTTL < 0 {
		return nil, errors.New("livekit: token_ttl must be positive")
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	// A copy, so the caller's client keeps its own redirect policy.
	client := *opts.HTTPClient
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	opts.HTTPClient = &client
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: []byte(opts.APISecret)}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return nil, fmt.Errorf("livekit: signer: %w", err)
	}
	people, err := pseudonym.New([]byte(opts.APISecret), "livekit person")
	if err != nil {
		return nil, err
	}
	devices, err := pseudonym.New([]byte(opts.APISecret), "livekit device")
	if err != nil {
		return nil, err
	}
	return &Adapter{
		opts:     opts,
		base:     strings.TrimSuffix(target.EscapedPath(), "/"),
		apiURL:   strings.TrimSuffix(opts.APIURL, "/"),
		rooms:    rooms,
		signer:   sig,
		people:   people,
		devices:  devices,
		webhooks: newSeenEvents(10*time.Minute, 10_000),
	}, nil
}

// E2EEAttribute is the participant attribute a minted token carries in a
// room that requires end-to-end encryption (value "required").
const E2EEAttribute = "meetguard.e2ee"

// Forward lets only an admitted room's signalling through, with a token
// minted for that room and role in place of whatever the client sent.
func (a *Adapter) Forward(ctx context.Context, pr *httputil.ProxyRequest, p *admission.Participant) error {
	if p == nil {
		return ErrOutsideRoom
	}
	rest, ok := a.rooms.Rest(pr.In.URL.Path, p.Room)
	if !ok {
		return ErrOutsideRoom
	}
	if !signalling[rest] {
		return fmt.Errorf("%w: %q", ErrNotSignalling, rest)
	}
	q, err := url.ParseQuery(pr.In.URL.RawQuery)
	if err != nil {
		// Forwarding a query the gateway cannot read would let the server
		// read something else in it.
		return fmt.Errorf("livekit: malformed query: %w", err)
	}
	e2ee := false
	if a.opts.E2EERequired != nil {
		if e2ee, err = a.opts.E2EERequired(ctx, p.Room); err != nil {
			return fmt.Errorf("livekit: room %s: e2ee setting: %w", p.Room, err)
		}
	}
	tok, err := a.token(*p, e2ee)
	if err != nil {
		return err
	}
	q.Del("access_token")
	out := pr.Out
	out.URL.Path, out.URL.RawPath = a.base+rest, ""
	out.URL.RawQuery = q.Encode()
	out.Header.Set("Authorization", "Bearer "+tok)
	return nil
}

// Identity is the LiveKit identity of one admission.
func (a *Adapter) Identity(p admission.Participant) string {
	device := p.ParticipantID
	if device == "" {
		device = "session:" + p.Identity.SessionID
	}
	return a.personPrefix(p.Identity) + a.devices.Of(6, device)
}

// Person is the pseudonym of a person that every identity minted for them
// starts with (after "mg."); Event.Person carries it, so the gateway can
// match webhook events to the people it admitted.
func (a *Adapter) Person(id identity.Identity) string {
	return a.people.Of(12, id.Issuer, id.Subject)
}

func (a *Adapter) personPrefix(id identity.Identity) string {
	return "mg." + a.Person(id) + "."
}

// personOf reads the person pseudonym out of an identity this adapter
// minted, or "" for any other identity.
func personOf(ident string) string {
	rest, ok := strings.CutPrefix(ident, "mg.")
	if !ok {
		return ""
	}
	person, device, ok := strings.Cut(rest, ".")
	if !ok || len(person) != 16 || len(device) != 8 {
		return ""
	}
	return person
}
