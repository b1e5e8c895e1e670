package rooms

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Settings are what a host or the config decides about a room.
type Settings struct {
	// Capacity is the most participants admitted at once (hosts included).
	Capacity int `json:"capacity"`
	// Locked rooms admit no one new except hosts and take no knocks.
	Locked bool `json:"locked"`
	// LobbyEnabled asks the policy to send non-hosts to the waiting list.
	LobbyEnabled bool `json:"lobby_enabled"`
	// PasscodeHash is an Argon2id string from Passcodes.Hash, or "" for no
	// passcode. Never shown to anyone.
	PasscodeHash string `json:"-"`
	// E2EERequired means clients must bind end-to-end keys.
	E2EERequired bool `json:"e2ee_required"`
	// Tags are free labels the policy can match on.
	Tags []string `json:"tags"`
}

// SettingsChange is a partial update: nil fields keep their value (or take
// the default when the room is being created).
type SettingsChange struct {
	Capacity     *int
	Locked       *bool
	LobbyEnabled *bool
	// PasscodeHash: pointer to "" removes the passcode.
	PasscodeHash *string
	E2EERequired *bool
	Tags         *[]string
	// Permanent rooms never end when empty (rooms from config). Not for the
	// HTTP API.
	Permanent *bool
}

// Validate checks every present field against cfg (defaults applied).
func (c SettingsChange) Validate(cfg Config) error {
	cfg = cfg.WithDefaults()
	if c.Capacity != nil && (*c.Capacity < 1 || *c.Capacity > cfg.MaxCapacity) {
		return invalid("capacity", "must be between 1 and max_capacity")
	}
	if c.PasscodeHash != nil && *c.PasscodeHash != "" {
		if err := ValidatePasscodeHash(*c.PasscodeHash); err != nil {
			return &InvalidError{Field: "passcode_hash", Reason: err.Error()}
		}
	}
	if c.Tags != nil {
		return validateTags(*c.Tags)
	}
	return nil
}

// Participant is one admission of a subject to a room.
type Participant struct {
	ID       ParticipantID `json:"id"`
	Subject  SubjectKey    `json:"subject"`
	Name     string        `json:"name,omitempty"`
	Role     Role          `json:"role"`
	JoinedAt time.Time     `json:"joined_at"`
}

// WaitEntry is one knock on the waiting list.
type WaitEntry struct {
	ID      WaitID     `json:"id"`
	Subject SubjectKey `json:"subject"`
	Name    string     `json:"name,omitempty"`
	// Role is what the subject gets if a host admits it.
	Role  Role      `json:"role"`
	Since time.Time `json:"since"`
	// Device is what the knock came from ("Firefox on Linux", "API
	// client"), so a host can tell two knocks by one name apart.
	Device string `json:"device"`
	// LastSeen is the waiting client's last heartbeat.
	LastSeen time.Time `json:"last_seen"`
	// EmailDomain is the domain of the knocker's email address as the
	// identity provider gave it ("" for none), so a host can tell an
	// outsider from a colleague before letting them in.
	EmailDomain string `json:"email_domain,omitempty"`
	// Verdict is what the policy and the identity provider said about the
	// knocker (VerdictStaff or VerdictGuest, then any of VerdictMFA and
	// VerdictUnverified).
	Verdict []string `json:"verdict,omitempty"`
}

// The words of WaitEntry.Verdict.
const (
	// VerdictStaff: the policy vouches for the identity as one of the
	// organisation's (its decision's member).
	VerdictStaff = "staff"
	// VerdictGuest: the policy does not.
	VerdictGuest = "guest"
	// VerdictMFA: the identity provider says the sign-in used more than
	// one factor.
	VerdictMFA = "mfa"
	// VerdictUnverified: the identity provider does not vouch for the
	// email address (so its domain proves nothing).
	VerdictUnverified = "unverified"
)

// MaxEmailDomainLen is the longest EmailDomain (RFC 1035's name limit).
const MaxEmailDomainLen = 253

// Ban keeps a subject out of a room while the room lives and for BanTTL
// after it ends.
type Ban struct {
	Subject SubjectKey `json:"subject"`
	Name    string     `json:"name,omitempty"`
	At      time.Time  `json:"at"`
}

// Room is the host's view: settings and everyone in, waiting and banned.
// Lists are ordered by time (joined, knocked, banned).
type Room struct {
	ID    string     `json:"id"`
	Owner SubjectKey `json:"owner"`
	Settings
	PasscodeSet  bool          `json:"passcode_set"`
	Permanent    bool          `json:"permanent"`
	CreatedAt    time.Time     `json:"created_at"`
	Participants []Participant `json:"participants"`
	Waiting      []WaitEntry   `json:"waiting"`
	Bans         []Ban         `json:"bans"`
}

