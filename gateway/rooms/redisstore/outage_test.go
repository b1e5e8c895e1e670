package redisstore_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/meetguard/meetguard/gateway/rooms"
	"github.com/meetguard/meetguard/gateway/rooms/redisstore"
	"github.com/meetguard/meetguard/gateway/rooms/redisstore/redistest"
	"github.com/meetguard/meetguard/gateway/rooms/roomstest"
)

func TestStoreDown_FailsClosedAndNothingIsAdmittedOnStaleState(t *testing.T) {
	srv := redistest.Start(t) // its own server: this test kills it
	a := node(t, srv, "down:", rooms.Config{})
	b := node(t, srv, "down:", rooms.Config{})
	ctx := t.Context()
	if _, err := a.Put(ctx, "r", roomstest.Subject(0), rooms.SettingsChange{}); err != nil {
		t.Fatal(err)
	}
	p, err := a.Admit(ctx, rooms.Admission{Room: "r", Subject: roomstest.Subject(1), Role: rooms.RoleParticipant})
	if err != nil {
		t.Fatal(err)
	}
	events, err := b.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}

	srv.Kill()

	// Subscribers learn that events may be lost.
	t0 := time.Now()
	drain(t, events, 5*time.Second)
	t.Logf("subscription closed %s after redis-server was killed", time.Since(t0).Round(time.Millisecond))

	alice := rooms.Admission{Room: "r", Subject: roomstest.Subject(2), Role: rooms.RoleHost}
	attempt := rooms.Attempt{Identity: roomstest.Subject(2), IP: roomstest.IP(2)}
	ops := map[string]func() error{
		"Admit":        func() error { _, err := b.Admit(ctx, alice); return err },
		"Touch":        func() error { _, err := b.Touch(ctx, "r", p.ID); return err },
		"Facts":        func() error { _, err := a.Facts(ctx, "r", alice.Subject); return err },
		"Room":         func() error { _, err := a.Room(ctx, "r"); return err },
		"Put":          func() error { _, err := a.Put(ctx, "r", alice.Subject, rooms.SettingsChange{}); return err },
		"Knock":        func() error { _, err := b.Knock(ctx, alice); return err },
		"AdmitWaiting": func() error { _, err := b.AdmitWaiting(ctx, "r", rooms.NewWaitID()); return err },
		"WaitStatus":   func() error { _, err := b.WaitStatus(ctx, "r", rooms.NewWaitID()); return err },
		"Await":        func() error { _, err := b.Await(ctx, "r", rooms.NewWaitID()); return err },
		"Remove":       func() error { _, err := a.Remove(ctx, "r", p.ID, true); return err },
		"Leave":        func() error { return a.Leave(ctx, "r", p.ID) },
		"Lock":         func() error { return a.Lock(ctx, "r") },
		"Suspend":      func() error { _, err := a.Suspend(ctx, "r"); return err },
		"IsBanned":     func() error { _, err := b.IsBanned(ctx, "r", alice.Subject); return err },
		"Unban":        func() error { return b.Unban(ctx, "r", alice.Subject) },
		"BeginJoin":    func() error { _, err := a.BeginJoin(ctx, attempt); return err },
		"StartJoin": func() error {
			_, _, err := b.StartJoin(ctx, rooms.Attempt{Identity: alice.Subject, IP: roomstest.IP(2), Room: "r"})
			return err
		},
		"RecordFailure": func() error {
			_, err := a.RecordFailure(ctx, attempt, rooms.FailurePasscode)
			return err
		},
		"Subscribe": func() error { _, err := b.Subscribe(ctx); return err },
	}
	for name, op := range ops {
		t0 := time.Now()
		err := op()
		if !errors.Is(err, rooms.ErrStoreUnavailable) {
			t.Errorf("%s with Redis down: err = %v, want ErrStoreUnavailable", name, err)
		}
		t.Logf("%s failed in %s", name, time.Since(t0).Round(time.Millisecond))
		if d := time.Since(t0); d > 3*time.Second {
			t.Errorf("%s took %s to fail", name, d)
		}
	}

	// A fresh, empty Redis comes back: whatever the nodes saw before must
	// not admit anyone.
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	err = eventually(func() error { _, err := b.Admit(ctx, alice); return err })
	if !errors.Is(err, rooms.ErrNotFound) {
		t.Fatalf("Admit after Redis lost its state = %v, want ErrNotFound", err)
	}
	if _, err := a.Touch(ctx, "r", p.ID); !errors.Is(err, rooms.ErrNotAdmitted) {
		t.Fatalf("Touch of an admission Redis no longer has = %v, want ErrNotAdmitted", err)
	}

	// The event relay recovers by itself.
	var again <-chan rooms.Event
	if err := eventually(func() error { var err error; again, err = b.Subscribe(ctx); return err }); err != nil {
		t.Fatalf("Subscribe after Redis came back: %v", err)
	}
	if _, err := a.Put(ctx, "r", roomstest.Subject(0), rooms.SettingsChange{}); err != nil {
		t.Fatal(err)
	}
	if err := a.Lock(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-again:
		if e.Kind != rooms.EventLocked {
			t.Fatalf("first event after recovery = %+v, want locked", e)
		}
	case <-time.After(time.Second):
		t.Fatal("no event within a second after the relay recovered")
	}
}

