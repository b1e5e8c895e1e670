package config

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meetguard/meetguard/gateway/rooms"
)

func TestParse_RoomsSettingsTicketKeyAndPermanentRooms(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "ticket.key")
	if err := os.WriteFile(keyFile, []byte(strings.Repeat("t", 48)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	hash := "$argon2id$v=19$m=256,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5aw"
	src := strings.Replace(goodConfig, "SECRET_FILE", keyFile, 1) + `
store:
  kind: redis
  redis:
    addr: 127.0.0.1:6379
rooms:
  default_capacity: 50
  max_capacity: 400
  ban_ttl: 48h
  participant_lease: 90s
  lobby_per_identity: 1
  rate_limits:
    join_attempts_per_identity: 10
    backoff_base: 10s
    trusted_networks: [203.0.113.0/24, "2001:db8:7::/48"]
    failures_per_trusted_address: 800
  ticket_key_file: ` + keyFile + `
  ticket_ttl: 2m
  permanent:
    - id: all-hands
      owner: u-olga
      capacity: 302
      lobby_enabled: false
      tags: [business-hours]
    - id: board
      passcode_hash: "` + hash + `"
`
	cfg, err := Parse([]byte(src), env(map[string]string{"CLIENT_SECRET": "x"}))
	if err != nil {
		t.Fatal(err)
	}
	st := cfg.Rooms.State()
	if st.DefaultCapacity != 50 || st.MaxCapacity != 400 || st.BanTTL != 48*time.Hour || st.ParticipantLease != 90*time.Second ||
		st.LobbyPerIdentity != 1 || st.RateLimits.JoinAttemptsPerIdentity != 10 || st.RateLimits.BackoffBase != 10*time.Second {
		t.Errorf("room state config %+v", st)
	}
	if rl := st.RateLimits; !rl.Trusted(netip.MustParseAddr("203.0.113.40")) || rl.Trusted(netip.MustParseAddr("198.51.100.1")) ||
		rl.AddressLimit(netip.MustParseAddr("2001:db8:7:1::1")) != 800 || rl.AddressLimit(netip.MustParseAddr("198.51.100.1")) != 50 {
		t.Errorf("trusted networks not loaded: %+v", rl)
	}
	if st.WaitTTL != (rooms.Config{}).WithDefaults().WaitTTL {
		t.Errorf("unset wait_ttl did not take the default: %v", st.WaitTTL)
	}
	if cfg.Rooms.TicketKey != strings.Repeat("t", 48) || cfg.Rooms.TicketTTL != 2*time.Minute {
		t.Errorf("ticket key/ttl not loaded")
	}
	seeds := cfg.Rooms.Seeds(cfg.OIDC.Issuer)
	if len(seeds) != 2 || seeds[0].Owner != rooms.SubjectKey("https://idp.example.org|u-olga") || seeds[0].Settings.LobbyEnabled ||
		seeds[0].Settings.Capacity != 302 || !seeds[1].Settings.LobbyEnabled || seeds[1].Settings.PasscodeHash != hash {
		t.Errorf("seeds %+v", seeds)
	}
	if err := seeds[1].Owner.Validate(); err != nil || strings.Contains(string(seeds[1].Owner), "|") {
		t.Errorf("owner of an ownerless room %q must be valid and match no identity", seeds[1].Owner)
	}
}

func TestParse_RoomsMistakesNamed(t *testing.T) {
	cases := []struct {
		name, yaml, want string
	}{
		{"redis without ticket key", "store:\n  kind: redis\n  redis:\n    addr: r:6379\n", "rooms.ticket_key: is required when store.kind is redis"},
		{"short ticket key", "rooms:\n  ticket_key: short\n", "rooms.ticket_key: must be at least 32 bytes"},
		{"ticket key twice", "rooms:\n  ticket_key: " + strings.Repeat("k", 32) + "\n  ticket_key_file: /x\n", "rooms.ticket_key_file: set either ticket_key or ticket_key_file"},
		{"ticket ttl", "rooms:\n  ticket_ttl: 2h\n", "rooms.ticket_ttl: must be between 1s and 1h"},
		{"default above max", "rooms:\n  default_capacity: 500\n  max_capacity: 100\n", "rooms.default_capacity: must not exceed max_capacity"},
		{"backoff", "rooms:\n  rate_limits:\n    backoff_base: 1h\n    backoff_max: 1m\n", "rooms.rate_limits.backoff_max: must be at least backoff_base"},
		{"trusted network", "rooms:\n  rate_limits:\n    trusted_networks: [10.0.0.0/8, office-nat]\n", "rooms.rate_limits.trusted_networks[1]: must be a CIDR"},
		{"removed per-IP attempt limit", "rooms:\n  rate_limits:\n    join_attempts_per_ip: 300\n", "rooms.rate_limits.join_attempts_per_ip: unknown field"},
		{"bad room id", "rooms:\n  permanent:\n    - id: ../etc\n", "rooms.permanent[0].id: must be"},
		{"duplicate room", "rooms:\n  permanent:\n    - id: a\n    - id: a\n", `rooms.permanent[1].id: duplicate room "a"`},
		{"clear passcode", "rooms:\n  permanent:\n    - id: a\n      passcode_hash: hunter2\n", "rooms.permanent[0].passcode_hash"},
		{"capacity", "rooms:\n  permanent:\n    - id: a\n      capacity: 5000\n", "rooms.permanent[0].capacity"},
		{"unknown key", "rooms:\n  permanent:\n    - id: a\n      passcode: 1234\n", "rooms.permanent[0].passcode: unknown field"},
	}
	base := strings.Replace(goodConfig, "  secret_file: SECRET_FILE\n", "  secret: "+strings.Repeat("s", 32)+"\n", 1)
	for _, tc := range cases {
		_, err := Parse([]byte(base+tc.yaml), env(map[string]string{"CLIENT_SECRET": "x"}))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
	}
}
