package rooms

import (
	"crypto/rand"
	"encoding/base64"
	"unicode"
	"unicode/utf8"
)

// SubjectKey names a person across sessions, tokens and gateway nodes: the
// gateway fills it from identity.Identity.Key() (issuer and subject). Bans,
// lobby caps and rate limits key on it, so a new session, a new token or
// another node does not escape them. It is opaque to this package.
type SubjectKey string

// Limits on what the stores accept; they bound memory per participant and
// keep keys and logs sane.
const (
	MaxSubjectKeyLen = 512
	MaxRoomIDLen     = 64
	MaxNameLen       = 128
	MaxTags          = 32
	MaxTagLen        = 64
)

// Validate reports whether k can key state: non-empty, at most
// MaxSubjectKeyLen bytes of UTF-8 without control characters.
func (k SubjectKey) Validate() error {
	switch {
	case k == "":
		return invalid("subject", "empty")
	case len(k) > MaxSubjectKeyLen:
		return invalid("subject", "longer than 512 bytes")
	case !printable(string(k)):
		return invalid("subject", "not printable UTF-8")
	}
	return nil
}

// Role is what an admitted participant may do in the room, as decided by
// the admission policy.
type Role string

// The roles the policy can grant.
const (
	RoleHost        Role = "host"
	RoleParticipant Role = "participant"
	RoleViewer      Role = "viewer"
)

// Validate reports whether r is one of the three roles.
func (r Role) Validate() error {
	switch r {
	case RoleHost, RoleParticipant, RoleViewer:
		return nil
	}
	return invalid("role", "must be host, participant or viewer")
}

// ParticipantID names one admission: a fresh opaque random id each time a
// subject is admitted, carried in the ticket and used to revoke it.
type ParticipantID string

// WaitID names one waiting-list entry. It is as unguessable as a
// participant id because a waiting client polls with it.
type WaitID string

// idBytes is the entropy of participant and wait ids.
const idBytes = 16

// NewParticipantID returns a fresh random participant id.
func NewParticipantID() ParticipantID { return ParticipantID(newID()) }

// NewWaitID returns a fresh random waiting-entry id.
func NewWaitID() WaitID { return WaitID(newID()) }

func newID() string {
	var b [idBytes]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// Validate reports whether id has the shape NewParticipantID produces.
func (id ParticipantID) Validate() error {
	if !validID(string(id)) {
		return invalid("participant", "not a participant id")
	}
	return nil
}

// Validate reports whether id has the shape NewWaitID produces.
func (id WaitID) Validate() error {
	if !validID(string(id)) {
		return invalid("wait_id", "not a wait id")
	}
	return nil
}

func validID(s string) bool {
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	return err == nil && len(b) == idBytes
}

// ValidateRoomID reports whether id can name a room: 1 to 64 of A-Z a-z 0-9
// . _ - and not starting with a dot. It is the one rule for room IDs: the
// edge's room paths (config.ValidRoomID), the rooms API, the e2ee API and the
// stores all use it, so a room that can be created can also be joined, and an
// ID is safe in a path, a header, a log line and a Redis key.
func ValidateRoomID(id string) error {
	if id == "" {
		return invalid("room", "empty")
	}
	if len(id) > MaxRoomIDLen {
		return invalid("room", "longer than 64 characters")
	}
	if id[0] == '.' {
		return invalid("room", "must not start with a dot")
	}
	for i := 0; i < len(id); i++ {
		if !roomIDByte(id[i]) {
			return invalid("room", "only A-Z a-z 0-9 . _ - are allowed")
		}
	}
	return nil
}

func roomIDByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_'
}

// validateName checks a display name shown to hosts: optional, at most
// MaxNameLen bytes of printable UTF-8.
func validateName(name string) error {
	if len(name) > MaxNameLen {
		return invalid("name", "longer than 128 bytes")
	}
	if !printable(name) {
		return invalid("name", "not printable UTF-8")
	}
	return nil
}

// DisplayName makes an identity-provider name fit for Admission.Name:
// control characters dropped, cut to MaxNameLen bytes on a rune boundary.
func DisplayName(s string) string {
	out := make([]byte, 0, min(len(s), MaxNameLen))
	for _, r := range s {
		if r == utf8.RuneError || unicode.IsControl(r) {
			continue
		}
		if len(out)+utf8.RuneLen(r) > MaxNameLen {
			break
		}
		out = utf8.AppendRune(out, r)
	}
	return string(out)
}

func validateTags(tags []string) error {
	if len(tags) > MaxTags {
		return invalid("tags", "more than 32 tags")
	}
	for _, t := range tags {
		if t == "" || len(t) > MaxTagLen {
			return invalid("tags", "each tag must be 1 to 64 characters")
		}
		for i := 0; i < len(t); i++ {
			if c := t[i]; !unreservedByte(c) && c != ':' && c != '/' {
				return invalid("tags", "only A-Z a-z 0-9 . _ ~ - : / are allowed")
			}
		}
	}
	return nil
}

func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// unreservedByte is RFC 3986's unreserved set, which tags may use.
func unreservedByte(c byte) bool {
	return roomIDByte(c) || c == '~'
}
