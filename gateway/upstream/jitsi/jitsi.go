// Package jitsi is the gateway's adapter for Jitsi Meet behind Prosody's
// token authentication (mod_auth_token) or JaaS: after the gateway admits
// a person to a room, it mints the room JWT server-side and appends it to
// the XMPP connection (/xmpp-websocket or BOSH /http-bind), never to a
// page URL, so it stays out of browser history and page logs.
//
// It must never mint a token for any room but the admitted one (never
// "*"), never mint without an admission, and never let a client's own
// token or room parameter through. With RS256 it publishes only the
// public key, in the layout Prosody's asap_key_server fetches.
//
// # Paths
//
// With rooms.path /meet/{room}, the browser opens /meet/<room>, which is
// forwarded to the Jitsi page /<room>; the page's config.js must point its
// connection at the room path (see docs/upstreams.md), so that
// /meet/<room>/xmpp-websocket and /meet/<room>/http-bind carry the
// admission; they are forwarded to /xmpp-websocket and /http-bind with
// room=<room>&token=<JWT>. Those two endpoints are refused anywhere else.
// Jitsi room names are lowercase, so a room ID with capitals is refused
// rather than silently opening its lowercase twin.
package jitsi

import (
	"context"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"go.uber.org/zap"

	"github.com/meetguard/meetguard/gateway/admission"
	"github.com/meetguard/meetguard/gateway/upstream/internal/claim"
	"github.com/meetguard/meetguard/gateway/upstream/internal/pseudonym"
	"github.com/meetguard/meetguard/gateway/upstream/internal/roompath"
)

// Errors Forward refuses a request with (the gateway answers 503).
var (
	ErrOutsideRoom   = errors.New("jitsi: signalling outside an admitted room")
	ErrNotSignalling = errors.New("jitsi: path inside the room is not the page or its XMPP connection")
	ErrRoomName      = errors.New("jitsi: room id is not a lowercase Jitsi room name")
	ErrUnknownRole   = errors.New("jitsi: unknown role")
	// ErrViewer: Jitsi cannot make a receive-only participant from a
	// token, so a viewer is refused unless Options.ViewersAsMembers.
	ErrViewer = errors.New("jitsi: a viewer cannot be held to receive-only in Jitsi (set jitsi.viewers: member to admit viewers as members)")
)

// MinSecretBytes is the shortest HS256 app secret accepted.
const MinSecretBytes = 32

// nbfSkew backdates nbf: Prosody's JWT library has no leeway, and a
// gateway clock slightly ahead would make fresh tokens "not yet valid".
const nbfSkew = 30 * time.Second

// Options configures an Adapter. Set AppSecret (HS256) or PrivateKey and
// KeyID (RS256).
type Options struct {
	Upstream string
	// URL is the Jitsi web server the gateway proxies to.
	URL string
	// RoomPath is the upstream's rooms.path pattern.
	RoomPath string
	// AppID (iss), Audience (aud, default "jitsi"), Subject (sub: the
	// lowercase domain or tenant).
	AppID    string
	Audience string
	Subject  string
	// AppSecret signs HS256 tokens.
	AppSecret string
	// PrivateKey and KeyID sign RS256 tokens.
	PrivateKey *rsa.PrivateKey
	KeyID      string
	// TokenTTL is the life of a token. Default 5m.
	TokenTTL time.Duration
	// ViewersAsMembers admits the policy's viewers as ordinary members,
	// who can publish. Default false: viewers are refused.
	ViewersAsMembers bool
	Logger           *zap.Logger
	Clock            func() time.Time
}

// Adapter is a Jitsi upstream.
type Adapter struct {
	opts   Options
	base   string
	rooms  roompath.Pattern
	signer jose.Signer
	users  *pseudonym.Deriver
	pemKey []byte // RS256 public key, PEM; nil for HS256
	keyURL string // sha256(kid) hex + ".pem"

	mu    sync.Mutex
	cache map[cacheKey]cachedToken
}

type cacheKey struct{ participant, room, role, subject string }

type cachedToken struct {
	token   string
	renewAt time.Time
}

var _ admission.Adapter = (*Adapter)(nil)

