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
		c.RateLimits.PasscodeFailuresPerIdentity != 5 || c.RateLimits.BackoffBase != 30*time.Second {
		t.Fatalf("defaults = %+v", c)
	}
}

func TestConfig_ValidateNamesEveryBadField(t *testing.T) {
	c := rooms.Config{
		DefaultCapacity: 50, MaxCapacity: 10, LobbyPerRoom: -1, BanTTL: -time.Second,
		RateLimits: rooms.RateLimits{BackoffBase: time.Hour, BackoffMax: time.Minute, JoinAttemptsPerIP: -3},
	}
	err := c.Validate()
	for _, field := range []string{
		"rooms.default_capacity", "rooms.lobby_per_room", "rooms.ban_ttl",
		"rooms.rate_limits.backoff_max", "rooms.rate_limits.join_attempts_per_ip",
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
	rl := rooms.RateLimits{PasscodeFailuresPerIdentity: 3, PasscodeFailuresPerIP: 10, BackoffBase: time.Second, BackoffMax: 10 * time.Second}
	cases := []struct {
		identity, ip int
		want         time.Duration
	}{
		{0, 0, 0}, {2, 9, 0}, {3, 0, time.Second}, {4, 0, 2 * time.Second}, {5, 0, 4 * time.Second},
		{6, 0, 8 * time.Second}, {7, 0, 10 * time.Second}, {1 << 30, 0, 10 * time.Second},
		{0, 10, time.Second}, {0, 12, 4 * time.Second}, {4, 12, 4 * time.Second},
	}
	for _, tc := range cases {
		if got := rl.Backoff(tc.identity, tc.ip); got != tc.want {
			t.Errorf("Backoff(%d, %d) = %s, want %s", tc.identity, tc.ip, got, tc.want)
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
