package assertion

import (
	"fmt"
	"testing"
	"time"

	"github.com/meetguard/meetguard/gateway/identity"
)

// TestFor_ForgetsStaleAssertions: a day of sessions coming and going must
// not keep one cache entry per session ever seen. Sessions used once,
// a minute apart, leave the cache once past their renewal time; the
// entries still in use are kept (the same token comes back).
func TestFor_ForgetsStaleAssertions(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	s, err := New(Options{TTL: 30 * time.Second, Issuer: "https://gw.example", Clock: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	steady := identity.Identity{Issuer: "https://id.example", Subject: "alice", SessionID: "s-alice"}
	first, err := s.For(steady, "demo", "standup", "host")
	if err != nil {
		t.Fatal(err)
	}
	peak := 0
	for minute := range 60 {
		for i := range 500 {
			id := identity.Identity{Issuer: "https://id.example", Subject: fmt.Sprintf("u%d", i), SessionID: fmt.Sprintf("s-%d-%d", minute, i)}
			if _, err := s.For(id, "demo", "standup", "participant"); err != nil {
				t.Fatal(err)
			}
		}
		if tok, err := s.For(steady, "demo", "standup", "host"); err != nil {
			t.Fatal(err)
		} else if minute == 0 && tok != first {
			t.Fatal("an assertion within half its life was signed again")
		}
		s.mu.Lock()
		peak = max(peak, len(s.cache))
		s.mu.Unlock()
		now = now.Add(time.Minute)
	}
	// 30 000 sessions over the hour; at most about two minutes' worth
	// (each doubling sweeps) may be cached at once.
	if peak > 2_100 {
		t.Errorf("cache held %d assertions at its peak, for 500 live sessions a minute", peak)
	}
}
