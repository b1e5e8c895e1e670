package policy

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

func TestShadow_ReportsDisagreementAndLiveDecisionStands(t *testing.T) {
	candidate := copyShipped(t)
	// The candidate no longer treats example.com as staff.
	replaceIn(t, filepath.Join(candidate, "data.json"), `"staff_domains": ["example.com"]`, `"staff_domains": ["example.org"]`)
	records := make(chan ShadowRecord, 4)
	e := newEngine(t, Options{Dir: shippedPolicies, ShadowDir: candidate, OnShadow: func(r ShadowRecord) { records <- r }})
	if st := e.Status(); st.ShadowRevision == "" || st.ShadowRevision == st.Revision {
		t.Fatalf("status %+v: want a distinct shadow revision", st)
	}

	tests := []struct {
		name  string
		in    Input
		agree bool
	}{
		{name: "staff member would become a guest", in: staffInput(), agree: false},
		{name: "host is unaffected", in: hostInput(), agree: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			live := e.Decide(context.Background(), tt.in)
			var r ShadowRecord
			select {
			case r = <-records:
			case <-time.After(10 * time.Second):
				t.Fatal("no shadow record")
			}
			if r.Agree != tt.agree || r.DecisionID != live.DecisionID || r.Live.Revision != e.Revision() || r.ShadowRevision == e.Revision() {
				t.Fatalf("record = %+v", r)
			}
			if !r.Agree && (r.Live.Role != RoleParticipant || !live.Allow || r.Shadow.Role != RoleViewer || !r.Shadow.Lobby) {
				t.Errorf("live %+v shadow %+v: want live participant (standing), shadow lobby viewer", r.Live, r.Shadow)
			}
		})
	}
}

func TestSame_ComparesTreatmentOnly(t *testing.T) {
	a := Decision{Allow: true, Role: RoleHost, Reasons: []string{"host_group"}, DecisionID: "1", Revision: "r1", TTLSeconds: 10}
	b := a
	b.DecisionID, b.Revision, b.TTLSeconds, b.UserMessage = "2", "r2", 20, "hi"
	if !Same(a, b) {
		t.Error("ids, revisions, ttl and messages should not count as a difference")
	}
	for _, change := range []func(*Decision){
		func(d *Decision) { d.Allow = false },
		func(d *Decision) { d.Lobby = true },
		func(d *Decision) { d.Role = RoleViewer },
		func(d *Decision) { d.Reasons = []string{"room_owner"} },
	} {
		c := a
		change(&c)
		if Same(a, c) {
			t.Errorf("%+v and %+v reported the same", a, c)
		}
	}
}
