package memstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/meetguard/meetguard/gateway/rooms"
	"github.com/meetguard/meetguard/gateway/rooms/memstore"
	"github.com/meetguard/meetguard/gateway/rooms/roomstest"
)

// newStore returns a store on a fake clock. Both "nodes" are the same
// store: a memory store is one node by design.
func newStore(t testing.TB, cfg rooms.Config) (*memstore.Store, *roomstest.Clock) {
	clock := roomstest.NewClock()
	s, err := memstore.New(context.Background(), memstore.Options{Rooms: cfg, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, clock
}

func TestConformance(t *testing.T) {
	roomstest.Run(t, roomstest.Harness{New: func(t testing.TB, cfg rooms.Config) roomstest.Nodes {
		s, clock := newStore(t, cfg)
		return roomstest.Nodes{A: s, B: s, Advance: clock.Advance}
	}})
}

func TestNew_RejectsBadConfigNamingTheField(t *testing.T) {
	_, err := memstore.New(context.Background(), memstore.Options{Rooms: rooms.Config{MaxCapacity: -1}})
	var inv *rooms.InvalidError
	if !errors.As(err, &inv) || inv.Field != "rooms.max_capacity" {
		t.Fatalf("err = %v, want an InvalidError naming rooms.max_capacity", err)
	}
}

func TestRateLimit_WindowRollsOver(t *testing.T) {
	s, clock := newStore(t, rooms.Config{RateLimits: rooms.RateLimits{Window: time.Minute, JoinAttemptsPerIdentity: 2}})
	a := rooms.Attempt{Identity: roomstest.Subject(1), IP: roomstest.IP(1)}
	for range 2 {
		if _, err := s.BeginJoin(t.Context(), a); err != nil {
			t.Fatal(err)
		}
	}
	_, err := s.BeginJoin(t.Context(), a)
	var rl *rooms.RateLimitedError
	if !errors.As(err, &rl) || rl.RetryAfter != time.Minute {
		t.Fatalf("3rd attempt at the window's start = %v, want retry after the whole minute", err)
	}
	clock.Advance(time.Minute)
	h, err := s.BeginJoin(t.Context(), a)
	if err != nil || h.Identity.JoinAttempts != 1 {
		t.Fatalf("first attempt of the next window = %+v, %v", h, err)
	}
}

func TestClose_FailsLaterCallsAsUnavailable(t *testing.T) {
	s, _ := newStore(t, rooms.Config{})
	ch, err := s.Subscribe(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := <-ch; ok {
		t.Fatal("subscription open after Close")
	}
	_, err = s.Admit(t.Context(), rooms.Admission{Room: "r", Subject: roomstest.Subject(1), Role: rooms.RoleHost})
	if !errors.Is(err, rooms.ErrStoreUnavailable) {
		t.Fatalf("Admit after Close = %v, want ErrStoreUnavailable", err)
	}
}

func TestSweep_FreesEndedRoomsAndStaleCounters(t *testing.T) {
	clock := roomstest.NewClock()
	s, err := memstore.New(t.Context(), memstore.Options{
		Rooms: rooms.Config{EmptyRoomTTL: time.Minute, BanTTL: time.Minute}, Now: clock.Now, JanitorInterval: 10 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := range 100 {
		id := "r" + string(rune('a'+i%26)) + string(rune('a'+i/26))
		if _, err := s.Put(t.Context(), id, roomstest.Subject(1), rooms.SettingsChange{}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.BeginJoin(t.Context(), rooms.Attempt{Identity: roomstest.Subject(i), IP: roomstest.IP(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if got := s.Sizes(); got.Rooms != 100 || got.Counters != 200 {
		t.Fatalf("sizes before expiry = %+v", got)
	}
	clock.Advance(time.Hour)
	deadline := time.Now().Add(2 * time.Second)
	for s.Sizes() != (memstore.Sizes{}) {
		if time.Now().After(deadline) {
			t.Fatalf("janitor left %+v", s.Sizes())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
