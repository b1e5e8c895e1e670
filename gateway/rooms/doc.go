// Package rooms is the state of meeting rooms behind the gateway: who owns a
// room, who is admitted with which role, who waits in the lobby, who is
// banned, and how often each identity and client IP has tried to get in. It
// also signs the tickets that prove an admission on every proxied request,
// and hashes room passcodes.
//
// It decides nothing about who may do what: the admission policy decides,
// the gateway asks this package to carry the decision out atomically. It
// never stores a passcode (only an Argon2id hash), never puts a session id
// or a subject in a ticket in clear, and never admits on state it cannot
// read: when the store is unreachable every call fails with an error
// wrapping ErrStoreUnavailable, which the gateway turns into 503.
//
// # Parts
//
//   - Store (this package) is the contract; memstore is the one-node
//     implementation, redisstore the one for many nodes sharing Redis.
//     roomstest is the conformance suite both pass.
//   - Tickets issues and verifies short-lived HMAC-SHA256 tickets.
//   - Passcodes hashes and verifies passcodes (Argon2id, PHC strings).
//   - Seed creates the rooms declared in the configuration.
//
// # Join (POST rooms/{room}/join)
//
//	a := rooms.Attempt{Identity: rooms.SubjectKey(id.Key()), IP: clientIP, Room: room}
//	hist, facts, err := store.StartJoin(ctx, a) // *RateLimitedError -> 429 + Retry-After
//	decision := policy(identity, facts, hist)   // facts is input.room, hist is input.history
//	deny:  store.RecordFailure(ctx, a, rooms.FailureJoin)       -> 403
//	if facts.PasscodeRequired:
//	    ok, err := passcodes.Verify(ctx, facts.PasscodeHash, body.Passcode)
//	    !ok: store.RecordFailure(ctx, a, rooms.FailurePasscode) -> 403
//	lobby: w, err := store.Knock(ctx, rooms.Admission{Room: room, Subject: a.Identity,
//	           Name: rooms.DisplayName(id.DisplayName()), Role: role})   -> 202 {wait_id: w.ID}
//	allow: p, err := store.Admit(ctx, rooms.Admission{...})
//	       token, exp, err := tickets.Issue(room, p, id.SessionID)      -> 200 {ticket, expires_at}
//
// StartJoin counts first, so that a blocked identity or IP is refused before
// its passcode is even checked (or the room read): after the configured
// number of passcode failures, the right passcode does not help until the
// backoff expires. It is BeginJoin and Facts in one atomic step, one Redis
// round trip; a join then costs two (StartJoin, Admit), three if refused
// (RecordFailure). The policy runs between them, so Admit re-checks ban,
// lock and capacity on the state it changes: the facts may be stale.
// Map ErrNotFound, ErrLocked, ErrBanned and ErrRoomFull to the same answer
// for non-members so that none of them is an existence oracle (the store
// keeps them distinct for the audit log).
//
// # Waiting (GET rooms/{room}/wait/{wait_id})
//
// Await blocks until a host decides or ctx ends (long-poll); WaitStatus
// answers at once (SSE first frame). Check Outcome.Subject against the
// caller before answering, and issue a ticket for Outcome.Participant when
// Status is Admitted. A waiting client gets nothing else: no ticket, no
// participant list.
//
// # Proxied requests
//
// For every request on a room path: Tickets.Verify(token, room,
// id.SessionID) and then Store.Touch(ctx, room, ticket.Participant). Touch
// fails with ErrNotAdmitted as soon as the participant was removed, banned,
// suspended or left, on any node: that is the revocation check. Touch also
// renews the participant's lease; for each open WebSocket call it at least
// every Config.ParticipantLease/3, and call Leave when the last connection
// of a participant closes.
//
// # Kicks, bans and the other nodes
//
// Each gateway node runs one loop:
//
//	for {
//	    events, err := store.Subscribe(ctx)   // retry with backoff on error
//	    for e := range events {
//	        close every live connection whose participant id is in e.Revoked
//	    }
//	    // closed while ctx is live: events may be lost; Touch every live
//	    // connection and close those that fail, then subscribe again.
//	}
//
// Remove, Suspend, DenyWaiting with ban, Leave and lapsed leases all list
// the admissions they ended in Event.Revoked; with Redis the event is
// published by the same script that made the change.
//
// # Host actions
//
// Room (the host view), AdmitWaiting, DenyWaiting, Lock, Unlock, Remove
// (optionally banning the subject: every admission and knock of that
// subject ends, and it cannot come back on any node, with any session,
// until Unban or BanTTL after the room ends) and Suspend (lock, remove
// everyone but hosts, deny the whole lobby). Whether the caller is a host is
// the policy's decision; Facts and Room give it what it needs.
//
// # Lifetimes
//
// Config sets them: a room with no admitted participant ends after
// EmptyRoomTTL (rooms from configuration are Permanent and never end);
// bans outlive their room by BanTTL, so recreating a room does not lift
// them; an admission lapses without Touch within ParticipantLease, so a
// crashed node does not hold seats; knocks expire after WaitTTL.
package rooms
