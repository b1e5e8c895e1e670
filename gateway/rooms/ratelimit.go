package rooms

import (
	"net/netip"
	"time"
)

// Attempt is who is trying to join: the rate limits count per identity and
// per client IP. The gateway takes IP from the connection, or from
// X-Forwarded-For only when the peer is a trusted proxy.
type Attempt struct {
	// Identity may be empty for callers without one; then only the IP
	// counts.
	Identity SubjectKey
	IP       netip.Addr
}

// Validate checks that IP is set and Identity, if set, is well formed.
func (a Attempt) Validate() error {
	if !a.IP.IsValid() {
		return invalid("ip", "missing")
	}
	if a.Identity != "" {
		return a.Identity.Validate()
	}
	return nil
}

// IPKey is the unit an IP is counted in: the address for IPv4 (and
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

// Failure is a kind of failed join.
type Failure int

const (
	// FailureJoin: the join was denied (policy, missing room, locked,
	// banned, full).
	FailureJoin Failure = iota + 1
	// FailurePasscode: the passcode was wrong. Counts as a join failure
	// too, and drives the backoff.
	FailurePasscode
)

// Counts are one key's numbers for the policy's history input.
type Counts struct {
	// JoinAttempts and JoinFailures count the current window.
	JoinAttempts int `json:"join_attempts"`
	JoinFailures int `json:"join_failures"`
	// PasscodeFailures counts since failures began, until FailureMemory
	// passes without one.
	PasscodeFailures int `json:"passcode_failures"`
}

// History is the policy input's history object.
type History struct {
	Identity      Counts `json:"identity"`
	IP            Counts `json:"ip"`
	WindowSeconds int    `json:"window_seconds"`
}

// Backoff is how long an identity and IP are blocked after identity and
// ip passcode failures: nothing until either count reaches its threshold,
// then BackoffBase doubling with each further failure, capped at
// BackoffMax. Both stores implement exactly this.
func (r RateLimits) Backoff(identity, ip int) time.Duration {
	return max(backoff(identity, r.PasscodeFailuresPerIdentity, r.BackoffBase, r.BackoffMax),
		backoff(ip, r.PasscodeFailuresPerIP, r.BackoffBase, r.BackoffMax))
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
