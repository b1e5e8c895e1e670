package audit

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Member names beyond those in events.go. Every member any gateway record
// carries is named here once; the schema below, `audit report` and the
// typed constructors in typed.go use these names, and docs/audit.md is
// checked against the schema by a test.
const (
	FieldIssuer            = "issuer"
	FieldEmail             = "email"
	FieldVia               = "via"         // how the join came in: "api", "page", "proxy"
	FieldParticipant       = "participant" // the admitted participant's id
	FieldActorIssuer       = "actor_issuer"
	FieldTargetIssuer      = "target_issuer"
	FieldRetryAfterSeconds = "retry_after_seconds"
	FieldSettings          = "settings"
	FieldChanges           = "changes"
	FieldUntil             = "until"
	FieldRemoved           = "removed"
	FieldRevoked           = "revoked"
	FieldInstance          = "instance"
	FieldDevice            = "device"
	FieldKeyID             = "key_id"
	FieldKEM               = "kem"
	FieldAdmitted          = "admitted"
	FieldMembers           = "members"
	FieldCause             = "cause"
	FieldOp                = "op"
	FieldPreviousRevision  = "previous_revision"
	FieldCurrentRevision   = "current_revision"
	FieldError             = "error"
	FieldTrigger           = "trigger"
	FieldShadow            = "shadow"
	FieldChanged           = "changed"
	FieldRestartRequired   = "restart_required"
	FieldStore             = "store"
	FieldSuppressed        = "suppressed"
	FieldUpstream          = "upstream"
	FieldKind              = "kind"
	FieldMember            = "member"
	FieldDetail            = "detail"
	FieldPerson            = "person"
	FieldIdentity          = "identity"
	FieldEventID           = "event_id"
	FieldVersion           = "version"
	FieldPublicURL         = "public_url"
	FieldEvery             = "every"
	FieldSig               = "sig"
	FieldResumedSeq        = "resumed_seq"
	FieldCleanShutdown     = "clean_shutdown"
	FieldTornBytes         = "torn_bytes"
	FieldTornSHA256        = "torn_sha256"
	FieldRefusedRecords    = "refused_records"
	FieldOrigin            = "origin"
	FieldMethod            = "method"
	FieldPath              = "path"
	FieldUpgrade           = "upgrade"
	FieldKID               = "kid"
	FieldPasscodeFailures  = "passcode_failures" // a count, never a passcode
	FieldWindowSeconds     = "window_seconds"
	FieldFormat            = "format" // an export's format ("markdown", "json") or "whatif" for a what-if run
	FieldFrom              = "from"   // a role change's old role
	FieldTo                = "to"     // a role change's new role
	FieldSerial            = "serial" // a certificate's serial number, hex
	FieldPreviousSerial    = "previous_serial"
	FieldNotAfter          = "not_after" // RFC 3339, UTC
	FieldPreviousNotAfter  = "previous_not_after"
	FieldShadowDecision    = "shadow_decision"
	FieldShadowReasons     = "shadow_reasons"
)

// EventSpec is the documented shape of one event: the members every record
// of it carries, and those it carries only in some cases. A record has
// exactly its documented members: no other, none of the required missing.
type EventSpec struct {
	Event    string
	Required []string
	Optional []string
}

// ErrSchema is returned by EventSpec.Check, CheckEntry and (with
// Options.StrictSchema) Record for a record whose members differ from its
// event's documented members, or whose event is not documented.
var ErrSchema = errors.New("audit: record does not match the documented schema")

