package rooms

import (
	"errors"
	"time"
)

// Config is how rooms behave; both stores take it. Zero fields take the
// default written beside them. The YAML names are those under `rooms:`.
type Config struct {
	// DefaultCapacity applies to rooms created without one. Default 100.
	DefaultCapacity int `yaml:"default_capacity"`
	// MaxCapacity bounds what a host may set. Default 1000.
	MaxCapacity int `yaml:"max_capacity"`
	// EmptyRoomTTL: a room with no admitted participant ends after this
	// long (rooms from config never end). Default 15m.
	EmptyRoomTTL time.Duration `yaml:"empty_room_ttl"`
	// BanTTL: bans outlive their room by this long, so ending and
	// recreating a room does not lift them. Default 24h.
	BanTTL time.Duration `yaml:"ban_ttl"`
	// ParticipantLease: an admission lapses unless Touch renews it within
	// this long, so a crashed node does not hold seats forever. Default 2m.
	ParticipantLease time.Duration `yaml:"participant_lease"`
	// WaitTTL: a waiting entry nobody acts on expires after this long.
	// Default 10m.
	WaitTTL time.Duration `yaml:"wait_ttl"`
	// LobbyPerRoom caps a room's waiting list. Default 50.
	LobbyPerRoom int `yaml:"lobby_per_room"`
	// LobbyPerIdentity caps one subject's entries on one waiting list.
	// Default 2.
	LobbyPerIdentity int `yaml:"lobby_per_identity"`
	// RateLimits govern join attempts and passcode failures.
	RateLimits RateLimits `yaml:"rate_limits"`
}

// RateLimits are per identity (subject key) and per client IP (an IPv4
// address or an IPv6 /64), shared by every node using the same store.
type RateLimits struct {
	// Window is the fixed counting window for join attempts and failures.
	// Default 1m.
	Window time.Duration `yaml:"window"`
	// JoinAttemptsPerIdentity per window. Default 30.
	JoinAttemptsPerIdentity int `yaml:"join_attempts_per_identity"`
	// JoinAttemptsPerIP per window; higher because of NAT. Default 300.
	JoinAttemptsPerIP int `yaml:"join_attempts_per_ip"`
	// PasscodeFailuresPerIdentity before the identity and its IP are
	// blocked. Default 5.
	PasscodeFailuresPerIdentity int `yaml:"passcode_failures_per_identity"`
	// PasscodeFailuresPerIP before the IP and the identity are blocked.
	// Default 20.
	PasscodeFailuresPerIP int `yaml:"passcode_failures_per_ip"`
	// BackoffBase is the first block; each further failure doubles it.
	// Default 30s.
	BackoffBase time.Duration `yaml:"backoff_base"`
	// BackoffMax caps the block. Default 1h.
	BackoffMax time.Duration `yaml:"backoff_max"`
	// FailureMemory: passcode-failure counts reset after this long without
	// a new failure. At least BackoffMax. Default 24h.
	FailureMemory time.Duration `yaml:"failure_memory"`
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	def(&c.DefaultCapacity, 100)
	def(&c.MaxCapacity, 1000)
	def(&c.EmptyRoomTTL, 15*time.Minute)
	def(&c.BanTTL, 24*time.Hour)
	def(&c.ParticipantLease, 2*time.Minute)
	def(&c.WaitTTL, 10*time.Minute)
	def(&c.LobbyPerRoom, 50)
	def(&c.LobbyPerIdentity, 2)
	r := &c.RateLimits
	def(&r.Window, time.Minute)
	def(&r.JoinAttemptsPerIdentity, 30)
	def(&r.JoinAttemptsPerIP, 300)
	def(&r.PasscodeFailuresPerIdentity, 5)
	def(&r.PasscodeFailuresPerIP, 20)
	def(&r.BackoffBase, 30*time.Second)
	def(&r.BackoffMax, time.Hour)
	def(&r.FailureMemory, 24*time.Hour)
	return c
}

func def[T int | time.Duration](p *T, v T) {
	if *p == 0 {
		*p = v
	}
}

// Validate reports every bad field of c after defaults, by YAML path.
func (c Config) Validate() error {
	c = c.WithDefaults()
	var errs []error
	bad := func(field, reason string) { errs = append(errs, invalid("rooms."+field, reason)) }
	positive := func(field string, v int64) {
		if v < 0 {
			bad(field, "must not be negative")
		}
	}
	positive("default_capacity", int64(c.DefaultCapacity))
	positive("max_capacity", int64(c.MaxCapacity))
	positive("lobby_per_room", int64(c.LobbyPerRoom))
	positive("lobby_per_identity", int64(c.LobbyPerIdentity))
	r := c.RateLimits
	positive("rate_limits.join_attempts_per_identity", int64(r.JoinAttemptsPerIdentity))
	positive("rate_limits.join_attempts_per_ip", int64(r.JoinAttemptsPerIP))
	positive("rate_limits.passcode_failures_per_identity", int64(r.PasscodeFailuresPerIdentity))
	positive("rate_limits.passcode_failures_per_ip", int64(r.PasscodeFailuresPerIP))
	for _, d := range []struct {
		field string
		v     time.Duration
	}{
		{"empty_room_ttl", c.EmptyRoomTTL}, {"ban_ttl", c.BanTTL}, {"participant_lease", c.ParticipantLease},
		{"wait_ttl", c.WaitTTL}, {"rate_limits.window", r.Window}, {"rate_limits.backoff_base", r.BackoffBase},
		{"rate_limits.backoff_max", r.BackoffMax}, {"rate_limits.failure_memory", r.FailureMemory},
	} {
		if d.v < time.Millisecond {
			bad(d.field, "must be at least 1ms")
		}
	}
	if c.DefaultCapacity > c.MaxCapacity {
		bad("default_capacity", "must not exceed max_capacity")
	}
	if c.LobbyPerIdentity > c.LobbyPerRoom {
		bad("lobby_per_identity", "must not exceed lobby_per_room")
	}
	if r.BackoffMax < r.BackoffBase {
		bad("rate_limits.backoff_max", "must be at least backoff_base")
	}
	if r.FailureMemory < r.BackoffMax {
		bad("rate_limits.failure_memory", "must be at least backoff_max")
	}
	return errors.Join(errs...)
}