// Facts is what the admission policy sees of a room (the policy input's
// room object), for one subject. A missing room is Exists=false, not an
// error, because the policy must decide on it like on any other room.
type Facts struct {
	Exists           bool       `json:"exists"`
	Owner            SubjectKey `json:"owner"`
	Capacity         int        `json:"capacity"`
	Occupancy        int        `json:"occupancy"`
	Locked           bool       `json:"locked"`
	LobbyEnabled     bool       `json:"lobby_enabled"`
	HostPresent      bool       `json:"host_present"`
	PasscodeRequired bool       `json:"passcode_required"`
	E2EERequired     bool       `json:"e2ee_required"`
	Tags             []string   `json:"tags"`
	// Banned is about the subject Facts was asked for; it can be true for a
	// room that has ended, since bans outlive rooms.
	Banned bool `json:"banned"`
	// PasscodeHash is for Passcodes.Verify; never part of policy input.
	PasscodeHash string `json:"-"`
}

// Admission asks for a subject to be admitted (or to wait) with a role.
type Admission struct {
	Room    string
	Subject SubjectKey
	// Name is shown to hosts; pass it through DisplayName.
	Name string
	Role Role
	// Device describes the client, for the lobby list (knocks only);
	// pass it through DisplayName.
	Device string
	// EmailDomain and Verdict are shown to hosts with a knock (knocks
	// only); see WaitEntry.
	EmailDomain string
	Verdict     []string
}

// Validate checks every field.
func (a Admission) Validate() error {
	if err := ValidateRoomID(a.Room); err != nil {
		return err
	}
	if err := a.Subject.Validate(); err != nil {
		return err
	}
	if err := validateName(a.Name); err != nil {
		return err
	}
	if len(a.Device) > MaxNameLen || !printable(a.Device) {
		return invalid("device", "longer than 128 bytes or not printable UTF-8")
	}
	if len(a.EmailDomain) > MaxEmailDomainLen || !printable(a.EmailDomain) || strings.ContainsAny(a.EmailDomain, ", @") {
		return invalid("email_domain", "longer than 253 bytes, not printable UTF-8, or not a domain")
	}
	for _, v := range a.Verdict {
		switch v {
		case VerdictStaff, VerdictGuest, VerdictMFA, VerdictUnverified:
		default:
			return invalid("verdict", "unknown word "+strconv.Quote(v))
		}
	}
	return a.Role.Validate()
}

// WaitStatus is where a waiting entry stands.
type WaitStatus string

// The states of a waiting entry. An entry that expired, or whose room
// ended, is ErrNotFound instead.
const (
	Waiting  WaitStatus = "waiting"
	Admitted WaitStatus = "admitted"
	Denied   WaitStatus = "denied"
)

// OutcomeTTL is how long a host's decision on a knock stays readable by
// WaitStatus and Await.
const OutcomeTTL = 2 * time.Minute

// Outcome is the state of a knock. Subject is who knocked: the gateway must
// check it against the caller before revealing anything, so that a leaked
// wait id is useless to anyone else.
type Outcome struct {
	Wait    WaitID     `json:"wait_id"`
	Status  WaitStatus `json:"status"`
	Subject SubjectKey `json:"-"`
	// Participant is set when Status is Admitted: issue the ticket for it.
	Participant Participant `json:"-"`
}

// Removal says which admissions an action ended; their tickets stop
// working and their connections must close.
type Removal struct {
	Room    string          `json:"room"`
	Subject SubjectKey      `json:"subject,omitempty"`
	Revoked []ParticipantID `json:"revoked"`
}

// RoleChange is what SetRole did: the participant as it now is, and the
// role it had.
type RoleChange struct {
	Participant Participant `json:"participant"`
	From        Role        `json:"from"`
}

// Sort puts the lists in the order stores return them: by time (joined,
// knocked, banned), then by id.
func (r *Room) Sort() {
	slices.SortFunc(r.Participants, func(a, b Participant) int {
		return cmp.Or(a.JoinedAt.Compare(b.JoinedAt), cmp.Compare(a.ID, b.ID))
	})
	slices.SortFunc(r.Waiting, func(a, b WaitEntry) int {
		return cmp.Or(a.Since.Compare(b.Since), cmp.Compare(a.ID, b.ID))
	})
	slices.SortFunc(r.Bans, func(a, b Ban) int {
		return cmp.Or(a.At.Compare(b.At), cmp.Compare(a.Subject, b.Subject))
	})
}
