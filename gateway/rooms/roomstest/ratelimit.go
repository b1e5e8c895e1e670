package roomstest

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/meetguard/meetguard/gateway/rooms"
)

// rateLimitTests are the conformance tests of the rate-limit model
// (rooms/ratelimit.go): identity first, addresses as a backstop fair to
// NAT, rooms that protect themselves.
var rateLimitTests = []struct {
	name string
	fn   func(*testing.T, Harness)
}{
	{"RateLimit_JoinAttemptsPerIdentityNeverPerAddress", testJoinAttemptLimits},
	{"RateLimit_PasscodeBackoffBlocksOnlyTheIdentityFromAnyAddress", testPasscodeBruteForce},
	{"RateLimit_AddressCountsAbuseAndRefusesOnlyThoseWhoFailed", testAddressBackstop},
	{"RateLimit_TrustedNetworksHaveTheirOwnLimit", testTrustedNetworks},
	{"RateLimit_IPv6CountsPerSlash64", testIPv6Prefix},
	{"RateLimit_RoomPasscodeBudget", testRoomPasscodeBudget},
	{"RateLimit_JoinFailuresAreCountedForPolicy", testJoinFailureHistory},
}

func rateConfig(rl rooms.RateLimits) rooms.Config {
	cfg := testConfig()
	cfg.RateLimits = rl
	return cfg
}

func testJoinAttemptLimits(t *testing.T, h Harness) {
	n := h.New(t, rateConfig(rooms.RateLimits{Window: time.Minute, JoinAttemptsPerIdentity: 3}))
	ctx := t.Context()
	ip := IP(1)
	for i := range 3 {
		node := []rooms.Store{n.A, n.B}[i%2]
		hist, err := node.BeginJoin(ctx, rooms.Attempt{Identity: Subject(1), IP: ip})
		if err != nil {
			t.Fatalf("attempt %d: %v", i+1, err)
		}
		if hist.Identity.JoinAttempts != i+1 || hist.IP.JoinAttempts != i+1 || hist.WindowSeconds != 60 ||
			hist.WindowLeft <= 0 || hist.WindowLeft > time.Minute {
			t.Fatalf("attempt %d history = %+v", i+1, hist)
		}
	}
	_, err := n.A.BeginJoin(ctx, rooms.Attempt{Identity: Subject(1), IP: IP(2)})
	var rl *rooms.RateLimitedError
	if !errors.As(err, &rl) || rl.Unit != rooms.UnitIdentity || rl.Reason != rooms.ReasonJoinAttempts ||
		rl.RetryAfter <= 0 || rl.RetryAfter > time.Minute {
		t.Fatalf("4th attempt of one identity from a new IP = %v, want the identity limited within the window", err)
	}
	// An all-hands behind one NAT address: attempts alone never limit an
	// address.
	for i := range 1200 {
		node := []rooms.Store{n.A, n.B}[i%2]
		if _, err := node.BeginJoin(ctx, rooms.Attempt{Identity: Subject(100 + i), IP: ip}); err != nil {
			t.Fatalf("colleague %d on the shared address: %v", i, err)
		}
	}
}

// join is the gateway's passcode path, the one an attacker drives.
func join(ctx context.Context, s rooms.Store, pc *rooms.Passcodes, a rooms.Attempt, hash, guess string) (bool, error) {
	if _, err := s.BeginJoin(ctx, a); err != nil {
		return false, err
	}
	ok, err := pc.Verify(ctx, hash, guess)
	if err != nil {
		return false, err
	}
	if !ok {
		_, err := s.RecordFailure(ctx, a, rooms.FailurePasscode)
		return false, err
	}
	return true, nil
}

