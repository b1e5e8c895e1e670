package roomstest

import (
	"context"
	"errors"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meetguard/meetguard/gateway/rooms"
)

// startJoinTests are the conformance tests of StartJoin, the gateway's one
// read before the policy: BeginJoin's counting and Facts' view in one
// step, with the atomic checks still at Admit.
var startJoinTests = []struct {
	name string
	fn   func(*testing.T, Harness)
}{
	{"StartJoin_CountsLikeBeginJoinAndReadsLikeFacts", testStartJoinIsBeginJoinAndFacts},
	{"StartJoin_RefusedAttemptReadsNoRoom", testStartJoinRefused},
	{"StartJoin_StaleFactsNeverAdmitPastLockBanOrCapacity", testStartJoinStaleFacts},
	{"StartJoin_JoinStormAcrossTwoNodesNeverOverfills", testStartJoinStorm},
}

func startJoinConfig() rooms.Config {
	return rateConfig(rooms.RateLimits{Window: time.Hour, RoomPasscodeWindow: time.Hour, JoinAttemptsPerIdentity: 3,
		PasscodeFailuresPerIdentity: 2, BackoffBase: time.Hour, BackoffMax: time.Hour, RoomPasscodeFailures: 10})
}

func testStartJoinIsBeginJoinAndFacts(t *testing.T, h Harness) {
	n := h.New(t, startJoinConfig())
	ctx := t.Context()
	hash := "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U"
	put(t, n.A, room, rooms.SettingsChange{PasscodeHash: &hash, Capacity: ptr(5), Tags: &[]string{"board", "legal"}})
	admit(t, n.A, room, 1, rooms.RoleHost)
	p := admit(t, n.B, room, 9, rooms.RoleParticipant)
	if _, err := n.A.Remove(ctx, room, p.ID, true); err != nil {
		t.Fatal(err)
	}

	for i, tc := range []struct {
		node    rooms.Store
		subject int
		banned  bool
	}{{n.B, 2, false}, {n.A, 2, false}, {n.B, 9, true}} {
		at := rooms.Attempt{Identity: Subject(tc.subject), IP: IP(1), Room: room}
		hist, f, err := tc.node.StartJoin(ctx, at)
		if err != nil {
			t.Fatalf("attempt %d: %v", i+1, err)
		}
		if hist.IP.JoinAttempts != i+1 || hist.WindowSeconds != 3600 || hist.WindowLeft <= 0 {
			t.Fatalf("attempt %d history = %+v, want the address's %d attempts counted", i+1, hist, i+1)
		}
		// Nothing changes the room between the two reads.
		if want := facts(t, n.A, room, Subject(tc.subject)); !reflect.DeepEqual(f, want) {
			t.Fatalf("attempt %d facts = %+v, want Facts' %+v", i+1, f, want)
		}
		if !f.Exists || f.Occupancy != 1 || !f.HostPresent || f.Capacity != 5 || f.PasscodeHash != hash || f.Banned != tc.banned {
			t.Fatalf("attempt %d facts = %+v", i+1, f)
		}
	}
	// Subject 2's second attempt.
	hist, _, err := n.A.StartJoin(ctx, rooms.Attempt{Identity: Subject(2), IP: IP(2), Room: room})
	if err != nil || hist.Identity.JoinAttempts != 3 {
		t.Fatalf("subject 2's third attempt: %+v, %v", hist, err)
	}

	// The room's passcode budget is read, never charged.
	if _, err := n.B.RecordFailure(ctx, rooms.Attempt{Identity: Subject(3), IP: IP(3), Room: room}, rooms.FailurePasscode); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		hist, _, err := n.B.StartJoin(ctx, rooms.Attempt{Identity: Subject(4), IP: IP(4), Room: room})
		if err != nil || hist.Room.PasscodeFailures != 1 {
			t.Fatalf("room budget after one wrong passcode = %+v, %v; want 1 failure", hist.Room, err)
		}
	}

	// A missing room is a fact, not an error; the attempt still counts.
	hist, f, err := n.A.StartJoin(ctx, rooms.Attempt{Identity: Subject(5), IP: IP(5), Room: "nobody-here"})
	if err != nil || f.Exists || f.Banned || f.Tags == nil || hist.Identity.JoinAttempts != 1 {
		t.Fatalf("missing room: %+v, %+v, %v; want exists=false, tags=[], the attempt counted", hist, f, err)
	}

	for name, at := range map[string]rooms.Attempt{
		"no room":         {Identity: Subject(6), IP: IP(6)},
		"a NUL in a room": {Identity: Subject(6), IP: IP(6), Room: "a\x00b"},
		"a huge subject":  {Identity: rooms.SubjectKey(make([]byte, 600)), IP: IP(6), Room: room},
		"no address":      {Identity: Subject(6), Room: room},
	} {
		_, _, err := n.B.StartJoin(ctx, at)
		wantErr(t, "StartJoin with "+name, err, rooms.ErrInvalid)
	}
	if hist, err := n.A.BeginJoin(ctx, rooms.Attempt{Identity: Subject(6), IP: IP(6)}); err != nil || hist.Identity.JoinAttempts != 1 {
		t.Fatalf("after refused hostile attempts, subject 6: %+v, %v; want its first attempt", hist, err)
	}
}

