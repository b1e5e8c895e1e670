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

// ErrUnavailable wraps every failure to reach a shared store: callers
// must refuse (fail closed), never fall back to anything they hold locally.
var ErrUnavailable = errors.New("session store unavailable")

// Store holds sessions and pending logins. The contract every
// implementation keeps (sessiontest.Run checks it):
//
//   - GetSession returns ErrNotFound for an unknown, deleted or expired
//     (now >= Expires) session, and the session exactly as last put.
//   - PutSession creates or replaces; an entry past Expires is gone.
//     ErrFull when a bound is reached (memory only).
//   - DeleteSession is idempotent; once it returns, no GetSession on any
//     node sharing the store sees the session.
//   - TakeLogin is atomic: of any number of concurrent calls for one
//     state, on any nodes, at most one returns the login.
//   - ClaimState is take-once: it reports true for the first claim of a
//     state until `until`, false for every later one (login callback
//     replay protection when the login state travels in a cookie).
//
// A store that cannot be reached returns an error wrapping ErrUnavailable;
// it never answers from a local copy.
type Store interface {
	GetSession(ctx context.Context, id string) (Session, error)
	PutSession(ctx context.Context, s Session) error
	DeleteSession(ctx context.Context, id string) error
	PutLogin(ctx context.Context, l Login) error
	TakeLogin(ctx context.Context, state string) (Login, error)
	ClaimState(ctx context.Context, state string, until time.Time) (bool, error)
}

// EndWatcher is implemented by stores shared between nodes: Ended delivers
// the ID of every session deleted on any node, so each node can cut its own
// live connections of that session. The channel closes when events may
// have been lost (the link to the store dropped); the caller then
// re-checks its live sessions and subscribes again.
type EndWatcher interface {
	Ended(ctx context.Context) (<-chan string, error)
}

// IDFromHandle names a session in the store by a hash of its cookie handle,
// so a dump of the store is not a list of usable handles.
func IDFromHandle(handle []byte) string {
	sum := sha256.Sum256(handle)
	return hex.EncodeToString(sum[:16])
}
