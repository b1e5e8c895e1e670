package rooms

import (
	"errors"
	"fmt"
	"time"
)

// Errors callers branch on with errors.Is. Store methods wrap them with
// context; the HTTP edge decides what a caller is told (a non-member must not
// be able to tell ErrNotFound, ErrLocked and ErrBanned apart).
var (
	// ErrNotFound: the room, or the waiting entry, does not exist (or has
	// ended or expired).
	ErrNotFound = errors.New("rooms: not found")
	// ErrExists: Create found the room already there and changed nothing.
	ErrExists = errors.New("rooms: room exists")
	// ErrRoomFull: admitting one more participant would exceed the room's
	// capacity.
	ErrRoomFull = errors.New("rooms: room is full")
	// ErrLocked: the room is locked and takes no new participants (hosts
	// excepted) and no knocks.
	ErrLocked = errors.New("rooms: room is locked")
	// ErrBanned: the subject is banned from the room.
	ErrBanned = errors.New("rooms: subject is banned")
	// ErrLobbyFull: the waiting list is at its cap for the room or for this
	// identity.
	ErrLobbyFull = errors.New("rooms: waiting list is full")
	// ErrNotAdmitted: the participant id is not (or no longer) admitted to the
	// room: it left, was removed, banned or suspended, or its lease lapsed.
	// The proxy treats it as a revoked ticket.
	ErrNotAdmitted = errors.New("rooms: participant not admitted")
	// ErrLastHost: the change would leave a room that has an admitted host
	// without one (the last host cannot be demoted).
	ErrLastHost = errors.New("rooms: the last host cannot be demoted")
	// ErrRoleNotGranted: the role is above what the policy gave the
	// participant when it was admitted (only the policy makes hosts).
	ErrRoleNotGranted = errors.New("rooms: role not granted by the policy")
	// ErrRateLimited is matched by every *RateLimitedError.
	ErrRateLimited = errors.New("rooms: rate limited")
	// ErrStoreUnavailable: the shared state could not be read or changed.
	// Nothing was admitted; callers fail closed (HTTP 503).
	ErrStoreUnavailable = errors.New("rooms: state store unavailable")
	// ErrInvalid is matched by every *InvalidError.
	ErrInvalid = errors.New("rooms: invalid argument")
	// ErrTicketInvalid: a ticket is malformed, forged, for another room or
	// bound to another session.
	ErrTicketInvalid = errors.New("rooms: invalid ticket")
	// ErrTicketExpired: a well-formed, authentic ticket whose time is up.
	ErrTicketExpired = errors.New("rooms: ticket expired")
	// ErrPasscodeHash: a stored passcode hash is not a well-formed Argon2id
	// string within this package's parameter bounds.
	ErrPasscodeHash = errors.New("rooms: malformed passcode hash")
)

// RateLimitedError says that a join attempt was refused by a rate limit or a
// passcode backoff, about what, and when to try again (HTTP 429 with
// Retry-After).
type RateLimitedError struct {
	// RetryAfter is how long until the block or the counting window ends.
	RetryAfter time.Duration
	// Unit is what the limit is about: UnitIdentity or UnitAddress.
	Unit Unit
	// Reason is ReasonJoinAttempts, ReasonPasscodeFailures (the
	// identity's backoff) or ReasonAddressFailures.
	Reason string
}

func (e *RateLimitedError) Error() string {
	return fmt.Sprintf("rooms: rate limited (%s %s), retry after %s", e.Unit, e.Reason, e.RetryAfter.Round(time.Millisecond))
}

// Is makes errors.Is(err, ErrRateLimited) true.
func (e *RateLimitedError) Is(target error) bool { return target == ErrRateLimited }

// InvalidError names the argument that failed validation.
type InvalidError struct {
	Field  string
	Reason string
}

func (e *InvalidError) Error() string { return "rooms: invalid " + e.Field + ": " + e.Reason }

// Is makes errors.Is(err, ErrInvalid) true.
func (e *InvalidError) Is(target error) bool { return target == ErrInvalid }

func invalid(field, reason string) error { return &InvalidError{Field: field, Reason: reason} }
