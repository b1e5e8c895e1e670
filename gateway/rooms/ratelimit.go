package rooms

import (
	"context"
	"net/netip"
	"time"
)

// The rate limits follow one model (docs/configuration.md, "Rate limits"):
//
//   - Identity first. Every caller is authenticated, so the identity is the
//     unit of abuse: its own join attempts and passcode failures block it,
//     from any address, and never anyone else.
//   - Addresses are a backstop against account farms, fair to NAT: an
//     address counts only what indicates abuse (passcode guesses by anyone,
//     refusals of people the policy does not vouch for), never capacity or
//     lobby outcomes. An address over its limit refuses only identities
//     that failed themselves (here) and, through the policy, those it does
//     not vouch for; colleagues in good standing behind the same NAT are
//     never refused because of it.
//   - Rooms protect themselves: once a room's budget of wrong passcodes in
//     its window is spent, the policy sends everyone but hosts to the
//     waiting room instead of admitting them on a passcode.

// Attempt is who is trying to join: the rate limits count per identity,
// per client address and per room. The gateway takes IP from the
// connection, or from X-Forwarded-For only when the peer is a trusted
// proxy.
type Attempt struct {
	// Identity may be empty for callers without one; then the address
	// limits apply to it as to an identity that failed.
	Identity SubjectKey
	IP       netip.Addr
	// Room, if set, is read by BeginJoin (its passcode budget) and charged
	// by RecordFailure with FailurePasscode. Leave it empty for rooms that
	// do not exist or have no passcode, so guesses at names create nothing.
	Room string
	// Member is the policy's word that the identity belongs to the
	// organisation (staff or host). Only RecordFailure reads it: a
	// member's refusal for anything but a passcode is not counted against
	// the address.
	Member bool
}

// Validate checks that IP is set and Identity and Room, if set, are well
// formed.
func (a Attempt) Validate() error {
	if !a.IP.IsValid() {
		return invalid("ip", "missing")
	}
	if a.Room != "" {
		if err := ValidateRoomID(a.Room); err != nil {
			return err
		}
	}
	if a.Identity != "" {
		return a.Identity.Validate()
	}
	return nil
}

// IPKey is the unit an address is counted in: the address for IPv4 (and
// IPv4-mapped IPv6), the /64 for IPv6, since one host usually owns a
// whole /64 and could otherwise rotate through it.
func (a Attempt) IPKey() string {
	ip := a.IP.Unmap()
	if ip.Is4() {
		return ip.String()
	}
	p, _ := ip.WithZone("").Prefix(64)
	return p.String()
}

// Failure is a kind of failed join. Capacity and lobby outcomes (room
// full, waiting list full) are not failures: callers do not record them.
type Failure int

const (
	// FailureJoin: the join was refused (policy, missing room, locked,
	// banned). Counts for the identity; for the address only when the
	// attempt is not a Member's.
	FailureJoin Failure = iota + 1
	// FailurePasscode: the passcode was wrong. Counts as a join failure
	// too, for the identity (driving its backoff), for the address
	// whoever guessed, and against the room's passcode budget.
	FailurePasscode
)

// Unit is what a rate limit is about: the audit log says which, so that a
// security team can tell an attack on a room from a busy office.
type Unit string

const (
	UnitIdentity Unit = "identity"
	UnitAddress  Unit = "address"
	UnitRoom     Unit = "room"
)

// Reasons a limit was reached, for RateLimitedError.Reason and the audit
// log.
const (
	// ReasonJoinAttempts: the identity tried to join too often in the
	// window.
	ReasonJoinAttempts = "join_attempts"
	// ReasonPasscodeFailures: the identity is in its passcode backoff.
	ReasonPasscodeFailures = "passcode_failures"
	// ReasonAddressFailures: the address is over its abuse limit and this
	// identity failed itself (or has none).
	ReasonAddressFailures = "address_failures"
	// ReasonPasscodeAttack: a room's passcode budget is spent.
	ReasonPasscodeAttack = "passcode_attack"
)

// Counts are one identity's or address's numbers for the policy's history
// input.
type Counts struct {
	// JoinAttempts and JoinFailures count the current window. For an
	// address, JoinFailures counts only abuse indicators (see Failure).
	JoinAttempts int `json:"join_attempts"`
	JoinFailures int `json:"join_failures"`
	// PasscodeFailures: for an identity, since its failures began, until
	// FailureMemory passes without one; for an address, in the window.
	PasscodeFailures int `json:"passcode_failures"`
}

// AddressCounts are the client address's numbers and standing.
type AddressCounts struct {
	Counts
	// Trusted: the address is in RateLimits.TrustedNetworks.
	Trusted bool `json:"trusted"`
	// Limited: the address reached its failure limit in this window.
	Limited bool `json:"limited"`
}

// RoomCounts are the room's passcode budget.
type RoomCounts struct {
	// PasscodeFailures in the room's passcode window, from anyone.
	PasscodeFailures int `json:"passcode_failures"`
	// PasscodeAttack: the budget is spent; passcode entry no longer
	// admits directly until the window ends.
	PasscodeAttack bool `json:"passcode_attack"`
	// AttackBegan is set on the one RecordFailure that spent the budget,
	// so that exactly one node records the attack.
	AttackBegan bool `json:"-"`
}

// History is the policy input's history object.
type History struct {
	Identity      Counts        `json:"identity"`
	IP            AddressCounts `json:"ip"`
	Room          RoomCounts    `json:"room"`
	WindowSeconds int           `json:"window_seconds"`
	// WindowLeft is how long the current counting window still runs: how
	// long a window-based refusal lasts.
	WindowLeft time.Duration `json:"-"`
	// PasscodeMemoryLeft is how long the identity's passcode failures
	// are still remembered (zero without any): how long a refusal for them
	// lasts.
	PasscodeMemoryLeft time.Duration `json:"-"`
}

// Failed reports whether the identity has failures of its own on record
// (in the window, or passcode failures in memory).
func (c Counts) Failed() bool { return c.JoinFailures > 0 || c.PasscodeFailures > 0 }

// Backoff is how long an identity is blocked after n passcode failures:
// nothing until n reaches PasscodeFailuresPerIdentity, then BackoffBase
// doubling with each further failure, capped at BackoffMax. Both stores
// implement exactly this.
func (r RateLimits) Backoff(n int) time.Duration {
	return backoff(n, r.PasscodeFailuresPerIdentity, r.BackoffBase, r.BackoffMax)
}

func backoff(n, threshold int, base, ceiling time.Duration) time.Duration {
	if n < threshold {
		return 0
	}
	d := base
	for k := n - threshold; k > 0 && d < ceiling; k-- {
		d *= 2
	}
	return min(d, ceiling)
}

// Trusted reports whether ip is in one of the trusted networks (the
// organisation's own egress addresses).
func (r RateLimits) Trusted(ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, p := range r.trusted {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// AddressLimit is the failure limit for ip's address.
func (r RateLimits) AddressLimit(ip netip.Addr) int {
	if r.Trusted(ip) {
		return r.FailuresPerTrustedAddress
	}
	return r.FailuresPerAddress
}

// PasscodeBudgets is implemented by both stores: a room's passcode budget,
// read without counting anything, for the host's view of the room ("this
// room's passcode is under attack").
type PasscodeBudgets interface {
	PasscodeBudget(ctx context.Context, room string) (RoomCounts, error)
}
