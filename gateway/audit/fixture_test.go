package audit

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap"
)

// fixtureStart is when the fixture meeting begins.
const fixtureStart = "2026-03-02T09:00:00Z"

type fixtureEvent struct {
	after  time.Duration // since the previous event
	event  string
	fields []zap.Field
}

func decision(room, subject, d, role string, reasons []string, id string) []zap.Field {
	return []zap.Field{
		zap.String(FieldRoom, room), zap.String(FieldSubject, subject), zap.String(FieldDecision, d),
		zap.String(FieldRole, role), zap.Strings(FieldReasons, reasons), zap.String(FieldPolicyRevision, "rev-7c1e"),
		zap.String(FieldDecisionID, id), zap.String(FieldClientIP, "198.51.100.7"),
		zap.Any(FieldInput, map[string]any{"identity": map[string]any{"sub": subject, "name": fixtureNames[subject], "email": subject}, "room": map[string]any{"id": room}}),
		zap.Any(FieldResult, map[string]any{"decision": d, "role": role, "reasons": reasons}),
	}
}

// fixtureNames are the display names the identity provider gives.
var fixtureNames = map[string]string{"alice@example.com": "Alice Adams", "mallory@bombers.example": "Mallory M."}

// fixtureEvents is the story of one bombed meeting, in room "standup",
// with one unrelated admission in room "retro".
func fixtureEvents() []fixtureEvent {
	s := zap.String
	return []fixtureEvent{
		{0, EventGatewayStart, []zap.Field{s("version", "1.0.0"), s("policy_revision", "rev-7c1e")}},
		{30 * time.Second, EventLoginSuccess, []zap.Field{s(FieldSubject, "alice@example.com"), s("issuer", "https://idp.example.com"), s(FieldEmail, "alice@example.com"), s(FieldClientIP, "198.51.100.7")}},
		{2 * time.Second, EventAdmissionDecision, decision("standup", "alice@example.com", DecisionAllow, "host", []string{"org_member", "room_owner"}, "d-001")},
		{time.Second, EventE2EEKeyRegistered, []zap.Field{s(FieldRoom, "standup"), s(FieldSubject, "alice@example.com"), s("device", "laptop"), s("key_id", "k-a1")}},
		{time.Second, EventE2EEEpoch, []zap.Field{s(FieldRoom, "standup"), zap.Int(FieldEpoch, 1), s(FieldReason, "room_started"), zap.Int("members", 1)}},
		{40 * time.Second, EventLoginSuccess, []zap.Field{s(FieldSubject, "bob@partner.example"), s("issuer", "https://idp.example.com"), s(FieldClientIP, "203.0.113.9")}},
		{time.Second, EventAdmissionDecision, decision("standup", "bob@partner.example", DecisionLobby, "participant", []string{"external_domain"}, "d-002")},
		{0, EventLobbyKnock, []zap.Field{s(FieldRoom, "standup"), s(FieldSubject, "bob@partner.example"), s(FieldDecisionID, "d-002")}},
		{20 * time.Second, EventLobbyAdmit, []zap.Field{s(FieldRoom, "standup"), s(FieldActor, "alice@example.com"), s(FieldTarget, "bob@partner.example"), s(FieldRole, "participant")}},
		{time.Second, EventE2EEEpoch, []zap.Field{s(FieldRoom, "standup"), zap.Int(FieldEpoch, 2), s(FieldReason, "member_joined"), zap.Int("members", 2)}},
		{10 * time.Second, EventAdmissionDecision, decision("retro", "dave@example.com", DecisionAllow, "participant", []string{"org_member"}, "d-003")},
		{30 * time.Second, EventLoginFailure, []zap.Field{s(FieldReason, "state_mismatch"), s("issuer", "https://idp.example.com"), s(FieldClientIP, "192.0.2.66")}},
		{5 * time.Second, EventAdmissionDecision, decision("standup", "mallory@bombers.example", DecisionDeny, "", []string{"not_invited", "domain_blocked"}, "d-004")},
		{5 * time.Second, EventRoomLock, []zap.Field{s(FieldRoom, "standup"), s(FieldActor, "alice@example.com")}},
		{time.Minute, EventAdmissionDecision, decision("standup", "carol@example.com", DecisionLobby, "participant", []string{"room_locked"}, "d-005")},
		{0, EventLobbyKnock, []zap.Field{s(FieldRoom, "standup"), s(FieldSubject, "carol@example.com"), s(FieldDecisionID, "d-005")}},
		{15 * time.Second, EventLobbyDeny, []zap.Field{s(FieldRoom, "standup"), s(FieldActor, "alice@example.com"), s(FieldTarget, "carol@example.com"), s(FieldReason, "not_expected")}},
		{2 * time.Minute, EventRoomRemove, []zap.Field{s(FieldRoom, "standup"), s(FieldActor, "alice@example.com"), s(FieldTarget, "bob@partner.example"), s(FieldReason, "disruptive")}},
		{time.Second, EventE2EEEpoch, []zap.Field{s(FieldRoom, "standup"), zap.Int(FieldEpoch, 3), s(FieldReason, "member_removed"), zap.Int("members", 1)}},
		{time.Second, EventRoomBan, []zap.Field{s(FieldRoom, "standup"), s(FieldActor, "alice@example.com"), s(FieldTarget, "bob@partner.example"), s(FieldReason, "disruptive")}},
		{30 * time.Second, EventPolicyReload, []zap.Field{s(FieldRevision, "rev-9a0b"), s("previous_revision", "rev-7c1e")}},
		{10 * time.Second, EventE2EERejected, []zap.Field{s(FieldRoom, "standup"), s(FieldSubject, "mallory@bombers.example"), s(FieldReason, "not_admitted")}},
		{time.Minute, EventRoomUnlock, []zap.Field{s(FieldRoom, "standup"), s(FieldActor, "alice@example.com")}},
		{5 * time.Minute, EventGatewayStop, []zap.Field{s(FieldReason, "shutdown")}},
	}
}

// writeFixture writes the fixture log into dir and returns its path. The
// log is byte-for-byte reproducible: fixed key, fixed clock, no interval
// checkpoints.
func writeFixture(t testing.TB, dir string, every int) string {
	t.Helper()
	path := filepath.Join(dir, "audit.log")
	start, _ := time.Parse(time.RFC3339, fixtureStart)
	clock := &fakeClock{now: start}
	l := openTestLog(t, Options{Path: path, CheckpointEvery: every, CheckpointInterval: 1000 * time.Hour, Clock: clock.Now})
	now := start
	for _, ev := range fixtureEvents() {
		now = now.Add(ev.after)
		clock.Set(now)
		if err := l.Record(context.Background(), ev.event, ev.fields...); err != nil {
			t.Fatal(err)
		}
	}
	clock.Set(now.Add(time.Second))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}