// New returns an Adapter.
func New(_ context.Context, opts Options) (*Adapter, error) {
	if opts.AppID == "" {
		return nil, errors.New("jitsi: app_id is required")
	}
	if opts.Audience == "" {
		opts.Audience = "jitsi"
	}
	if opts.Subject == "" || strings.Contains(opts.Subject, "*") || opts.Subject != strings.ToLower(opts.Subject) {
		return nil, errors.New("jitsi: subject must be one lowercase domain or tenant, never *")
	}
	target, err := url.Parse(opts.URL)
	if err != nil || target.Host == "" {
		return nil, fmt.Errorf("jitsi: bad upstream url %q", opts.URL)
	}
	rooms, err := roompath.Parse(opts.RoomPath)
	if err != nil {
		return nil, fmt.Errorf("jitsi: %w", err)
	}
	if opts.TokenTTL == 0 {
		opts.TokenTTL = 5 * time.Minute
	}
	if opts.TokenTTL < 0 {
		return nil, errors.New("jitsi: token_ttl must be positive")
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	a := &Adapter{opts: opts, base: strings.TrimSuffix(target.EscapedPath(), "/"), rooms: rooms, cache: map[cacheKey]cachedToken{}}
	var pseudoKey []byte
	switch {
	case opts.AppSecret != "" && opts.PrivateKey != nil:
		return nil, errors.New("jitsi: set either an app secret or a private key, not both")
	case opts.AppSecret != "":
		if len(opts.AppSecret) < MinSecretBytes {
			return nil, fmt.Errorf("jitsi: app_secret must be at least %d bytes", MinSecretBytes)
		}
		a.signer, err = jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: []byte(opts.AppSecret)}, (&jose.SignerOptions{}).WithType("JWT"))
		pseudoKey = []byte(opts.AppSecret)
	case opts.PrivateKey != nil:
		if opts.KeyID == "" {
			return nil, errors.New("jitsi: key_id is required with a private key")
		}
		if opts.PrivateKey.N.BitLen() < 2048 {
			return nil, errors.New("jitsi: the RSA key must be at least 2048 bits")
		}
		a.signer, err = jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: opts.PrivateKey},
			(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", opts.KeyID))
		if err != nil {
			break
		}
		der, merr := x509.MarshalPKIXPublicKey(&opts.PrivateKey.PublicKey)
		if merr != nil {
			return nil, fmt.Errorf("jitsi: public key: %w", merr)
		}
		a.pemKey = pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
		sum := sha256.Sum256([]byte(opts.KeyID))
		a.keyURL = hex.EncodeToString(sum[:]) + ".pem"
		pseudoKey = x509.MarshalPKCS1PrivateKey(opts.PrivateKey)
	default:
		return nil, errors.New("jitsi: an app secret (HS256) or a private key (RS256) is required")
	}
	if err != nil {
		return nil, fmt.Errorf("jitsi: signer: %w", err)
	}
	if a.users, err = pseudonym.New(pseudoKey, "jitsi user"); err != nil {
		return nil, err
	}
	return a, nil
}

// LoadPrivateKey reads a PEM RSA private key (PKCS#8 or PKCS#1).
func LoadPrivateKey(file string) (*rsa.PrivateKey, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("jitsi: private_key_file: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("jitsi: private_key_file: %s is not PEM", file)
	}
	if k, err := x509.ParsePKCS1PrivateKey(blk.Bytes); err == nil {
		return k, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("jitsi: private_key_file: %s: %w", file, err)
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("jitsi: private_key_file: %s is not an RSA key", file)
	}
	return rk, nil
}

// xmpp are the connection endpoints that carry the token.
var xmpp = map[string]bool{"/xmpp-websocket": true, "/http-bind": true}

// Forward maps the room page and the room's XMPP connection to Jitsi's
// paths, with the room token on the connection only. Requests outside
// rooms (static assets) pass unchanged, except the XMPP endpoints, which
// are refused without an admission.
func (a *Adapter) Forward(_ context.Context, pr *httputil.ProxyRequest, p *admission.Participant) error {
	if p == nil {
		if hasXMPPSegment(pr.In.URL.Path) {
			return ErrOutsideRoom
		}
		return nil
	}
	rest, ok := a.rooms.Rest(pr.In.URL.Path, p.Room)
	if !ok {
		return ErrOutsideRoom
	}
	if !validJitsiRoom(p.Room) {
		return fmt.Errorf("%w: %q", ErrRoomName, p.Room)
	}
	out := pr.Out
	switch {
	case rest == "" || rest == "/":
		out.URL.Path, out.URL.RawPath = a.base+"/"+p.Room, ""
		return nil
	case xmpp[rest]:
	default:
		return fmt.Errorf("%w: %q", ErrNotSignalling, rest)
	}
	q, err := url.ParseQuery(pr.In.URL.RawQuery)
	if err != nil {
		return fmt.Errorf("jitsi: malformed query: %w", err)
	}
	tok, err := a.token(*p)
	if err != nil {
		return err
	}
	q.Del("token")
	q.Set("room", p.Room)
	q.Set("token", tok)
	out.URL.Path, out.URL.RawPath = a.base+rest, ""
	out.URL.RawQuery = q.Encode()
	return nil
}

