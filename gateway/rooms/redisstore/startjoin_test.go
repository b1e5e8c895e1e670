package redisstore_test

import (
	"errors"
	"testing"

	"github.com/meetguard/meetguard/gateway/rooms"
	"github.com/meetguard/meetguard/gateway/rooms/roomstest"
)

// TestStartJoin_ScriptErrorFailsClosed breaks the one script a join reads
// with before the policy, at each of its halves (a key of the wrong type
// makes Redis abort it): the caller gets ErrStoreUnavailable, never facts
// or counts it could admit on. (StartJoin admits nobody by itself; Admit's
// own failures are in the conformance suite.)
func TestStartJoin_ScriptErrorFailsClosed(t *testing.T) {
	srv := sharedServer(t)
	rdb := srv.Client(t)
	for _, tc := range []struct {
		name string
		key  func(p string) string
	}{
		{"the address's counters (counting)", func(p string) string { return p + "rl:p:" + roomstest.IP(1).String() }},
		{"the room's participants (facts)", func(p string) string { return p + "{r}:p" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			p := prefix()
			s := node(t, srv, p, rooms.Config{})
			if _, err := s.Put(ctx, "r", roomstest.Subject(0), rooms.SettingsChange{}); err != nil {
				t.Fatal(err)
			}
			if err := rdb.Set(ctx, tc.key(p), "not a hash", 0).Err(); err != nil {
				t.Fatal(err)
			}
			at := rooms.Attempt{Identity: roomstest.Subject(1), IP: roomstest.IP(1), Room: "r"}
			hist, f, err := s.StartJoin(ctx, at)
			var rl *rooms.RateLimitedError
			if !errors.Is(err, rooms.ErrStoreUnavailable) || errors.As(err, &rl) {
				t.Fatalf("StartJoin with a broken key: %+v, %+v, %v; want ErrStoreUnavailable", hist, f, err)
			}
			if f.Exists || hist != (rooms.History{}) {
				t.Fatalf("StartJoin failed but returned facts %+v and history %+v", f, hist)
			}
		})
	}
}
