// Package assertion signs the short-lived JWT that tells an upstream who the
// gateway admitted (X-Meetguard-Assertion) and publishes its public keys.
//
// Upstreams verify the assertion instead of trusting plain headers. The
// signing key is Ed25519 and never leaves this package; it is distinct from
// the audit and e2ee keys so that one compromise does not forge the others.
package assertion

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/meetguard/meetguard/gateway/identity"
)

// JWKSPath is where upstreams fetch the public keys.
const JWKSPath = "/.well-known/meetguard/jwks.json"

// Options configures a Signer.
type Options struct {
	// Key signs assertions; nil draws a fresh key.
	Key ed25519.PrivateKey
	// Issuer is the gateway's public URL.
	Issuer string
	// TTL of an assertion, at most 60s.
	TTL   time.Duration
	Clock func() time.Time
}

// Claims are what an upstream learns about an admitted person.
type Claims struct {
	jwt.Claims
	Email  string   `json:"email,omitempty"`
	Name   string   `json:"name,omitempty"`
	Groups []string `json:"groups,omitempty"`
	Room   string   `json:"room,omitempty"`
	Role   string   `json:"role,omitempty"`
}

// Signer mints assertions. It reuses an assertion for the same person, room
// and upstream for half its lifetime: signing on every proxied request would
// cost more than the rest of the proxy path together.
type Signer struct {
	opts   Options
	signer jose.Signer
	kid    string
	jwks   []byte

	mu    sync.Mutex
	cache map[cacheKey]cached
	// swept is the cache's size after its last sweep: the next one runs
	// once it has doubled, so sweeping costs O(1) per entry added.
	swept int
}

// maxCached bounds the cache whatever the sweeps leave: beyond it, it
// starts over (entries are cheap to remake).
const maxCached = 100_000

type cacheKey struct{ session, subject, audience, room, role string }

type cached struct {
	token   string
	renewAt time.Time
}

// New returns a Signer.
func New(opts Options) (*Signer, error) {
	if opts.Key == nil {
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("assertion key: %w", err)
		}
		opts.Key = k
	}
	if opts.TTL <= 0 || opts.TTL > time.Minute {
		return nil, errors.New("assertion ttl must be in (0, 60s]")
	}
	if opts.Issuer == "" {
		return nil, errors.New("assertion issuer is required")
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	pub := opts.Key.Public().(ed25519.PublicKey)
	sum := sha256.Sum256(pub)
	kid := base64.RawURLEncoding.EncodeToString(sum[:12])
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: opts.Key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid))
	if err != nil {
		return nil, fmt.Errorf("assertion signer: %w", err)
	}
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: pub, KeyID: kid, Algorithm: string(jose.EdDSA), Use: "sig"}}})
	if err != nil {
		return nil, fmt.Errorf("assertion jwks: %w", err)
	}
	return &Signer{opts: opts, signer: sig, kid: kid, jwks: jwks, cache: map[cacheKey]cached{}}, nil
}

// JWKS is the public key set, as served at JWKSPath.
func (s *Signer) JWKS() []byte { return s.jwks }

// For returns an assertion about id for one upstream (the audience), room
// and role.
func (s *Signer) For(id identity.Identity, audience, room, role string) (string, error) {
	now := s.opts.Clock()
	k := cacheKey{id.SessionID, id.Key(), audience, room, role}
	s.mu.Lock()
	c, ok := s.cache[k]
	s.mu.Unlock()
	if ok && now.Before(c.renewAt) {
		return c.token, nil
	}
	jti := make([]byte, 16)
	_, _ = rand.Read(jti)
	claims := Claims{
		Claims: jwt.Claims{
			Issuer:   s.opts.Issuer,
			Subject:  id.Subject,
			Audience: jwt.Audience{audience},
			IssuedAt: jwt.NewNumericDate(now),
			Expiry:   jwt.NewNumericDate(now.Add(s.opts.TTL)),
			ID:       base64.RawURLEncoding.EncodeToString(jti),
		},
		Email: id.Email, Name: id.Name, Groups: id.Groups, Room: room, Role: role,
	}
	tok, err := jwt.Signed(s.signer).Claims(claims).Serialize()
	if err != nil {
		return "", fmt.Errorf("sign assertion: %w", err)
	}
	s.mu.Lock()
	s.sweepLocked(now)
	s.cache[k] = cached{token: tok, renewAt: now.Add(s.opts.TTL / 2)}
	s.mu.Unlock()
	return tok, nil
}

// sweepLocked drops the entries past their renewal time once the cache has
// doubled since the last sweep. Keys carry the session, and sessions and
// bearer tokens come and go all day: without it every key ever used stayed
// until the cache reached maxCached (a slow heap climb in the soak).
func (s *Signer) sweepLocked(now time.Time) {
	if len(s.cache) < max(2*s.swept, 1024) {
		return
	}
	for k, c := range s.cache {
		if !now.Before(c.renewAt) {
			delete(s.cache, k)
		}
	}
	if len(s.cache) >= maxCached {
		clear(s.cache)
	}
	s.swept = len(s.cache)
}
