// Package roomsapi is the gateway's room controls: the JSON API under
// /.meetguard/api/v1/rooms/ (create, join, wait, and the host actions),
// the admission of every request on a room path (tickets, and for browsers
// the join flow with its waiting page and passcode form), and the per-node
// loop that cuts live connections as soon as a participant is removed,
// banned or suspended on any node.
//
// It carries out on the shared room state (package rooms) what the
// admission policy decides. It must never admit without a policy decision
// and a durable audit record, never tell a non-member whether a room exists
// (a missing, locked, banned-from or refused room gets one answer, byte for
// byte), never give a waiting client a ticket, the participant list or room
// traffic, never admit on state it could not read (store failures become
// 503 with a store.failure record), and never log a ticket or a passcode.
//
// # Joining
//
// POST rooms/{room}/join and a request on a room path without a ticket run
// the same steps: count the attempt (rate limits, passcode backoff), read
// the room's facts, check a passcode if one was given (against a dummy hash
// when the room has none, so timing says nothing), ask the policy, carry
// the decision out atomically in the store (capacity, lobby, lock and bans
// are checked again there), record it, and only then issue the ticket.
//
// # Tickets
//
// A ticket is short-lived, signed, and bound to the caller's session (or,
// for bearer callers, to the token's subject), the room and the role. Apps
// send it in the Meetguard-Ticket header; browsers get it as an HttpOnly
// cookie scoped to the room path (and a second one scoped to the API, for
// calls such as the end-to-end key endpoints). Every room-path request is
// checked against the store (Touch), so a removed participant's ticket stops
// working on every node at once.
package roomsapi
