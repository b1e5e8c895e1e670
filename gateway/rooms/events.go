package rooms

import "time"

// EventKind says what happened to a room.
type EventKind string

// The kinds of Event. Every one that ends admissions lists them in
// Event.Revoked.
const (
	// EventRemoved: a host removed (kicked) a participant.
	EventRemoved EventKind = "removed"
	// EventBanned: a host banned Event.Subject; all its admissions and
	// waiting entries ended.
	EventBanned EventKind = "banned"
	// EventLeft: a participant left.
	EventLeft EventKind = "left"
	// EventExpired: admissions whose lease lapsed were dropped.
	EventExpired EventKind = "expired"
	// EventLocked and EventUnlocked: the room's lock changed.
	EventLocked   EventKind = "locked"
	EventUnlocked EventKind = "unlocked"
	// EventSuspended: the room was locked, every non-host removed and the
	// waiting list emptied.
	EventSuspended EventKind = "suspended"
	// EventKnocked: Event.Wait joined the waiting list.
	EventKnocked EventKind = "knocked"
	// EventLobbyAdmitted: a host admitted Event.Wait as Event.Participant.
	EventLobbyAdmitted EventKind = "lobby_admitted"
	// EventLobbyDenied: a host denied Event.Wait.
	EventLobbyDenied EventKind = "lobby_denied"
	// EventRoleChanged: a host gave Event.Participant (as it now is) a
	// new role; no admission ended.
	EventRoleChanged EventKind = "role_changed"
	// EventUpdated: settings other than the lock changed.
	EventUpdated EventKind = "updated"
)

// Event is a change to a room, delivered to every node's subscribers.
// The gateway closes each live connection whose participant id is in
// Revoked, and refreshes what it shows hosts and waiting clients.
type Event struct {
	Kind    EventKind       `json:"kind"`
	Room    string          `json:"room"`
	Revoked []ParticipantID `json:"revoked,omitempty"`
	Subject SubjectKey      `json:"subject,omitempty"`
	Wait    WaitID          `json:"wait_id,omitempty"`
	// Participant is the admission made by EventLobbyAdmitted, or the
	// one whose role EventRoleChanged changed.
	Participant *Participant `json:"participant,omitempty"`
	At          time.Time    `json:"at"`
}