func testPasscodeBruteForce(t *testing.T, h Harness) {
	const base = 800 * time.Millisecond
	n := h.New(t, rateConfig(rooms.RateLimits{
		Window: time.Hour, JoinAttemptsPerIdentity: 1000, PasscodeFailuresPerIdentity: 3,
		BackoffBase: base, BackoffMax: 10 * base, FailuresPerAddress: 1000,
	}))
	ctx := t.Context()
	pc, err := rooms.NewPasscodes(rooms.PasscodeOptions{Params: rooms.PasscodeParams{MemoryKiB: 64, Time: 1, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	hash, err := pc.Hash(ctx, "424242")
	if err != nil {
		t.Fatal(err)
	}
	attacker := rooms.Attempt{Identity: Subject(66), IP: IP(66)}
	for i, guess := range []string{"000000", "000001", "000002"} {
		node := []rooms.Store{n.A, n.B}[i%2]
		if ok, err := join(ctx, node, pc, attacker, hash, guess); ok || err != nil {
			t.Fatalf("guess %d = %v, %v; want a plain failure", i+1, ok, err)
		}
	}
	var rl *rooms.RateLimitedError
	for name, a := range map[string]rooms.Attempt{
		"the right passcode":                 attacker,
		"the right passcode from another IP": {Identity: Subject(66), IP: IP(67)},
	} {
		ok, err := join(ctx, n.B, pc, a, hash, "424242")
		if ok || !errors.As(err, &rl) || rl.Unit != rooms.UnitIdentity || rl.Reason != rooms.ReasonPasscodeFailures ||
			rl.RetryAfter <= 0 || rl.RetryAfter > base {
			t.Fatalf("%s after 3 failures = %v, %v; want the identity blocked for at most %s", name, ok, err, base)
		}
	}
	// A colleague behind the same address is not punished for the
	// attacker's failures.
	if ok, err := join(ctx, n.A, pc, rooms.Attempt{Identity: Subject(67), IP: IP(66)}, hash, "424242"); !ok || err != nil {
		t.Fatalf("a colleague on the attacker's address = %v, %v; want admitted", ok, err)
	}
	n.Advance(base + 200*time.Millisecond)
	if ok, err := join(ctx, n.A, pc, attacker, hash, "000003"); ok || err != nil {
		t.Fatalf("first guess after the backoff = %v, %v; want allowed and wrong", ok, err)
	}
	// The 4th failure doubles the block.
	n.Advance(base + 200*time.Millisecond)
	_, err = n.A.BeginJoin(ctx, attacker)
	if !errors.As(err, &rl) || rl.Reason != rooms.ReasonPasscodeFailures {
		t.Fatalf("one base after the 4th failure = %v; want still blocked (backoff doubled)", err)
	}
	n.Advance(base)
	ok, err := join(ctx, n.B, pc, attacker, hash, "424242")
	if !ok || err != nil {
		t.Fatalf("right passcode after the doubled backoff = %v, %v; want admitted", ok, err)
	}
	hist, err := n.B.BeginJoin(ctx, attacker)
	if err != nil || hist.Identity.PasscodeFailures != 4 || hist.IP.PasscodeFailures != 4 ||
		hist.PasscodeMemoryLeft <= 0 || hist.PasscodeMemoryLeft > 24*time.Hour {
		t.Fatalf("history = %+v, %v; want 4 passcode failures for identity and IP, remembered for up to a day", hist, err)
	}
}

func testAddressBackstop(t *testing.T, h Harness) {
	n := h.New(t, rateConfig(rooms.RateLimits{Window: time.Hour, FailuresPerAddress: 4, PasscodeFailuresPerIdentity: 100}))
	ctx := t.Context()
	office := IP(7)
	// Members' refusals (not their passcodes) are not abuse indicators.
	for i := range 10 {
		a := rooms.Attempt{Identity: Subject(200 + i), IP: office, Member: true}
		if _, err := n.A.BeginJoin(ctx, a); err != nil {
			t.Fatal(err)
		}
		if _, err := n.B.RecordFailure(ctx, a, rooms.FailureJoin); err != nil {
			t.Fatal(err)
		}
	}
	hist, err := n.A.BeginJoin(ctx, rooms.Attempt{Identity: Subject(300), IP: office})
	if err != nil || hist.IP.JoinFailures != 0 || hist.IP.Limited {
		t.Fatalf("after 10 members' refusals = %+v, %v; want nothing counted against the address", hist, err)
	}
	// Non-members' refusals and anyone's passcode guesses are.
	a1 := rooms.Attempt{Identity: Subject(1), IP: office}
	a2 := rooms.Attempt{Identity: Subject(2), IP: office, Member: true}
	for _, f := range []struct {
		a rooms.Attempt
		f rooms.Failure
	}{{a1, rooms.FailureJoin}, {a1, rooms.FailureJoin}, {a2, rooms.FailurePasscode}} {
		if _, err := n.B.RecordFailure(ctx, f.a, f.f); err != nil {
			t.Fatal(err)
		}
	}
	if hist, err := n.A.BeginJoin(ctx, a1); err != nil || hist.IP.Limited || hist.IP.JoinFailures != 3 || hist.IP.PasscodeFailures != 1 {
		t.Fatalf("3 indicators under a limit of 4 = %+v, %v", hist, err)
	}
	if _, err := n.A.RecordFailure(ctx, rooms.Attempt{Identity: Subject(3), IP: office}, rooms.FailureJoin); err != nil {
		t.Fatal(err)
	}
	var rl *rooms.RateLimitedError
	for name, a := range map[string]rooms.Attempt{
		"a non-member that failed":   a1,
		"a member that failed":       a2,
		"a caller without identity":  {IP: office},
		"a failed one, other member": {Identity: Subject(3), IP: office, Member: true},
	} {
		_, err := n.B.BeginJoin(ctx, a)
		if !errors.As(err, &rl) || rl.Unit != rooms.UnitAddress || rl.Reason != rooms.ReasonAddressFailures ||
			rl.RetryAfter <= 0 || rl.RetryAfter > time.Hour {
			t.Fatalf("%s at a limited address = %v; want refused for the address", name, err)
		}
	}
	// Identities that did not fail are not refused by the store; the
	// history tells the policy, which knows who is a member.
	hist, err = n.A.BeginJoin(ctx, rooms.Attempt{Identity: Subject(400), IP: office})
	if err != nil || !hist.IP.Limited || hist.IP.Trusted {
		t.Fatalf("an identity without failures at a limited address = %+v, %v; want admitted to the policy with ip.limited", hist, err)
	}
	// The failed ones are not refused elsewhere for the address.
	if _, err := n.A.BeginJoin(ctx, rooms.Attempt{Identity: Subject(1), IP: IP(8)}); err != nil {
		t.Fatalf("a failed identity from another address: %v", err)
	}
}

func testTrustedNetworks(t *testing.T, h Harness) {
	n := h.New(t, rateConfig(rooms.RateLimits{Window: time.Hour, FailuresPerAddress: 2, FailuresPerTrustedAddress: 5,
		TrustedNetworks: []string{"198.18.1.0/24", "2001:db8:5::/48"}}))
	ctx := t.Context()
	for _, tc := range []struct {
		ip      netip.Addr
		trusted bool
		limit   int
	}{
		{IP(0x0107), true, 5},
		{netip.MustParseAddr("::ffff:198.18.1.9"), true, 5},
		{netip.MustParseAddr("2001:db8:5:1::1"), true, 5},
		{IP(0x0207), false, 2},
		{netip.MustParseAddr("2001:db8:6::1"), false, 2},
	} {
		for i := range tc.limit {
			a := rooms.Attempt{Identity: Subject(500 + i), IP: tc.ip}
			hist, err := n.A.BeginJoin(ctx, a)
			if err != nil || hist.IP.Limited || hist.IP.Trusted != tc.trusted {
				t.Fatalf("%s before %d failures = %+v, %v", tc.ip, i, hist, err)
			}
			if _, err := n.B.RecordFailure(ctx, a, rooms.FailureJoin); err != nil {
				t.Fatal(err)
			}
		}
		hist, err := n.A.BeginJoin(ctx, rooms.Attempt{Identity: Subject(999), IP: tc.ip})
		if err != nil || !hist.IP.Limited {
			t.Fatalf("%s after %d failures = %+v, %v; want limited", tc.ip, tc.limit, hist, err)
		}
	}
}

func testIPv6Prefix(t *testing.T, h Harness) {
	n := h.New(t, rateConfig(rooms.RateLimits{FailuresPerAddress: 2}))
	ctx := t.Context()
	for i, ip := range []string{"2001:db8:1:2::1", "2001:db8:1:2:ffff::9"} {
		if _, err := n.A.RecordFailure(ctx, rooms.Attempt{Identity: Subject(i), IP: netip.MustParseAddr(ip)}, rooms.FailureJoin); err != nil {
			t.Fatalf("failure %d: %v", i+1, err)
		}
	}
	_, err := n.B.BeginJoin(ctx, rooms.Attempt{Identity: Subject(0), IP: netip.MustParseAddr("2001:db8:1:2:dead:beef::1")})
	wantErr(t, "a failed identity from a third address in the same /64", err, rooms.ErrRateLimited)
	if _, err := n.B.BeginJoin(ctx, rooms.Attempt{Identity: Subject(0), IP: netip.MustParseAddr("2001:db8:1:3::1")}); err != nil {
		t.Fatalf("another /64: %v", err)
	}
	if _, err := n.B.BeginJoin(ctx, rooms.Attempt{IP: netip.MustParseAddr("::ffff:198.18.0.1")}); err != nil {
		t.Fatal(err)
	}
	if h, err := n.A.BeginJoin(ctx, rooms.Attempt{IP: netip.MustParseAddr("198.18.0.1")}); err != nil || h.IP.JoinAttempts != 2 {
		t.Fatalf("IPv4-mapped and plain IPv4 must count as one: %+v, %v", h, err)
	}
}

func testRoomPasscodeBudget(t *testing.T, h Harness) {
	n := h.New(t, rateConfig(rooms.RateLimits{Window: time.Hour, RoomPasscodeFailures: 5, RoomPasscodeWindow: time.Hour}))
	ctx := t.Context()
	// Refusals that are not passcode guesses do not spend the budget.
	if _, err := n.A.RecordFailure(ctx, rooms.Attempt{Identity: Subject(1), IP: IP(1), Room: room}, rooms.FailureJoin); err != nil {
		t.Fatal(err)
	}
	began := 0
	for i := range 7 {
		// Distributed: a new identity on a new address every time.
		a := rooms.Attempt{Identity: Subject(10 + i), IP: IP(10 + i), Room: room}
		node := []rooms.Store{n.A, n.B}[i%2]
		before, err := node.BeginJoin(ctx, a)
		if err != nil {
			t.Fatal(err)
		}
		if before.Room.PasscodeFailures != i || before.Room.PasscodeAttack != (i >= 5) {
			t.Fatalf("guess %d: room history = %+v", i+1, before.Room)
		}
		hist, err := node.RecordFailure(ctx, a, rooms.FailurePasscode)
		if err != nil {
			t.Fatal(err)
		}
		if hist.Room.AttackBegan {
			began++
			if i != 4 {
				t.Fatalf("attack began at guess %d, want 5", i+1)
			}
		}
	}
	if began != 1 {
		t.Fatalf("attack began %d times, want once", began)
	}
	hist, err := n.B.BeginJoin(ctx, rooms.Attempt{Identity: Subject(99), IP: IP(99), Room: room})
	if err != nil || !hist.Room.PasscodeAttack || hist.IP.Limited {
		t.Fatalf("a newcomer = %+v, %v; want the room under attack, nobody refused", hist, err)
	}
	if hist, err := n.A.BeginJoin(ctx, rooms.Attempt{Identity: Subject(99), IP: IP(99), Room: "other"}); err != nil || hist.Room.PasscodeAttack || hist.Room.PasscodeFailures != 0 {
		t.Fatalf("another room = %+v, %v", hist, err)
	}
	// The host's view reads the budget without spending or counting.
	for name, s := range map[string]rooms.Store{"A": n.A, "B": n.B} {
		b, ok := s.(rooms.PasscodeBudgets)
		if !ok {
			t.Fatalf("store %s does not report passcode budgets", name)
		}
		for i := range 2 {
			got, err := b.PasscodeBudget(ctx, room)
			if err != nil || got != (rooms.RoomCounts{PasscodeFailures: 7, PasscodeAttack: true}) {
				t.Fatalf("budget of %s via %s (read %d) = %+v, %v", room, name, i, got, err)
			}
		}
		if got, err := b.PasscodeBudget(ctx, "other"); err != nil || got != (rooms.RoomCounts{}) {
			t.Fatalf("budget of another room = %+v, %v", got, err)
		}
		_, err := b.PasscodeBudget(ctx, "no such/room")
		wantErr(t, "budget of a bad room id", err, rooms.ErrInvalid)
	}
}

func testJoinFailureHistory(t *testing.T, h Harness) {
	n := h.New(t, testConfig())
	ctx := t.Context()
	a := rooms.Attempt{Identity: Subject(1), IP: IP(1)}
	for range 3 {
		if _, err := n.A.BeginJoin(ctx, a); err != nil {
			t.Fatal(err)
		}
		if _, err := n.B.RecordFailure(ctx, a, rooms.FailureJoin); err != nil {
			t.Fatal(err)
		}
	}
	hist, err := n.A.RecordFailure(ctx, a, rooms.FailurePasscode)
	if err != nil {
		t.Fatal(err)
	}
	want := rooms.Counts{JoinAttempts: 3, JoinFailures: 4, PasscodeFailures: 1}
	if hist.Identity != want || hist.IP.Counts != want {
		t.Fatalf("history = %+v, want %+v for identity and IP", hist, want)
	}
	_, err = n.A.RecordFailure(ctx, a, rooms.Failure(9))
	wantErr(t, "unknown failure kind", err, rooms.ErrInvalid)
	_, err = n.A.BeginJoin(ctx, rooms.Attempt{Identity: Subject(1)})
	wantErr(t, "attempt without IP", err, rooms.ErrInvalid)
	_, err = n.A.BeginJoin(ctx, rooms.Attempt{IP: IP(1), Room: "not a room id"})
	wantErr(t, "attempt with a bad room", err, rooms.ErrInvalid)
}
