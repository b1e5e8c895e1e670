package policy

import (
	"context"
	"testing"
)

func TestExplain_ShowsIntermediateRules(t *testing.T) {
	e := newEngine(t, Options{Dir: shippedPolicies})
	in := staffInput()
	in.Room.Locked = true
	ex, err := e.Explain(context.Background(), "decision", in, true)
	if err != nil {
		t.Fatal(err)
	}
	if ex.Decision.Allow || ex.Decision.Reasons[0] != "room_locked" || ex.Package != "data.meetguard.admission" {
		t.Errorf("explanation %+v", ex)
	}
	if deny, ok := ex.Values["deny"].([]any); !ok || len(deny) != 1 || deny[0] != "room_locked" {
		t.Errorf("deny = %#v", ex.Values["deny"])
	}
	if _, ok := ex.Values["decision"]; ok {
		t.Error("the decision itself is repeated among the values")
	}
	if ex.Trace == "" {
		t.Error("no trace")
	}
	if _, err := e.Explain(context.Background(), "data.other.thing", in, false); err == nil {
		t.Error("unknown query accepted")
	}
}
