package rooms

import (
	"context"
	"errors"
	"fmt"
)

// Store holds room state. Two implementations satisfy it: memstore (one
// node) and redisstore (any number of nodes sharing one Redis), and both
// pass the same conformance suite (package roomstest).
//
// Every method takes the context first, validates its arguments
// (ErrInvalid), and on a Redis failure returns an error wrapping
// ErrStoreUnavailable after which nothing has been admitted. Each
// check-and-change is atomic across all nodes.
type Store interface {
	// Put creates room id owned by owner with the change applied over the
	// defaults, or applies the change to the existing room (owner is then
	// ignored). Who may call it is the policy's decision.
	Put(ctx context.Context, id string, owner SubjectKey, change SettingsChange) (created bool, err error)
	// Create is the create-only write: it creates room id owned by owner
	// with the change applied over the defaults, and fails with ErrExists,
	// changing nothing, if the room already exists. The check and the
	// creation are one atomic step on every node, so of any number of
	// racing creators exactly one succeeds and the room carries exactly
	// its owner and settings. Use it for every creation a caller asks for;
	// Put is for a host's change and for rooms from config.
	Create(ctx context.Context, id string, owner SubjectKey, change SettingsChange) error
	// Room is the host view. ErrNotFound if the room does not exist.
	Room(ctx context.Context, id string) (Room, error)
	// Facts is the policy's view of the room for subject (which may be
	// empty). A missing room gives Exists=false and no error.
	Facts(ctx context.Context, id string, subject SubjectKey) (Facts, error)

	// Admit adds a participant with a fresh id. Errors: ErrNotFound,
	// ErrBanned, ErrLocked (hosts may enter locked rooms), ErrRoomFull.
	// Capacity counts every admission, hosts included.
	Admit(ctx context.Context, a Admission) (Participant, error)
	// Touch is the per-request revocation check: it fails with
	// ErrNotAdmitted unless pid is still admitted to room, and renews the
	// participant's lease. Call it for every proxied request and at least
	// every ParticipantLease/3 for each open connection.
	Touch(ctx context.Context, room string, pid ParticipantID) (Participant, error)
	// Leave ends an admission. ErrNotAdmitted if it had already ended.
	Leave(ctx context.Context, room string, pid ParticipantID) error
	// Remove ends an admission on a host's order. With ban, the subject is
	// banned and every admission and waiting entry of it in the room ends.
	// ErrNotFound for a missing room, ErrNotAdmitted for an unknown pid.
	Remove(ctx context.Context, room string, pid ParticipantID, ban bool) (Removal, error)
	// SetRole gives an admitted participant another role, atomically, and
	// publishes EventRoleChanged (nothing when the role is already role).
	// Errors: ErrNotFound for a missing room, ErrNotAdmitted for an unknown
	// pid, ErrRoleNotGranted for RoleHost to an admission the policy did
	// not admit as host, ErrLastHost for demoting the room's only admitted
	// host. Who may call it is the caller's decision.
	SetRole(ctx context.Context, room string, pid ParticipantID, role Role) (RoleChange, error)
	// Unban lifts a ban; lifting a ban that does not exist is not an error.
	Unban(ctx context.Context, room string, subject SubjectKey) error
	// IsBanned reports whether subject is banned from room (also after the
	// room ended, for BanTTL).
	IsBanned(ctx context.Context, room string, subject SubjectKey) (bool, error)

	// Knock puts a subject on the waiting list, replacing (without an
	// outcome) any entry the subject already has there: one person, one
	// place in the lobby. The entry lives KnockTTL unless renewed by
	// Heartbeat, and never longer than WaitTTL. Errors: ErrNotFound,
	// ErrBanned, ErrLocked, ErrLobbyFull.
	Knock(ctx context.Context, a Admission) (WaitEntry, error)
	// Heartbeat says the knock's client is still waiting: the entry now
	// expires KnockTTL from now (capped at WaitTTL after the knock).
	// ErrNotFound if it expired, was replaced or decided, or the room ended.
	Heartbeat(ctx context.Context, room string, wait WaitID) error
	// AdmitWaiting admits a waiting entry (even into a locked room: a host
	// decided). ErrRoomFull leaves the entry waiting; ErrNotFound if the
	// entry is gone.
	AdmitWaiting(ctx context.Context, room string, wait WaitID) (Participant, error)
	// DenyWaiting turns a waiting entry away, and with ban bans its subject.
	DenyWaiting(ctx context.Context, room string, wait WaitID, ban bool) error
	// WaitStatus reports a knock's state without blocking. ErrNotFound
	// once the entry expired or its outcome was forgotten.
	WaitStatus(ctx context.Context, room string, wait WaitID) (Outcome, error)
	// Await blocks until the knock is admitted or denied, or ctx ends
	// (then it returns the still-waiting Outcome and ctx.Err()).
	Await(ctx context.Context, room string, wait WaitID) (Outcome, error)

	// Lock and Unlock set the room's lock. ErrNotFound if missing.
	Lock(ctx context.Context, room string) error
	Unlock(ctx context.Context, room string) error
	// Suspend locks the room, ends every non-host admission and denies the
	// whole waiting list.
	Suspend(ctx context.Context, room string) (Removal, error)

	// BeginJoin counts a join attempt and returns the history for the
	// policy, or a *RateLimitedError (no attempt counted while blocked).
	// Call it before anything else about the join, passcode included.
	BeginJoin(ctx context.Context, a Attempt) (History, error)
	// StartJoin is BeginJoin(a) followed by Facts(a.Room, a.Identity) as
	// one atomic step (one round trip to Redis): the counts and the room as
	// they stood at one instant. a.Room is required (ErrInvalid without
	// it) and is read as by BeginJoin, never charged. A refused attempt
	// returns its History and *RateLimitedError, and the room is not read
	// (zero Facts). On any other error nothing was admitted and the caller
	// must fail closed, as for either call alone. The facts are the
	// policy's, and as old as with Facts: Admit checks ban, lock and
	// capacity again, atomically.
	StartJoin(ctx context.Context, a Attempt) (History, Facts, error)
	// RecordFailure counts a failed join; FailurePasscode failures past
	// the thresholds block the identity and the IP (see
	// RateLimits.Backoff) for every later BeginJoin.
	RecordFailure(ctx context.Context, a Attempt, f Failure) (History, error)

	// Subscribe delivers every node's room events until ctx ends. If the
	// channel closes while ctx is still live, events may have been lost
	// (slow reader, or the link to Redis broke): re-check every live
	// connection with Touch, then subscribe again.
	Subscribe(ctx context.Context) (<-chan Event, error)
	// Close releases the store's resources.
	Close() error
}

