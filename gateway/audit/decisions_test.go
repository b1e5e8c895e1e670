package audit

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap"
)

func personDecision(room, sub, name, email, d string, reasons []string, ip string) []zap.Field {
	return []zap.Field{
		zap.String(FieldRoom, room), zap.String(FieldSubject, sub), zap.String(FieldIssuer, "https://idp"), zap.String(FieldDecision, d),
		zap.String(FieldRole, ""), zap.Strings(FieldReasons, reasons), zap.String(FieldClientIP, ip), zap.String(FieldVia, "api"),
		zap.Any(FieldInput, map[string]any{"identity": map[string]any{"sub": sub, "name": name, "email": email}}),
	}
}

// TestDecisionIndex_FiltersPagesAndFollowsRotation: the index finds
// decisions by room, person (name, email or sub), outcome, reason and time;
// Update reads only what was appended, and rows survive the active file
// being rotated under a new name.
func TestDecisionIndex_FiltersPagesAndFollowsRotation(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "audit.log")
	clock := newFakeClock("2026-03-02T09:00:00Z", time.Minute)
	l := openTestLog(t, Options{Path: path, Clock: clock.Now, MaxFileBytes: 4 << 10})
	for i := range 30 {
		d, reasons := DecisionAllow, []string{"staff_domain"}
		if i%3 == 0 {
			d, reasons = DecisionDeny, []string{"mfa_required", "guest"}
		}
		if err := l.Record(ctx, EventAdmissionDecision, personDecision("board", fmt.Sprintf("u-%02d", i), fmt.Sprintf("Person %02d", i), fmt.Sprintf("p%02d@example.com", i), d, reasons, "192.0.2.1")...); err != nil {
			t.Fatal(err)
		}
	}
	x := NewDecisionIndex()
	// The log rotates just after acknowledging a record: a listing can
	// race the rename, and the next Update catches up.
	update := func(want int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			files, err := LogFiles(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := x.Update(ctx, files); err != nil {
				t.Fatal(err)
			}
			if x.Len() == want || time.Now().After(deadline) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if x.Len() != want {
			t.Fatalf("indexed %d decisions, want %d", x.Len(), want)
		}
	}
	update(30)
	if files, _ := LogFiles(path); len(files) < 2 {
		t.Fatalf("files %v: want the log rotated", files)
	}
	cases := []struct {
		name  string
		q     DecisionQuery
		total int
		first string
	}{
		{"all newest first", DecisionQuery{}, 30, "u-29"},
		{"refused", DecisionQuery{Outcome: DecisionDeny}, 10, "u-27"},
		{"by reason", DecisionQuery{Reason: "guest"}, 10, "u-27"},
		{"reason is a whole code", DecisionQuery{Reason: "gue"}, 0, ""},
		{"by display name", DecisionQuery{Person: "person 04"}, 1, "u-04"},
		{"by email", DecisionQuery{Person: "P05@EXAMPLE"}, 1, "u-05"},
		{"by sub", DecisionQuery{Person: "u-06"}, 1, "u-06"},
		{"other room", DecisionQuery{Room: "retro"}, 0, ""},
		{"second page", DecisionQuery{Offset: 25, Limit: 10}, 30, "u-04"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := x.Query(tc.q)
			if p.Total != tc.total {
				t.Fatalf("total %d, want %d", p.Total, tc.total)
			}
			if tc.first != "" && (len(p.Decisions) == 0 || p.Decisions[0].Subject != tc.first) {
				t.Fatalf("first %+v, want %s", p.Decisions, tc.first)
			}
		})
	}
	at := func(sub string) time.Time { return x.Query(DecisionQuery{Person: sub}).Decisions[0].Time }
	if p := x.Query(DecisionQuery{Since: at("u-11"), Until: at("u-12").Add(time.Nanosecond)}); p.Total != 2 || p.Decisions[0].Subject != "u-12" {
		t.Fatalf("time window: %+v", p)
	}
	p := x.Query(DecisionQuery{Person: "p03@"})
	if d := p.Decisions[0]; d.Name != "Person 03" || d.Email != "p03@example.com" || d.Outcome != DecisionDeny || len(d.Reasons) != 2 {
		t.Fatalf("row %+v", d)
	}
	e, err := x.Entry(p.Decisions[0].Ref)
	if err != nil || e.Str(FieldSubject) != "u-03" || e.Event != EventAdmissionDecision {
		t.Fatalf("entry %+v, %v", e, err)
	}
	if hs := x.Query(DecisionQuery{}).HotSpots; len(hs.Reasons) != 2 || hs.Reasons[0].N != 10 || len(hs.People) != 10 || hs.Addresses[0] != (Count{"192.0.2.1", 10}) {
		t.Fatalf("hot spots %+v", hs)
	}

	// More records, another rotation: only the new ones are added.
	for i := range 5 {
		if err := l.Record(ctx, EventAdmissionRateLimited, zap.String(FieldRoom, "board"), zap.String(FieldSubject, "u-flood"), zap.String(FieldIssuer, "https://idp"),
			zap.String(FieldDecision, DecisionDeny), zap.String(FieldReason, "rate_limited"), zap.String(FieldUnit, "identity"), zap.String(FieldLimit, "join_attempts"),
			zap.String(FieldClientIP, "203.0.113.9"), zap.Int(FieldRetryAfterSeconds, 60), zap.String(FieldVia, "api")); err != nil {
			t.Fatal(err)
		}
		_ = i
	}
	update(35)
	hs := x.Query(DecisionQuery{}).HotSpots
	if len(hs.RateLimits) != 1 || hs.RateLimits[0] != (Count{"join_attempts", 5}) || hs.People[0] != (Count{"u-flood", 5}) {
		t.Fatalf("rate limits %+v people %+v", hs.RateLimits, hs.People)
	}
	if p := x.Query(DecisionQuery{Outcome: OutcomeRateLimited}); p.Total != 5 {
		t.Fatalf("rate limited: %d", p.Total)
	}
}
