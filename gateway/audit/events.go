package audit

// Event names: one per kind of security-relevant thing that happened. They are
// a stable interface (SIEM rules and `meetguard audit query --event` match on
// them); docs/audit.md shows an example record of each. The members of
// each event are in Schema (schema.go), the one list the writers, `audit
// report` and docs/audit.md are checked against.
const (
	EventLoginSuccess   = "login.success"
	EventLoginFailure   = "login.failure"
	EventLogout         = "logout"
	EventSessionRevoked = "session.revoked"
	// EventAuthRejected counts, per source, reason, issuer and kid and
	// minute, bearer credentials the gateway refused (forged, expired, for
	// another audience, signed by an unknown key, malformed).
	EventAuthRejected = "auth.rejected"

	// EventAdmissionDecision carries FieldInput and FieldResult, which
	// `meetguard policy replay` re-evaluates.
	EventAdmissionDecision = "admission.decision"
	// EventAdmissionRateLimited is a join refused by a rate limit or a
	// passcode backoff before the policy was asked.
	EventAdmissionRateLimited = "admission.rate_limited"
	// EventRoomPasscodeAttack: a room's budget of wrong passcodes was
	// spent; until its window ends, passcode entry sends everyone but
	// hosts to the waiting room.
	EventRoomPasscodeAttack = "room.passcode_attack"

	EventLobbyKnock = "lobby.knock"
	EventLobbyAdmit = "lobby.admit"
	EventLobbyDeny  = "lobby.deny"

	EventRoomLock   = "room.lock"
	EventRoomUnlock = "room.unlock"
	EventRoomRemove = "room.remove"
	EventRoomBan    = "room.ban"
	// EventRoomRole: a host changed an admitted participant's role;
	// written before the change is made.
	EventRoomRole    = "room.role"
	EventRoomSuspend = "room.suspend"
	EventRoomCreate  = "room.create"
	EventRoomUpdate  = "room.update"
	// EventRoomRecreated: a node created a permanent room again that the
	// room store had lost (Redis restarted empty, FLUSHALL). The room is
	// back with its configured settings, unlocked and without the bans,
	// lobby and host changes it had.
	EventRoomRecreated = "room.recreated"

	EventE2EEKeyRegistered = "e2ee.key_registered"
	EventE2EEEpoch         = "e2ee.epoch"
	EventE2EERejected      = "e2ee.rejected"
	// EventE2EEClientAlarm is an alarm a client reported raising (the
	// client's word, counted and recorded only).
	EventE2EEClientAlarm = "e2ee.client_alarm"

	EventPolicyReload         = "policy.reload"
	EventPolicyReloadRejected = "policy.reload_rejected"
	// EventPolicyShadowDisagreement is a decision the shadow (candidate)
	// policy would have made differently; the live decision stood.
	EventPolicyShadowDisagreement = "policy.shadow_disagreement"
	EventConfigReload             = "config.reload"
	EventConfigReloadRejected     = "config.reload_rejected"
	// EventTLSReload is a new certificate from tls.cert_file in force;
	// EventTLSReloadRejected a new pair refused while the old one serves.
	EventTLSReload         = "tls.reload"
	EventTLSReloadRejected = "tls.reload_rejected"
	EventStoreFailure      = "store.failure"

	// EventUpstreamParticipant is what a meeting server itself reports
	// (LiveKit webhooks); an empty person means someone joined with a
	// credential the gateway did not mint.
	EventUpstreamParticipant = "upstream.participant"

	// EventOriginRefused counts, per caller, origin and minute, requests a
	// browser sent from a foreign origin (cross-site WebSocket hijacking,
	// cross-site request forgery) that the gateway refused.
	EventOriginRefused = "origin.refused"

	// EventConsoleView is one request to the security console (a page
	// view, a what-if run or an export), allowed or refused: who looked
	// at the audit trail is itself on the audit trail.
	EventConsoleView = "console.view"

	EventGatewayStart = "gateway.start"
	EventGatewayStop  = "gateway.stop"

	// Records the log writes itself. Record refuses every "audit." name so
	// that no caller can forge one.
	EventCheckpoint = "audit.checkpoint"
	EventOpened     = "audit.opened"
	EventRecovered  = "audit.recovered"
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
	// FieldUnit is what a rate limit is about: "identity", "address" or
	// "room"; FieldLimit which limit ("join_attempts",
	// "passcode_failures", "join_failures", "address_failures",
	// "passcode_attack").
	FieldUnit  = "unit"
	FieldLimit = "limit"
)

// ReasonStoreDataLost is the FieldReason of EventRoomRecreated: the room
// store no longer held the room.
const ReasonStoreDataLost = "store_data_lost"

// Decisions as written in FieldDecision.
const (
	DecisionAllow = "allow"
	DecisionLobby = "lobby"
	DecisionDeny  = "deny"
)
