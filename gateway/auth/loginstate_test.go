package auth

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/meetguard/meetguard/gateway/session"
)

func TestReplaySet_SingleUseAndBounded(t *testing.T) {
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	s := newReplaySet(1000)
	if !s.claim("state-a", now.Add(loginTTL), now) {
		t.Fatal("first claim refused")
	}
	if s.claim("state-a", now.Add(loginTTL), now.Add(time.Minute)) {
		t.Fatal("replayed state accepted")
	}
	// A flood of distinct states never holds more than the bound.
	for i := range 50_000 {
		s.claim(fmt.Sprintf("flood-%d", i), now.Add(loginTTL), now)
	}
	if n := s.len(); n > 1000 {
		t.Fatalf("replay set holds %d states, bound 1000", n)
	}
	// Expired entries go first.
	later := now.Add(loginTTL + time.Second)
	if !s.claim("state-b", later.Add(loginTTL), later) || s.len() != 1 {
		t.Fatalf("after expiry: %d states, want 1", s.len())
	}
}

// FuzzOpenLogin: whatever a browser sends as the login cookie, and
// whatever bytes end up sealed in one, openLogin refuses or returns a
// complete, unexpired login; it never panics.
func FuzzOpenLogin(f *testing.F) {
	codec, err := session.NewCodec([]byte(strings.Repeat("k", 32)))
	if err != nil {
		f.Fatal(err)
	}
	a := &Authenticator{opts: Options{Codec: codec}, loginCookie: "meetguard-login"}
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	f.Add("", []byte(`{"State":"s","Nonce":"n","Verifier":"v","Redirect":"/","Expires":"2026-03-02T09:05:00Z"}`))
	f.Add("not-a-cookie", []byte(`{"State":1}`))
	f.Fuzz(func(t *testing.T, cookie string, sealed []byte) {
		for _, v := range []string{cookie, codec.Seal("meetguard-login", sealed)} {
			l, err := a.openLogin(v, now)
			if err == nil && (l.State == "" || l.Nonce == "" || l.Verifier == "" || !now.Before(l.Expires)) {
				t.Fatalf("accepted an incomplete or expired login: %+v", l)
			}
		}
	})
}
