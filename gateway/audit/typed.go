package audit

import (
	"context"
	"time"

	"go.uber.org/zap"
)

// Fact is one record about to be written, built by a typed constructor so
// that its event and member names come from the schema and cannot drift
// from docs/audit.md.
type Fact struct {
	Event  string
	Fields []zap.Field
}

// Recorder is what Write needs: Log, or any Auditor of the gateway.
type Recorder interface {
	Record(ctx context.Context, event string, fields ...zap.Field) error
}

// Write records f with r.
func Write(ctx context.Context, r Recorder, f Fact) error {
	return r.Record(ctx, f.Event, f.Fields...)
}

// PolicyReloaded is a new policy revision in force. Trigger is "reload"
// (SIGHUP) or "watch"; Shadow marks the shadow policy.
func PolicyReloaded(revision, previous, trigger string, shadow bool) Fact {
	return Fact{EventPolicyReload, []zap.Field{
		zap.String(FieldRevision, revision), zap.String(FieldPreviousRevision, previous),
		zap.String(FieldTrigger, trigger), zap.Bool(FieldShadow, shadow),
	}}
}

// PolicyReloadRejected is a policy refused while current keeps serving;
// attempted is the refused bundle's revision ("" when it could not be
// read) and problem why it was refused.
func PolicyReloadRejected(attempted, current, problem, trigger string, shadow bool) Fact {
	return Fact{EventPolicyReloadRejected, []zap.Field{
		zap.String(FieldRevision, attempted), zap.String(FieldCurrentRevision, current),
		zap.String(FieldError, problem), zap.String(FieldTrigger, trigger), zap.Bool(FieldShadow, shadow),
	}}
}

// TLSReloaded is a new serving certificate read from the certificate files;
// trigger is "signal" (SIGHUP) or "file" (the files changed).
func TLSReloaded(trigger, serial, previousSerial string, notAfter, previousNotAfter time.Time) Fact {
	return Fact{EventTLSReload, []zap.Field{
		zap.String(FieldTrigger, trigger), zap.String(FieldSerial, serial), zap.String(FieldPreviousSerial, previousSerial),
		zap.String(FieldNotAfter, rfc3339(notAfter)), zap.String(FieldPreviousNotAfter, rfc3339(previousNotAfter)),
	}}
}

// TLSReloadRejected is a certificate pair refused; serial and notAfter are
// those of the certificate that keeps serving, problem why the new pair was
// refused.
func TLSReloadRejected(trigger, problem, serial string, notAfter time.Time) Fact {
	return Fact{EventTLSReloadRejected, []zap.Field{
		zap.String(FieldTrigger, trigger), zap.String(FieldError, problem), zap.String(FieldSerial, serial),
		zap.String(FieldNotAfter, rfc3339(notAfter)),
	}}
}

// RoomRecreated is a permanent room created again, with its configured
// settings, after the room store lost it; reason is ReasonStoreDataLost.
func RoomRecreated(room, reason string) Fact {
	return Fact{EventRoomRecreated, []zap.Field{zap.String(FieldRoom, room), zap.String(FieldReason, reason)}}
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// PolicyShadowDisagreement is a decision the shadow policy (revision
// shadowRev) would have made differently from the live one (liveRev);
// decisions are "allow", "lobby" or "deny".
func PolicyShadowDisagreement(decisionID, room, subject, liveRev, shadowRev, live string, liveReasons []string, shadow string, shadowReasons []string) Fact {
	return Fact{EventPolicyShadowDisagreement, []zap.Field{
		zap.String(FieldDecisionID, decisionID), zap.String(FieldRoom, room), zap.String(FieldSubject, subject),
		zap.String(FieldPolicyRevision, liveRev), zap.String(FieldRevision, shadowRev),
		zap.String(FieldDecision, live), zap.Strings(FieldReasons, nonNil(liveReasons)),
		zap.String(FieldShadowDecision, shadow), zap.Strings(FieldShadowReasons, nonNil(shadowReasons)),
	}}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// GatewayStarted is the first record of a gateway run.
func GatewayStarted(version, publicURL, policyRevision string) Fact {
	return Fact{EventGatewayStart, []zap.Field{
		zap.String(FieldVersion, version), zap.String(FieldPublicURL, publicURL), zap.String(FieldPolicyRevision, policyRevision),
	}}
}

// GatewayStopped is the last record of a gateway run; reason is
// "shutdown" or the error that stopped it.
func GatewayStopped(reason string) Fact {
	return Fact{EventGatewayStop, []zap.Field{zap.String(FieldReason, reason)}}
}

// UpstreamParticipant is what a meeting server reported about a
// participant.
func UpstreamParticipant(upstream, room, kind, person, identity, eventID string) Fact {
	return Fact{EventUpstreamParticipant, []zap.Field{
		zap.String(FieldUpstream, upstream), zap.String(FieldRoom, room), zap.String(FieldKind, kind),
		zap.String(FieldPerson, person), zap.String(FieldIdentity, identity), zap.String(FieldEventID, eventID),
	}}
}

// ConsoleViewed is one security console request: decision is "allow" or
// "deny" (reason says why a refusal: "no_role", "policy_error"); format
// names an export's format.
func ConsoleViewed(subject, issuer, method, path, decision, reason, format, clientIP string) Fact {
	f := []zap.Field{
		zap.String(FieldSubject, subject), zap.String(FieldIssuer, issuer), zap.String(FieldMethod, method),
		zap.String(FieldPath, path), zap.String(FieldDecision, decision), zap.String(FieldClientIP, clientIP),
	}
	if reason != "" {
		f = append(f, zap.String(FieldReason, reason))
	}
	if format != "" {
		f = append(f, zap.String(FieldFormat, format))
	}
	return Fact{EventConsoleView, f}
}

// E2EEClientAlarm is an alarm a client reported: its kind, the epoch it was
// at, and the member (credential hash) and description it gave, if any.
func E2EEClientAlarm(room, subject, issuer, kind string, epoch uint64, member, detail string) Fact {
	f := []zap.Field{
		zap.String(FieldRoom, room), zap.String(FieldSubject, subject), zap.String(FieldIssuer, issuer),
		zap.String(FieldKind, kind), zap.Uint64(FieldEpoch, epoch),
	}
	if member != "" {
		f = append(f, zap.String(FieldMember, member))
	}
	if detail != "" {
		f = append(f, zap.String(FieldDetail, detail))
	}
	return Fact{EventE2EEClientAlarm, f}
}