// hasXMPPSegment reports whether any segment of p names an XMPP endpoint
// (tenant layouts put them below a prefix).
func hasXMPPSegment(p string) bool {
	for seg := range strings.SplitSeq(p, "/") {
		if xmpp["/"+seg] {
			return true
		}
	}
	return false
}

// validJitsiRoom: Prosody lowercases room names (nodeprep) and compares
// the token's room lowercased, so "Standup" and "standup" are one Jitsi
// room; only lowercase IDs keep gateway rooms and Jitsi rooms one to one.
// A room named like one of Jitsi's XMPP endpoints would map its page
// onto that endpoint.
func validJitsiRoom(room string) bool {
	return room != "" && room == strings.ToLower(room) && !xmpp["/"+room]
}

// Claims is the room token, as Prosody's token_verification reads it.
type Claims struct {
	jwt.Claims
	Room    string  `json:"room"`
	Context Context `json:"context"`
}

// Context is the token's context claim.
type Context struct {
	User User `json:"user"`
}

// User is context.user. Every value is a string: Prosody's plugins fail
// on numbers or null there.
type User struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Email string `json:"email,omitempty"`
	// Moderator is "true" for hosts (JaaS reads it); Affiliation is
	// "owner" or "member" (mod_token_affiliation reads it).
	Moderator   string `json:"moderator"`
	Affiliation string `json:"affiliation"`
}

// token mints (or reuses for half its life: BOSH polls often, and RS256
// costs a millisecond) the room token of one admission.
func (a *Adapter) token(p admission.Participant) (string, error) {
	moderator, affiliation := "false", "member"
	switch p.Role {
	case "host":
		moderator, affiliation = "true", "owner"
	case "participant":
	case "viewer":
		if !a.opts.ViewersAsMembers {
			return "", ErrViewer
		}
	default:
		return "", fmt.Errorf("%w %q", ErrUnknownRole, p.Role)
	}
	now := a.opts.Clock()
	k := cacheKey{p.ParticipantID + "\x00" + p.Identity.SessionID, p.Room, p.Role, p.Identity.Key()}
	a.mu.Lock()
	c, ok := a.cache[k]
	a.mu.Unlock()
	if ok && now.Before(c.renewAt) {
		return c.token, nil
	}
	claims := Claims{
		Claims: jwt.Claims{
			Issuer:    a.opts.AppID,
			Audience:  jwt.Audience{a.opts.Audience},
			Subject:   a.opts.Subject,
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now.Add(-nbfSkew)),
			Expiry:    jwt.NewNumericDate(now.Add(a.opts.TokenTTL)),
			ID:        claim.NewTokenID(),
		},
		Room: p.Room,
		Context: Context{User: User{
			ID:          "mg-" + a.users.Of(12, p.Identity.Issuer, p.Identity.Subject),
			Name:        claim.DisplayName(p.Identity.DisplayName()),
			Email:       p.Identity.Email,
			Moderator:   moderator,
			Affiliation: affiliation,
		}},
	}
	// Serialised once and signed: jwt.Signed(...).Claims re-encodes
	// through a map, which costs more than an HMAC.
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("jitsi: token claims: %w", err)
	}
	obj, err := a.signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("jitsi: sign token: %w", err)
	}
	tok, err := obj.CompactSerialize()
	if err != nil {
		return "", fmt.Errorf("jitsi: sign token: %w", err)
	}
	a.mu.Lock()
	if len(a.cache) > 100_000 {
		clear(a.cache) // bounded; a token is cheap to remake
	}
	a.cache[k] = cachedToken{token: tok, renewAt: now.Add(a.opts.TokenTTL / 2)}
	a.mu.Unlock()
	return tok, nil
}

// KeyServer serves the RS256 public key where Prosody's asap_key_server
// looks for it: <mount>/<hex sha256(kid)>.pem. Mount it without user
// authentication. For HS256 it answers 404 to everything.
func (a *Adapter) KeyServer() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		if a.pemKey == nil || path.Base(r.URL.Path) != a.keyURL {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/x-pem-file")
		w.Header().Set("Cache-Control", "public, max-age=3600")
		_, _ = w.Write(a.pemKey)
	})
}

// KeyPath is the file name Prosody fetches the public key by, or "" for
// HS256.
func (a *Adapter) KeyPath() string { return a.keyURL }
