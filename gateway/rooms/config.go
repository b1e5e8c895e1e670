package rooms

import (
	"errors"
	"fmt"
	"net/netip"
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
	// WaitTTL: a waiting entry nobody acts on expires after this long,
	// however long its client keeps waiting. Default 10m.
	WaitTTL time.Duration `yaml:"wait_ttl"`
	// KnockTTL: a waiting entry expires this long after its client's last
	// heartbeat (the knock itself, then every wait poll or stream), so a
	// closed waiting page leaves the lobby. Default 45s.
	KnockTTL time.Duration `yaml:"knock_ttl"`
	// KnockHeartbeat is how often a waiting client's open poll or stream
	// renews its entry; less than KnockTTL. Default 15s.
	KnockHeartbeat time.Duration `yaml:"knock_heartbeat"`
	// LobbyPerRoom caps a room's waiting list. Default 50.
	LobbyPerRoom int `yaml:"lobby_per_room"`
	// LobbyPerIdentity is no longer used: a subject has at most one entry
	// on a waiting list (a second knock replaces the first). Still
	// validated so that existing configurations keep loading. Default 2.
	LobbyPerIdentity int `yaml:"lobby_per_identity"`
	// RateLimits govern join attempts and passcode failures.
	RateLimits RateLimits `yaml:"rate_limits"`
}

// RateLimits are per identity (subject key), per client address (an IPv4
// address or an IPv6 /64) and per room, shared by every node using the
// same store. The model is in ratelimit.go and docs/configuration.md.
type RateLimits struct {
	// Window is the fixed counting window for join attempts and failures.
	// Default 1m.
	Window time.Duration `yaml:"window"`
	// JoinAttemptsPerIdentity per window. Default 30.
	JoinAttemptsPerIdentity int `yaml:"join_attempts_per_identity"`
	// PasscodeFailuresPerIdentity before the identity (only it, from any
	// address) is blocked. Default 5.
	PasscodeFailuresPerIdentity int `yaml:"passcode_failures_per_identity"`
	// BackoffBase is the first block; each further failure doubles it.
	// Default 30s.
	BackoffBase time.Duration `yaml:"backoff_base"`
	// BackoffMax caps the block. Default 1h.
	BackoffMax time.Duration `yaml:"backoff_max"`
	// FailureMemory: an identity's passcode-failure count resets after
	// this long without a new failure. At least BackoffMax. Default 24h.
	FailureMemory time.Duration `yaml:"failure_memory"`
	// FailuresPerAddress: abuse indicators (passcode guesses by anyone,
	// refusals of non-members) from one address in a window before the
	// address is limited: until the window ends it refuses identities
	// that failed themselves, and the shipped policy refuses those it does
	// not vouch for. Members in good standing are never refused for it.
	// Default 50.
	FailuresPerAddress int `yaml:"failures_per_address"`
	// TrustedNetworks are CIDRs of the organisation's own egress
	// addresses (office NAT, VPN); they get FailuresPerTrustedAddress.
	TrustedNetworks []string `yaml:"trusted_networks"`
	// FailuresPerTrustedAddress replaces FailuresPerAddress for addresses
	// in TrustedNetworks. Default 500.
	FailuresPerTrustedAddress int `yaml:"failures_per_trusted_address"`
	// RoomPasscodeFailures is a room's budget of wrong passcodes (from
	// anyone, any address) per RoomPasscodeWindow; once spent, the policy
	// sends everyone but hosts to the waiting room. Default 50.
	RoomPasscodeFailures int `yaml:"room_passcode_failures"`
	// RoomPasscodeWindow is the fixed window of the room budget. Default
	// 10m.
	RoomPasscodeWindow time.Duration `yaml:"room_passcode_window"`

	// trusted is TrustedNetworks parsed by WithDefaults.
	trusted []netip.Prefix
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	def(&c.DefaultCapacity, 100)
	def(&c.MaxCapacity, 1000)
	def(&c.EmptyRoomTTL, 15*time.Minute)
	def(&c.BanTTL, 24*time.Hour)
	def(&c.ParticipantLease, 2*time.Minute)
	def(&c.WaitTTL, 10*time.Minute)
	def(&c.KnockTTL, 45*time.Second)
	def(&c.KnockHeartbeat, 15*time.Second)
	def(&c.LobbyPerRoom, 50)
	def(&c.LobbyPerIdentity, 2)
	r := &c.RateLimits
	def(&r.Window, time.Minute)
	def(&r.JoinAttemptsPerIdentity, 30)
	def(&r.PasscodeFailuresPerIdentity, 5)
	def(&r.BackoffBase, 30*time.Second)
	def(&r.BackoffMax, time.Hour)
	def(&r.FailureMemory, 24*time.Hour)
	def(&r.FailuresPerAddress, 50)
	def(&r.FailuresPerTrustedAddress, 500)
	def(&r.RoomPasscodeFailures, 50)
	def(&r.RoomPasscodeWindow, 10*time.Minute)
	r.trusted = nil
	for _, n := range r.TrustedNetworks {
		if p, err := parseNetwork(n); err == nil {
			r.trusted = append(r.trusted, p)
		}
	}
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
	positive("rate_limits.passcode_failures_per_identity", int64(r.PasscodeFailuresPerIdentity))
	positive("rate_limits.failures_per_address", int64(r.FailuresPerAddress))
	positive("rate_limits.failures_per_trusted_address", int64(r.FailuresPerTrustedAddress))
	positive("rate_limits.room_passcode_failures", int64(r.RoomPasscodeFailures))
	for i, n := range r.TrustedNetworks {
		if _, err := parseNetwork(n); err != nil {
			bad(fmt.Sprintf("rate_limits.trusted_networks[%d]", i), err.Error())
		}
	}
	for _, d := range []struct {
		field string
		v     time.Duration
	}{
		{"empty_room_ttl", c.EmptyRoomTTL}, {"ban_ttl", c.BanTTL}, {"participant_lease", c.ParticipantLease},
		{"wait_ttl", c.WaitTTL}, {"knock_ttl", c.KnockTTL}, {"knock_heartbeat", c.KnockHeartbeat}, {"rate_limits.window", r.Window}, {"rate_limits.backoff_base", r.BackoffBase},
		{"rate_limits.backoff_max", r.BackoffMax}, {"rate_limits.failure_memory", r.FailureMemory},
		{"rate_limits.room_passcode_window", r.RoomPasscodeWindow},
	} {
		if d.v < time.Millisecond {
			bad(d.field, "must be at least 1ms")
		}
	}
	if c.DefaultCapacity > c.MaxCapacity {
		bad("default_capacity", "must not exceed max_capacity")
	}
	if c.KnockHeartbeat >= c.KnockTTL {
		bad("knock_heartbeat", "must be less than knock_ttl")
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

// parseNetwork reads one trusted network: a CIDR, or a bare address for a
// single host. IPv4-mapped IPv6 prefixes are taken as the IPv4 they map.
func parseNetwork(s string) (netip.Prefix, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, errors.New("must be a CIDR such as 203.0.113.0/24 or 2001:db8::/48")
	}
	if p.Addr().Is4In6() {
		if p.Bits() < 96 {
			return netip.Prefix{}, errors.New("an IPv4-mapped prefix must be at least /96")
		}
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p.Masked(), nil
}
