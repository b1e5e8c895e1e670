package policy

import (
	"context"
	"encoding/json"
	"reflect"
	"slices"
	"testing"
)

func TestDecisionRecord_IsOPAShapedAndMasked(t *testing.T) {
	var records []DecisionRecord
	e := newEngine(t, Options{
		Dir:        shippedPolicies,
		MaskFields: []string{"/identity/email", "/input/request/ip", "/identity/no_such_field", "/device/key_fingerprint/deeper"},
		OnDecision: func(r DecisionRecord) { records = append(records, r) },
	})
	in := staffInput()
	in.Device.KeyFingerprint = "SHA256:k"
	d := e.Decide(context.Background(), in)
	if len(records) != 1 {
		t.Fatalf("got %d records, want 1", len(records))
	}
	r := records[0]
	if r.DecisionID != d.DecisionID || r.Path != "meetguard/admission/decision" || r.Bundles[BundleName].Revision != e.Revision() {
		t.Errorf("record id/path/bundles = %q %q %v", r.DecisionID, r.Path, r.Bundles)
	}
	if r.Timestamp.IsZero() || r.Metrics["timer_rego_query_eval_ns"].(int64) <= 0 {
		t.Errorf("timestamp %v metrics %v", r.Timestamp, r.Metrics)
	}
	if want := []string{"/input/identity/email", "/input/request/ip"}; !slices.Equal(r.Erased, want) {
		t.Errorf("erased = %v, want %v", r.Erased, want)
	}

	// What a log shipper would write.
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Input struct {
			Identity map[string]any `json:"identity"`
			Request  map[string]any `json:"request"`
			Device   map[string]any `json:"device"`
		} `json:"input"`
		Result map[string]any `json:"result"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if _, ok := got.Input.Identity["email"]; ok {
		t.Error("masked identity.email is in the record")
	}
	if _, ok := got.Input.Request["ip"]; ok {
		t.Error("masked request.ip is in the record")
	}
	if got.Input.Identity["sub"] != "u-alice" || got.Input.Device["key_fingerprint"] != "SHA256:k" {
		t.Errorf("unmasked fields lost: %v %v", got.Input.Identity, got.Input.Device)
	}
	if got.Result["allow"] != true || got.Result["role"] != "participant" {
		t.Errorf("result = %v", got.Result)
	}
	// Masking one decision's record leaves the next one whole.
	e.Decide(context.Background(), in)
	if in.Identity.Email != "alice@example.com" {
		t.Error("masking changed the caller's input")
	}
}

func TestDecisionRecord_KeepsWhatThePolicySaidOnError(t *testing.T) {
	tests := []struct {
		name       string
		rego       string
		wantResult any
	}{
		{name: "malformed result is kept for the log", rego: `decision := {"allow": "yes"}`, wantResult: map[string]any{"allow": "yes"}},
		{name: "undefined has no result", rego: `decision := {"allow": true} if input.room.id == "elsewhere"`, wantResult: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var rec DecisionRecord
			e := newEngine(t, Options{
				Dir:        policyDir(t, map[string]string{"p.rego": "package meetguard.admission\n\n" + tt.rego + "\n"}),
				OnDecision: func(r DecisionRecord) { rec = r },
			})
			e.Decide(context.Background(), staffInput())
			if rec.Error == "" || rec.Decision.Allow || rec.Decision.Reasons[0] != ReasonPolicyError {
				t.Errorf("record = %+v, want an error and a policy_error decision", rec)
			}
			if !reflect.DeepEqual(rec.Result, tt.wantResult) {
				t.Errorf("result = %#v, want %#v", rec.Result, tt.wantResult)
			}
		})
	}
}

func TestParseMaskPath_EscapesAndPrefixes(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		str  string
	}{
		{"/identity/email", []string{"identity", "email"}, "/input/identity/email"},
		{"/input/identity/email", []string{"identity", "email"}, "/input/identity/email"},
		{"/a~1b/c~0d", []string{"a/b", "c~d"}, "/input/a~1b/c~0d"},
		{"/~01", []string{"~1"}, "/input/~01"},
	}
	for _, tt := range tests {
		p, err := parseMaskPath(tt.in)
		if err != nil || !slices.Equal(p, tt.want) || p.String() != tt.str {
			t.Errorf("parseMaskPath(%q) = %v %q %v, want %v %q", tt.in, p, p.String(), err, tt.want, tt.str)
		}
	}
}
