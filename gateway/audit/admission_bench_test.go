package audit

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/meetguard/meetguard/policy"
	"go.uber.org/zap"
)

// admissionInput is a staff member's join as the rooms API describes it.
func admissionInput() policy.Input {
	return policy.Input{
		Identity: policy.Identity{Iss: "https://idp.example.com", Sub: "u-alice", Email: "alice@example.com", EmailVerified: true,
			Name: "Alice Adams", Groups: []string{"staff", "engineering", "berlin"}, ACR: "aal2", AMR: []string{"pwd", "mfa"},
			AuthTime: 1772611200, Via: policy.ViaBearer},
		Room: policy.Room{ID: "standup", Exists: true, Owner: "u-olga", Occupancy: 4, LobbyEnabled: true, HostPresent: true,
			Tags: []string{"business-hours"}},
		Device:  policy.Device{KeyRegistered: true, KeyFingerprint: "SHA256:Jg9m1Yp8q4W0s3nV6cD2rT5uX7zA1bE4fH8kL0oQ2iM", PQ: true},
		Request: policy.Request{Time: time.Date(2026, 3, 4, 9, 30, 0, 123456789, time.UTC), IP: "198.51.100.7", UserAgent: "Mozilla/5.0 (X11; Linux x86_64)", Method: "POST", Path: "/api/v1/rooms/standup/join"},
		History: policy.History{WindowSeconds: 900, Identity: policy.Counters{JoinAttempts: 1}},
	}
}

func admissionDecision() policy.Decision {
	return policy.Decision{Allow: true, Member: true, Role: "participant", Reasons: []string{"staff_domain"}, TTLSeconds: 300,
		Obligations: map[string]any{"require_e2ee": false, "max_duration_minutes": 480}, DecisionID: "6f1c2a9e-8d4b-4c1e-9a7f-2b3c4d5e6f70", Revision: "a1fdc0f13ab404b7"}
}

// admissionFields are the members the rooms API writes for a join.
func admissionFields(in, d any) []zap.Field {
	return []zap.Field{
		zap.String(FieldRoom, "standup"), zap.String(FieldSubject, "u-alice"), zap.String(FieldIssuer, "https://idp.example.com"),
		zap.String(FieldDecision, DecisionAllow), zap.String(FieldRole, "participant"), zap.Strings(FieldReasons, []string{"staff_domain"}),
		zap.String(FieldPolicyRevision, "a1fdc0f13ab404b7"), zap.String(FieldDecisionID, "6f1c2a9e-8d4b-4c1e-9a7f-2b3c4d5e6f70"),
		zap.String(FieldClientIP, "198.51.100.7"), zap.String(FieldVia, "bearer"), zap.Any(FieldInput, in), zap.Any(FieldResult, d),
		zap.String(FieldParticipant, "p-0001"),
	}
}

// deepEncode is what encode did for every admission record before
// needsDeepClean learnt that passcode_required and passcode_failures hold
// harmless facts: the deep clean of every nested member.
func (e *fieldEncoder) deepEncode(fields []zap.Field) ([]byte, []string, error) {
	clean, redacted, _, err := e.sanitize(fields, true)
	if err != nil {
		return nil, nil, err
	}
	b, free, err := e.render(clean)
	if err != nil {
		return nil, nil, err
	}
	defer free()
	return bytes.Clone(b[1 : len(b)-1]), redacted, nil
}

// TestAdmissionRecord_SameBytesAsDeepClean: admission records, which now
// skip the deep clean when their nested members hold nothing to redact,
// have the bytes the deep clean gave them, hostile strings and credentials
// included (so hashes, signatures and verify are unchanged), and their
// credentials are still redacted.
func TestAdmissionRecord_SameBytesAsDeepClean(t *testing.T) {
	hostile := []string{"", `"quoted"`, "<b>&</b>", "ctl\x00\x08\x0c\x1f\x7f", "bad\xff\xc3", "\u2028\u2029", "日本 🙂",
		"Bearer abc.def", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.sig", strings.Repeat("x\x01", 20000)}
	r := rand.New(rand.NewPCG(17, 3))
	s := func() string { return hostile[r.IntN(len(hostile))] }
	rounds := 500
	if raceEnabled {
		rounds = 60 // the same inputs; the race detector slows each round tenfold
	}
	for _, hashed := range [][]string{nil, {"email"}} {
		enc := newFieldEncoder(hashed)
		for range rounds {
			in, d := admissionInput(), admissionDecision()
			in.Identity.Email, in.Identity.Name, in.Identity.Groups = s(), s(), []string{s(), s()}
			in.Room.ID, in.Room.Tags, in.Request.UserAgent, in.Request.Path = s(), []string{s()}, s(), s()
			d.Reasons, d.UserMessage, d.Role = []string{s()}, s(), s()
			if r.IntN(3) == 0 {
				d.Obligations = map[string]any{"note": s()}
			}
			if r.IntN(4) == 0 {
				in.History.Identity.PasscodeFailures, in.Room.PasscodeRequired = r.IntN(9), true
			}
			fields := admissionFields(in, d)
			if r.IntN(10) == 0 { // a secret under a key the scan must still see
				fields = append(fields, zap.Any("detail", map[string]any{"room_passcode": "9876-secret", "passcode_failures": 3}))
			}
			want, wantRedacted, werr := enc.deepEncode(fields)
			got, gotRedacted, gerr := enc.encode(fields)
			if werr != nil || gerr != nil || !bytes.Equal(want, got) || strings.Join(wantRedacted, ",") != strings.Join(gotRedacted, ",") {
				t.Fatalf("hashed %v: %v %v\ndeep clean: %.600q %v\nnow:        %.600q %v", hashed, werr, gerr, want, wantRedacted, got, gotRedacted)
			}
			if strings.Contains(string(got), "abc.def") || strings.Contains(string(got), "eyJzdWIiOiJ4In0") || strings.Contains(string(got), "9876-secret") {
				t.Fatalf("a credential was written: %.600q", got)
			}
		}
	}
}

// BenchmarkEncode_Admission is the caller-side CPU of one join's admission
// record (policy input and result included): "deep" is what it cost before
// (every nested member decoded and cleaned), "scan" now.
func BenchmarkEncode_Admission(b *testing.B) {
	fields := admissionFields(admissionInput(), admissionDecision())
	enc := newFieldEncoder(nil)
	for _, bc := range []struct {
		name   string
		encode func([]zap.Field) ([]byte, []string, error)
	}{{"deep", enc.deepEncode}, {"scan", enc.encode}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := bc.encode(fields); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
