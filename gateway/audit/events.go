package audit

// Event names: one per kind of security-relevant thing that happened. They are
// a stable interface (SIEM rules and `meetguard audit query --event` match on
// them); docs/audit.md shows an example record of each.
const (
	EventLoginSuccess   = "login.success"   // subject, issuer, client_ip, session
	EventLoginFailure   = "login.failure"   // reason (a code), issuer, client_ip, subject when known
	EventLogout         = "logout"          // subject, session, client_ip
	EventSessionRevoked = "session.revoked" // subject, session, actor, reason

	// EventAdmissionDecision carries FieldRoom, FieldSubject, FieldDecision,
	// FieldRole, FieldReasons, FieldPolicyRevision, FieldDecisionID,
	// FieldClientIP, FieldInput and FieldResult (the last two are what
	// `meetguard policy replay` re-evaluates).
	EventAdmissionDecision = "admission.decision"
	// EventAdmissionRateLimited is a join refused by a rate limit or a
	// passcode backoff before the policy was asked: room, subject,
	// client_ip, retry_after_seconds, reason.
	EventAdmissionRateLimited = "admission.rate_limited"

	EventLobbyKnock = "lobby.knock" // room, subject, decision_id
	EventLobbyAdmit = "lobby.admit" // room, actor, target, role
	EventLobbyDeny  = "lobby.deny"  // room, actor, target, reason

	EventRoomLock    = "room.lock"    // room, actor
	EventRoomUnlock  = "room.unlock"  // room, actor
	EventRoomRemove  = "room.remove"  // room, actor, target, reason
	EventRoomBan     = "room.ban"     // room, actor, target, reason, until
	EventRoomSuspend = "room.suspend" // room, actor, reason
	EventRoomCreate  = "room.create"  // room, actor, settings
	EventRoomUpdate  = "room.update"  // room, actor, changes

	EventE2EEKeyRegistered = "e2ee.key_registered" // room, subject, device, key_id
	EventE2EEEpoch         = "e2ee.epoch"          // room, epoch, reason, members
	EventE2EERejected      = "e2ee.rejected"       // room, subject, reason

	EventPolicyReload         = "policy.reload"          // revision, previous_revision
	EventPolicyReloadRejected = "policy.reload_rejected" // revision (attempted), current_revision, error
	EventConfigReload         = "config.reload"          // revision, previous_revision
	EventConfigReloadRejected = "config.reload_rejected" // revision (attempted), current_revision, error
	EventStoreFailure         = "store.failure"          // store, op, error
	// EventUpstreamParticipant is what a meeting server itself reports
	// (LiveKit webhooks): upstream, room, kind (participant_joined, _left,
	// _connection_aborted), person; an empty person means someone joined
	// with a credential the gateway did not mint.
	EventUpstreamParticipant = "upstream.participant"

	EventGatewayStart = "gateway.start" // version, config_revision, policy_revision
	EventGatewayStop  = "gateway.stop"  // reason

	// Records the log writes itself. Record refuses every "audit." name so
	// that no caller can forge one.
	EventCheckpoint = "audit.checkpoint" // key_id, every, reason, sig
	EventOpened     = "audit.opened"     // resumed_seq, clean_shutdown, torn_bytes, torn_sha256
	EventRecovered  = "audit.recovered"  // reason, refused_records
)

// Member keys that other code relies on (query filters, reports, policy
// replay). Use them instead of string literals.
const (
	FieldRoom           = "room"
	FieldSubject        = "subject"
	FieldDecision       = "decision" // "allow", "lobby" or "deny"
	FieldRole           = "role"     // "host", "participant" or "viewer"
	FieldReasons        = "reasons"  // reason codes, []string
	FieldReason         = "reason"   // one reason code
	FieldPolicyRevision = "policy_revision"
	FieldDecisionID     = "decision_id"
	FieldClientIP       = "client_ip"
	FieldInput          = "input"  // the policy input object
	FieldResult         = "result" // the policy decision object
	FieldActor          = "actor"  // who did it (host actions)
	FieldTarget         = "target" // to whom
	FieldEpoch          = "epoch"
	FieldRevision       = "revision"
	FieldSession        = "session" // a session reference, never the cookie value
)

// Decisions as written in FieldDecision.
const (
	DecisionAllow = "allow"
	DecisionLobby = "lobby"
	DecisionDeny  = "deny"
)