// ConfiguredRoom is a room declared in the gateway configuration.
type ConfiguredRoom struct {
	ID       string
	Owner    SubjectKey
	Settings Settings
}

// Putter is the part of Store that Seed needs.
type Putter interface {
	Put(ctx context.Context, id string, owner SubjectKey, change SettingsChange) (bool, error)
}

// Seed makes the configured rooms exist as permanent rooms with their
// configured settings. It leaves the lock alone, so that a node starting
// up does not unlock a room a host locked; it is safe on every node.
func Seed(ctx context.Context, s Putter, rooms []ConfiguredRoom) error {
	for i, r := range rooms {
		ch, err := r.change(i)
		if err != nil {
			return err
		}
		if _, err := s.Put(ctx, r.ID, r.Owner, ch); err != nil {
			return fmt.Errorf("rooms[%d] (%s): %w", i, r.ID, err)
		}
	}
	return nil
}

// Creator is the part of Store that SeedMissing needs.
type Creator interface {
	Create(ctx context.Context, id string, owner SubjectKey, change SettingsChange) error
}

// SeedMissing creates, as Seed would, each configured room the store no
// longer holds (a Redis restarted empty, a FLUSHALL), and returns their
// IDs. A room that exists is left exactly as it is: Create's check and
// creation are one atomic step, so a re-seed racing a host can neither
// unlock a room, lift a ban, end an admission nor undo a host's settings.
// It is idempotent and safe on every node at once.
func SeedMissing(ctx context.Context, s Creator, rooms []ConfiguredRoom) (created []string, err error) {
	for i, r := range rooms {
		ch, err := r.change(i)
		if err != nil {
			return created, err
		}
		switch err := s.Create(ctx, r.ID, r.Owner, ch); {
		case err == nil:
			created = append(created, r.ID)
		case errors.Is(err, ErrExists):
		default:
			return created, fmt.Errorf("rooms[%d] (%s): %w", i, r.ID, err)
		}
	}
	return created, nil
}

// change is the settings change that makes r the permanent room the
// configuration declares; the lock is not part of it. i is r's index, for
// errors.
func (r ConfiguredRoom) change(i int) (SettingsChange, error) {
	if err := ValidateRoomID(r.ID); err != nil {
		return SettingsChange{}, fmt.Errorf("rooms[%d]: %w", i, err)
	}
	if err := r.Owner.Validate(); err != nil {
		return SettingsChange{}, fmt.Errorf("rooms[%d] (%s): %w", i, r.ID, err)
	}
	perm := true
	st := r.Settings
	tags := st.Tags
	if tags == nil {
		tags = []string{}
	}
	ch := SettingsChange{
		LobbyEnabled: &st.LobbyEnabled, PasscodeHash: &st.PasscodeHash,
		E2EERequired: &st.E2EERequired, Tags: &tags, Permanent: &perm,
	}
	if st.Capacity != 0 {
		ch.Capacity = &st.Capacity
	}
	return ch, nil
}
