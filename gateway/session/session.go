// Package session keeps browser sessions on the server and gives the browser
// only an opaque, encrypted handle.
//
// Keeping sessions server-side means a session is revoked the moment it is
// deleted, and cookies stay a few hundred bytes whatever the IdP puts in its
// tokens. The package never writes a token, handle or cookie to a log.
package session

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"time"

	"github.com/meetguard/meetguard/gateway/identity"
)

// ErrNotFound means there is no such live session or login attempt.
var ErrNotFound = errors.New("session not found")

// ErrFull means the store refuses new entries to protect its memory.
var ErrFull = errors.New("session store full")

// Session is one browser login.
type Session struct {
	ID       string
	Identity identity.Identity
	// Tokens from the provider, kept only here: the refresh token renews the
	// session, the ID token is the hint for RP-initiated logout.
	IDToken      string
	RefreshToken string
	// TokenExpiry is when the provider's tokens expire; the session is
	// refreshed before then or ends.
	TokenExpiry time.Time
	Created     time.Time
	// Expires is the hard end (session.ttl from Created).
	Expires time.Time
	// ClaimsAt is when Identity was last derived from an ID token (login or
	// a refresh that brought one); claims older than session.max_claim_age
	// are not used.
	ClaimsAt time.Time
}

// Login is one login in progress, between redirect and callback.
type Login struct {
	State    string
	Nonce    string
	Verifier string // PKCE code verifier
	Redirect string // same-origin path to return to
	Expires  time.Time
}

// Store holds sessions and pending logins. Implementations must make
// TakeLogin atomic so a state value is usable once.
type Store interface {
	GetSession(ctx context.Context, id string) (Session, error)
	PutSession(ctx context.Context, s Session) error
	DeleteSession(ctx context.Context, id string) error
	PutLogin(ctx context.Context, l Login) error
	TakeLogin(ctx context.Context, state string) (Login, error)
}

// IDFromHandle names a session in the store by a hash of its cookie handle,
// so a dump of the store is not a list of usable handles.
func IDFromHandle(handle []byte) string {
	sum := sha256.Sum256(handle)
	return hex.EncodeToString(sum[:16])
}