func testStartJoinRefused(t *testing.T, h Harness) {
	n := h.New(t, startJoinConfig())
	ctx := t.Context()
	put(t, n.A, room, rooms.SettingsChange{})
	var rl *rooms.RateLimitedError

	// Blocked by its own passcode failures: refused before the room is read.
	guesser := rooms.Attempt{Identity: Subject(1), IP: IP(1), Room: room}
	for range 2 {
		if _, err := n.A.RecordFailure(ctx, guesser, rooms.FailurePasscode); err != nil {
			t.Fatal(err)
		}
	}
	for _, node := range []rooms.Store{n.A, n.B} {
		_, f, err := node.StartJoin(ctx, guesser)
		if !errors.As(err, &rl) || rl.Reason != rooms.ReasonPasscodeFailures || rl.RetryAfter <= 0 {
			t.Fatalf("blocked identity: err = %v, want its passcode backoff", err)
		}
		if !reflect.DeepEqual(f, rooms.Facts{}) {
			t.Fatalf("blocked identity read the room: %+v", f)
		}
	}
	// Another identity at the same address is not blocked, and the blocked
	// attempts were not counted against the address.
	hist, _, err := n.B.StartJoin(ctx, rooms.Attempt{Identity: Subject(2), IP: IP(1), Room: room})
	if err != nil || hist.IP.JoinAttempts != 1 {
		t.Fatalf("colleague at the blocked identity's address: %+v, %v; want admitted to try, one attempt", hist.IP, err)
	}

	// Over its attempts.
	at := rooms.Attempt{Identity: Subject(3), IP: IP(3), Room: room}
	for i := range 3 {
		if _, _, err := []rooms.Store{n.A, n.B}[i%2].StartJoin(ctx, at); err != nil {
			t.Fatalf("attempt %d: %v", i+1, err)
		}
	}
	_, f, err := n.B.StartJoin(ctx, at)
	if !errors.As(err, &rl) || rl.Unit != rooms.UnitIdentity || rl.Reason != rooms.ReasonJoinAttempts {
		t.Fatalf("4th attempt: err = %v, want the identity's attempts limit", err)
	}
	if !reflect.DeepEqual(f, rooms.Facts{}) {
		t.Fatalf("limited identity read the room: %+v", f)
	}
}

