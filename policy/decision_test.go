package policy

import (
	"errors"
	"slices"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/util"
)

func mustValue(t testing.TB, doc string) ast.Value {
	t.Helper()
	var v any
	if err := util.UnmarshalJSON([]byte(doc), &v); err != nil {
		t.Fatal(err)
	}
	val, err := ast.InterfaceToValue(v)
	if err != nil {
		t.Fatal(err)
	}
	return val
}

func TestDecodeDecision_Valid(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want Decision
	}{
		{name: "allow", doc: `{"allow": true, "lobby": false, "role": "host", "reasons": ["host_group"], "user_message": "", "ttl_seconds": 300, "obligations": {"require_e2ee": true}}`,
			want: Decision{Allow: true, Role: RoleHost, Reasons: []string{"host_group"}, TTLSeconds: 300, Obligations: map[string]any{"require_e2ee": true}}},
		{name: "lobby", doc: `{"allow": false, "lobby": true, "role": "viewer", "reasons": ["guest_lobby"], "user_message": "wait"}`,
			want: Decision{Lobby: true, Role: RoleViewer, Reasons: []string{"guest_lobby"}, UserMessage: "wait"}},
		{name: "deny drops any role", doc: `{"allow": false, "role": "host", "reasons": ["room_locked"]}`,
			want: Decision{Reasons: []string{"room_locked"}}},
		{name: "extra keys ignored", doc: `{"allow": false, "debug": {"x": 1}}`, want: Decision{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeDecision(mustValue(t, tt.doc))
			if err != nil {
				t.Fatal(err)
			}
			if got.Allow != tt.want.Allow || got.Lobby != tt.want.Lobby || got.Role != tt.want.Role || got.UserMessage != tt.want.UserMessage ||
				got.TTLSeconds != tt.want.TTLSeconds || !slices.Equal(got.Reasons, tt.want.Reasons) || len(got.Obligations) != len(tt.want.Obligations) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestDecodeDecision_RejectsMalformedResults(t *testing.T) {
	for _, doc := range []string{
		`true`, `"allow"`, `[{"allow": true}]`, `{}`,
		`{"allow": "true", "role": "host"}`, `{"allow": 1, "role": "host"}`, `{"allow": null}`,
		`{"allow": true, "lobby": true, "role": "host"}`, `{"allow": false, "lobby": "yes"}`,
		`{"allow": true, "role": "admin"}`, `{"allow": true, "role": ""}`, `{"allow": true}`, `{"lobby": true, "allow": false}`,
		`{"allow": true, "role": 1}`, `{"allow": true, "role": "host", "user_message": 5}`,
		`{"allow": true, "role": "host", "reasons": "host_group"}`, `{"allow": true, "role": "host", "reasons": [null]}`,
		`{"allow": true, "role": "host", "ttl_seconds": -1}`, `{"allow": true, "role": "host", "ttl_seconds": 0.5}`,
		`{"allow": true, "role": "host", "ttl_seconds": 1e12}`, `{"allow": true, "role": "host", "ttl_seconds": "60"}`,
		`{"allow": true, "role": "host", "obligations": true}`,
	} {
		if d, err := decodeDecision(mustValue(t, doc)); !errors.Is(err, errNotDecision) {
			t.Errorf("%s: got %+v, %v; want errNotDecision", doc, d, err)
		}
	}
}

func FuzzDecodeDecision(f *testing.F) {
	f.Add(`{"allow": true, "role": "host", "reasons": ["host_group"], "ttl_seconds": 300}`)
	f.Add(`{"allow": false, "lobby": true, "role": "viewer"}`)
	f.Add(`{"allow": true, "lobby": true, "role": "host"}`)
	f.Add(`{"allow": true, "role": "host", "obligations": {"a": [1, {"b": null}]}}`)
	f.Fuzz(func(t *testing.T, doc string) {
		var v any
		if err := util.UnmarshalJSON([]byte(doc), &v); err != nil {
			return
		}
		val, err := ast.InterfaceToValue(v)
		if err != nil {
			return
		}
		d, err := decodeDecision(val)
		if err != nil {
			return
		}
		// Whatever is accepted is one clear outcome with a real role.
		if d.Allow && d.Lobby {
			t.Fatalf("%s: allow and lobby", doc)
		}
		if (d.Allow || d.Lobby) != validRole(d.Role) {
			t.Fatalf("%s: outcome allow=%v lobby=%v with role %q", doc, d.Allow, d.Lobby, d.Role)
		}
		if d.TTLSeconds < 0 || d.TTLSeconds > maxTTLSeconds {
			t.Fatalf("%s: ttl %d", doc, d.TTLSeconds)
		}
	})
}

func TestDecision_Outcome(t *testing.T) {
	for _, tc := range []struct {
		d    Decision
		want string
	}{
		{Decision{Allow: true, Role: RoleParticipant}, OutcomeAllow},
		{Decision{Lobby: true, Role: RoleViewer}, OutcomeLobby},
		{Decision{}, OutcomeDeny},
		{policyError(), OutcomeDeny},
		// Allow wins over a lobby flag the decoder would never let through.
		{Decision{Allow: true, Lobby: true}, OutcomeAllow},
	} {
		if got := tc.d.Outcome(); got != tc.want {
			t.Errorf("%+v.Outcome() = %q, want %q", tc.d, got, tc.want)
		}
	}
}

func BenchmarkDecodeDecision(b *testing.B) {
	v := ast.MustParseTerm(`{"allow": true, "lobby": false, "member": true, "role": "participant", "reasons": ["staff"],
		"user_message": "", "ttl_seconds": 300, "obligations": {"watermark": true}}`).Value
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeDecision(v); err != nil {
			b.Fatal(err)
		}
	}
}
