package devidp

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"time"
)

// grant is what one login authorised; it travels from the code to every
// token minted from it, including those minted by refresh.
type grant struct {
	clientID string
	sub      string
	scopes   []string
	audience []string // extra "aud" values requested on top of the client id
	nonce    string   // only for the first ID token
	authTime time.Time
	family   string // all refresh tokens descending from one code
}

// authRequest is a validated /authorize request waiting for the user to
// pick an identity on the login page.
type authRequest struct {
	clientID    string
	redirectURI string
	state       string
	nonce       string
	challenge   string
	scopes      []string
	audience    []string
	browser     string // the browser cookie the page was shown to
	expires     time.Time
}

type codeGrant struct {
	grant
	redirectURI string
	challenge   string
	expires     time.Time
	used        bool // kept after use so that a replay can be detected
}

type refreshGrant struct {
	grant
	expires time.Time
	used    bool // kept after rotation so that reuse can be detected
}

// randomToken returns 256 bits of randomness, base64url without padding.
func randomToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (it crashes the program instead)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// lookupKey is the map key for a bearer secret: storing a hash means the
// maps never hold a usable token and lookups do not compare secrets
// byte-by-byte.
func lookupKey(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return string(sum[:])
}

// sweepLocked drops expired entries at most once a minute. p.mu must be held.
func (p *Provider) sweepLocked(now time.Time) {
	if now.Before(p.nextSweep) {
		return
	}
	p.nextSweep = now.Add(time.Minute)
	for k, v := range p.pending {
		if now.After(v.expires) {
			delete(p.pending, k)
		}
	}
	for k, v := range p.codes {
		if now.After(v.expires) {
			delete(p.codes, k)
		}
	}
	for k, v := range p.refreshes {
		if now.After(v.expires) {
			delete(p.refreshes, k)
		}
	}
}

// revokeFamilyLocked deletes every refresh token descending from one code.
// p.mu must be held.
func (p *Provider) revokeFamilyLocked(family string) int {
	n := 0
	for k, v := range p.refreshes {
		if v.family == family {
			delete(p.refreshes, k)
			n++
		}
	}
	return n
}

// newRefreshLocked stores a fresh refresh token for g. p.mu must be held.
func (p *Provider) newRefreshLocked(g grant, now time.Time) string {
	tok := randomToken()
	p.refreshes[lookupKey(tok)] = &refreshGrant{grant: g, expires: now.Add(p.refreshTTL)}
	return tok
}