// testStartJoinStaleFacts is the race the gateway's join runs: the facts
// say yes, then (on another node) a host locks, bans or fills the room
// before the admission. Admit must refuse on what holds then.
func testStartJoinStaleFacts(t *testing.T, h Harness) {
	n := h.New(t, startJoinConfig())
	ctx := t.Context()
	put(t, n.A, room, rooms.SettingsChange{Capacity: ptr(2)})
	admit(t, n.A, room, 1, rooms.RoleHost)

	seen := func(subject int) {
		t.Helper()
		_, f, err := n.B.StartJoin(ctx, rooms.Attempt{Identity: Subject(subject), IP: IP(subject), Room: room})
		if err != nil || !f.Exists || f.Locked || f.Banned || f.Occupancy >= f.Capacity {
			t.Fatalf("subject %d saw %+v, %v; want an open room with a seat", subject, f, err)
		}
	}
	seen(2)
	if err := n.A.Lock(ctx, room); err != nil {
		t.Fatal(err)
	}
	_, err := n.B.Admit(ctx, rooms.Admission{Room: room, Subject: Subject(2), Role: rooms.RoleParticipant})
	wantErr(t, "admission on facts from before the lock", err, rooms.ErrLocked)
	if err := n.A.Unlock(ctx, room); err != nil {
		t.Fatal(err)
	}

	seen(3)
	p := admit(t, n.A, room, 3, rooms.RoleParticipant)
	if _, err := n.A.Remove(ctx, room, p.ID, true); err != nil {
		t.Fatal(err)
	}
	_, err = n.B.Admit(ctx, rooms.Admission{Room: room, Subject: Subject(3), Role: rooms.RoleParticipant})
	wantErr(t, "admission on facts from before the ban", err, rooms.ErrBanned)

	seen(4)
	admit(t, n.A, room, 5, rooms.RoleParticipant)
	_, err = n.B.Admit(ctx, rooms.Admission{Room: room, Subject: Subject(4), Role: rooms.RoleParticipant})
	wantErr(t, "admission on facts from before the room filled", err, rooms.ErrRoomFull)
}

// testStartJoinStorm is the gateway's join storm at the store: 302 joins
// over two nodes into a room of 300, each reading with StartJoin and then
// admitting. Every join may see a seat; exactly 300 get one.
func testStartJoinStorm(t *testing.T, h Harness) {
	const capacity, clients = 300, 302
	cfg := startJoinConfig()
	n := h.New(t, cfg)
	put(t, n.A, room, rooms.SettingsChange{Capacity: ptr(capacity)})
	var admitted, full atomic.Int64
	var mu sync.Mutex
	var other []error
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range clients {
		node := []rooms.Store{n.A, n.B}[i%2]
		wg.Go(func() {
			<-start
			ctx := context.Background()
			s := Subject(1000 + i)
			_, f, err := node.StartJoin(ctx, rooms.Attempt{Identity: s, IP: IP(1), Room: room})
			if err == nil && (!f.Exists || f.Capacity != capacity) {
				err = errors.New("facts do not show the room")
			}
			if err == nil {
				_, err = node.Admit(ctx, rooms.Admission{Room: room, Subject: s, Role: rooms.RoleParticipant})
			}
			switch {
			case err == nil:
				admitted.Add(1)
			case errors.Is(err, rooms.ErrRoomFull):
				full.Add(1)
			default:
				mu.Lock()
				other = append(other, err)
				mu.Unlock()
			}
		})
	}
	close(start)
	wg.Wait()
	if len(other) > 0 {
		t.Fatalf("%d joins failed otherwise, first: %v", len(other), other[0])
	}
	if admitted.Load() != capacity || full.Load() != clients-capacity {
		t.Fatalf("admitted %d, full %d; want exactly %d and %d", admitted.Load(), full.Load(), capacity, clients-capacity)
	}
	if f := facts(t, n.B, room, ""); f.Occupancy != capacity {
		t.Fatalf("occupancy %d, want %d", f.Occupancy, capacity)
	}
	// All 302 from one address were counted there.
	hist, err := n.A.BeginJoin(context.Background(), rooms.Attempt{IP: IP(1)})
	if err != nil || hist.IP.JoinAttempts != clients+1 {
		t.Fatalf("address history after the storm: %+v, %v; want %d attempts", hist.IP, err, clients+1)
	}
}