// schema is the one source of truth for event and member names. Keep it in
// the order of docs/audit.md ("## Events").
var schema = []EventSpec{
	{EventLoginSuccess, []string{FieldSubject, FieldIssuer, FieldEmail, FieldClientIP}, nil},
	{EventLoginFailure, []string{FieldReason, FieldClientIP}, nil},
	{EventLogout, []string{FieldSubject, FieldIssuer, FieldClientIP}, nil},
	{EventSessionRevoked, []string{FieldSubject, FieldReason}, nil},
	{EventAdmissionDecision,
		[]string{FieldRoom, FieldSubject, FieldIssuer, FieldDecision, FieldReasons, FieldClientIP, FieldVia},
		[]string{FieldRole, FieldPolicyRevision, FieldDecisionID, FieldInput, FieldResult, FieldParticipant,
			FieldUnit, FieldLimit, FieldRetryAfterSeconds}},
	{EventAdmissionRateLimited,
		[]string{FieldRoom, FieldSubject, FieldIssuer, FieldDecision, FieldReason, FieldUnit, FieldLimit, FieldClientIP,
			FieldRetryAfterSeconds, FieldVia}, nil},
	{EventRoomPasscodeAttack, []string{FieldRoom, FieldUnit, FieldLimit, FieldPasscodeFailures, FieldWindowSeconds}, nil},
	{EventLobbyKnock, []string{FieldRoom, FieldSubject, FieldIssuer, FieldDecisionID, FieldRole}, nil},
	{EventLobbyAdmit, []string{FieldRoom, FieldActor, FieldActorIssuer, FieldTarget, FieldTargetIssuer, FieldRole, FieldParticipant}, nil},
	{EventLobbyDeny, []string{FieldRoom, FieldActor, FieldActorIssuer, FieldTarget, FieldTargetIssuer, FieldReason}, nil},
	{EventRoomLock, []string{FieldRoom, FieldActor, FieldActorIssuer}, nil},
	{EventRoomUnlock, []string{FieldRoom, FieldActor, FieldActorIssuer}, nil},
	{EventRoomRemove, []string{FieldRoom, FieldActor, FieldActorIssuer, FieldTarget, FieldTargetIssuer, FieldReason, FieldParticipant, FieldRevoked}, nil},
	{EventRoomBan, []string{FieldRoom, FieldActor, FieldActorIssuer, FieldTarget, FieldTargetIssuer, FieldReason, FieldUntil}, nil},
	{EventRoomRole, []string{FieldRoom, FieldActor, FieldActorIssuer, FieldTarget, FieldTargetIssuer, FieldParticipant, FieldFrom, FieldTo, FieldReason}, nil},
	{EventRoomSuspend, []string{FieldRoom, FieldActor, FieldActorIssuer, FieldReason, FieldRemoved}, nil},
	{EventRoomCreate, []string{FieldRoom, FieldActor, FieldActorIssuer, FieldSettings, FieldReasons, FieldDecisionID, FieldPolicyRevision}, nil},
	{EventRoomUpdate, []string{FieldRoom, FieldActor, FieldActorIssuer, FieldChanges}, []string{FieldTarget, FieldTargetIssuer, FieldReason}},
	{EventRoomRecreated, []string{FieldRoom, FieldReason}, nil},
	{EventE2EEKeyRegistered, []string{FieldRoom, FieldInstance, FieldSubject, FieldIssuer, FieldDevice, FieldKeyID, FieldKEM, FieldRole, FieldAdmitted}, nil},
	{EventE2EEEpoch, []string{FieldRoom, FieldInstance, FieldEpoch, FieldReason, FieldMembers}, []string{FieldCause}},
	{EventE2EERejected, []string{FieldRoom, FieldSubject, FieldReason, FieldOp}, []string{FieldInstance, FieldKeyID}},
	{EventE2EEClientAlarm, []string{FieldRoom, FieldSubject, FieldIssuer, FieldKind, FieldEpoch}, []string{FieldMember, FieldDetail}},
	{EventPolicyReload, []string{FieldRevision, FieldPreviousRevision, FieldTrigger, FieldShadow}, nil},
	{EventPolicyReloadRejected, []string{FieldRevision, FieldCurrentRevision, FieldError, FieldTrigger, FieldShadow}, nil},
	{EventPolicyShadowDisagreement, []string{FieldDecisionID, FieldRoom, FieldSubject, FieldPolicyRevision, FieldRevision,
		FieldDecision, FieldReasons, FieldShadowDecision, FieldShadowReasons}, nil},
	{EventConfigReload, []string{FieldRevision, FieldPreviousRevision, FieldChanged}, []string{FieldRestartRequired}},
	{EventConfigReloadRejected, []string{FieldRevision, FieldCurrentRevision, FieldError}, nil},
	{EventTLSReload, []string{FieldTrigger, FieldSerial, FieldPreviousSerial, FieldNotAfter, FieldPreviousNotAfter}, nil},
	{EventTLSReloadRejected, []string{FieldTrigger, FieldError, FieldSerial, FieldNotAfter}, nil},
	{EventStoreFailure, []string{FieldStore, FieldOp, FieldError, FieldSuppressed}, nil},
	{EventGatewayStart, []string{FieldVersion, FieldPublicURL, FieldPolicyRevision}, nil},
	{EventGatewayStop, []string{FieldReason}, nil},
	{EventCheckpoint, []string{FieldKeyID, FieldEvery, FieldReason, FieldSig}, nil},
	{EventOpened, []string{FieldResumedSeq, FieldCleanShutdown, FieldKeyID}, []string{FieldTornBytes, FieldTornSHA256}},
	{EventRecovered, []string{FieldReason, FieldRefusedRecords}, nil},
	{EventUpstreamParticipant, []string{FieldUpstream, FieldRoom, FieldKind, FieldPerson, FieldIdentity, FieldEventID}, nil},
	{EventAuthRejected, []string{FieldReason, FieldClientIP, FieldIssuer, FieldKID, FieldCount, FieldFirst, FieldLast}, nil},
	{EventOriginRefused, []string{FieldSubject, FieldClientIP, FieldOrigin, FieldMethod, FieldPath, FieldUpgrade, FieldCount, FieldFirst, FieldLast}, nil},
	{EventConsoleView, []string{FieldSubject, FieldIssuer, FieldMethod, FieldPath, FieldDecision, FieldClientIP}, []string{FieldReason, FieldFormat}},
}

