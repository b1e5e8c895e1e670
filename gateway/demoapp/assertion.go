package demoapp

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

const (
	// maxAssertionLife bounds exp-iat: the gateway mints assertions for at
	// most 60 s, so anything longer-lived was not minted by it for a request.
	maxAssertionLife = 2 * time.Minute
	assertionLeeway  = 5 * time.Second
	// refetchCooldown limits JWKS fetches triggered by unknown key ids, so a
	// flood of made-up kids cannot hammer the gateway.
	refetchCooldown = 10 * time.Second
	maxJWKSBytes    = 1 << 20
)

// jwksVerifier verifies the gateway's EdDSA assertions against its JWKS,
// fetched lazily (the gateway may start after the app) and refetched when an
// unknown key id shows up, at most once per refetchCooldown.
type jwksVerifier struct {
	url, issuer, audience string
	client                *http.Client
	now                   func() time.Time

	mu        sync.Mutex
	keys      map[string]ed25519.PublicKey
	lastFetch time.Time
}

type assertionClaims struct {
	Email  string   `json:"email"`
	Name   string   `json:"name"`
	Groups []string `json:"groups"`
	Room   string   `json:"room"`
	Role   string   `json:"role"`
}

func (v *jwksVerifier) verify(ctx context.Context, raw string) (Assertion, error) {
	// Only EdDSA is accepted: this refuses "none", HMAC (including HMAC keyed
	// with a public key) and every algorithm the gateway does not use.
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil {
		return Assertion{}, fmt.Errorf("%w: %w", ErrAssertionInvalid, err)
	}
	if len(tok.Headers) != 1 || tok.Headers[0].KeyID == "" {
		return Assertion{}, fmt.Errorf("%w: no key id", ErrAssertionInvalid)
	}
	key, err := v.key(ctx, tok.Headers[0].KeyID)
	if err != nil {
		return Assertion{}, err
	}
	var std jwt.Claims
	var c assertionClaims
	if err := tok.Claims(key, &std, &c); err != nil {
		return Assertion{}, fmt.Errorf("%w: %w", ErrAssertionInvalid, err)
	}
	now := v.now()
	if err := std.ValidateWithLeeway(jwt.Expected{
		Issuer:      v.issuer,
		AnyAudience: jwt.Audience{v.audience},
		Time:        now,
	}, assertionLeeway); err != nil {
		return Assertion{}, fmt.Errorf("%w: %w", ErrAssertionInvalid, err)
	}
	switch {
	case std.Expiry == nil || std.IssuedAt == nil:
		return Assertion{}, fmt.Errorf("%w: exp and iat are required", ErrAssertionInvalid)
	case std.Expiry.Time().Sub(std.IssuedAt.Time()) > maxAssertionLife:
		return Assertion{}, fmt.Errorf("%w: lifetime longer than %s", ErrAssertionInvalid, maxAssertionLife)
	case std.Subject == "":
		return Assertion{}, fmt.Errorf("%w: no sub", ErrAssertionInvalid)
	}
	return Assertion{
		Subject: std.Subject,
		Email:   c.Email,
		Name:    c.Name,
		Groups:  c.Groups,
		Room:    c.Room,
		Role:    c.Role,
	}, nil
}

// key returns the public key for kid, fetching the JWKS when it is unknown.
func (v *jwksVerifier) key(ctx context.Context, kid string) (ed25519.PublicKey, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if k, ok := v.keys[kid]; ok {
		return k, nil
	}
	now := v.now()
	if v.keys != nil && now.Sub(v.lastFetch) < refetchCooldown {
		return nil, fmt.Errorf("%w: unknown key id", ErrAssertionInvalid)
	}
	v.lastFetch = now
	keys, err := v.fetch(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrAssertionKeysDown, err)
	}
	v.keys = keys
	if k, ok := keys[kid]; ok {
		return k, nil
	}
	return nil, fmt.Errorf("%w: unknown key id", ErrAssertionInvalid)
}

func (v *jwksVerifier) fetch(ctx context.Context) (map[string]ed25519.PublicKey, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, v.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := v.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: status %d", v.url, resp.StatusCode)
	}
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxJWKSBytes)).Decode(&set); err != nil {
		return nil, fmt.Errorf("GET %s: %w", v.url, err)
	}
	keys := make(map[string]ed25519.PublicKey, len(set.Keys))
	for _, k := range set.Keys {
		pub, ok := k.Key.(ed25519.PublicKey)
		if !ok || k.KeyID == "" || (k.Use != "" && k.Use != "sig") {
			continue // not a signing key of the kind the gateway uses
		}
		keys[k.KeyID] = pub
	}
	return keys, nil
}
