package policy

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"testing"
)

// TestConsoleGate_RolesFromDataJSON: the shipped data grants nobody; a
// security team grants roles in data.json and a reload takes them (and
// takes them away) without a restart.
func TestConsoleGate_RolesFromDataJSON(t *testing.T) {
	ctx := context.Background()
	dir := copyShipped(t)
	e := newEngine(t, Options{Dir: dir})
	g := NewConsoleGate(e)
	aud := Identity{Iss: "https://idp", Sub: "u-audrey", Email: "audrey@example.com", EmailVerified: true, Groups: []string{"internal-audit"}}
	sec := Identity{Iss: "https://idp", Sub: "u-sam", Groups: []string{"secops"}}
	for _, id := range []Identity{aud, sec, {}} {
		if a, err := g.Access(ctx, id); err != nil || a.Allow || len(a.Roles) > 0 {
			t.Fatalf("shipped policy gives %s %+v, %v; want nobody", id.Sub, a, err)
		}
	}
	replaceIn(t, filepath.Join(dir, "data.json"), `"auditor": {"subjects": [], "emails": [], "groups": []}`,
		`"auditor": {"subjects": [], "emails": [], "groups": ["internal-audit", "secops"]}`)
	replaceIn(t, filepath.Join(dir, "data.json"), `"security": {"subjects": [], "emails": [], "groups": []}`,
		`"security": {"subjects": ["u-sam"], "emails": [], "groups": []}`)
	if err := e.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if a, err := g.Access(ctx, aud); err != nil || !a.Allow || !slices.Equal(a.Roles, []string{ConsoleRoleAuditor}) || a.Has(ConsoleRoleSecurity) {
		t.Fatalf("auditor: %+v, %v", a, err)
	}
	if a, err := g.Access(ctx, sec); err != nil || !a.Has(ConsoleRoleSecurity) || !a.Has(ConsoleRoleAuditor) {
		t.Fatalf("security engineer: %+v, %v", a, err)
	}
	// Someone else claiming the auditor's email without the provider
	// having verified it gets nothing.
	if a, err := g.Access(ctx, Identity{Sub: "u-mallory", Email: "audrey@example.com"}); err != nil || a.Allow {
		t.Fatalf("unverified email: %+v, %v", a, err)
	}
}

// TestConsoleGate_FailsClosed: a bundle without the rule grants nobody; a
// rule answering the wrong shape is an error, never access.
func TestConsoleGate_FailsClosed(t *testing.T) {
	ctx := context.Background()
	id := Identity{Sub: "u-sam"}
	cases := map[string]struct {
		rule    string
		wantErr bool
	}{
		"no rule":                  {"package meetguard.console_other\n\nx := 1\n", false},
		"not an object":            {"package meetguard.console\n\naccess := true\n", true},
		"allow not bool":           {"package meetguard.console\n\naccess := {\"allow\": \"yes\", \"roles\": [\"security\"]}\n", true},
		"allow false, roles given": {"package meetguard.console\n\naccess := {\"allow\": false, \"roles\": [\"security\"]}\n", false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			dir := copyShipped(t)
			writeFiles(t, dir, map[string]string{"console.rego": tc.rule, "console_test.rego": "package meetguard.console_test\n"})
			g := NewConsoleGate(newEngine(t, Options{Dir: dir}))
			a, err := g.Access(ctx, id)
			if a.Allow || a.Has(ConsoleRoleSecurity) {
				t.Fatalf("access %+v", a)
			}
			if tc.wantErr != (err != nil) || err != nil && !errors.Is(err, ErrConsoleAccess) {
				t.Fatalf("err %v, want error %v", err, tc.wantErr)
			}
		})
	}
}