// Schema returns the documented members of every event, in the order of
// docs/audit.md.
func Schema() []EventSpec {
	out := make([]EventSpec, len(schema))
	for i, s := range schema {
		out[i] = EventSpec{Event: s.Event, Required: slices.Clone(s.Required), Optional: slices.Clone(s.Optional)}
	}
	return out
}

// schemaIndex finds an event's entry in schema without a linear scan:
// every record is checked on its way to the log.
var schemaIndex = func() map[string]int {
	m := make(map[string]int, len(schema))
	for i, s := range schema {
		m[s.Event] = i
	}
	return m
}()

// LookupEvent returns the documented members of event.
func LookupEvent(event string) (EventSpec, bool) {
	i, ok := schemaIndex[event]
	if !ok {
		return EventSpec{}, false
	}
	return schema[i], true
}

// Check reports, wrapping ErrSchema, every member in keys the event does not
// document, every required member missing, and any member given twice.
func (s EventSpec) Check(keys []string) error {
	var problems []string
	seen := make(map[string]bool, len(keys))
	for _, k := range keys {
		switch {
		case seen[k]:
			problems = append(problems, fmt.Sprintf("member %q given twice", k))
		case !slices.Contains(s.Required, k) && !slices.Contains(s.Optional, k):
			problems = append(problems, fmt.Sprintf("undocumented member %q", k))
		}
		seen[k] = true
	}
	for _, k := range s.Required {
		if !seen[k] {
			problems = append(problems, fmt.Sprintf("missing member %q", k))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s: %s", ErrSchema, s.Event, strings.Join(problems, "; "))
	}
	return nil
}

// CheckEvent checks the member keys of a record about to be written.
func CheckEvent(event string, keys []string) error {
	s, ok := LookupEvent(event)
	if !ok {
		return fmt.Errorf("%w: undocumented event %q", ErrSchema, event)
	}
	return s.Check(keys)
}

// CheckFields checks the zap fields of a record about to be written.
func CheckFields(event string, fields []zap.Field) error {
	if fieldsMatch(event, fields) {
		return nil
	}
	// Something differs (or the fields are not simple to check in
	// place): the full check names every problem.
	keys := make([]string, 0, len(fields))
	for _, f := range fields {
		switch f.Type {
		case zapcore.SkipType:
		case zapcore.InlineMarshalerType:
			m := zapcore.NewMapObjectEncoder()
			f.AddTo(m)
			for k := range m.Fields {
				keys = append(keys, k)
			}
		default:
			keys = append(keys, f.Key)
		}
	}
	return CheckEvent(event, keys)
}

// CheckEntry checks a record read back from the log.
func CheckEntry(e *Entry) error {
	keys := make([]string, len(e.Members))
	for i, m := range e.Members {
		keys[i] = m.Key
	}
	if e.Event == EventCheckpoint {
		keys = append(keys, FieldSig) // the parser keeps sig apart
	}
	if err := CheckEvent(e.Event, keys); err != nil {
		return fmt.Errorf("seq %d: %w", e.Seq, err)
	}
	return nil
}

// fieldsMatch is CheckFields's fast path for a record that matches its
// schema, without allocating: each key must be documented and given once,
// and every required key present. It returns false for anything else
// (including inline objects, whose keys it does not expand), leaving the
// verdict and its message to the full check.
func fieldsMatch(event string, fields []zap.Field) bool {
	i, ok := schemaIndex[event]
	if !ok {
		return false
	}
	s := &schema[i]
	if len(s.Required)+len(s.Optional) > 64 {
		return false
	}
	var seen uint64
	for _, f := range fields {
		switch f.Type {
		case zapcore.SkipType:
			continue
		case zapcore.InlineMarshalerType:
			return false
		}
		bit := -1
		if j := slices.Index(s.Required, f.Key); j >= 0 {
			bit = j
		} else if j := slices.Index(s.Optional, f.Key); j >= 0 {
			bit = len(s.Required) + j
		}
		if bit < 0 || seen&(1<<bit) != 0 {
			return false
		}
		seen |= 1 << bit
	}
	required := uint64(1)<<len(s.Required) - 1
	return seen&required == required
}