func TestRelay_LostSubscriptionClosesSubscribersThenRecovers(t *testing.T) {
	srv := sharedServer(t)
	p := prefix()
	a, b := node(t, srv, p, rooms.Config{}), node(t, srv, p, rooms.Config{})
	ctx := t.Context()
	events, err := b.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Kill every pub/sub connection on the server, as a network blip would.
	if err := srv.Client(t).Do(ctx, "CLIENT", "KILL", "TYPE", "pubsub").Err(); err != nil {
		t.Fatal(err)
	}
	drain(t, events, 3*time.Second)
	var again <-chan rooms.Event
	if err := eventually(func() error { var err error; again, err = b.Subscribe(ctx); return err }); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Put(ctx, "r", roomstest.Subject(0), rooms.SettingsChange{}); err != nil {
		t.Fatal(err)
	}
	if err := a.Lock(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-again:
		if e.Kind != rooms.EventLocked || e.Room != "r" {
			t.Fatalf("event after recovery = %+v", e)
		}
	case <-time.After(time.Second):
		t.Fatal("no event after the relay resubscribed")
	}
}

func TestKeys_EveryKeyExpiresAndBansOutliveTheRoom(t *testing.T) {
	srv := sharedServer(t)
	p := prefix()
	cfg := rooms.Config{EmptyRoomTTL: 300 * time.Millisecond, BanTTL: 300 * time.Millisecond,
		RateLimits: rooms.RateLimits{Window: 100 * time.Millisecond, FailureMemory: 2 * time.Hour}}
	s := node(t, srv, p, cfg)
	ctx := t.Context()
	c := srv.Client(t)
	if _, err := s.Put(ctx, "r", roomstest.Subject(0), rooms.SettingsChange{LobbyEnabled: ptr(true)}); err != nil {
		t.Fatal(err)
	}
	x, err := s.Admit(ctx, rooms.Admission{Room: "r", Subject: roomstest.Subject(1), Role: rooms.RoleHost})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Knock(ctx, rooms.Admission{Room: "r", Subject: roomstest.Subject(2), Role: rooms.RoleViewer}); err != nil {
		t.Fatal(err)
	}
	denied, err := s.Knock(ctx, rooms.Admission{Room: "r", Subject: roomstest.Subject(3), Role: rooms.RoleViewer})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.DenyWaiting(ctx, "r", denied.ID, false); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Remove(ctx, "r", x.ID, true); err != nil {
		t.Fatal(err)
	}
	a := rooms.Attempt{Identity: roomstest.Subject(1), IP: roomstest.IP(1)}
	if _, err := s.RecordFailure(ctx, a, rooms.FailureJoin); err != nil {
		t.Fatal(err)
	}
	keys := func() []string {
		ks, err := c.Keys(ctx, p+"*").Result()
		if err != nil {
			t.Fatal(err)
		}
		return ks
	}
	for _, k := range keys() {
		if ttl := c.PTTL(ctx, k).Val(); ttl <= 0 {
			t.Errorf("key %s has no expiry (PTTL %s): it would outlive everything", k, ttl)
		}
	}
	outcome := p + "{r}:o:" + string(denied.ID) // readable by the waiter for rooms.OutcomeTTL
	time.Sleep(450 * time.Millisecond)
	if ks := keys(); !sameSet(ks, p+"{r}:b", outcome) {
		t.Fatalf("keys after the room ended = %v, want only its bans and the recent outcome", ks)
	}
	time.Sleep(300 * time.Millisecond)
	if ks := keys(); !sameSet(ks, outcome) {
		t.Fatalf("keys after BanTTL = %v, want only the outcome (it expires after %s)", ks, rooms.OutcomeTTL)
	}
}

func TestNew_URLOptionAndBadURL(t *testing.T) {
	_, err := redisstore.New(t.Context(), redisstore.Options{URL: "http://not-redis"})
	var inv *rooms.InvalidError
	if !errors.As(err, &inv) || inv.Field != "store.redis.url" {
		t.Fatalf("bad URL: err = %v, want InvalidError naming store.redis.url", err)
	}
	_, err = redisstore.New(t.Context(), redisstore.Options{})
	if !errors.As(err, &inv) {
		t.Fatalf("no client and no URL: err = %v", err)
	}
	srv := sharedServer(t)
	s, err := redisstore.New(t.Context(), redisstore.Options{URL: "redis://" + srv.Addr + "/0", KeyPrefix: prefix()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if created, err := s.Put(t.Context(), "r", roomstest.Subject(0), rooms.SettingsChange{}); err != nil || !created {
		t.Fatalf("Put through a URL-built client = %v, %v", created, err)
	}
}

func ptr[T any](v T) *T { return &v }

func sameSet(got []string, want ...string) bool {
	slices.Sort(got)
	slices.Sort(want)
	return slices.Equal(got, want)
}

// drain waits for a subscription to close.
func drain(t *testing.T, ch <-chan rooms.Event, within time.Duration) {
	t.Helper()
	timeout := time.After(within)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-timeout:
			t.Fatalf("subscription still open %s after the link to Redis broke", within)
		}
	}
}

// eventually retries op while it reports the store unavailable.
func eventually(op func() error) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := op()
		if !errors.Is(err, rooms.ErrStoreUnavailable) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}
