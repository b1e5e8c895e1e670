package rooms_test

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/meetguard/meetguard/gateway/rooms"
)

func TestConfig_ZeroValueIsValidWithDocumentedDefaults(t *testing.T) {
	c := rooms.Config{}.WithDefaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.DefaultCapacity != 100 || c.EmptyRoomTTL != 15*time.Minute || c.BanTTL != 24*time.Hour ||
		c.RateLimits.PasscodeFailuresPerIdentity != 5 || c.RateLimits.BackoffBase != 30*time.Second ||
		c.RateLimits.FailuresPerAddress != 50 || c.RateLimits.FailuresPerTrustedAddress != 500 ||
		c.RateLimits.RoomPasscodeFailures != 50 || c.RateLimits.RoomPasscodeWindow != 10*time.Minute ||
		c.KnockTTL != 45*time.Second || c.KnockHeartbeat != 15*time.Second {
		t.Fatalf("defaults = %+v", c)
	}
}

func TestConfig_ValidateNamesEveryBadField(t *testing.T) {
	c := rooms.Config{
		DefaultCapacity: 50, MaxCapacity: 10, LobbyPerRoom: -1, BanTTL: -time.Second,
		KnockTTL: 10 * time.Second, KnockHeartbeat: 10 * time.Second,
		RateLimits: rooms.RateLimits{BackoffBase: time.Hour, BackoffMax: time.Minute, FailuresPerAddress: -3,
			TrustedNetworks: []string{"10.0.0.0/8", "office", "10.0.0.0/33", "::ffff:10.0.0.0/8"}},
	}
	err := c.Validate()
	for _, field := range []string{
		"rooms.default_capacity", "rooms.lobby_per_room", "rooms.ban_ttl", "rooms.knock_heartbeat",
		"rooms.rate_limits.backoff_max", "rooms.rate_limits.failures_per_address",
		"rooms.rate_limits.trusted_networks[1]", "rooms.rate_limits.trusted_networks[2]", "rooms.rate_limits.trusted_networks[3]",
	} {
		if err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("error %v does not name %s", err, field)
		}
	}
	if !errors.Is(err, rooms.ErrInvalid) {
		t.Fatalf("err = %v, want ErrInvalid", err)
	}
}

func TestRateLimits_BackoffDoublesFromThresholdAndCaps(t *testing.T) {
	rl := rooms.RateLimits{PasscodeFailuresPerIdentity: 3, BackoffBase: time.Second, BackoffMax: 10 * time.Second}
	cases := []struct {
		failures int
		want     time.Duration
	}{
		{0, 0}, {2, 0}, {3, time.Second}, {4, 2 * time.Second}, {5, 4 * time.Second},
		{6, 8 * time.Second}, {7, 10 * time.Second}, {1 << 30, 10 * time.Second},
	}
	for _, tc := range cases {
		if got := rl.Backoff(tc.failures); got != tc.want {
			t.Errorf("Backoff(%d) = %s, want %s", tc.failures, got, tc.want)
		}
	}
}

func TestRateLimits_TrustedNetworks(t *testing.T) {
	rl := rooms.Config{RateLimits: rooms.RateLimits{
		TrustedNetworks: []string{"203.0.113.0/24", "198.51.100.7", "2001:db8:1::/48", "::ffff:192.0.2.0/120"},
	}}.WithDefaults().RateLimits
	cases := map[string]bool{
		"203.0.113.1": true, "203.0.114.1": false, "198.51.100.7": true, "198.51.100.8": false,
		"::ffff:203.0.113.9": true, "2001:db8:1:ffff::1": true, "2001:db8:2::1": false, "192.0.2.77": true,
	}
	for in, want := range cases {
		ip := netip.MustParseAddr(in)
		if got := rl.Trusted(ip); got != want {
			t.Errorf("Trusted(%s) = %v, want %v", in, got, want)
		}
		limit := rl.FailuresPerAddress
		if want {
			limit = rl.FailuresPerTrustedAddress
		}
		if got := rl.AddressLimit(ip); got != limit {
			t.Errorf("AddressLimit(%s) = %d, want %d", in, got, limit)
		}
	}
}

func TestAttempt_IPKeyGroupsIPv6By64AndUnmapsIPv4(t *testing.T) {
	cases := map[string]string{
		"198.51.100.7":         "198.51.100.7",
		"::ffff:198.51.100.7":  "198.51.100.7",
		"2001:db8:a:b:c:d:e:f": "2001:db8:a:b::/64",
		"2001:db8:a:b::1":      "2001:db8:a:b::/64",
		"fe80::1%eth0":         "fe80::/64",
	}
	for in, want := range cases {
		if got := (rooms.Attempt{IP: netip.MustParseAddr(in)}).IPKey(); got != want {
			t.Errorf("IPKey(%s) = %s, want %s", in, got, want)
		}
	}
	if err := (rooms.Attempt{Identity: "https://idp|a"}).Validate(); !errors.Is(err, rooms.ErrInvalid) {
		t.Fatalf("attempt without IP: %v", err)
	}
}

// FuzzTrustedNetworks: any string in rooms.rate_limits.trusted_networks is
// either refused by Validate, naming the field, or trusted exactly as its
// own prefix says; never a panic, never a network trusted wider than
// written.
func FuzzTrustedNetworks(f *testing.F) {
	for _, s := range []string{"203.0.113.0/24", "198.51.100.7", "2001:db8::/32", "::ffff:10.0.0.0/104", "0.0.0.0/0", "::/0",
		"fe80::1%eth0/64", "10.0.0.0/33", "office", "", "::ffff:1.2.3.4/80", "1.2.3.4/24"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c := rooms.Config{RateLimits: rooms.RateLimits{TrustedNetworks: []string{s}}}
		err := c.Validate()
		rl := c.WithDefaults().RateLimits
		if err != nil {
			if !strings.Contains(err.Error(), "rooms.rate_limits.trusted_networks[0]") {
				t.Fatalf("%q: error %v does not name the field", s, err)
			}
			if rl.Trusted(netip.IPv4Unspecified()) || rl.Trusted(netip.IPv6Unspecified()) {
				t.Fatalf("%q refused yet trusted", s)
			}
			return
		}
		p, perr := netip.ParsePrefix(s)
		if a, aerr := netip.ParseAddr(s); aerr == nil {
			p, perr = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
		}
		if perr != nil {
			t.Fatalf("%q accepted but is neither an address nor a prefix", s)
		}
		if !rl.Trusted(p.Addr()) {
			t.Fatalf("%q accepted but its own address %s is not trusted", s, p.Addr())
		}
	})
}
