package config

import (
	"errors"
	"time"

	"github.com/meetguard/meetguard/gateway/rooms"
)

// PermanentRoom is a room declared in the configuration: it exists from
// the start and never ends when empty. A node starting up applies these
// settings but leaves a host's lock alone.
type PermanentRoom struct {
	// ID is the room's name in room paths. Required.
	ID string `yaml:"id"`
	// Owner is the owner's subject (sub) at oidc.issuer; the shipped policy
	// makes the owner a host. Optional.
	Owner string `yaml:"owner"`
	// Capacity; default rooms.default_capacity.
	Capacity int `yaml:"capacity"`
	// LobbyEnabled; default rooms.lobby_by_default.
	LobbyEnabled *bool `yaml:"lobby_enabled"`
	// PasscodeHash is an Argon2id hash ($argon2id$v=19$m=…,t=…,p=…$salt$key),
	// never the passcode itself. Optional.
	PasscodeHash string `yaml:"passcode_hash"`
	// E2EERequired makes clients bind end-to-end keys.
	E2EERequired bool `yaml:"e2ee_required"`
	// Tags are labels the policy matches on (business-hours, confidential).
	Tags []string `yaml:"tags"`
}

// configOwner owns permanent rooms declared without an owner. It has no
// '|', so no identity's key (issuer|subject) can ever equal it.
const configOwner rooms.SubjectKey = "meetguard-config"

// State is the room state's configuration, as the stores take it.
func (r Rooms) State() rooms.Config {
	return rooms.Config{
		DefaultCapacity: r.DefaultCapacity, MaxCapacity: r.MaxCapacity,
		EmptyRoomTTL: r.EmptyRoomTTL, BanTTL: r.BanTTL, ParticipantLease: r.ParticipantLease, WaitTTL: r.WaitTTL,
		KnockTTL: r.KnockTTL, KnockHeartbeat: r.KnockHeartbeat,
		LobbyPerRoom: r.LobbyPerRoom, LobbyPerIdentity: r.LobbyPerIdentity, RateLimits: r.RateLimits,
	}.WithDefaults()
}

// Seeds are the permanent rooms as rooms.Seed takes them; owners are keyed
// at issuer (oidc.issuer).
func (r Rooms) Seeds(issuer string) []rooms.ConfiguredRoom {
	out := make([]rooms.ConfiguredRoom, 0, len(r.Permanent))
	for _, p := range r.Permanent {
		owner := configOwner
		if p.Owner != "" {
			owner = rooms.SubjectKey(issuer + "|" + p.Owner)
		}
		lobby := r.LobbyByDefault != nil && *r.LobbyByDefault
		if p.LobbyEnabled != nil {
			lobby = *p.LobbyEnabled
		}
		out = append(out, rooms.ConfiguredRoom{ID: p.ID, Owner: owner, Settings: rooms.Settings{
			Capacity: p.Capacity, LobbyEnabled: lobby, PasscodeHash: p.PasscodeHash, E2EERequired: p.E2EERequired, Tags: p.Tags,
		}})
	}
	return out
}

func (l *loader) validateRooms(c *Config) {
	r := &c.Rooms
	st := r.State()
	if err := st.Validate(); err != nil {
		for _, e := range flatten(err) {
			var ie *rooms.InvalidError
			if errors.As(e, &ie) {
				l.add(ie.Field, "%s", ie.Reason)
			} else {
				l.add("rooms", "%v", e)
			}
		}
	}
	if r.TicketKey != "" && len(r.TicketKey) < 32 {
		l.add(secretPath(r.TicketKeyFile, "rooms.ticket_key"), "must be at least 32 bytes")
	}
	if r.TicketKey == "" && c.Store.Kind == "redis" {
		l.add("rooms.ticket_key", "is required when store.kind is redis: every node must verify the tickets the others sign (or set rooms.ticket_key_file)")
	}
	if r.TicketTTL != 0 && (r.TicketTTL < time.Second || r.TicketTTL > time.Hour) {
		l.add("rooms.ticket_ttl", "must be between 1s and 1h")
	}
	seen := map[string]bool{}
	for i, p := range r.Permanent {
		path := idx("rooms.permanent", i)
		switch {
		case !ValidRoomID(p.ID) || rooms.ValidateRoomID(p.ID) != nil:
			l.add(path+".id", "must be 1 to 64 of A-Z a-z 0-9 . _ - not starting with a dot")
		case seen[p.ID]:
			l.add(path+".id", "duplicate room %q", p.ID)
		}
		seen[p.ID] = true
		if p.Owner != "" && rooms.SubjectKey(c.OIDC.Issuer+"|"+p.Owner).Validate() != nil {
			l.add(path+".owner", "is not a usable subject")
		}
		ch := rooms.SettingsChange{Tags: &p.Tags}
		if p.Capacity != 0 {
			ch.Capacity = &p.Capacity
		}
		if p.PasscodeHash != "" {
			ch.PasscodeHash = &p.PasscodeHash
		}
		if err := ch.Validate(st); err != nil {
			var ie *rooms.InvalidError
			if errors.As(err, &ie) {
				l.add(path+"."+ie.Field, "%s", ie.Reason)
			} else {
				l.add(path, "%v", err)
			}
		}
	}
}

func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}
