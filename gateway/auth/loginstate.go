package auth

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/meetguard/meetguard/gateway/session"
)

// A login in progress keeps no state on the server. State, nonce, PKCE
// verifier, return path and expiry travel in the login cookie, sealed
// (XChaCha20-Poly1305, the cookie name as authenticated data) so the
// browser can neither read nor change them. An anonymous flood of login
// starts therefore costs the gateway nothing it keeps: there is no store
// to fill and lock real sign-ins out of. Single use is enforced at the
// callback by a small set of states already seen (replaySet).

// maxRedirectLen keeps the login cookie well under browsers' 4 KiB.
const maxRedirectLen = 1024

var errLoginExpired = errors.New("login expired")

func (a *Authenticator) sealLogin(l session.Login) string {
	b, _ := json.Marshal(l) // cannot fail: strings and a time
	return a.opts.Codec.Seal(a.loginCookie, b)
}

// openLogin returns the login sealed in a login cookie value, refusing
// one that does not open or has expired.
func (a *Authenticator) openLogin(value string, now time.Time) (session.Login, error) {
	var l session.Login
	b, err := a.opts.Codec.Open(a.loginCookie, value)
	if err != nil {
		return l, err
	}
	if err := json.Unmarshal(b, &l); err != nil {
		return l, fmt.Errorf("login cookie: %w", err)
	}
	if l.State == "" || l.Nonce == "" || l.Verifier == "" {
		return l, errors.New("login cookie: incomplete")
	}
	if !now.Before(l.Expires) {
		return l, errLoginExpired
	}
	return l, nil
}

// replaySet remembers the states of callbacks already taken until their
// login would have expired anyway, so a captured callback URL and cookie
// cannot be played again. It is bounded: beyond max entries the oldest
// goes (a state evicted early is still single-use at the provider, whose
// code is). Per node: the provider's single-use code covers a replay on
// another node.
type replaySet struct {
	mu    sync.Mutex
	max   int
	seen  map[[16]byte]time.Time // state digest → when it may be forgotten
	order [][16]byte             // insertion order, for eviction
	head  int
}

func newReplaySet(max int) *replaySet {
	return &replaySet{max: max, seen: map[[16]byte]time.Time{}}
}

// claim reports whether state is new, and remembers it until forget.
func (s *replaySet) claim(state string, forget, now time.Time) bool {
	sum := sha256.Sum256([]byte(state))
	var k [16]byte
	copy(k[:], sum[:])
	s.mu.Lock()
	defer s.mu.Unlock()
	if until, ok := s.seen[k]; ok && now.Before(until) {
		return false
	}
	// Drop expired entries from the front, then the oldest if full.
	for s.head < len(s.order) {
		front := s.order[s.head]
		if until, ok := s.seen[front]; ok && now.Before(until) && len(s.seen) < s.max {
			break
		}
		delete(s.seen, front)
		s.head++
	}
	if s.head > len(s.order)/2 {
		s.order = append(s.order[:0], s.order[s.head:]...)
		s.head = 0
	}
	s.seen[k] = forget
	s.order = append(s.order, k)
	return true
}

func (s *replaySet) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.seen)
}
